// The data plane's shared counters: one row per worker (its only writer), summed by readers (tsvsd for
// ipvsadm's listings and metrics, workers for the schedulers' global per-dest connection counts).
import { NET_VERDICT_NAMES } from '../net/verdict.ts';
import { ConnCount } from '../conntab/conn-table.ts';
import { Limits } from './table.ts';

/** Per-dest connection counts, Int32 triples: the layout the connection table counts into (defined there). */
export { ConnCount };
/** Per-service and per-dest traffic counters, Float64 quintuples (exact up to 2^53). */
export const Stat = { conns: 0, inpkts: 1, outpkts: 2, inbytes: 3, outbytes: 4, width: 5 } as const;

/**
 * Per-worker event counters: the forwarding outcomes, then one `net_<reason>` slot per shared/net verdict
 * (why a frame could not be parsed or rewritten). The order is the shared-memory layout.
 */
export const WorkerEvent = [
  'rx_frames',
  'tx_frames',
  'tx_errors',
  'batches',
  'forwarded_in',
  'forwarded_out',
  'orphan_replies',
  'not_ours',
  'drop_no_service',
  'drop_no_conn',
  'drop_no_dest',
  'drop_table_full',
  'drop_no_neigh',
  'drop_dest_gone',
  'drop_icmp_unmatched',
  'icmp_translated',
  'icmp_unreach_sent',
  'conns_created',
  'conns_expired',
  'templates_created',
  'table_swaps',
  'local_delivered',
  'drop_no_local',
  'via_kernel',
  'neigh_held',
  'neigh_released',
  'drop_neigh_queue_full',
  'drop_neigh_timeout',
  'evict_embryonic',
  'drop_rate_limit',
  // Frames the kernel dropped because the worker's receive ring was full (PACKET_STATISTICS tp_drops, read every
  // second): the director saturated, not a decision of the engine.
  'drop_rx_ring',
  'table_pressure',
  'nodest_expired',
  'nodest_rescheduled',
  'nodest_rst_sent',
  'quiescent_templates_expired',
  // Connection sync (shared/sync/conn-sync.ts): records written to the outbound ring, refused by a full ring, and
  // what installing a peer's record did — in Install code order (sync_created + code).
  'sync_sent',
  'sync_out_dropped',
  'sync_created',
  'sync_updated',
  'sync_removed',
  'sync_malformed',
  'sync_no_service',
  'sync_no_dest',
  'sync_table_full',
  // Mid-flow TCP segments with no entry held for their synced entry (services/worker/sync-hold.ts): held, sent on
  // once it arrived, dropped after the hold time (or when the queue was full: drop_no_conn).
  'sync_held',
  'sync_hold_released',
  'sync_hold_timeout',
  ...NET_VERDICT_NAMES.map((n) => `net_${n.toLowerCase()}` as const),
] as const;
/** Index of the first `net_*` slot: `NET_EVENT_BASE + verdict code`. */
export const NET_EVENT_BASE: number = (WorkerEvent as readonly string[]).indexOf('net_ok');
export type WorkerEventName = (typeof WorkerEvent)[number] | `net_${string}`;
export const Ev = Object.fromEntries(WorkerEvent.map((n, i) => [n, i])) as { readonly [K in WorkerEventName]: number };
const EVENT_SLOTS = 96;
if (WorkerEvent.length > EVENT_SLOTS) throw new Error(`counters: ${WorkerEvent.length} worker events do not fit ${EVENT_SLOTS} slots`);

const HEADER = 64;
const CONN_BYTES = Limits.dests * ConnCount.width * 4;
const DEST_STAT_BYTES = Limits.dests * Stat.width * 8;
const SVC_STAT_BYTES = Limits.services * Stat.width * 8;
const EVENT_BYTES = EVENT_SLOTS * 8;
/** Bytes of one worker's row (8-byte aligned). */
export const ROW_BYTES = CONN_BYTES + DEST_STAT_BYTES + SVC_STAT_BYTES + EVENT_BYTES;
/** Bytes of the whole segment for `workers` rows. */
export function countersBytes(workers: number): number {
  return HEADER + ROW_BYTES * workers;
}

const MAGIC = 0x74737663; // "tsvc"

/** One worker's writable row. */
export interface CounterRow {
  conns: Int32Array;
  destStats: Float64Array;
  svcStats: Float64Array;
  events: Float64Array;
}

/** A view over the counters segment (shared memory or a plain ArrayBuffer in tests). */
export class Counters {
  readonly workers: number;
  readonly rows: CounterRow[];

  constructor(buffer: ArrayBuffer, workers: number, init: boolean) {
    if (buffer.byteLength < countersBytes(workers)) throw new Error(`counters: segment of ${buffer.byteLength} bytes is too small for ${workers} workers`);
    const head = new Uint32Array(buffer, 0, HEADER / 4);
    if (init) {
      head[0] = MAGIC;
      head[1] = workers;
    } else if (head[0] !== MAGIC || head[1] !== workers) {
      throw new Error(`counters: segment header does not match (${workers} workers expected)`);
    }
    this.workers = workers;
    this.rows = [];
    for (let w = 0; w < workers; w++) {
      let off = HEADER + w * ROW_BYTES;
      const conns = new Int32Array(buffer, off, Limits.dests * ConnCount.width);
      off += CONN_BYTES;
      const destStats = new Float64Array(buffer, off, Limits.dests * Stat.width);
      off += DEST_STAT_BYTES;
      const svcStats = new Float64Array(buffer, off, Limits.services * Stat.width);
      off += SVC_STAT_BYTES;
      const events = new Float64Array(buffer, off, EVENT_SLOTS);
      this.rows.push({ conns, destStats, svcStats, events });
    }
  }

  /** Sum over workers of a dest's connection count `which` (ConnCount.active/inactive/persist). */
  destConns(dest: number, which: number): number {
    let s = 0;
    const i = dest * ConnCount.width + which;
    for (let w = 0; w < this.workers; w++) s += this.rows[w].conns[i];
    return s;
  }

  /** Sum over workers of a dest's stat `which` (Stat.*). */
  destStat(dest: number, which: number): number {
    let s = 0;
    const i = dest * Stat.width + which;
    for (let w = 0; w < this.workers; w++) s += this.rows[w].destStats[i];
    return s;
  }

  /** Sum over workers of a service's stat `which`. */
  svcStat(svc: number, which: number): number {
    let s = 0;
    const i = svc * Stat.width + which;
    for (let w = 0; w < this.workers; w++) s += this.rows[w].svcStats[i];
    return s;
  }

  /** Sum over workers of an event counter. */
  event(ev: number): number {
    let s = 0;
    for (let w = 0; w < this.workers; w++) s += this.rows[w].events[ev];
    return s;
  }

  /** Every event counter summed, by name (control plane; allocates). */
  events(): Record<WorkerEventName, number> {
    const out = {} as Record<WorkerEventName, number>;
    WorkerEvent.forEach((n, i) => (out[n] = this.event(i)));
    return out;
  }
}
