// The stats read model's types: one view of counters, rates, connection counts and worker status, shared by the
// admin handlers (tsvsadm -L --stats/--rate, status), /metrics and the monitor page. Plain JSON-serialisable data.
import type { ConnSnapshot, TableSnapshot } from '../model/ipvs.ts';
import type { ClusterMemberStatus, ClusterSyncStatus } from './cluster.ts';

/** One forwarding worker slot as tsvsd supervises it. */
export interface WorkerStatus {
  /** Worker index, 0..workers-1 (its connection-table shard and fanout slot). */
  index: number;
  /** CPU the worker is pinned to. */
  cpu: number;
  /** Process id of the current incarnation; 0 while none runs. */
  pid: number;
  alive: boolean;
  /** Restarts since tsvsd started. */
  restarts: number;
  /** Epoch of the forwarding table the worker last acknowledged; -1 before its first. */
  appliedEpoch: number;
}

/** The data plane as `tsvsadm status` shows it. `forwarding` is false when tsvsd runs without --client-if. */
export interface DataplaneStatus {
  forwarding: boolean;
  /** Epoch of the forwarding table last published to the workers (-1 before the first). */
  epoch: number;
  workers: WorkerStatus[];
  /** Event and drop counters summed over workers, by name (shared/fwd/counters.ts WorkerEvent); zeros left out. */
  events: Record<string, number>;
  /** Per-worker orphan replies (replies that reached a worker whose shard does not hold their flow), by index. */
  orphansByWorker: number[];
  /** Per-worker packets forwarded (both directions), by index. */
  forwardedByWorker: number[];
}

/**
 * Everything a reader of the director's numbers needs, taken at one moment: the table with its counters merged
 * in (per service and real server: conns/packets/bytes since the last -Z, rates per second as ipvsadm --rate
 * shows them, active/inactive/persistent connection counts) and the data plane's status.
 */
export interface StatsView {
  /** Wall-clock ms (Date.now()) when the view was taken. */
  takenAt: number;
  /** Epoch of the IPVS table (bumped by every successful change). */
  tableEpoch: number;
  table: TableSnapshot;
  dataplane: DataplaneStatus;
  /** The cluster (polled; absent when the director runs alone). */
  cluster?: ClusterView | null;
  /** Health of the checked real servers (polled; absent without a checker). */
  health?: HealthServerView[] | null;
  /** VIPs this director holds on its interfaces now, the gateway address included (absent without a data plane). */
  vipsHeld?: string[];
  /** Floating addresses that follow the VIPs besides the table's (the real servers' gateway, --gateway-vip). */
  floating?: string[];
}

/**
 * The cluster as this director sees it: its cluster agent's status (`tsvsadm cluster --json`), polled by tsvsd on a
 * timer, plus this director's role as the agent last reported it. Absent on a director that runs alone.
 */
export interface ClusterView {
  /** This director's node name. */
  self: string;
  cluster: string;
  /** This director's role ('none' while the agent is not running or has not decided). */
  role: 'leader' | 'backup' | 'none';
  /** The leader's node name ('' when none is known). */
  leader: string;
  /** Current leadership term. */
  term: number;
  nats: 'up' | 'down';
  /** The NATS server the agent is connected to ('' when none). */
  natsServer: string;
  /** The agent has installed its snapshot and may lead. */
  ready: boolean;
  members: ClusterMemberStatus[];
  /** The VIPs the agent granted this director (the leader's), empty otherwise. */
  vips: string[];
  /** Sync figures, cumulative since the agent started (records; lag in ms over received batches). */
  sync: ClusterSyncStatus;
  /** Wall-clock ms of the status this view comes from (0: the agent never answered). */
  statusAt: number;
  /** Why the last poll got no answer ('' when it answered). */
  error: string;
}

/** One real server as the health checker sees it, per IPVS service it belongs to (HAProxy-style figures). */
export interface HealthServerView {
  /** The keepalived virtual_server id ("TCP 10.0.0.1:80") and the real server's id ("<vs> -> 10.0.1.2:80"). */
  vs: string;
  rs: string;
  /** The IPVS service (node_exporter's labels: 'TCP' | 'UDP' | 'FWM', '' address and 0 port for FWM). */
  proto: string;
  localAddress: string;
  localPort: number;
  localMark: number;
  remoteAddress: string;
  remotePort: number;
  state: 'up' | 'down';
  /** Weight in the table now (null: not in the table), and as configured. */
  tableWeight: number | null;
  configuredWeight: number;
  /** Seconds the last check took (the slowest of the server's checkers), null before the first. */
  lastCheckSeconds: number | null;
  /** Checks run and failed, over the server's checkers, since the checker started. */
  checks: number;
  failures: number;
  /** Transitions to up and to down since the checker started. */
  upTransitions: number;
  downTransitions: number;
  /** The checker that decides the state: the first one down, else the first one ("TCP_CHECK 10.0.1.2:80"). */
  check: string;
  /** That checker's last error (null when it passed). */
  lastError: string | null;
  /** Wall-clock ms of the last state change, null if never. */
  lastChange: number | null;
}

/**
 * The read model itself, as tsvsd exposes it to its consumers (admin handlers today; metrics and the monitor page
 * later). Cheap to call: counters are summed from shared memory, rates come from the 2 s estimator.
 */
export interface StatsReader {
  view(): StatsView;
  /** Every connection and template of every worker's shard (ipvsadm -L -c); can be large. */
  conns(): ConnSnapshot[];
}

/** The data plane's status when tsvsd runs without --client-if (nothing forwarded, no workers). */
export function notForwarding(epoch: number): DataplaneStatus {
  return { forwarding: false, epoch, workers: [], events: {}, orphansByWorker: [], forwardedByWorker: [] };
}
