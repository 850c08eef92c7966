// tsvsd logging: one line per event on stderr, with an ISO timestamp, the process id and key=value fields.

/** Logs one event. `fields` are appended as key=value (strings JSON-quoted when they contain spaces). */
export type Logger = (event: string, fields?: Record<string, string | number | boolean | undefined>) => void;

function fmt(v: string | number | boolean): string {
  return typeof v === 'string' && (v === '' || /[\s"=]/.test(v)) ? JSON.stringify(v) : String(v);
}

/**
 * Writes to stderr until it breaks: when whoever reads our log goes away (a closed pipe), writes fail with
 * EPIPE as an 'error' event. Unhandled, that event is an uncaught exception whose report is itself a write to
 * stderr — a loop that spins the daemon. So the first failure is absorbed and logging stops; the director runs on.
 */
export function stderrWriter(stream: NodeJS.WriteStream = process.stderr): (line: string) => void {
  let broken = false;
  stream.on('error', () => {
    broken = true;
  });
  return (line) => {
    if (!broken) stream.write(line);
  };
}

/**
 * A logger writing `2025-01-01T00:00:00.000Z tsvsd[123] event k=v ...\n` through `write` (stderr by
 * default). Newlines inside the event are escaped so one event is always one line.
 */
export function createLogger(
  write: (line: string) => void = stderrWriter(),
  now: () => Date = () => new Date(),
  pid: number = process.pid,
): Logger {
  return (event, fields = {}) => {
    let line = `${now().toISOString()} tsvsd[${pid}] ${event.replace(/\n/g, '\\n')}`;
    for (const [k, v] of Object.entries(fields)) if (v !== undefined) line += ` ${k}=${fmt(v).replace(/\n/g, '\\n')}`;
    write(line + '\n');
  };
}

/**
 * Wraps `log` so that at most `perWindow` events pass per `windowMs`; the rest are counted and reported
 * in one "suppressed" line when the next window lets an event through. For events a client can trigger
 * at will (malformed requests), so a flood cannot flood the log.
 */
export function rateLimited(log: Logger, perWindow: number, windowMs = 1000, now: () => number = () => Date.now()): Logger {
  let windowStart = -Infinity;
  let passed = 0;
  let suppressed = 0;
  return (event, fields) => {
    const t = now();
    if (t - windowStart >= windowMs) {
      if (suppressed > 0) log('log: suppressed similar events', { count: suppressed });
      windowStart = t;
      passed = 0;
      suppressed = 0;
    }
    if (passed < perWindow) {
      passed++;
      log(event, fields);
    } else {
      suppressed++;
    }
  };
}
