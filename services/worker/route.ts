// The worker's view of IPv4 routing: a longest-prefix-match table built from the kernel's main table and the
// director's own addresses (rtnetlink dumps, see io/route-sync.ts), so that every forwarded packet gets its
// egress port and next hop. Pure: the collector turns parsed messages into a table, no sockets here.
import { prefixToMask } from '../../shared/net/addr.ts';
import { AF_INET, RTM_F_CLONED, RtTable, Rtn, type AddrMsg, type RouteMsg } from '../../shared/sys/rtnl-codec.ts';

/** One route: destination prefix, egress interface, gateway (0 = on-link). */
export interface Route {
  dst: number;
  mask: number;
  len: number;
  ifindex: number;
  gateway: number;
}

/** Routes sorted by prefix length, longest first: the first match wins. */
export class RouteTable {
  private routes: Route[] = [];
  /** Director's primary IPv4 address per ifindex. */
  private readonly srcByIf = new Map<number, number>();
  /** Every IPv4 address of the director (VIPs included). */
  private local = new Set<number>();

  /** Replaces the table. `local`: every address of the director (default: the values of `addrs`). */
  set(routes: Route[], addrs: Map<number, number>, local?: Iterable<number>): void {
    this.routes = [...routes].sort((a, b) => b.len - a.len);
    this.local = new Set(local ?? addrs.values());
    this.srcByIf.clear();
    for (const [k, v] of addrs) this.srcByIf.set(k, v);
  }

  /** Fills `out` with the egress interface and next-hop address for `daddr`; false when no route. */
  lookup(daddr: number, out: { ifindex: number; nexthop: number }): boolean {
    const rs = this.routes;
    for (let i = 0; i < rs.length; i++) {
      const r = rs[i];
      if (((daddr & r.mask) >>> 0) === r.dst) {
        out.ifindex = r.ifindex;
        out.nexthop = r.gateway !== 0 ? r.gateway : daddr >>> 0;
        return true;
      }
    }
    return false;
  }

  /** True when `addr` is one of the director's own addresses (a real server on the director itself). */
  isLocal(addr: number): boolean {
    return this.local.has(addr >>> 0);
  }

  /** The director's address on `ifindex` (0 when it has none). */
  source(ifindex: number): number {
    return this.srcByIf.get(ifindex) ?? 0;
  }
}

/**
 * Builds a RouteTable snapshot from one dump of routes (RTM_GETROUTE) and addresses (RTM_GETADDR), in the
 * kernel's order, with the semantics `ip -j -4 route show table main` / `ip -j -4 addr show` gave before:
 * - routes: IPv4, table main, type unicast, with an egress interface; not cloned. A multipath route keeps its
 *   first nexthop (one path; ECMP is not spread). Among equal prefixes the kernel's order (metric) decides.
 * - addresses: every IPv4 address is local; an interface's source is its first address with a prefix shorter
 *   than /32, else its first (a VIP added as /32 is not a source).
 */
export class RouteCollector {
  private routes: Route[] = [];
  private readonly srcByIf = new Map<number, { addr: number; host: boolean }>();
  private local: number[] = [];

  /** Forgets everything collected (before a new dump). */
  reset(): void {
    this.routes = [];
    this.srcByIf.clear();
    this.local = [];
  }

  /** Adds a parsed RTM_NEWROUTE if the table keeps it; returns whether it did. */
  addRoute(m: RouteMsg): boolean {
    if (m.family !== AF_INET || m.table !== RtTable.MAIN || m.type !== Rtn.UNICAST || (m.flags & RTM_F_CLONED) !== 0 || m.ifindex <= 0) return false;
    const mask = prefixToMask(m.dstLen);
    this.routes.push({ dst: (m.dst & mask) >>> 0, mask, len: m.dstLen, ifindex: m.ifindex, gateway: m.gateway >>> 0 });
    return true;
  }

  /** Adds a parsed RTM_NEWADDR (IPv4 only). */
  addAddr(m: AddrMsg): void {
    if (m.family !== AF_INET) return;
    const addr = m.local >>> 0;
    this.local.push(addr);
    const host = m.prefixLen === 32;
    const have = this.srcByIf.get(m.ifindex);
    if (have === undefined || (have.host && !host)) this.srcByIf.set(m.ifindex, { addr, host });
  }

  /** Routes kept so far. */
  get routeCount(): number {
    return this.routes.length;
  }

  /** Swaps the collected snapshot into `t` (one `set`: the packet path sees the old table or the new one). */
  applyTo(t: RouteTable): void {
    const addrs = new Map<number, number>();
    for (const [ifx, a] of this.srcByIf) addrs.set(ifx, a.addr);
    t.set(this.routes, addrs, this.local);
  }
}
