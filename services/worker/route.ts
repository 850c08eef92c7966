// The worker's view of IPv4 routing: a longest-prefix-match table read from the kernel (ip -j route) and the
// director's own address per interface, so that every forwarded packet gets its egress port and next hop.
import { execFile, execFileSync } from 'node:child_process';
import { ipv4ToInt, prefixToMask } from '../../shared/util/ip.ts';

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

  /** Reads the kernel's main table and interface addresses, blocking (start-up only; spawns `ip`). */
  loadFromKernel(): void {
    this.apply(run('link'), run('route'), run('addr'));
  }

  /**
   * The same without blocking the event loop (the worker's packet path): the three `ip` calls run in the
   * background and the table is swapped when all have answered. Failures are reported to `onError`.
   */
  refreshFromKernel(onError: (e: Error) => void): void {
    Promise.all([runAsync('link'), runAsync('route'), runAsync('addr')])
      .then(([l, r, a]) => this.apply(l, r, a))
      .catch((e: Error) => onError(e));
  }

  private apply(linkJson: string, routeJson: string, addrJson: string): void {
    const links = JSON.parse(linkJson) as { ifindex: number; ifname: string }[];
    const idx = new Map(links.map((l) => [l.ifname, l.ifindex]));
    const routes: Route[] = [];
    const raw = JSON.parse(routeJson) as { dst: string; gateway?: string; dev?: string; type?: string }[];
    for (const r of raw) {
      if (r.type && r.type !== 'unicast') continue;
      const ifindex = r.dev ? idx.get(r.dev) ?? 0 : 0;
      if (!ifindex) continue;
      let dst = 0;
      let len = 0;
      if (r.dst !== 'default') {
        const [a, l] = r.dst.split('/');
        dst = ipv4ToInt(a) ?? 0;
        len = l === undefined ? 32 : Number(l);
      }
      const mask = prefixToMask(len);
      routes.push({ dst: (dst & mask) >>> 0, mask, len, ifindex, gateway: r.gateway ? ipv4ToInt(r.gateway) ?? 0 : 0 });
    }
    const addrs = new Map<number, number>();
    const local: number[] = [];
    const ad = JSON.parse(addrJson) as { ifindex: number; addr_info: { local: string; prefixlen: number }[] }[];
    for (const a of ad) {
      // Prefer an address with a real prefix over a /32 (a VIP added to the interface).
      const best = [...a.addr_info].sort((x, y) => (x.prefixlen === 32 ? 1 : 0) - (y.prefixlen === 32 ? 1 : 0))[0];
      if (best) addrs.set(a.ifindex, ipv4ToInt(best.local) ?? 0);
      for (const i of a.addr_info) local.push(ipv4ToInt(i.local) ?? 0);
    }
    this.set(routes, addrs, local);
  }
}

const IP_ARGS = { link: ['-j', 'link', 'show'], route: ['-j', '-4', 'route', 'show', 'table', 'main'], addr: ['-j', '-4', 'addr', 'show'] } as const;

function run(what: keyof typeof IP_ARGS): string {
  return execFileSync('ip', IP_ARGS[what], { encoding: 'utf8' });
}

function runAsync(what: keyof typeof IP_ARGS): Promise<string> {
  return new Promise((resolve, reject) => execFile('ip', IP_ARGS[what], { encoding: 'utf8' }, (e, out) => (e ? reject(e) : resolve(out))));
}
