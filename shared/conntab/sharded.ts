// One connection table per worker shard: a flow's shard is clientShard(caddr, cport, n), the function the
// packet fanout uses, so the worker that sees both directions of a flow is the single writer of its entry.
import { ConnTable, shardOf, type ConnEntryInfo, type ConnTableOptions, type ConnTableRuntime } from './conn-table.ts';

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
}

/** Sum worker counter rows into one (`[active, inactive, persist]` per dest id), as readers do. */
export function sumCounterRows(rows: readonly Int32Array[], out: Int32Array): Int32Array {
  out.fill(0);
  for (const r of rows) for (let i = 0; i < out.length && i < r.length; i++) out[i] += r[i];
  return out;
}
