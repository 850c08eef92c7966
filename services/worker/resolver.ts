// The worker's next-hop resolver: route lookup (RouteTable, kept by RouteSync), the neighbour's MAC from the
// kernel's table (NeighTable, kept by an rtnetlink subscription), probes for missing entries, the per-neighbour
// hold queue for packets whose MAC is being resolved, and real servers' neighbours resolved ahead of traffic.
import type { FwdTable } from '../../shared/fwd/table.ts';
import { copyBytes } from '../../shared/sys/libc.ts';
import type { NeighTable } from '../../shared/sys/neigh.ts';
import type { Hop, L2Resolver } from './engine.ts';
import type { TxPort } from './io/port.ts';
import { NeighQueue, type ReleaseTarget } from './neigh-queue.ts';
import type { RouteTable } from './route.ts';

/** Least time between two probes of one neighbour, ms. */
const PROBE_EVERY_MS = 1000;
/** Real servers' neighbours are refreshed (NTF_USE: the kernel re-confirms a STALE entry) this often, ms. */
const REFRESH_EVERY_MS = 15_000;

/** Client-side next hops (from peers' connections) kept confirmed, at most; beyond, they are probed once. */
const CLIENT_HOPS_MAX = 256;

/**
 * Implements the engine's L2Resolver over the kernel's routes and neighbours. Probing and refreshing are netlink
 * round trips: they run on a miss (at most once a second per neighbour) and from {@link tick}, never per packet
 * of a resolved flow.
 */
export class Resolver implements L2Resolver, ReleaseTarget {
  private readonly rt = { ifindex: 0, nexthop: 0 };
  private readonly probed = new Map<number, number>();
  private readonly routes: RouteTable;
  private readonly neigh: NeighTable;
  private readonly queue: NeighQueue | null;
  private readonly ports: Map<number, TxPort & { flush(): number }>;
  private readonly now: () => number;
  private readonly log: (line: string) => void;
  /** Real servers' addresses in the current table (not the director's own), for resolution ahead of traffic. */
  private dests: number[] = [];
  /** Next hops toward clients of peers' connections (ifindex × 2^32 + address), see {@link prepare}. */
  private readonly clientHops = new Set<number>();
  private lastRefresh = 0;

  constructor(o: {
    routes: RouteTable;
    neigh: NeighTable;
    /** TX ports by ifindex (released packets go there). */
    ports: Map<number, TxPort & { flush(): number }>;
    /** The hold queue; null: unresolved packets take the engine's fallback. */
    queue: NeighQueue | null;
    /** Wall clock, ms. */
    now: () => number;
    log: (line: string) => void;
  }) {
    this.routes = o.routes;
    this.neigh = o.neigh;
    this.ports = o.ports;
    this.queue = o.queue;
    this.now = o.now;
    this.log = o.log;
  }

  isLocal(addr: number): boolean {
    return this.routes.isLocal(addr);
  }

  sourceFor(daddr: number): number {
    return this.routes.lookup(daddr, this.rt) ? this.routes.source(this.rt.ifindex) : 0;
  }

  resolve(daddr: number, hop: Hop): boolean {
    if (!this.routes.lookup(daddr, this.rt)) return false;
    const ifx = this.rt.ifindex;
    const mac = this.neigh.lookup(ifx, this.rt.nexthop);
    if (mac === null) {
      this.probe(ifx, this.rt.nexthop);
      return false;
    }
    const own = this.neigh.ownMac(ifx);
    if (own === null) return false;
    for (let i = 0; i < 6; i++) {
      hop.dstMac[i] = mac[i];
      hop.srcMac[i] = own[i];
    }
    hop.ifindex = ifx;
    hop.srcIp = this.routes.source(ifx);
    return true;
  }

  hold(daddr: number, hop: Hop): TxPort | null {
    const q = this.queue;
    if (q === null || !this.routes.lookup(daddr, this.rt)) return null;
    const ifx = this.rt.ifindex;
    const own = this.neigh.ownMac(ifx);
    if (own === null || !this.ports.has(ifx) || !q.hold(ifx, this.rt.nexthop, this.now())) return null;
    for (let i = 0; i < 6; i++) {
      hop.dstMac[i] = 0;
      hop.srcMac[i] = own[i];
    }
    hop.ifindex = ifx;
    hop.srcIp = this.routes.source(ifx);
    return q;
  }

  /**
   * A peer's connection from `caddr` was installed: its next hop toward the client is probed now if the kernel does
   * not know it, and kept confirmed with the real servers' (bounded: the first {@link CLIENT_HOPS_MAX} hops). A
   * backup that takes over then has the MAC its flows' replies need (a router's, or an on-link client's).
   */
  prepare(caddr: number): void {
    if (!this.routes.lookup(caddr, this.rt)) return;
    const ifx = this.rt.ifindex;
    const hop = this.rt.nexthop;
    if (this.clientHops.size < CLIENT_HOPS_MAX) this.clientHops.add(ifx * 0x1_0000_0000 + hop);
    if (this.neigh.lookup(ifx, hop) === null) this.probe(ifx, hop);
  }

  /** ReleaseTarget: the TX port of an interface. */
  port(ifindex: number): (TxPort & { flush(): number }) | undefined {
    return this.ports.get(ifindex);
  }

  /** A neighbour changed (from the NeighTable subscription): held packets go out the moment its MAC is known. */
  onNeighbour(ifindex: number, ip: number, mac: Uint8Array | null): void {
    if (mac !== null && this.queue !== null && this.queue.pending > 0) this.queue.resolved(ifindex, ip, mac, this, copyBytes);
  }

  /**
   * A new table: its real servers' neighbours are resolved now, ahead of their first packet (probes for those the
   * kernel does not know). Addresses of the director itself are skipped.
   */
  setTable(t: FwdTable): void {
    const seen = new Set<number>();
    for (const s of t.services) for (const d of s.dests) if (!this.routes.isLocal(d.addr)) seen.add(d.addr >>> 0);
    this.dests = [...seen];
    this.preResolve(false);
  }

  /** Routes changed: the real servers' next hops may have too. */
  routesChanged(): void {
    this.preResolve(false);
  }

  /**
   * Housekeeping (every few hundred ms): releases queues whose MAC arrived without an event, drops those waiting too
   * long, probes pending neighbours again (once a second), and refreshes the real servers' neighbours now and then.
   */
  tick(): void {
    const q = this.queue;
    if (q !== null && q.pending > 0) {
      q.expire(this.now(), (ifx, ip) => this.neigh.lookup(ifx, ip), this, copyBytes);
      q.forEachPending((ifx, ip) => this.probe(ifx, ip));
    }
    const now = this.now();
    if (now - this.lastRefresh >= REFRESH_EVERY_MS) this.preResolve(true);
  }

  /**
   * Probes each real server's next hop that is unknown (or, with `refresh`, every one: keeps entries confirmed), and
   * with `refresh` the client-side next hops of peers' connections too.
   */
  private preResolve(refresh: boolean): void {
    this.lastRefresh = this.now();
    for (const a of this.dests) {
      if (!this.routes.lookup(a, this.rt)) continue;
      if (refresh || this.neigh.lookup(this.rt.ifindex, this.rt.nexthop) === null) this.probe(this.rt.ifindex, this.rt.nexthop, refresh);
    }
    if (refresh) for (const k of this.clientHops) this.probe(Math.floor(k / 0x1_0000_0000), k % 0x1_0000_0000, true);
  }

  /** Asks the kernel to resolve (or re-confirm) a neighbour, at most once a second per address unless forced. */
  private probe(ifx: number, ip: number, force = false): void {
    const now = this.now();
    const last = this.probed.get(ip) ?? 0;
    if (!force && now - last < PROBE_EVERY_MS) return;
    this.probed.set(ip, now);
    try {
      this.neigh.probe(ifx, ip);
    } catch (e) {
      this.log(`neighbour probe failed: ${(e as Error).message}`);
    }
  }
}
