// Messages between tsvsd (the parent) and its cluster agent child (services/cluster) over the child-process IPC
// channel (fork with serialization: 'advanced', so record words travel as Uint32Array), and the status shape that
// `tsvsadm cluster --json` prints. Records are n × 12 u32 words (shared/sync/record.ts).

/** Messages from the parent to the agent. */
export type ToClusterAgent =
  /** Records this director changed (drained from its workers' outbound rings), to publish. */
  | { type: 'publish'; words: Uint32Array }
  /** A chunk of this director's state for snapshot `id` the agent asked for; `last` ends it. */
  | { type: 'snapshot-data'; id: number; words: Uint32Array; last: boolean }
  /** The snapshot the agent delivered (ended by `snapshot-done`) is installed: the agent may now lead. */
  | { type: 'installed' }
  | { type: 'status-request'; id: number }
  /** Graceful stop: release and hand leadership over at once, then exit. */
  | { type: 'stop' };

/** Messages from the agent to the parent. */
export type FromClusterAgent =
  /** This node's role changed, or the leader it follows did. */
  | { type: 'role'; role: 'leader' | 'backup'; term: number; leader: string }
  /** Own the VIPs (add, gratuitous ARP): sent only after the snapshot was installed. */
  | { type: 'vip-grant'; vips: string[]; term: number }
  /** Stop owning the VIPs now. */
  | { type: 'vip-release'; vips: string[]; reason: string }
  /** Records from peers to install into the owning workers' inbound rings. */
  | { type: 'install'; words: Uint32Array; source: 'sync' | 'resend' | 'snapshot' }
  /** Every chunk of the snapshot from `from` was sent as `install`; answer `installed` once they are in. */
  | { type: 'snapshot-done'; from: string; entries: number; ms: number }
  /** Send this director's whole state as `snapshot-data` chunks (a peer is pulling a snapshot). */
  | { type: 'snapshot-request'; id: number }
  | { type: 'status'; id: number; status: ClusterStatus }
  | { type: 'log'; line: string }
  | { type: 'stopped' };

/** A member as `tsvsadm cluster` shows it. */
export interface ClusterMemberStatus {
  name: string;
  state: 'leader' | 'backup' | 'dead' | 'left' | 'isolated';
  priority: number;
}

/** Sync figures (cumulative since the agent started; lag over received batches). */
export interface ClusterSyncStatus {
  sent: number;
  received: number;
  gaps: number;
  resyncs: number;
  lost: number;
  stale: number;
  foreign: number;
  malformed: number;
  lag_p50_ms: number;
  lag_p99_ms: number;
  snapshot_entries: number;
  snapshot_ms: number;
  /** The workers' side (tsvsd adds it; absent when the director does not forward). */
  workers?: WorkerSyncStatus;
}

/** Connection sync as this director's workers did it (sums over workers, cumulative). */
export interface WorkerSyncStatus {
  /** Records the workers wrote (new, changed, removed entries). */
  written: number;
  /** Records a worker could not write (its outbound ring was full). */
  write_dropped: number;
  /** Peers' records installed: entries created, updated, removed. */
  created: number;
  updated: number;
  removed: number;
  /** Peers' records not installed, by reason. */
  malformed: number;
  no_service: number;
  no_dest: number;
  table_full: number;
  /** Peers' records waiting for a worker, and dropped because a worker's queue was full. */
  pending: number;
  pending_dropped: number;
  /** Mid-flow segments held for their entry; sent on once it came; dropped after the hold time. */
  held: number;
  hold_released: number;
  hold_timeout: number;
}

/** `tsvsadm cluster --json`. */
export interface ClusterStatus {
  self: string;
  cluster: string;
  leader: string;
  term: number;
  nats: 'up' | 'down';
  /** The NATS server the agent is connected to ('' when none). */
  nats_server: string;
  ready: boolean;
  members: ClusterMemberStatus[];
  vips: string[];
  sync: ClusterSyncStatus;
}
