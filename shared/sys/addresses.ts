// The host's own IPv4 addresses over rtnetlink: list them (one dump), or follow them (a subscription to address
// and link events, re-dumped from the event loop after a change). For tsvsd, which must know which VIPs are
// already configured; no `ip` process is spawned.
import { RtnlMonitor, RtnlSocket } from './rtnl.ts';
import { AF_INET, Rtm, RtmGrp, addrMsg, familyBody, nlProblems, nlStats, parseAddrMsg, parseLinkMsg, type NlStats } from './rtnl-codec.ts';

/** One IPv4 address of this host (network namespace). */
export interface OwnAddress {
  ifindex: number;
  /** The interface's name ('' if the link dump did not name it). */
  ifname: string;
  /** Host-order uint32. */
  addr: number;
  prefixLen: number;
}

function dumpAddresses(sock: RtnlSocket): OwnAddress[] {
  const names = new Map<number, string>();
  const out: OwnAddress[] = [];
  const am = addrMsg();
  sock.dump(Rtm.GETLINK, familyBody(Rtm.GETLINK, 0), 'RTM_GETLINK dump', (type, _f, dv, p, end) => {
    if (type !== Rtm.NEWLINK) return true;
    const l = parseLinkMsg(dv, p, end);
    if (l === null) return false;
    names.set(l.ifindex, l.ifname);
    return true;
  });
  sock.dump(Rtm.GETADDR, familyBody(Rtm.GETADDR, AF_INET), 'RTM_GETADDR dump', (type, _f, dv, p, end) => {
    if (type !== Rtm.NEWADDR) return true;
    if (!parseAddrMsg(dv, p, end, am)) return false;
    if (am.family === AF_INET) out.push({ ifindex: am.ifindex, ifname: '', addr: am.local >>> 0, prefixLen: am.prefixLen });
    return true;
  });
  for (const a of out) a.ifname = names.get(a.ifindex) ?? '';
  return out;
}

/** Every IPv4 address of this network namespace, in the kernel's order (one rtnetlink round trip). Throws SysError. */
export function listAddresses(): OwnAddress[] {
  const sock = new RtnlSocket(nlStats());
  try {
    return dumpAddresses(sock);
  } finally {
    sock.close();
  }
}

/** Options of {@link AddressWatch.open}. */
export interface AddressWatchOptions {
  /** Called after each re-dump that changed the list, from the event loop. */
  onChange?: (addrs: readonly OwnAddress[]) => void;
  /** Least time between two re-dumps, ms (default 50): a burst of changes costs one dump. */
  minIntervalMs?: number;
  /** Delay before retrying a failed dump, ms (default 1000); the previous list stays meanwhile. */
  retryMs?: number;
}

/**
 * Follows this namespace's IPv4 addresses: a dump at open (blocking, start-up only), then RTNLGRP_IPV4_IFADDR and
 * RTNLGRP_LINK events mark the list stale and a timer re-dumps it (coalesced). A monitor overrun also re-dumps.
 * Malformed messages and failed dumps are counted in `stats` (see {@link problems}).
 */
export class AddressWatch {
  readonly stats: NlStats = nlStats();
  #addrs: readonly OwnAddress[] = [];
  #set = new Set<number>();
  readonly #sock: RtnlSocket;
  readonly #mon: RtnlMonitor;
  readonly #o: AddressWatchOptions;
  #timer: NodeJS.Timeout | null = null;
  #last = 0;
  #closed = false;
  readonly #reported = nlStats();

  private constructor(o: AddressWatchOptions) {
    this.#o = o;
    this.#sock = new RtnlSocket(this.stats);
    try {
      // Subscribe before the first dump so that no change between the two is missed.
      this.#mon = new RtnlMonitor(RtmGrp.IPV4_IFADDR | RtmGrp.LINK, 'RTNLGRP_IPV4_IFADDR|RTNLGRP_LINK', (type) => {
        if (type === Rtm.NEWADDR || type === Rtm.DELADDR || type === Rtm.NEWLINK || type === Rtm.DELLINK) this.#dirty();
        return true;
      }, () => this.#dirty(), this.stats);
    } catch (e) {
      this.#sock.close();
      throw e;
    }
  }

  /** Opens the watch and loads the list now (without calling onChange). Throws SysError when the first dump fails. */
  static open(o: AddressWatchOptions = {}): AddressWatch {
    const w = new AddressWatch(o);
    try {
      w.#load(false);
    } catch (e) {
      w.close();
      throw e;
    }
    return w;
  }

  /** The addresses as of the last dump. */
  list(): readonly OwnAddress[] {
    return this.#addrs;
  }

  /** True when `addr` (host-order uint32) is one of them. */
  has(addr: number): boolean {
    return this.#set.has(addr >>> 0);
  }

  /** Re-dumps now (blocking); calls onChange when the list changed. Throws SysError, keeping the old list. */
  refresh(): void {
    this.#load(true);
  }

  #load(notify: boolean): void {
    const next = dumpAddresses(this.#sock);
    this.#last = Date.now();
    const changed = next.length !== this.#addrs.length || next.some((a, i) => {
      const b = this.#addrs[i];
      return a.addr !== b.addr || a.ifindex !== b.ifindex || a.prefixLen !== b.prefixLen || a.ifname !== b.ifname;
    });
    if (!changed) return;
    this.#addrs = next;
    this.#set = new Set(next.map((a) => a.addr));
    if (notify) this.#o.onChange?.(next);
  }

  /** What went wrong since the last call, as one log line, or null. */
  problems(): string | null {
    return nlProblems('addresses', this.stats, this.#reported);
  }

  /** Unsubscribes and closes both sockets. */
  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#mon?.close();
    this.#sock.close();
  }

  #dirty(): void {
    if (this.#timer || this.#closed) return;
    this.#schedule(Math.max(0, this.#last + (this.#o.minIntervalMs ?? 50) - Date.now()));
  }

  #schedule(ms: number): void {
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (this.#closed) return;
      try {
        this.refresh();
      } catch (e) {
        this.stats.errors++;
        this.stats.lastError = (e as Error).message;
        if (!this.#timer) this.#schedule(this.#o.retryMs ?? 1000);
      }
    }, ms);
    this.#timer.unref();
  }
}
