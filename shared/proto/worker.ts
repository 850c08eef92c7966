// Messages between tsvsd and its forwarding workers over the child-process IPC channel, and where the
// shared-memory segments they both map live.
import type { FwdTable } from '../fwd/table.ts';

/** Messages from tsvsd to a worker. */
export type ToWorker =
  | { type: 'table'; table: FwdTable }
  /** The fanout membership order: `slots[k]` is the worker index at fanout slot k on every interface. */
  | { type: 'fanout'; slots: number[] }
  | { type: 'stop' };

/** Messages from a worker to tsvsd. */
export type FromWorker =
  /** Joined the fanout groups and ready to forward. */
  | { type: 'ready'; index: number; pid: number; cpu: number; attached: boolean; conns: number }
  | { type: 'table-applied'; index: number; epoch: number }
  | { type: 'log'; index: number; line: string };

/** Shared-memory directory of a director (one per network namespace): /dev/shm/tsvs-ns-<inode>. */
export function shmDir(netnsInode: number | bigint): string {
  return `/dev/shm/tsvs-ns-${String(netnsInode)}`;
}

/** Connection-table segment of worker `index`. */
export function conntabPath(dir: string, index: number): string {
  return `${dir}/conntab-${index}`;
}

/** Connection-sync segment of worker `index` (its outbound and inbound rings, shared/sync/ring.ts); tsvsd creates it. */
export function syncPath(dir: string, index: number): string {
  return `${dir}/sync-${index}`;
}

/** Records per sync ring (each way, per worker): 65536 × 48 B = 3 MiB. */
export const DEFAULT_SYNC_RING_RECORDS = 1 << 16;

/** Counters segment. */
export function countersPath(dir: string): string {
  return `${dir}/counters`;
}

/** Connection-table capacity per worker (entries); 48 B each plus index and wheel. */
export const DEFAULT_CONNS_PER_WORKER = 1 << 20;

/** The multi-queue TUN device (one queue per worker) through which workers hand packets to the director's own stack. */
export const LOCAL_TUN = 'tsvs-local0';

/** Fanout group id of an interface: unique per interface within a network namespace. */
export function fanoutGroup(ifindex: number): number {
  return 0x5000 + (ifindex & 0xfff);
}
