// The stats read model: counters summed over the workers' rows in shared memory, rates from the 2 s estimator,
// connection counts and listings, worker status. One source for tsvsadm (-L --stats/--rate/-c, status) today
// and for /metrics and the monitor page later (shared/proto/stats.ts).
import { readShardSnapshots } from '../../shared/conntab/sharded.ts';
import { ConnCount, Ev, Stat, type Counters } from '../../shared/fwd/counters.ts';
import { EST_INTERVAL_MS, estimate, newEstimator, readRates, type EstState } from '../../shared/fwd/estimator.ts';
import type { FwdTable, IdAllocator } from '../../shared/fwd/table.ts';
import type { ConnSnapshot, Stats } from '../../shared/model/ipvs.ts';
import { zeroRates } from '../../shared/model/ipvs.ts';
import type { CounterProvider, DestCounters, IpvsTable, ServiceCounters } from '../../shared/model/table.ts';
import type { DataplaneStatus, StatsReader, StatsView, WorkerStatus } from '../../shared/proto/stats.ts';
import { notForwarding } from '../../shared/proto/stats.ts';
import type { DataShm } from './shm.ts';

/** What the forwarding side lends the read model. */
export interface StatsSources {
  shm: DataShm;
  /** Table id → counter slot (the compiler's allocators). */
  svcSlots: IdAllocator;
  destSlots: IdAllocator;
  /** The forwarding table last published (for the estimator's walk and the status epoch). */
  fwd(): FwdTable | undefined;
  workers(): WorkerStatus[];
  onShardError(worker: number, e: Error): void;
}

/**
 * The read model. Without `sources` (tsvsd without --client-if) it reports the table with zero counters and a
 * data plane that forwards nothing. With them it also is the table's CounterProvider and bound-connection
 * counter (see {@link counterProvider}, {@link boundConns}); `start` runs the estimator every 2 s.
 */
export class StatsModel implements StatsReader {
  readonly #table: IpvsTable;
  readonly #src: StatsSources | undefined;
  readonly #svcEst = new Map<number, EstState>();
  readonly #destEst = new Map<number, EstState>();
  #timer?: NodeJS.Timeout;

  constructor(table: IpvsTable, sources?: StatsSources) {
    this.#table = table;
    this.#src = sources;
  }

  /** Starts the rate estimator (every {@link EST_INTERVAL_MS}); no-op without a data plane. */
  start(): void {
    if (!this.#src) return;
    this.#timer = setInterval(() => this.#tick(), EST_INTERVAL_MS);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
  }

  view(): StatsView {
    return { takenAt: Date.now(), tableEpoch: this.#table.epoch, table: this.#table.snapshot(), dataplane: this.dataplane() };
  }

  /** The data plane as `tsvsadm status` shows it. */
  dataplane(): DataplaneStatus {
    const s = this.#src;
    if (!s) return notForwarding(this.#table.epoch);
    const c = s.shm.counters;
    return {
      forwarding: true,
      epoch: s.fwd()?.epoch ?? -1,
      workers: s.workers(),
      events: Object.fromEntries(Object.entries(c.events()).filter(([, v]) => v !== 0)),
      orphansByWorker: c.rows.map((r) => r.events[Ev.orphan_replies]),
      forwardedByWorker: c.rows.map((r) => r.events[Ev.forwarded_in] + r.events[Ev.forwarded_out]),
    };
  }

  conns(): ConnSnapshot[] {
    const s = this.#src;
    if (!s) return [];
    return s.shm.withShards((buffers) => readShardSnapshots(buffers, Date.now(), s.onShardError), s.onShardError);
  }

  /** Counters for the table's snapshot, by table id (undefined without a data plane). */
  counterProvider(): CounterProvider | undefined {
    const s = this.#src;
    if (!s) return undefined;
    const c = s.shm.counters;
    return {
      service: (id: number): ServiceCounters | undefined => {
        const slot = s.svcSlots.peek(String(id));
        if (slot < 0) return undefined;
        const e = this.#svcEst.get(slot);
        return { stats: sum(c, 'svc', slot), rate: e ? readRates(e) : zeroRates() };
      },
      dest: (id: number): DestCounters | undefined => {
        const slot = s.destSlots.peek(String(id));
        if (slot < 0) return undefined;
        const e = this.#destEst.get(slot);
        return {
          activeConns: c.destConns(slot, ConnCount.active),
          inactConns: c.destConns(slot, ConnCount.inactive),
          persistConns: c.destConns(slot, ConnCount.persist),
          stats: sum(c, 'dest', slot),
          rate: e ? readRates(e) : zeroRates(),
        };
      },
    };
  }

  /** Connections and templates bound to a dest (by table id): keeps a deleted dest in the trash. */
  boundConns(id: number): number {
    const s = this.#src;
    if (!s) return 0;
    const slot = s.destSlots.peek(String(id));
    if (slot < 0) return 0;
    const c = s.shm.counters;
    return c.destConns(slot, ConnCount.active) + c.destConns(slot, ConnCount.inactive) + c.destConns(slot, ConnCount.persist);
  }

  #tick(): void {
    const fwd = this.#src?.fwd();
    if (!this.#src || !fwd) return;
    const c = this.#src.shm.counters;
    for (const s of fwd.services) {
      step(this.#svcEst, s.id, sum(c, 'svc', s.id));
      for (const d of s.dests) step(this.#destEst, d.id, sum(c, 'dest', d.id));
    }
  }
}

function step(m: Map<number, EstState>, slot: number, st: Stats): void {
  const e = m.get(slot);
  if (e) estimate(e, st);
  else m.set(slot, newEstimator(st));
}

function sum(c: Counters, kind: 'svc' | 'dest', slot: number): Stats {
  const f = kind === 'svc' ? (w: number): number => c.svcStat(slot, w) : (w: number): number => c.destStat(slot, w);
  return { conns: f(Stat.conns), inpkts: f(Stat.inpkts), outpkts: f(Stat.outpkts), inbytes: f(Stat.inbytes), outbytes: f(Stat.outbytes) };
}
