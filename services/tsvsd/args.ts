// tsvsd command line: `tsvsd [--socket PATH] [--config FILE] [--pidfile FILE] [--workers N] [-h]`.
import { parseArgs } from 'node:util';

/** What the command line asks for. Absent paths are undefined; the daemon resolves defaults. */
export interface CliOptions {
  /** Admin socket path; overrides TSVS_ADMIN_SOCKET and the per-netns default. */
  socket?: string;
  /** Rules file in ipvsadm-save format, loaded before the socket opens. */
  config?: string;
  pidfile?: string;
  /** Forwarding workers to run (1..1024, default 1). */
  workers: number;
}

/** The -h text (also printed after a usage error). */
export const USAGE = `Usage: tsvsd [--socket PATH] [--config FILE] [--pidfile FILE] [--workers N] [-h]

Runs the tsvs director's control process in the foreground and logs to stderr.
  --socket PATH   admin socket (default: $TSVS_ADMIN_SOCKET, else /run/tsvs/ns-<netns inode>/tsvsd.sock)
  --config FILE   load rules in ipvsadm-save format (-A/-a lines) at start
  --pidfile FILE  write the process id here; removed on exit
  --workers N     forwarding workers (default 1)
  -h, --help      this text
SIGTERM or SIGINT: clean exit (socket and pidfile removed).
`;

/** Parses argv (without node and script). Never throws: usage mistakes come back as `error`. */
export function parseCli(argv: readonly string[]): { kind: 'run'; opts: CliOptions } | { kind: 'help' } | { kind: 'error'; message: string } {
  let v: ReturnType<typeof parse>;
  try {
    v = parse(argv);
  } catch (e) {
    return { kind: 'error', message: (e as Error).message };
  }
  if (v.values.help) return { kind: 'help' };
  let workers = 1;
  if (v.values.workers !== undefined) {
    const s = v.values.workers;
    workers = /^\d+$/.test(s) ? Number(s) : NaN;
    if (!(workers >= 1 && workers <= 1024)) return { kind: 'error', message: `--workers: want 1..1024, got '${s}'` };
  }
  for (const k of ['socket', 'config', 'pidfile'] as const) {
    if (v.values[k] === '') return { kind: 'error', message: `--${k}: empty path` };
  }
  return { kind: 'run', opts: { socket: v.values.socket, config: v.values.config, pidfile: v.values.pidfile, workers } };
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      socket: { type: 'string' },
      config: { type: 'string' },
      pidfile: { type: 'string' },
      workers: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}
