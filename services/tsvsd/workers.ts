// The forwarding workers as children of tsvsd: one per CPU, pinned, started in fanout order, restarted when one
// dies (ChildSupervisor), and fed the current forwarding table (an immutable snapshot with an epoch) over IPC.
import { availableParallelism } from 'node:os';
import type { FwdTable } from '../../shared/fwd/table.ts';
import { ChildKind } from '../../shared/proto/child.ts';
import type { WorkerStatus } from '../../shared/proto/stats.ts';
import type { FromWorker, ToWorker } from '../../shared/proto/worker.ts';
import { ChildSupervisor } from './children.ts';

export interface WorkerPoolOptions {
  /** Number of workers. */
  count: number;
  /** CPU for each worker (index → cpu); defaults to worker i on CPU i mod cores. */
  cpus?: number[];
  /** The worker's main module. */
  entry: string;
  /** Arguments for every worker; `--index i --workers n --cpu c` are appended. */
  args: string[];
  /** Extra node flags for the workers (diagnostics: --trace-gc, --cpu-prof, ...). */
  nodeArgs?: string[];
  log: (line: string) => void;
  /** A worker exited (`restartInMs` null while stopping): for the daemon's event queue. */
  onExit?: (index: number, how: string, restartInMs: number | null) => void;
  /** Restart backoff bounds, ms. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

/** The default worker count: one per core, less one core left to the kernel's softirq work, at least one. */
export function defaultWorkerCount(cores = availableParallelism()): number {
  return Math.max(1, cores - 1);
}

const name = (i: number): string => `worker ${i}`;

/**
 * Starts and supervises the workers. A restarted worker re-attaches its connection-table shard from shared
 * memory and is sent the current table. Workers start one after another: each joins the fanout groups before
 * the next starts, so that worker i holds fanout slot i (the fanout program returns a slot).
 */
export class WorkerPool {
  readonly #o: WorkerPoolOptions;
  readonly #cpus: number[];
  readonly #sup: ChildSupervisor;
  readonly #applied: number[];
  #table?: FwdTable;
  readonly #waiters: { epoch: number; resolve: () => void }[] = [];
  /**
   * Fanout membership as the kernel keeps it: `members[k]` is the worker at slot k. Joins append; a leave
   * moves the last member into the vacated slot (net/packet/af_packet.c __fanout_unlink).
   */
  readonly #members: number[] = [];
  #starting = 0;

  constructor(o: WorkerPoolOptions) {
    this.#o = o;
    const cores = availableParallelism();
    this.#cpus = o.cpus ?? Array.from({ length: o.count }, (_, i) => i % cores);
    this.#applied = Array.from({ length: o.count }, () => -1);
    this.#sup = new ChildSupervisor({
      message: (n, m) => this.#onMessage(Number(n.slice(7)), m),
      started: (n) => this.#onStarted(Number(n.slice(7))),
      exited: (n, how, wait) => this.#onExit(Number(n.slice(7)), how, wait),
    });
  }

  /** Starts worker 0; the others follow as each reports ready. */
  start(): void {
    this.#starting = 0;
    this.#spawn(0);
  }

  /** The current fanout membership order (worker index per member slot). */
  fanoutMembers(): readonly number[] {
    return this.#members;
  }

  /** Sends a new table to every live worker; workers swap it in between batches. */
  publish(table: FwdTable): void {
    this.#table = table;
    for (let i = 0; i < this.#o.count; i++) this.#send(i, { type: 'table', table });
  }

  /** Resolves true when every worker has applied `epoch` (or a later one), false after `timeoutMs`. */
  async applied(epoch: number, timeoutMs = 2000): Promise<boolean> {
    if (this.#applied.every((e) => e >= epoch)) return true;
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      this.#waiters.push({ epoch, resolve: () => (clearTimeout(t), resolve(true)) });
    });
  }

  status(): WorkerStatus[] {
    return Array.from({ length: this.#o.count }, (_, i) => {
      const c = this.#sup.get(name(i));
      return { index: i, cpu: this.#cpus[i], pid: c?.pid ?? 0, alive: c?.alive ?? false, restarts: c?.restarts ?? 0, appliedEpoch: this.#applied[i] };
    });
  }

  /** Stops every worker (SIGTERM, then SIGKILL after 2 s). */
  stop(): Promise<void> {
    return this.#sup.stop();
  }

  #spawn(i: number): void {
    this.#sup.start({
      name: name(i),
      kind: ChildKind.worker,
      entry: this.#o.entry,
      args: [...this.#o.args, '--index', String(i), '--workers', String(this.#o.count), '--cpu', String(this.#cpus[i])],
      cpu: this.#cpus[i],
      nodeArgs: this.#o.nodeArgs,
      minBackoffMs: this.#o.minBackoffMs,
      maxBackoffMs: this.#o.maxBackoffMs,
    });
    this.#onStarted(i);
  }

  #onStarted(i: number): void {
    this.#applied[i] = -1;
    if (this.#table) this.#send(i, { type: 'table', table: this.#table });
  }

  #onExit(i: number, how: string, wait: number | null): void {
    const pos = this.#members.indexOf(i);
    if (pos >= 0) {
      const last = this.#members.pop() as number;
      if (pos < this.#members.length) this.#members[pos] = last;
    }
    if (wait !== null) this.#o.log(`worker ${i} (cpu ${this.#cpus[i]}) exited (${how}); restart #${this.#sup.get(name(i))?.restarts} in ${wait} ms`);
    this.#o.onExit?.(i, how, wait);
  }

  #send(i: number, msg: ToWorker): void {
    this.#sup.send(name(i), msg, (err) => this.#o.log(`worker ${i}: send failed: ${err.message}`));
  }

  #onMessage(i: number, raw: unknown): void {
    if (raw === null || typeof raw !== 'object') return;
    const m = raw as FromWorker;
    if (m.type === 'ready') {
      this.#members.push(i);
      this.#o.log(`worker ${i} ready (pid ${m.pid}, cpu ${m.cpu}, ${m.attached ? `re-attached ${m.conns} connections` : 'new connection table'})`);
      // A worker that rejoined took the last slot: the group-wide program must map shards to the new order.
      if (this.#members.length === this.#o.count && this.#members.some((w, k) => w !== k)) this.#send(i, { type: 'fanout', slots: [...this.#members] });
      if (this.#starting >= 0 && i === this.#starting) {
        this.#starting++;
        if (this.#starting < this.#o.count) this.#spawn(this.#starting);
        else this.#starting = -1;
      }
    } else if (m.type === 'table-applied') {
      this.#applied[i] = m.epoch;
      for (let k = this.#waiters.length - 1; k >= 0; k--) {
        const w = this.#waiters[k];
        if (this.#applied.every((e) => e >= w.epoch)) {
          this.#waiters.splice(k, 1);
          w.resolve();
        }
      }
    } else if (m.type === 'log') {
      this.#o.log(`worker ${i}: ${m.line}`);
    }
  }
}
