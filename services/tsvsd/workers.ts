// Supervises the forwarding workers: one process per CPU, pinned with taskset, restarted when it dies, and fed
// the current forwarding table (an immutable snapshot with an epoch) over its IPC channel.
import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import type { FwdTable } from '../../shared/fwd/table.ts';
import type { FromWorker, ToWorker } from '../../shared/proto/worker.ts';

export interface WorkerPoolOptions {
  /** Number of workers. */
  count: number;
  /** CPU for each worker (index → cpu); defaults to worker i on CPU i mod cores. */
  cpus?: number[];
  /** argv (after the node binary) that starts one worker; `--index i --cpu c` are appended. */
  workerArgv: string[];
  /** The node binary. */
  node: string;
  /** Extra environment for the workers. */
  env?: NodeJS.ProcessEnv;
  log: (line: string) => void;
  /** Restart backoff bounds, ms. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

/** The default worker count: one per core, less one core left to the kernel's softirq work, at least one. */
export function defaultWorkerCount(cores = availableParallelism()): number {
  return Math.max(1, cores - 1);
}

interface Slot {
  index: number;
  cpu: number;
  child?: ChildProcess;
  pid: number;
  restarts: number;
  backoffMs: number;
  startedAt: number;
  appliedEpoch: number;
  timer?: NodeJS.Timeout;
}

/** One worker slot's state as `tsvsadm`/metrics show it. */
export interface WorkerStatus {
  index: number;
  cpu: number;
  pid: number;
  alive: boolean;
  restarts: number;
  appliedEpoch: number;
}

/**
 * Starts and supervises the workers. A worker that exits (crash, kill -9) is restarted on the same CPU and slot
 * after a backoff that doubles while it keeps dying young (< 10 s) and resets when it lived; the restarted worker
 * re-attaches its connection-table shard from shared memory and is sent the current table.
 */
export class WorkerPool {
  private readonly slots: Slot[] = [];
  private table?: FwdTable;
  private stopping = false;
  private readonly opts: Required<Omit<WorkerPoolOptions, 'env' | 'cpus'>> & { env?: NodeJS.ProcessEnv; cpus: number[] };
  private readonly waiters: { epoch: number; resolve: () => void }[] = [];
  /**
   * Fanout membership as the kernel keeps it: `members[k]` is the worker at slot k. Joins append; a leave
   * moves the last member into the vacated slot (net/packet/af_packet.c __fanout_unlink).
   */
  private readonly members: number[] = [];
  private starting = 0;

  constructor(opts: WorkerPoolOptions) {
    const cores = availableParallelism();
    this.opts = {
      minBackoffMs: 100,
      maxBackoffMs: 5000,
      ...opts,
      cpus: opts.cpus ?? Array.from({ length: opts.count }, (_, i) => i % cores),
    };
  }

  /**
   * Starts the workers one after another: each joins the fanout groups before the next starts, so that
   * worker i holds member slot i (the fanout program returns a slot).
   */
  start(): void {
    for (let i = 0; i < this.opts.count; i++) {
      const slot: Slot = { index: i, cpu: this.opts.cpus[i], pid: 0, restarts: 0, backoffMs: this.opts.minBackoffMs, startedAt: 0, appliedEpoch: -1 };
      this.slots.push(slot);
    }
    this.starting = 0;
    this.spawn(this.slots[0]);
  }

  /** The current fanout membership order (worker index per member slot). */
  fanoutMembers(): readonly number[] {
    return this.members;
  }

  /** Sends a new table to every live worker; workers swap it in between batches. */
  publish(table: FwdTable): void {
    this.table = table;
    for (const s of this.slots) this.send(s, { type: 'table', table });
  }

  /** Resolves when every worker has applied `epoch` (or a later one), or after `timeoutMs`. */
  async applied(epoch: number, timeoutMs = 2000): Promise<boolean> {
    if (this.slots.every((s) => s.appliedEpoch >= epoch)) return true;
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      this.waiters.push({ epoch, resolve: () => (clearTimeout(t), resolve(true)) });
    });
  }

  status(): WorkerStatus[] {
    return this.slots.map((s) => ({ index: s.index, cpu: s.cpu, pid: s.pid, alive: !!s.child && s.child.exitCode === null && s.child.signalCode === null, restarts: s.restarts, appliedEpoch: s.appliedEpoch }));
  }

  /** Stops every worker (SIGTERM, then SIGKILL after `graceMs`). */
  async stop(graceMs = 2000): Promise<void> {
    this.stopping = true;
    const exits = this.slots.map((s) => {
      if (s.timer) clearTimeout(s.timer);
      const c = s.child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const k = setTimeout(() => c.kill('SIGKILL'), graceMs);
        c.once('exit', () => (clearTimeout(k), resolve()));
        c.kill('SIGTERM');
      });
    });
    await Promise.all(exits);
  }

  private send(s: Slot, msg: ToWorker): void {
    const c = s.child;
    if (c && c.connected) c.send(msg, (err) => err && this.opts.log(`worker ${s.index}: send failed: ${err.message}`));
  }

  private spawn(s: Slot): void {
    const argv = [...this.opts.workerArgv, '--index', String(s.index), '--workers', String(this.opts.count), '--cpu', String(s.cpu)];
    // TSVS_WORKER_NODE_ARGS: extra Node flags for the workers only (diagnostics: --trace-gc, --cpu-prof, ...).
    const nodeArgs = (process.env.TSVS_WORKER_NODE_ARGS ?? '').split(/\s+/).filter((x) => x !== '');
    const child = spawn('taskset', ['-c', String(s.cpu), this.opts.node, ...nodeArgs, ...argv], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, ...this.opts.env },
    });
    s.child = child;
    s.pid = child.pid ?? 0;
    s.startedAt = Date.now();
    s.appliedEpoch = -1;
    child.on('message', (m: FromWorker) => this.onMessage(s, m));
    child.on('error', (err) => this.opts.log(`worker ${s.index}: ${err.message}`));
    child.on('exit', (code, signal) => {
      if (s.child !== child) return;
      s.child = undefined;
      const pos = this.members.indexOf(s.index);
      if (pos >= 0) {
        const last = this.members.pop() as number;
        if (pos < this.members.length) this.members[pos] = last;
      }
      if (this.stopping) return;
      const lived = Date.now() - s.startedAt;
      s.backoffMs = lived > 10_000 ? this.opts.minBackoffMs : Math.min(this.opts.maxBackoffMs, s.backoffMs * 2);
      const wait = lived > 10_000 ? this.opts.minBackoffMs : s.backoffMs;
      s.restarts++;
      this.opts.log(`worker ${s.index} (pid ${s.pid}, cpu ${s.cpu}) exited (${signal ?? `code ${code}`}); restart #${s.restarts} in ${wait} ms`);
      s.timer = setTimeout(() => this.spawn(s), wait);
    });
    if (this.table) this.send(s, { type: 'table', table: this.table });
  }

  private onMessage(s: Slot, m: FromWorker): void {
    if (m.type === 'ready') {
      this.members.push(s.index);
      this.opts.log(`worker ${s.index} ready (pid ${m.pid}, cpu ${m.cpu}, ${m.attached ? `re-attached ${m.conns} connections` : 'new connection table'})`);
      // A worker that rejoined took the last slot: the group-wide program must map shards to the new order.
      if (this.members.length === this.opts.count && this.members.some((w, k) => w !== k)) this.send(s, { type: 'fanout', slots: [...this.members] });
      if (this.starting >= 0 && s.index === this.starting) {
        this.starting++;
        if (this.starting < this.opts.count) this.spawn(this.slots[this.starting]);
        else this.starting = -1;
      }
    } else if (m.type === 'table-applied') {
      s.appliedEpoch = m.epoch;
      for (let i = this.waiters.length - 1; i >= 0; i--) {
        const w = this.waiters[i];
        if (this.slots.every((x) => x.appliedEpoch >= w.epoch)) {
          this.waiters.splice(i, 1);
          w.resolve();
        }
      }
    } else if (m.type === 'log') {
      this.opts.log(`worker ${s.index}: ${m.line}`);
    }
  }
}
