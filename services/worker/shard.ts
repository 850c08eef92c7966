// A worker's share of the shared memory: the counters segment (created by tsvsd) and its connection-table shard,
// which survives a restart of the worker process so that its connections keep flowing (attach or recover).
import { ConnTable, conntabBytes } from '../../shared/conntab/conn-table.ts';
import { Counters, countersBytes, type CounterRow } from '../../shared/fwd/counters.ts';
import { conntabPath, countersPath } from '../../shared/proto/worker.ts';
import { mapShared, type SharedSegment } from '../../shared/sys/shm.ts';

/** What {@link openShard} mapped. */
export interface Shard {
  counters: Counters;
  row: CounterRow;
  conns: ConnTable;
  /** True when an existing shard was re-attached (a restarted worker): its connections are live. */
  attached: boolean;
  /** Why a shard found on disk could not be attached (then it was cleared), or null. */
  recovered: string | null;
  /** Unmaps the shard (the counters stay mapped until exit). */
  close(): void;
}

/**
 * Maps the counters and shard `index` under `dir`. A shard left by a previous process of this worker is attached
 * (its per-dest connection counts recounted into this worker's row); one that cannot be attached (another layout,
 * corrupt header) is cleared and started empty, with the reason in `recovered`. A new shard starts with epoch
 * `nowMs`. Throws SysError when a segment cannot be mapped.
 */
export function openShard(dir: string, index: number, workers: number, capacity: number, nowMs: number): Shard {
  const counters = new Counters(mapShared(countersPath(dir), countersBytes(workers)).buffer, workers, false);
  const row = counters.rows[index];
  const seg: SharedSegment = mapShared(conntabPath(dir, index), conntabBytes(capacity), { create: true, resize: true });
  const fresh = (): ConnTable => ConnTable.create(capacity, { counters: row.conns, epochMs: nowMs, tableTime: true }, seg.buffer);
  let conns: ConnTable;
  let attached = false;
  let recovered: string | null = null;
  if (seg.created) {
    conns = fresh();
  } else {
    try {
      conns = ConnTable.attach(seg.buffer, { counters: row.conns, tableTime: true });
      attached = true;
      row.conns.fill(0);
      conns.recount(row.conns);
    } catch (e) {
      recovered = (e as Error).message;
      new Uint8Array(seg.buffer).fill(0);
      row.conns.fill(0);
      conns = fresh();
    }
  }
  return { counters, row, conns, attached, recovered, close: () => seg.unmap() };
}
