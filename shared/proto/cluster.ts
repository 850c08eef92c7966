// Messages between tsvsd (the parent) and its cluster agent child (services/cluster) over the child-process IPC
// channel (fork with serialization: 'advanced', so record words travel as Uint32Array), and the status shape that
// `tsvsadm cluster --json` prints. Records are n × 12 u32 words (shared/sync/record.ts).
import type { DaemonConfig, DestConfig, ServiceConfig, Timeouts } from '../model/ipvs.ts';
import type { TableErrno, TableOp } from '../model/ops.ts';

/** Messages from the parent to the agent. */
export type ToClusterAgent =
  /** Records this director changed (drained from its workers' outbound rings), to publish. */
  | { type: 'publish'; words: Uint32Array }
  /** A chunk of this director's state for snapshot `id` the agent asked for; `last` ends it. */
  | { type: 'snapshot-data'; id: number; words: Uint32Array; last: boolean }
  /** After a `vip-release`: the VIPs are gone from this director's kernel (a peer may now add them). */
  | { type: 'released' }
  /** The snapshot the agent delivered (ended by `snapshot-done`) is installed: the agent may now lead. */
  | { type: 'installed' }
  | { type: 'status-request'; id: number }
  /** Graceful stop: release and hand leadership over at once, then exit. */
  | { type: 'stop' }
  | ToClusterAgentConfig;

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
  | { type: 'stopped' }
  | FromClusterAgentConfig;

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
  /**
   * The VIPs this director owns: in active-active the ones it holds on `lo` and forwards now (tsvsd fills it in);
   * otherwise the agent's `--vip` list (empty when the leader owns the table's VIPs).
   */
  vips: string[];
  /** How the VIPs are owned (tsvsd fills it in): by the leader only, or by every ready director (`--active-active`). */
  mode?: 'active-backup' | 'active-active';
  sync: ClusterSyncStatus;
}

// ---- cluster-wide configuration (NATS KV) --------------------------------------------------------------------

/** A service of the cluster's table: its definition and its real servers in kernel list order (newest first). */
export interface ConfigDocService {
  svc: ServiceConfig;
  dests: DestConfig[];
}

/**
 * The cluster's table as stored (JSON) under one key of the KV bucket `tsvs_<cluster>_config`: the whole table, so
 * an edit is one compare-and-set of one value on the revision it was made from. `op`/`prev` say which edit made
 * it from which revision (a director that holds `prev` replays `op` and gets the writer's exact table); `edit` is
 * the edit's unique id (a write that timed out but was applied is recognised on the retry).
 */
export interface ConfigDoc {
  /** Schema version: {@link CONFIG_DOC_VERSION}. */
  v: number;
  services: ConfigDocService[];
  timeouts: Timeouts;
  daemons: DaemonConfig[];
  /** The edit that made this revision (absent for a seed). */
  op?: TableOp;
  /** The revision `op` was applied to (0: the key was absent). */
  prev: number;
  /** The director that wrote it. */
  by: string;
  /** Unique id of the edit (`<node>/<agent epoch>/<n>`). */
  edit: string;
  /**
   * Ids of the edits before it, newest last (at most {@link CONFIG_RECENT_EDITS}): a write that timed out but was
   * applied is recognised on the retry even when other directors' edits landed on top of it meanwhile. Absent in
   * documents written before it existed.
   */
  recent?: string[];
}

/** How many earlier edit ids a document carries in `recent`. */
export const CONFIG_RECENT_EDITS = 256;

/** The {@link ConfigDoc} schema version this code reads and writes. */
export const CONFIG_DOC_VERSION = 1;

/** Config messages from tsvsd to its agent. */
export type ToClusterAgentConfig =
  /** Apply one table operation to the cluster's table (compare-and-set, retried on conflict); answered by `config-answer`. */
  | { type: 'config-edit'; id: number; op: TableOp }
  /** Answer to `config-seed-request`: this director's table to store if the bucket is still empty (null: nothing to seed). */
  | { type: 'config-seed'; doc: ConfigDoc | null };

/** Why a cluster config edit failed: the table's errno on the latest revision, or EAGAIN (store unreachable). */
export type ConfigEditErrno = TableErrno | 'EAGAIN';

/** Config messages from the agent to tsvsd. */
export type FromClusterAgentConfig =
  /** The outcome of `config-edit` `id`; on success the revision it made was pushed (`config-revision`) before. */
  | { type: 'config-answer'; id: number; ok: true; rev: number }
  | { type: 'config-answer'; id: number; ok: false; errno: ConfigEditErrno; detail: string }
  /** A revision of the cluster's table to apply (newer than the last pushed, or `initial`: this agent's first). */
  | { type: 'config-revision'; rev: number; doc: ConfigDoc; initial: boolean }
  /** The bucket has no table: send `config-seed` with this director's (its --config) or null. */
  | { type: 'config-seed-request' };
