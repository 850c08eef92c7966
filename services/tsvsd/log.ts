// tsvsd logging: one line per event on stderr, with an ISO timestamp, the process id and key=value fields.

/** Logs one event. `fields` are appended as key=value (strings JSON-quoted when they contain spaces). */
export type Logger = (event: string, fields?: Record<string, string | number | boolean | undefined>) => void;

function fmt(v: string | number | boolean): string {
  return typeof v === 'string' && (v === '' || /[\s"=]/.test(v)) ? JSON.stringify(v) : String(v);
}

/**
 * A logger writing `2025-01-01T00:00:00.000Z tsvsd[123] event k=v ...\n` through `write` (stderr by
 * default). Newlines inside the event are escaped so one event is always one line.
 */
export function createLogger(
  write: (line: string) => void = (l) => process.stderr.write(l),
  now: () => Date = () => new Date(),
  pid: number = process.pid,
): Logger {
  return (event, fields = {}) => {
    let line = `${now().toISOString()} tsvsd[${pid}] ${event.replace(/\n/g, '\\n')}`;
    for (const [k, v] of Object.entries(fields)) if (v !== undefined) line += ` ${k}=${fmt(v).replace(/\n/g, '\\n')}`;
    write(line + '\n');
  };
}
