// tsvsd's side of the cluster: the agent child's command line, and the link that turns the agent's messages into
// VIP ownership (leader → the table's VIPs, anything else → none), answers its snapshot requests and status asks.
import { parseClusterArgs } from '../../shared/cluster/options.ts';
import type { VrrpCluster } from '../../shared/keepalived/vrrp.ts';
import type { VipGrant } from '../../shared/rules/desired.ts';
import { ChildKind, type ChildSpec } from '../../shared/proto/child.ts';
import type { ClusterStatus, FromClusterAgent, ToClusterAgent } from '../../shared/proto/cluster.ts';
import { RECORD_WORDS } from '../../shared/sync/record.ts';
import type { Logger } from './log.ts';
import type { OwnershipSource } from './ownership.ts';

/** The child's name in the supervisor, logs and status. */
export const CLUSTER_CHILD = 'cluster';

/** tsvsd's cluster options as given on its command line (strings as typed; checked by {@link clusterAgentArgs}). */
export interface ClusterCli {
  /** NATS URLs, comma-separated. */
  nats: string;
  creds?: string;
  node: string;
  cluster?: string;
  priority?: string;
  nopreempt: boolean;
  /** ms */
  preemptDelay?: string;
  /** ms */
  heartbeat?: string;
  missBeats?: string;
  /** ms */
  startupWait?: string;
  kvReplicas?: string;
}

/** tsvsd flags that only make sense with NATS (a usage error without it). */
export const CLUSTER_FLAGS = ['nats-creds', 'node', 'cluster', 'priority', 'nopreempt', 'preempt-delay', 'heartbeat', 'miss-beats', 'startup-wait', 'kv-replicas'] as const;

/**
 * The agent's argv for these options. Throws (ClusterOptionsError, every problem listed, flags named as the agent
 * names them) when the agent would refuse them: tsvsd checks them at parse time rather than crash-looping a child.
 */
export function clusterAgentArgs(c: ClusterCli): string[] {
  const a = ['--nats', c.nats, '--node', c.node];
  const opt = (flag: string, v: string | undefined): void => {
    if (v !== undefined) a.push(flag, v);
  };
  opt('--creds', c.creds);
  opt('--cluster', c.cluster);
  opt('--priority', c.priority);
  if (c.nopreempt) a.push('--nopreempt');
  opt('--preempt-delay', c.preemptDelay);
  opt('--heartbeat', c.heartbeat);
  opt('--miss-beats', c.missBeats);
  opt('--startup-wait', c.startupWait);
  opt('--kv-replicas', c.kvReplicas);
  parseClusterArgs(a);
  return a;
}

/**
 * The cluster options with what a keepalived.conf's vrrp_instance says (shared/keepalived/vrrp.ts) filling the
 * ones not given on the command line: explicit tsvsd options win over the file. `--nopreempt` cannot be undone by
 * the file, and the file's nopreempt applies when the command line does not say it. Heartbeat timers are never
 * taken from the file (advert_int is reported, not mapped). Throws (ClusterOptionsError) as {@link clusterAgentArgs}.
 */
export function mergeVrrpCluster(c: ClusterCli, m: VrrpCluster): ClusterCli {
  if (m.from === null) return c;
  const merged: ClusterCli = {
    ...c,
    cluster: c.cluster ?? m.cluster ?? undefined,
    priority: c.priority ?? (m.priority === null ? undefined : String(m.priority)),
    nopreempt: c.nopreempt || m.nopreempt,
    preemptDelay: c.preemptDelay ?? (m.preemptDelayMs === null ? undefined : String(m.preemptDelayMs)),
  };
  clusterAgentArgs(merged);
  return merged;
}

/** How tsvsd runs the agent: services/cluster/main.ts with structured-clone IPC (records travel as Uint32Array). */
export function clusterChildSpec(root: string, c: ClusterCli): ChildSpec {
  return { name: CLUSTER_CHILD, kind: ChildKind.cluster, entry: `${root}services/cluster/main.ts`, args: clusterAgentArgs(c), serialization: 'advanced', minBackoffMs: 100, maxBackoffMs: 2000, graceMs: 1000 };
}

/** No VIP at all. */
export const NO_VIPS: VipGrant = { kind: 'only', vips: [] };

/** What the link needs from the daemon. */
export interface ClusterLinkDeps {
  /** Sends a message to the agent; false when it is not running. */
  send(msg: ToClusterAgent): boolean;
  log: Logger;
  /**
   * This director's whole connection state as sync records (12 u32 words each), for a peer's snapshot. Default:
   * none (connection sync not wired: a peer pulling from this director gets an empty snapshot).
   */
  snapshot?(): Uint32Array;
  /** Records from peers to install in the owning workers; returns how many were taken. Default: none taken. */
  install?(words: Uint32Array): number;
  /** Told of role changes and VIP grants/releases as they happen (control-event spans). Default: nobody. */
  event?(e: ClusterLinkEvent): void;
  /** Calls `done` once every record handed to {@link install} so far is in the workers' tables. Default: at once. */
  whenInstalled?(done: () => void): void;
}

/** What the link tells {@link ClusterLinkDeps.event}: this director's role changed, or it got or lost the VIPs. */
export type ClusterLinkEvent =
  | { kind: 'role'; from: ClusterRole; to: ClusterRole }
  | { kind: 'grant'; term: number; vips: string[] }
  | { kind: 'release'; term: number; reason: string };

/** The agent's view as tsvsd last heard it. */
export interface ClusterRole {
  role: 'leader' | 'backup' | 'none';
  term: number;
  leader: string;
}

/**
 * The cluster as an {@link OwnershipSource}: no VIP until the agent grants them (this node leads), none again on a
 * release, when the agent exits (a director without its agent must not hold the VIPs) or on stop. Also carries the
 * agent's status answers (outside the event queue: an admin request waits on them) and the graceful stop.
 */
export class ClusterLink implements OwnershipSource {
  readonly name = 'cluster';
  readonly #deps: ClusterLinkDeps;
  #emit: ((g: VipGrant) => void) | null = null;
  #granted = false;
  #role: ClusterRole = { role: 'none', term: 0, leader: '' };
  #nextId = 1;
  readonly #waiting = new Map<number, { resolve: (s: ClusterStatus) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  #stopped: (() => void) | null = null;
  /** Sync records from peers that could not be installed (connection sync not wired, or no taker). */
  dropped = 0;

  constructor(deps: ClusterLinkDeps) {
    this.#deps = deps;
  }

  get role(): ClusterRole {
    return this.#role;
  }

  /** Whether the agent has granted this director the VIPs (it leads). */
  get granted(): boolean {
    return this.#granted;
  }

  start(emit: (g: VipGrant) => void): void {
    this.#emit = emit;
    emit(NO_VIPS);
  }

  stop(): void {
    this.#release('stopping');
    this.#emit = null;
    for (const [id, w] of this.#waiting) {
      clearTimeout(w.timer);
      w.reject(new Error('tsvsd is stopping'));
      this.#waiting.delete(id);
    }
  }

  /**
   * Handles what must not wait in the event queue (status answers, `stopped`); true when it took the message.
   * Called from the child's IPC callback.
   */
  intercept(m: unknown): boolean {
    if (!isAgentMessage(m)) return false;
    if (m.type === 'status') {
      const w = this.#waiting.get(m.id);
      if (w) {
        clearTimeout(w.timer);
        this.#waiting.delete(m.id);
        w.resolve(m.status);
      }
      return true;
    }
    if (m.type === 'stopped') {
      this.#stopped?.();
      return false; // also logged by the queue
    }
    return false;
  }

  /** A message from the agent, in event-queue order. Unknown shapes are logged (rate-limited by the caller). */
  onMessage(m: unknown): void {
    if (!isAgentMessage(m)) {
      this.#deps.log('cluster: message not understood', { type: typeof m === 'object' && m !== null ? String((m as { type?: unknown }).type) : typeof m });
      return;
    }
    switch (m.type) {
      case 'role':
        if (m.role !== this.#role.role || m.term !== this.#role.term || m.leader !== this.#role.leader) this.#deps.log('cluster: role', { role: m.role, term: m.term, leader: m.leader });
        this.#setRole({ role: m.role, term: m.term, leader: m.leader });
        return;
      case 'vip-grant':
        this.#granted = true;
        this.#setRole({ role: 'leader', term: m.term, leader: this.#role.leader });
        this.#deps.log('cluster: leader, VIPs granted', { term: m.term });
        this.#deps.event?.({ kind: 'grant', term: m.term, vips: Array.isArray(m.vips) ? [...m.vips] : [] });
        this.#emit?.({ kind: 'all' });
        return;
      case 'vip-release':
        this.#release(m.reason);
        return;
      case 'install': {
        const n = m.words.length / RECORD_WORDS;
        const took = this.#deps.install?.(m.words) ?? 0;
        this.dropped += n - took;
        return;
      }
      case 'snapshot-done':
        this.#deps.log('cluster: snapshot pulled', { from: m.from, entries: m.entries, ms: m.ms });
        // The agent may lead only once the snapshot is in the workers' tables (a VIP raised before the state is
        // installed would answer the moved connections with resets).
        if (this.#deps.whenInstalled) this.#deps.whenInstalled(() => this.#deps.send({ type: 'installed' }));
        else this.#deps.send({ type: 'installed' });
        return;
      case 'snapshot-request': {
        const words = this.#deps.snapshot?.() ?? new Uint32Array(0);
        this.#deps.send({ type: 'snapshot-data', id: m.id, words, last: true });
        return;
      }
      case 'log':
        this.#deps.log(m.line);
        return;
      case 'status':
      case 'stopped':
        return;
    }
  }

  /** The agent exited (crash, kill): release at once; the supervisor restarts it and it rejoins from scratch. */
  onAgentExit(how: string): void {
    this.#setRole({ role: 'none', term: this.#role.term, leader: '' });
    this.#release(`cluster agent exited (${how})`);
  }

  /** Asks the agent for its status; rejects when it is not running or does not answer within `timeoutMs`. */
  status(timeoutMs = 1000): Promise<ClusterStatus> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      if (!this.#deps.send({ type: 'status-request', id })) {
        reject(new Error('the cluster agent is not running'));
        return;
      }
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        reject(new Error(`the cluster agent did not answer in ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiting.set(id, { resolve, reject, timer });
    });
  }

  /**
   * Graceful stop: tells the agent to hand leadership over (it releases, says bye, then reports `stopped`) and
   * resolves when it did or after `timeoutMs`; then releases the VIPs here whatever the agent said.
   */
  async handOver(timeoutMs = 1000): Promise<void> {
    const done = new Promise<void>((resolve) => {
      this.#stopped = resolve;
      setTimeout(resolve, timeoutMs).unref();
    });
    if (this.#deps.send({ type: 'stop' })) await done;
    this.#stopped = null;
    this.#release('stopping');
  }

  #setRole(to: ClusterRole): void {
    const from = this.#role;
    this.#role = to;
    if (from.role !== to.role) this.#deps.event?.({ kind: 'role', from, to });
  }

  #release(reason: string): void {
    if (this.#granted) {
      this.#deps.log('cluster: VIPs released', { reason });
      this.#deps.event?.({ kind: 'release', term: this.#role.term, reason });
    }
    this.#granted = false;
    this.#emit?.(NO_VIPS);
  }
}

const AGENT_TYPES = new Set(['role', 'vip-grant', 'vip-release', 'install', 'snapshot-done', 'snapshot-request', 'status', 'log', 'stopped']);

/** A structural check of the agent's messages (the agent is trusted code, but a message must not crash tsvsd). */
function isAgentMessage(m: unknown): m is FromClusterAgent {
  if (m === null || typeof m !== 'object') return false;
  const t = (m as { type?: unknown }).type;
  if (typeof t !== 'string' || !AGENT_TYPES.has(t)) return false;
  const o = m as Record<string, unknown>;
  switch (t) {
    case 'install':
      return o.words instanceof Uint32Array && o.words.length % RECORD_WORDS === 0;
    case 'status':
    case 'snapshot-request':
      return typeof o.id === 'number';
    case 'vip-grant':
      return typeof o.term === 'number';
    case 'role':
      return (o.role === 'leader' || o.role === 'backup') && typeof o.term === 'number' && typeof o.leader === 'string';
    case 'log':
      return typeof o.line === 'string';
    default:
      return true;
  }
}
