// tsvsd's health seam, shell part: reads the keepalived.conf, runs the health checker (services/health) as a
// supervised child, folds its batched transitions into a HealthTable and edits the IPVS table to match.
import { nodeKeepalivedFs } from '../../shared/sys/keepalived-fs.ts';
import { HealthTable } from '../../shared/health/table.ts';
import type { VirtualServerStatus } from '../../shared/health/machine.ts';
import { healthWarnings } from '../../shared/health/unsupported.ts';
import { checkKeepalivedConfig, type KeepalivedCheck } from '../../shared/keepalived/check.ts';
import type { KeepalivedConfig } from '../../shared/keepalived/model.ts';
import type { KeepalivedFs } from '../../shared/keepalived/parse.ts';
import type { TableOp } from '../../shared/model/ops.ts';
import type { CompiledTable } from '../../shared/model/table.ts';
import { ChildKind, isChildEnvelope, type ChildSpec } from '../../shared/proto/child.ts';
import { HEALTH_PROTO_VERSION, type FromHealth, type ToHealth } from '../../shared/proto/health.ts';
import type { StoreResult } from './config-store.ts';
import { healthSyncOps, keepalivedServices, reloadServiceOps } from './health-sync.ts';
import type { Logger } from './log.ts';

/** The supervised child's name. */
export const HEALTH_CHILD = 'health';

/** How long `status` waits for the checker's answer, in ms. */
const STATUS_TIMEOUT_MS = 2000;
/** The retry of health edits the store could not take (EAGAIN): first pause, doubled up to the last, ms. */
export const HEALTH_RETRY_FIRST_MS = 250;
export const HEALTH_RETRY_MAX_MS = 2000;


/** `keepalived -t` on `file`: the model (null on error) and every problem as `file:line: error|warning: ...`. */
export function readKeepalivedFile(file: string): KeepalivedCheck {
  return checkKeepalivedConfig(file, nodeKeepalivedFs, {}, healthWarnings);
}

/** What the link needs from the daemon. */
export interface HealthLinkDeps {
  /** Starts the child; sends it a message (false when it is not running). */
  children: { start(spec: ChildSpec): void; send(name: string, msg: unknown): boolean };
  /** The table in force. */
  table(): CompiledTable;
  /** Applies a table operation through the config store. */
  apply(op: TableOp): Promise<StoreResult>;
  log: Logger;
  /**
   * Runs `run` from the daemon's event queue (where the checker's messages run), for the retry of edits the store
   * could not take; default: at once.
   */
  later?(run: () => Promise<void>): void;
  /** Monotonic ms (default performance.now); timers (default the global ones). */
  now?(): number;
  setTimer?(fn: () => void, ms: number): unknown;
  clearTimer?(t: unknown): void;
}

/** A dest edit the store could not take, retried until it lands or is superseded. */
interface PendingEdit {
  /** What the edit makes of the real server (`weight 3`, `removed`): logged once per state. */
  state: string;
  /** When it was first refused (monotonic ms) and how many attempts failed. */
  since: number;
  attempts: number;
}

/** Why `status` could not answer. */
export class HealthUnavailableError extends Error {
  override readonly name = 'HealthUnavailableError';
}

/**
 * The checker as tsvsd runs it. Call {@link onMessage} for each of the child's messages from the event queue (it
 * edits the table), and {@link intercept} before queueing (status answers bypass the queue, so an admin request
 * waiting for one does not wait behind itself).
 */
export class HealthLink {
  readonly #deps: HealthLinkDeps;
  readonly #file: string;
  #config: KeepalivedConfig;
  #epoch = 1;
  #managed: Set<string>;
  readonly #health = new HealthTable();
  #nextId = 1;
  readonly #waiting = new Map<number, { resolve: (v: VirtualServerStatus[]) => void; timer: NodeJS.Timeout }>();
  /** Dest edits waiting for the store (EAGAIN), by service and dest key. */
  readonly #pending = new Map<string, PendingEdit>();
  #retryTimer: unknown = null;
  #retryMs = HEALTH_RETRY_FIRST_MS;
  #closed = false;
  /**
   * Batches folded, resyncs asked for, table operations refused on the table (not retried), edits the store could
   * not take (EAGAIN, retried), retries run, retried edits that landed (for logs and tests).
   */
  readonly counts = { batches: 0, resyncs: 0, refused: 0, unreachable: 0, retries: 0, retriedLanded: 0 };

  constructor(file: string, config: KeepalivedConfig, deps: HealthLinkDeps) {
    this.#deps = deps;
    this.#file = file;
    this.#config = config;
    this.#managed = new Set(keepalivedServices(config).keys());
  }

  /** Starts the checker child; it is sent `init` when it says hello (again after each restart). */
  start(entry: string): void {
    this.#deps.children.start({ name: HEALTH_CHILD, kind: ChildKind.health, entry, args: [], graceMs: 3000 });
  }

  #send(m: ToHealth): void {
    if (!this.#deps.children.send(HEALTH_CHILD, m)) this.#deps.log('health: checker not running, message dropped', { type: m.type });
  }

  /** Takes a status answer out of the stream; true when `msg` was one. */
  intercept(msg: unknown): boolean {
    const m = msg as FromHealth;
    if (!m || typeof m !== 'object' || m.type !== 'status' || m.v !== HEALTH_PROTO_VERSION) return false;
    const w = this.#waiting.get(m.id);
    if (w) {
      clearTimeout(w.timer);
      this.#waiting.delete(m.id);
      w.resolve(m.virtualServers);
    }
    return true;
  }

  /** Every real server's state, from the checker. Rejects with HealthUnavailableError when it does not answer. */
  status(): Promise<VirtualServerStatus[]> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        reject(new HealthUnavailableError(`the health checker did not answer within ${STATUS_TIMEOUT_MS} ms`));
      }, STATUS_TIMEOUT_MS);
      this.#waiting.set(id, { resolve, timer });
      if (!this.#deps.children.send(HEALTH_CHILD, { v: 1, type: 'status-request', id } satisfies ToHealth)) {
        clearTimeout(timer);
        this.#waiting.delete(id);
        reject(new HealthUnavailableError('the health checker is not running'));
      }
    });
  }

  /** Handles one message of the child (run from the event queue). Returns once the table edits are stored. */
  async onMessage(msg: unknown): Promise<void> {
    // The child envelope's `ready` and `log` share names with the checker's: the checker's `ready` carries a view.
    if (isChildEnvelope(msg) && !(msg.type === 'ready' && 'view' in msg)) {
      if (msg.type === 'hello') {
        this.#deps.log('health: checker started', { pid: msg.pid });
        this.#send({ v: 1, type: 'init', epoch: this.#epoch, config: this.#config });
      } else if (msg.type === 'log') this.#deps.log(`health: ${msg.line}`);
      else if (msg.type === 'exit') this.#deps.log('health: checker exiting', { code: msg.code, reason: msg.reason });
      return;
    }
    const m = msg as FromHealth;
    if (!m || typeof m !== 'object' || m.v !== HEALTH_PROTO_VERSION) {
      this.#deps.log('health: dropped a message of another version or shape');
      return;
    }
    switch (m.type) {
      case 'ready':
        for (const w of m.warnings) this.#deps.log(`health: ${w}`);
        this.#health.reset(m.view, m.epoch);
        this.#deps.log('health: checker ready', { pid: m.pid, epoch: m.epoch });
        return this.#sync();
      case 'view':
        this.#health.reset(m.view, m.epoch, m.seq);
        return this.#sync();
      case 'transitions': {
        const r = this.#health.apply(m.epoch, m.seq, m.changes);
        if (r === 'resync') {
          this.counts.resyncs++;
          this.#deps.log('health: batch gap, asking for the whole view', { have: this.#health.seq, got: m.seq });
          this.#send({ v: 1, type: 'view-request', id: this.#nextId++ });
          return;
        }
        if (r === 'stale') return;
        this.counts.batches++;
        for (const c of m.changes) {
          this.#deps.log(c.dest ? 'health: dest set' : 'health: dest removed', { vs: c.vsId, dest: `${c.key.addr}:${c.key.port}`, weight: c.dest?.weight });
        }
        return this.#sync();
      }
      case 'configured':
        for (const w of m.warnings) this.#deps.log(`health: ${w}`);
        this.#deps.log('health: configuration taken', { epoch: m.epoch });
        return;
      case 'config-error':
        this.#deps.log('health: configuration refused by the checker', { epoch: m.epoch, error: m.message });
        return;
      case 'notified':
        this.#deps.log('health: notify script ran', { event: m.event, script: m.script, exit: m.exitCode ?? undefined, error: m.error ?? undefined });
        return;
      case 'log':
        this.#deps.log(`health: ${m.line}`);
        return;
      case 'status':
        return;
    }
  }

  /**
   * Makes the managed services of the table hold what the checker wants. The wanted state of each real server is the
   * checker's latest (the HealthTable), and the edits are the difference to the table in force, so an edit the store
   * could not take (EAGAIN: NATS unreachable) is retried by running this again, with backoff
   * ({@link HEALTH_RETRY_FIRST_MS} doubling to {@link HEALTH_RETRY_MAX_MS}), until nothing is left to do: it landed,
   * another director's revision already holds it, or a newer transition superseded it. A refusal on the table
   * (another director applied the same change first: EEXIST, ENOENT) is not retried.
   */
  async #sync(): Promise<void> {
    const now = this.#deps.now ?? (() => performance.now());
    const unreachable = new Map<string, { op: TableOp; state: string; detail: string }>();
    const landed = new Set<string>();
    for (const op of healthSyncOps(this.#deps.table(), this.#managed, this.#health)) {
      const r = await this.#deps.apply(op);
      const k = editKey(op);
      if (r.ok) landed.add(k);
      else if (r.errno === 'EAGAIN') unreachable.set(k, { op, state: editState(op), detail: r.detail });
      else {
        this.counts.refused++;
        this.#deps.log('health: table operation refused', { op: op.op, errno: r.errno, detail: r.detail });
      }
    }
    for (const [k, p] of this.#pending) {
      if (unreachable.has(k)) continue;
      this.#pending.delete(k);
      if (landed.has(k)) this.counts.retriedLanded++;
      this.#deps.log(landed.has(k) ? 'health: retried table edit stored' : 'health: retried table edit no longer needed', {
        dest: k, state: p.state, attempts: p.attempts, ms: Math.round(now() - p.since),
      });
    }
    for (const [k, u] of unreachable) {
      this.counts.unreachable++;
      const p = this.#pending.get(k);
      if (p && p.state === u.state) {
        p.attempts++;
        continue;
      }
      this.#pending.set(k, { state: u.state, since: p?.since ?? now(), attempts: 1 });
      this.#deps.log('health: table edit not stored, retrying until it lands', { op: u.op.op, dest: k, state: u.state, detail: u.detail });
    }
    this.#armRetry();
  }

  /** Schedules the next retry while edits are pending (backoff doubling to the cap); clears it otherwise. */
  #armRetry(): void {
    const clear = this.#deps.clearTimer ?? ((t: unknown) => clearTimeout(t as NodeJS.Timeout));
    if (this.#retryTimer !== null) clear(this.#retryTimer);
    this.#retryTimer = null;
    if (this.#pending.size === 0) {
      this.#retryMs = HEALTH_RETRY_FIRST_MS;
      return;
    }
    const ms = this.#retryMs;
    this.#retryMs = Math.min(2 * ms, HEALTH_RETRY_MAX_MS);
    const set = this.#deps.setTimer ?? ((fn: () => void, t: number) => setTimeout(fn, t));
    this.#retryTimer = set(() => {
      this.#retryTimer = null;
      const run = (): Promise<void> => this.retry();
      if (this.#deps.later) this.#deps.later(run);
      else void run();
    }, ms);
  }

  /** Runs the pending health edits again (the retry timer's job, from the event queue); nothing when none is pending. */
  async retry(): Promise<void> {
    if (this.#pending.size === 0 || this.#closed) return;
    this.counts.retries++;
    await this.#sync();
  }

  /** Real servers whose wanted state waits for the store, with that state (for tests and status). */
  pending(): ReadonlyMap<string, string> {
    return new Map([...this.#pending].map(([k, p]) => [k, p.state]));
  }

  async #applyOp(op: TableOp): Promise<void> {
    const r = await this.#deps.apply(op);
    if (!r.ok) {
      this.counts.refused++;
      this.#deps.log('health: table operation refused', { op: op.op, errno: r.errno, detail: r.detail });
    }
  }

  /**
   * Reads the file again (SIGHUP). On error the running configuration stays and the problems are returned. Otherwise
   * services are added, edited or deleted in the table, the checker gets the new configuration (unchanged real
   * servers keep their state there) and its transitions edit the dests: nothing is flushed.
   */
  async reload(): Promise<KeepalivedCheck> {
    const r = readKeepalivedFile(this.#file);
    if (!r.config) return r;
    const after = keepalivedServices(r.config);
    for (const op of reloadServiceOps(this.#deps.table(), this.#managed, after)) await this.#applyOp(op);
    this.#config = r.config;
    this.#managed = new Set(after.keys());
    this.#epoch++;
    this.#send({ v: 1, type: 'config', epoch: this.#epoch, config: r.config });
    return r;
  }

  /** Fails the status requests still waiting and stops retrying (at stop). */
  close(): void {
    this.#closed = true;
    if (this.#retryTimer !== null) (this.#deps.clearTimer ?? ((t: unknown) => clearTimeout(t as NodeJS.Timeout)))(this.#retryTimer);
    this.#retryTimer = null;
    for (const [id, w] of this.#waiting) {
      clearTimeout(w.timer);
      w.resolve([]);
      this.#waiting.delete(id);
    }
  }
}

/** The real server an edit is about, as logged: `tcp/10.0.0.1:80/10.1.0.1:80` (`fwm/5/…` for a fwmark service). */
function editKey(op: TableOp): string {
  if (op.op !== 'add-dest' && op.op !== 'edit-dest' && op.op !== 'del-dest') return op.op;
  const host = (a: string): string => (a.includes(':') ? `[${a}]` : a);
  const svc = op.key.fwmark > 0 ? `fwm/${op.key.fwmark}` : `${op.key.protocol}/${host(op.key.addr)}:${op.key.port}`;
  return `${svc}/${host(op.dest.addr)}:${op.dest.port}`;
}

/** What an edit makes of its real server: `weight N` or `removed`. */
function editState(op: TableOp): string {
  if (op.op === 'del-dest') return 'removed';
  if (op.op === 'add-dest' || op.op === 'edit-dest') return `weight ${op.dest.weight}`;
  return op.op;
}
