// One connection table per worker shard, and the one way to read all shards: a flow's shard is
// clientShard(caddr, cport, n), the function the packet fanout uses, so the worker that sees both directions of a
// flow is the single writer of its entry; readers (tsvsd's `-L -c`, tests) go through this file.
import type { ConnSnapshot } from '../model/ipvs.ts';
import { ConnTable, shardOf, type ConnEntryInfo, type ConnTableOptions, type ConnTableRuntime } from './conn-table.ts';

/** A shard's buffer as the reader got it: `null`/`undefined` when the shard has no segment (worker not up yet). */
export type ShardBuffer = ArrayBuffer | SharedArrayBuffer | null | undefined;

/**
 * The set of shard tables of one director. Worker k writes only `shards[k]`; the control plane reads all of
 * them (listing, counters). Persistence templates live in the table of the connection that created them
 * (the template link is an entry index within one table), so a template is per worker: a client whose
 * connections hash to two workers holds two templates, possibly to different dests (see the report on
 * cross-worker persistence).
 */
export class ShardedConnTable {
  /** One table per shard, index = shard = worker. */
  readonly shards: readonly ConnTable[];

  /** Adopt existing tables (e.g. attached from shared memory), in shard order. */
  constructor(shards: readonly ConnTable[]) {
    if (shards.length < 1) throw new RangeError('conntab sharded: at least one shard');
    this.shards = shards;
  }

  /** `n` new tables of `capacityPerShard` entries each; `counters[k]` is worker k's counter row. */
  static create(n: number, capacityPerShard: number, opts: ConnTableOptions & { timeouts?: ConnTableRuntime['timeouts']; counters?: readonly Int32Array[] } = {}): ShardedConnTable {
    const shards: ConnTable[] = [];
    for (let k = 0; k < n; k++) shards.push(ConnTable.create(capacityPerShard, { ...opts, counters: opts.counters?.[k] ?? null }));
    return new ShardedConnTable(shards);
  }

  /**
   * Attach every shard's buffer, in shard order (`rt` applies to each; pass `{ readOnly: true }` beside live
   * writers). Throws the first shard's attach error (RangeError naming the shard) if any buffer is not a table.
   */
  static attach(buffers: readonly (ArrayBuffer | SharedArrayBuffer)[], rt: ConnTableRuntime = {}): ShardedConnTable {
    return new ShardedConnTable(buffers.map((b, k) => {
      try {
        return ConnTable.attach(b, rt);
      } catch (e) {
        throw new RangeError(`conntab shard ${k}: ${(e as Error).message}`);
      }
    }));
  }

  /** Shard index of a client (host-order u32 address, port). */
  shardOf(caddr: number, cport: number): number {
    return shardOf(caddr, cport, this.shards.length);
  }

  /** The table that owns the client's flows. */
  tableOf(caddr: number, cport: number): ConnTable {
    return this.shards[shardOf(caddr, cport, this.shards.length)];
  }

  /** Live entries over all shards. */
  get size(): number {
    let n = 0;
    for (const t of this.shards) n += t.size;
    return n;
  }

  /** Every live entry of every shard, shard by shard, with the shard number (control plane). */
  *entries(nowMs: number): Generator<ConnEntryInfo & { shard: number }> {
    for (let k = 0; k < this.shards.length; k++) for (const e of this.shards[k].entries(nowMs)) yield { ...e, shard: k };
  }

  /** Every connection and template of every shard as `ipvsadm -L -c` lists them: shard by shard, index order. */
  snapshots(nowMs: number): ConnSnapshot[] {
    const out: ConnSnapshot[] = [];
    for (const t of this.shards) pushSnapshots(t, nowMs, out);
    return out;
  }
}

/**
 * The one way a reader beside live workers lists all shards (`ipvsadm -L -c`): attaches each buffer read-only
 * (never rebuilding, never writing), in shard order, and returns every connection and template as a
 * {@link ConnSnapshot}. A missing shard (`null`/`undefined`) is skipped; a shard that is not a valid table is
 * reported to `onError(shard, error)` and skipped, so one bad shard never hides the others. `nowMs` is the
 * workers' clock (ms), from which the remaining lifetimes are computed. Never throws for bad buffers.
 */
export function readShardSnapshots(buffers: readonly ShardBuffer[], nowMs: number, onError?: (shard: number, error: Error) => void): ConnSnapshot[] {
  const out: ConnSnapshot[] = [];
  for (let k = 0; k < buffers.length; k++) {
    const b = buffers[k];
    if (!b) continue;
    let t: ConnTable;
    try {
      t = ConnTable.attach(b, { readOnly: true });
    } catch (e) {
      onError?.(k, e as Error);
      continue;
    }
    pushSnapshots(t, nowMs, out);
  }
  return out;
}

function pushSnapshots(t: ConnTable, nowMs: number, out: ConnSnapshot[]): void {
  for (const e of t.entries(nowMs)) {
    out.push({
      protocol: e.protocol, af: e.af, caddr: e.caddr, cport: e.cport, vaddr: e.vaddr, vport: e.vport, daddr: e.daddr, dport: e.dport,
      state: e.state, expires: e.expires, template: e.template, pe: e.pe, peData: e.peData,
    });
  }
}
