// tsvsd lifecycle: table + start-up rules + admin socket + worker supervisor + pidfile, started and stopped as one.
import { readFileSync, unlinkSync, writeFileSync, statSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { IpvsTable } from '../../shared/model/table.ts';
import { isTableOp } from '../../shared/model/ops.ts';
import type { Clock } from '../../shared/model/table.ts';
import { defaultAdminSocketPath } from '../../shared/proto/admin.ts';
import type { AdminEnvelope, AdminReply, DataplaneStatus } from '../../shared/proto/admin.ts';
import type { ConnSnapshot } from '../../shared/model/ipvs.ts';
import { startAdminServer } from './admin-server.ts';
import type { AdminServer } from './admin-server.ts';
import { applyRules } from './config.ts';
import type { RulesParser } from './config.ts';
import { rateLimited } from './log.ts';
import type { Logger } from './log.ts';
import { parseRequestLine } from './request.ts';
import { NoWorkersSupervisor } from './supervisor.ts';
import type { Supervisor } from './supervisor.ts';

/** How often the trash is checked for dests idle long enough to free, in ms (the kernel's timer period). */
const TRASH_CHECK_MS = 60_000;

/** Where the connections for `conns` come from. */
export type ConnSource = () => ConnSnapshot[];

/**
 * Until the data plane exists there is no connection table: `conns` answers an empty list. The data plane
 * issue replaces this with a source reading the workers' shards.
 */
export const noConnections: ConnSource = () => [];

/** What to run: paths are final (see {@link resolveSocketPath}); `workers` is handed to the supervisor. */
export interface DaemonOptions {
  socketPath: string;
  configFile?: string;
  pidFile?: string;
  workers: number;
}

/** The daemon's collaborators; all but `log` have a default. */
export interface DaemonDeps {
  log: Logger;
  /** Needed only with `configFile`; see {@link RulesParser}. */
  parseRules?: RulesParser;
  /** Default: {@link NoWorkersSupervisor}. */
  supervisor?: Supervisor;
  /** Default: {@link noConnections}. */
  conns?: ConnSource;
  /** Monotonic ms; default performance.now. */
  clock?: Clock;
  /** Connections still bound to a dest (by table id); keeps deleted dests in the trash. Default: none. */
  boundConns?: (destId: number) => number;
  /** The data plane's state for the `dataplane` request; default: not forwarding. */
  dataplane?: () => DataplaneStatus;
  /** Mark rules: replace (returns an error text, or null when applied) and read. Default: not forwarding. */
  marks?: { set(text: string): string | null; get(): string };
  /** Called once with the new table, before the supervisor starts (to hook counters and the trash). */
  onTable?: (table: IpvsTable) => void;
}

/** A running daemon. */
export interface RunningDaemon {
  readonly table: IpvsTable;
  readonly socketPath: string;
  /** Closes the socket, stops the supervisor, removes socket and pidfile. Idempotent. */
  stop(reason: string): Promise<void>;
}

/** A start-up failure with the exit status main should use (2 for usage, 1 otherwise). */
export class DaemonStartError extends Error {
  override readonly name = 'DaemonStartError';
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

/**
 * The admin socket path: `flag`, else $TSVS_ADMIN_SOCKET, else the default keyed on this process's
 * network namespace inode (one daemon per namespace).
 */
export function resolveSocketPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (flag) return flag;
  if (env.TSVS_ADMIN_SOCKET) return env.TSVS_ADMIN_SOCKET;
  return defaultAdminSocketPath(statSync('/proc/self/ns/net').ino);
}

/** Answers one checked request against the table. Mutations are logged; reads are not. */
export function handleRequest(table: IpvsTable, env: AdminEnvelope, conns: ConnSource, log: Logger, dataplane?: () => DataplaneStatus, marks?: DaemonDeps['marks']): AdminReply {
  const { id } = env;
  if (env.op === 'snapshot') return { id, ok: true, snapshot: table.snapshot() };
  if (env.op === 'conns') return { id, ok: true, conns: conns() };
  if (env.op === 'get-marks' || env.op === 'set-marks') {
    if (!marks) return { id, ok: false, errno: 'EOPNOTSUPP', detail: 'tsvsd runs without --client-if: no data plane, no mark rules' };
    if (env.op === 'get-marks') return { id, ok: true, marks: marks.get() };
    const err = marks.set(env.text);
    if (err !== null) {
      log('marks: refused', { detail: err });
      return { id, ok: false, errno: 'EINVAL', detail: err };
    }
    log('marks: applied');
    return { id, ok: true };
  }
  if (env.op === 'dataplane') return { id, ok: true, dataplane: dataplane ? dataplane() : { forwarding: false, epoch: table.epoch, workers: [], events: {}, orphansByWorker: [], forwardedByWorker: [] } };
  if (!isTableOp(env)) return { id, ok: false, errno: 'EOPNOTSUPP', detail: `${env.op}: not handled` };
  const r = table.apply(env);
  if (r.ok) {
    log('table: applied', { op: env.op, epoch: table.epoch });
    return { id, ok: true };
  }
  log('table: refused', { op: env.op, errno: r.errno, detail: r.detail });
  return { id, ok: false, errno: r.errno, detail: r.detail };
}

/**
 * Starts the daemon: checks it runs as root (the admin socket must be root-only), loads the rules file,
 * starts the supervisor, opens the socket, writes the pidfile. Throws DaemonStartError, having undone
 * what it started, when any step fails. Signals are the caller's business (see main.ts).
 */
export async function startDaemon(opts: DaemonOptions, deps: DaemonDeps): Promise<RunningDaemon> {
  const { log } = deps;
  if (process.getuid?.() !== 0) throw new DaemonStartError('tsvsd must run as root: its admin socket is root-only');
  const clock = deps.clock ?? (() => performance.now());
  const table = new IpvsTable({ clock, boundConns: deps.boundConns });
  deps.onTable?.(table);
  const conns = deps.conns ?? noConnections;
  const supervisor = deps.supervisor ?? new NoWorkersSupervisor(log);

  if (opts.configFile !== undefined) {
    if (!deps.parseRules) {
      throw new DaemonStartError('--config: the ipvsadm rules parser (shared/ipvsadm/parse.ts) is not integrated yet', 2);
    }
    let text: string;
    try {
      text = readFileSync(opts.configFile, 'utf8');
    } catch (e) {
      throw new DaemonStartError(`--config ${opts.configFile}: ${(e as Error).message}`);
    }
    let res;
    try {
      res = applyRules(table, deps.parseRules(text, opts.configFile));
    } catch (e) {
      throw new DaemonStartError(`--config ${opts.configFile}: ${(e as Error).message}`);
    }
    if (!res.ok) throw new DaemonStartError(`--config ${opts.configFile}:${res.line}: ${res.errno}: ${res.detail}`);
    log('config: loaded', { file: opts.configFile, rules: res.applied, epoch: table.epoch });
  }

  await supervisor.start(table.compiled(), opts.workers);
  let published = table.epoch;
  const publish = (): void => {
    if (table.epoch === published) return;
    published = table.epoch;
    supervisor.publish(table.compiled());
  };

  const logBad = rateLimited(log, 10);
  let server: AdminServer;
  try {
    server = await startAdminServer({
      path: opts.socketPath,
      log,
      handle: (line) => {
        const p = parseRequestLine(line);
        if (!p.ok) {
          logBad('admin: bad request', { errno: p.reply.ok ? undefined : p.reply.errno, detail: p.reply.ok ? undefined : p.reply.detail });
          return p.reply;
        }
        const reply = handleRequest(table, p.env, conns, log, deps.dataplane, deps.marks);
        publish();
        return reply;
      },
    });
  } catch (e) {
    await supervisor.stop();
    throw new DaemonStartError(`admin socket ${opts.socketPath}: ${(e as Error).message}`);
  }
  log('admin: listening', { socket: opts.socketPath });

  if (opts.pidFile !== undefined) {
    try {
      writeFileSync(opts.pidFile, `${process.pid}\n`, { mode: 0o644 });
    } catch (e) {
      await server.close();
      await supervisor.stop();
      throw new DaemonStartError(`--pidfile ${opts.pidFile}: ${(e as Error).message}`);
    }
  }

  log('ready', { socket: opts.socketPath, epoch: table.epoch });
  const trashTimer = setInterval(() => table.expireTrash(), TRASH_CHECK_MS);
  trashTimer.unref();

  let stopping: Promise<void> | null = null;
  return {
    table,
    socketPath: opts.socketPath,
    stop(reason) {
      stopping ??= (async () => {
        log('stopping', { reason });
        clearInterval(trashTimer);
        await server.close();
        await supervisor.stop();
        if (opts.pidFile !== undefined) {
          try {
            unlinkSync(opts.pidFile);
          } catch (e) {
            log('pidfile: could not remove', { file: opts.pidFile, error: (e as Error).message });
          }
        }
        log('stopped');
      })();
      return stopping;
    },
  };
}
