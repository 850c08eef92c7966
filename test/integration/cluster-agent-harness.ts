// Harness of the cluster-agent integration tests: real agent processes (services/cluster/main.ts) forked with an
// IPC channel, the test acting as each one's parent tsvsd (it keeps the director's table, answers snapshot
// requests, confirms installs), plus the timeline checks the tests assert on (VIP grants/releases, overlaps).
import { fork, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import type { ClusterStatus, FromClusterAgent, ToClusterAgent } from '../../shared/proto/cluster.ts';
import { RECORD_WORDS, RecordOp, recordKey, writeRecord } from '../../shared/sync/record.ts';

const root = resolve(import.meta.dirname, '../..');
const nodeBin = join(root, 'node_modules/.bin/node');
const agentMain = join(root, 'services/cluster/main.ts');

/** Wall-clock ms with sub-ms precision (the agents' event times are compared with it). */
export const now = (): number => performance.timeOrigin + performance.now();
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One agent process and the parent-side state a test keeps for it. */
export class Agent {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly events: { t: number; m: FromClusterAgent }[] = [];
  readonly table = new Map<string, Uint32Array>();
  readonly logs: string[] = [];
  private statusWaiters = new Map<number, (s: ClusterStatus) => void>();
  private nextId = 1;
  exited = false;

  constructor(name: string, cluster: string, args: string[]) {
    this.name = name;
    this.proc = fork(agentMain, ['--node', name, '--cluster', cluster, '--vip', '10.9.0.10', ...args], {
      execPath: nodeBin, serialization: 'advanced', stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    this.proc.stderr?.on('data', (d: Buffer) => this.logs.push(String(d)));
    this.proc.on('exit', () => (this.exited = true));
    this.proc.on('message', (m: FromClusterAgent) => this.onMessage(m));
  }

  private onMessage(m: FromClusterAgent): void {
    this.events.push({ t: now(), m });
    switch (m.type) {
      case 'install':
        for (let off = 0; off < m.words.length; off += RECORD_WORDS) {
          const k = recordKey(m.words, off);
          if ((m.words[off] & 0xff) === RecordOp.CLOSE) this.table.delete(k);
          else this.table.set(k, m.words.slice(off, off + RECORD_WORDS));
        }
        break;
      case 'snapshot-done':
        this.send({ type: 'installed' });
        break;
      case 'vip-release':
        // As tsvsd does once the addresses are out of its kernel: the agent may now say it let go.
        this.send({ type: 'released' });
        break;
      case 'snapshot-request': {
        const all = [...this.table.values()];
        const w = new Uint32Array(all.length * RECORD_WORDS);
        all.forEach((r, i) => w.set(r, i * RECORD_WORDS));
        this.send({ type: 'snapshot-data', id: m.id, words: w, last: true });
        break;
      }
      case 'status':
        this.statusWaiters.get(m.id)?.(m.status);
        this.statusWaiters.delete(m.id);
        break;
      case 'log':
        this.logs.push(`${new Date().toISOString().slice(11, 23)} ${m.line}`);
        break;
      default:
        break;
    }
  }

  send(m: ToClusterAgent): void {
    if (!this.exited && this.proc.connected) this.proc.send(m);
  }

  /** Publishes records as this director's own changes (and keeps them in its table, as tsvsd would). */
  publish(words: Uint32Array): void {
    for (let off = 0; off < words.length; off += RECORD_WORDS) {
      if ((words[off] & 0xff) === RecordOp.CLOSE) this.table.delete(recordKey(words, off));
      else this.table.set(recordKey(words, off), words.slice(off, off + RECORD_WORDS));
    }
    this.send({ type: 'publish', words });
  }

  status(): Promise<ClusterStatus> {
    const id = this.nextId++;
    return new Promise((res, rej) => {
      this.statusWaiters.set(id, res);
      this.send({ type: 'status-request', id });
      setTimeout(() => rej(new Error(`${this.name}: no status`)), 2000);
    });
  }

  /** True while this agent holds the VIPs (last grant not followed by a release). */
  holdsVips(): boolean {
    for (let i = this.events.length - 1; i >= 0; i--) {
      const t = this.events[i].m.type;
      if (t === 'vip-grant') return true;
      if (t === 'vip-release') return false;
    }
    return false;
  }

  grantsAfter(t: number): number[] {
    return this.events.filter((e) => e.t >= t && e.m.type === 'vip-grant').map((e) => e.t);
  }
  releasesAfter(t: number): number[] {
    return this.events.filter((e) => e.t >= t && e.m.type === 'vip-release').map((e) => e.t);
  }

  kill9(): Promise<void> {
    if (this.exited) return Promise.resolve();
    const p = new Promise<void>((r) => this.proc.once('exit', () => r()));
    this.proc.kill('SIGKILL');
    return p;
  }

  async stopGracefully(): Promise<void> {
    if (this.exited) return;
    const p = new Promise<void>((r) => this.proc.once('exit', () => r()));
    this.send({ type: 'stop' });
    await p;
  }
}

/** Polls `f` every 10 ms until it returns something truthy; throws after `timeoutMs`. */
export async function waitFor<T>(what: string, f: () => T | Promise<T>, timeoutMs = 10_000): Promise<NonNullable<T>> {
  const t0 = Date.now();
  for (;;) {
    const v = await f();
    if (v) return v as NonNullable<T>;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Live agents that hold the VIPs. */
export function holders(agents: readonly Agent[]): string[] {
  return agents.filter((a) => !a.exited && a.holdsVips()).map((a) => a.name);
}

/**
 * Moments where two agents held the VIPs at once, from their event timelines (the moment this process received
 * each agent's message). `toleranceMs`: a release received up to that much after another agent's grant counts as
 * before it — a new leader grants only after it has heard the old one's heartbeat sent after its release, but two
 * agents' IPC pipes are read in whatever order the scheduler gives, which can invert two messages by a few µs.
 */
export function overlaps(agents: readonly Agent[], toleranceMs = 0): number {
  const ev: { t: number; who: string; on: boolean }[] = [];
  for (const a of agents) {
    for (const e of a.events) {
      if (e.m.type === 'vip-grant') ev.push({ t: e.t, who: a.name, on: true });
      else if (e.m.type === 'vip-release') ev.push({ t: e.t - toleranceMs, who: a.name, on: false });
    }
  }
  ev.sort((x, y) => x.t - y.t);
  const on = new Set<string>();
  let bad = 0;
  for (const e of ev) {
    if (e.on) on.add(e.who);
    else on.delete(e.who);
    if (on.size > 1) bad++;
  }
  return bad;
}

/** `n` TCP connection records (ESTABLISHED-ish, 15 min timeout) numbered from `start`. */
export function records(n: number, start: number, op: number = RecordOp.NEW): Uint32Array {
  const w = new Uint32Array(n * RECORD_WORDS);
  for (let i = 0; i < n; i++) {
    const j = start + i;
    writeRecord(w, i * RECORD_WORDS, {
      op: op as 1, proto: 6, state: 1, flags: 0x0100, shard: 0, caddr: 0xc6330000 + (j >>> 16), cport: j & 0xffff, vaddr: 0x0a09000a, vport: 80,
      daddr: 0x0a090165, dport: 80, fwmark: 0, timeoutMs: 900_000, remainingMs: 899_000,
    });
  }
  return w;
}
