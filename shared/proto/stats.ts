// The stats read model's types: one view of counters, rates, connection counts and worker status, shared by the
// admin handlers (tsvsadm -L --stats/--rate, status), /metrics and the monitor page. Plain JSON-serialisable data.
import type { ConnSnapshot, TableSnapshot } from '../model/ipvs.ts';

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
