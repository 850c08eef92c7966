// tsvsd's child processes: spawn from a ChildSpec with an IPC channel, restart with backoff when one exits, stop
// them all on exit, report their status. Workers, the cluster agent and the health checker all run this way.
import { spawn, type ChildProcess } from 'node:child_process';
import type { ChildSpec, ChildStatus } from '../../shared/proto/child.ts';

/** What the supervisor tells its owner. Calls come from Node's event loop; the owner queues them. */
export interface ChildEvents {
  /** A message from the child (envelope or payload); the owner checks its shape. */
  message(name: string, msg: unknown): void;
  /** A child started (`restarts` 0 for the first start). */
  started?(name: string, pid: number, restarts: number): void;
  /** A child exited; `restartInMs` is null when it will not be restarted (stopping). */
  exited(name: string, how: string, restartInMs: number | null): void;
}

interface Slot {
  spec: ChildSpec;
  child?: ChildProcess;
  pid: number;
  restarts: number;
  backoffMs: number;
  startedAt: number;
  lastExit: string | null;
  timer?: NodeJS.Timeout;
}

/**
 * Runs children. A child that exits (crash, kill -9, its own exit) is restarted after a backoff that doubles
 * while it keeps dying young (within `stableMs`) and resets once it lived longer. `stop` sends SIGTERM, then
 * SIGKILL after the grace period, and restarts nothing.
 */
export class ChildSupervisor {
  readonly #slots = new Map<string, Slot>();
  readonly #events: ChildEvents;
  readonly #node: string;
  #stopping = false;

  /** `node`: the node binary children run on (default: this process's). */
  constructor(events: ChildEvents, node: string = process.execPath) {
    this.#events = events;
    this.#node = node;
  }

  /** Starts a child now. Throws on a duplicate name. */
  start(spec: ChildSpec): void {
    if (this.#slots.has(spec.name)) throw new Error(`child ${spec.name}: already supervised`);
    const slot: Slot = { spec, pid: 0, restarts: 0, backoffMs: spec.minBackoffMs ?? 100, startedAt: 0, lastExit: null };
    this.#slots.set(spec.name, slot);
    this.#spawn(slot);
  }

  /** Sends a message to a running child; false when it is not running or its channel is closed. */
  send(name: string, msg: unknown, onError?: (e: Error) => void): boolean {
    const c = this.#slots.get(name)?.child;
    if (!c || !c.connected) return false;
    c.send(msg as object, (err) => err && onError?.(err));
    return true;
  }

  /** Whether a child is running (spawned and not yet exited). */
  alive(name: string): boolean {
    const c = this.#slots.get(name)?.child;
    return !!c && c.exitCode === null && c.signalCode === null;
  }

  status(): ChildStatus[] {
    return [...this.#slots.values()].map((s) => ({ name: s.spec.name, kind: s.spec.kind, pid: s.child ? s.pid : 0, alive: this.alive(s.spec.name), restarts: s.restarts, startedAt: s.startedAt, lastExit: s.lastExit }));
  }

  /** One child's status, or undefined for an unknown name. */
  get(name: string): ChildStatus | undefined {
    return this.status().find((s) => s.name === name);
  }

  /** Stops every child; resolves when all have exited. Idempotent. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await Promise.all([...this.#slots.values()].map((s) => {
      if (s.timer) clearTimeout(s.timer);
      const c = s.child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const k = setTimeout(() => c.kill('SIGKILL'), s.spec.graceMs ?? 2000);
        c.once('exit', () => (clearTimeout(k), resolve()));
        c.kill('SIGTERM');
      });
    }));
  }

  #spawn(s: Slot): void {
    const { spec } = s;
    const argv = [this.#node, ...(spec.nodeArgs ?? []), spec.entry, ...spec.args];
    const [cmd, ...args] = spec.cpu === undefined ? argv : ['taskset', '-c', String(spec.cpu), ...argv];
    const child = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: spec.serialization ?? 'json', env: { ...process.env, ...spec.env } });
    s.child = child;
    s.pid = child.pid ?? 0;
    s.startedAt = Date.now();
    child.on('message', (m: unknown) => this.#events.message(spec.name, m));
    child.on('error', (err) => this.#events.message(spec.name, { type: 'log', line: `spawn error: ${err.message}` }));
    child.on('exit', (code, signal) => {
      if (s.child !== child) return;
      s.child = undefined;
      const how = signal ?? `code ${code}`;
      s.lastExit = how;
      if (this.#stopping) {
        this.#events.exited(spec.name, how, null);
        return;
      }
      const lived = Date.now() - s.startedAt;
      const min = spec.minBackoffMs ?? 100;
      s.backoffMs = lived > (spec.stableMs ?? 10_000) ? min : Math.min(spec.maxBackoffMs ?? 5000, s.backoffMs * 2);
      const wait = lived > (spec.stableMs ?? 10_000) ? min : s.backoffMs;
      s.restarts++;
      this.#events.exited(spec.name, how, wait);
      s.timer = setTimeout(() => {
        if (this.#stopping) return;
        this.#spawn(s);
        this.#events.started?.(spec.name, s.pid, s.restarts);
      }, wait);
    });
  }
}
