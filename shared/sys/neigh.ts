// The director's L2 view over rtnetlink (through koffi): own MACs per interface, next-hop MACs from the
// kernel neighbour table kept current by an RTNLGRP_NEIGH subscription, and probes for missing entries.
// (ARP frames are sent by shared/sys/arp.ts.)
import { ipv4ToText } from '../net/addr.ts';
import { C, SysError } from './libc.ts';
import { RtnlMonitor, RtnlSocket } from './rtnl.ts';
import {
  NlmF, Rtm, RtmGrp, familyBody, nlStats, parseLinkMsg, parseNeighMsg, type LinkInfo, type NeighMsg, type NlStats,
} from './rtnl-codec.ts';

export type { LinkInfo } from './rtnl-codec.ts';

const NDA_DST = 1;
const NTF_USE = 0x01;

/** Neighbour states (NUD_*). */
export const Nud = {
  INCOMPLETE: 0x01, REACHABLE: 0x02, STALE: 0x04, DELAY: 0x08, PROBE: 0x10, FAILED: 0x20, NOARP: 0x40, PERMANENT: 0x80,
} as const;
/** States whose link-layer address may be used to forward. */
export const NUD_USABLE = Nud.REACHABLE | Nud.STALE | Nud.DELAY | Nud.PROBE | Nud.PERMANENT | Nud.NOARP;

function key(ifindex: number, ip: number): number {
  return ifindex * 0x1_0000_0000 + ip;
}

/** Formats a MAC as aa:bb:cc:dd:ee:ff. */
export function macToString(m: Uint8Array): string {
  return Array.from(m, (b) => b.toString(16).padStart(2, '0')).join(':');
}

/**
 * The neighbour table of the current network namespace. `open()` dumps links and IPv4 neighbours;
 * `watch()` subscribes to link and neighbour changes (RTNLGRP_LINK, RTNLGRP_NEIGH) from the event loop.
 * Dumps and probes use a blocking netlink socket (a round trip to the kernel, at setup or on a miss).
 */
export class NeighTable {
  /** Malformed messages skipped, monitor overruns, failed requests (for rate-limited logging by the owner). */
  readonly stats: NlStats = nlStats();
  private readonly sock: RtnlSocket;
  private mon: RtnlMonitor | null = null;
  private readonly neigh = new Map<number, Uint8Array>();
  private readonly links = new Map<number, LinkInfo>();
  private readonly nm: NeighMsg = { family: 0, ifindex: 0, state: 0, ip: -1, mac: null };
  private onChange: ((ifindex: number, ip: number, mac: Uint8Array | null) => void) | null = null;
  private readonly onMsg = (type: number, _flags: number, dv: DataView, p: number, end: number): boolean => {
    if (type === Rtm.NEWLINK || type === Rtm.DELLINK) return this.onLink(dv, p, end, type === Rtm.DELLINK);
    if (type === Rtm.NEWNEIGH || type === Rtm.DELNEIGH) return this.onNeigh(dv, p, end, type === Rtm.DELNEIGH);
    return true;
  };

  private constructor() {
    this.sock = new RtnlSocket(this.stats);
  }

  /** Opens the table and loads links and neighbours. Throws SysError on netlink failure. */
  static open(): NeighTable {
    const t = new NeighTable();
    try {
      t.refresh();
    } catch (e) {
      t.close();
      throw e;
    }
    return t;
  }

  /** Re-dumps links and IPv4 neighbours (RTM_GETLINK, RTM_GETNEIGH). */
  refresh(): void {
    this.links.clear();
    this.neigh.clear();
    this.sock.dump(Rtm.GETLINK, familyBody(Rtm.GETLINK, 0), 'RTM_GETLINK dump', this.onMsg);
    this.sock.dump(Rtm.GETNEIGH, neighMsg(0, 0, 0), 'RTM_GETNEIGH dump', this.onMsg);
  }

  /** All links by ifindex. */
  linkList(): LinkInfo[] {
    return [...this.links.values()];
  }

  /** The interface's own MAC (by index or name), or null when unknown. */
  ownMac(iface: number | string): Uint8Array | null {
    if (typeof iface === 'number') return this.links.get(iface)?.mac ?? null;
    for (const l of this.links.values()) if (l.ifname === iface) return l.mac;
    return null;
  }

  /** The ifindex of an interface name, or -1. */
  ifindexOf(ifname: string): number {
    for (const l of this.links.values()) if (l.ifname === ifname) return l.ifindex;
    return -1;
  }

  /** The next hop's MAC for IPv4 `ip` (host-order u32) on `ifindex`, when the entry is usable; else null. */
  lookup(ifindex: number, ip: number): Uint8Array | null {
    return this.neigh.get(key(ifindex, ip)) ?? null;
  }

  /**
   * Subscribes to neighbour and link updates; `cb` (optional) hears every neighbour change (mac null =
   * gone or unusable). Idempotent. When the kernel drops events (monitor overrun) the table is dumped again.
   */
  watch(cb?: (ifindex: number, ip: number, mac: Uint8Array | null) => void): void {
    if (cb) this.onChange = cb;
    if (this.mon) return;
    this.mon = new RtnlMonitor(RtmGrp.NEIGH | RtmGrp.LINK, 'RTNLGRP_NEIGH|RTNLGRP_LINK', this.onMsg, () => this.refresh(), this.stats);
  }

  /**
   * Asks the kernel to resolve `ip` on `ifindex` without sending any IP packet: RTM_NEWNEIGH with NTF_USE
   * creates the entry if needed and starts ARP resolution. The answer arrives through `watch()`.
   * Throws SysError when the kernel refuses (e.g. unknown interface).
   */
  probe(ifindex: number, ip: number): void {
    this.sock.request(Rtm.NEWNEIGH, NlmF.REQUEST | NlmF.ACK | NlmF.CREATE | NlmF.REPLACE, neighMsg(ifindex, ip, NTF_USE), 'RTM_NEWNEIGH NTF_USE (probe)', this.onMsg);
  }

  /**
   * Resolves `ip` on `ifindex`: the cached MAC, or probe and wait up to `timeoutMs` for the kernel to learn
   * it (requires `watch()`; started here if needed). Rejects with Error("neighbour ... unresolved") on timeout.
   */
  async resolve(ifindex: number, ip: number, timeoutMs = 1000): Promise<Uint8Array> {
    const have = this.lookup(ifindex, ip);
    if (have) return have;
    this.watch();
    this.probe(ifindex, ip);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
      const m = this.lookup(ifindex, ip);
      if (m) return m;
    }
    throw new SysError(`resolve neighbour ${ipv4ToText(ip)} on ifindex ${ifindex}`, 'ETIMEDOUT', `unresolved after ${timeoutMs} ms`);
  }

  /** Closes both netlink sockets. */
  close(): void {
    this.mon?.close();
    this.mon = null;
    this.sock.close();
  }

  private onLink(dv: DataView, p: number, end: number, del: boolean): boolean {
    const l = parseLinkMsg(dv, p, end);
    if (l === null) return false;
    if (del) this.links.delete(l.ifindex);
    else this.links.set(l.ifindex, l);
    return true;
  }

  private onNeigh(dv: DataView, p: number, end: number, del: boolean): boolean {
    const m = this.nm;
    if (!parseNeighMsg(dv, p, end, m)) return false;
    if (m.family !== C.AF_INET || m.ip < 0) return true;
    const k = key(m.ifindex, m.ip);
    const usable = !del && m.mac !== null && (m.state & NUD_USABLE) !== 0;
    if (usable) this.neigh.set(k, m.mac as Uint8Array);
    else this.neigh.delete(k);
    if (this.onChange) this.onChange(m.ifindex, m.ip, usable ? m.mac : null);
    return true;
  }
}

function neighMsg(ifindex: number, ip: number, ntf: number): Uint8Array {
  const withDst = ifindex !== 0;
  const b = new Uint8Array(12 + (withDst ? 8 : 0));
  const dv = new DataView(b.buffer);
  dv.setUint8(0, C.AF_INET);
  dv.setInt32(4, ifindex, true);
  dv.setUint8(10, ntf);
  if (withDst) {
    dv.setUint16(12, 8, true);
    dv.setUint16(14, NDA_DST, true);
    dv.setUint32(16, ip, false);
  }
  return b;
}
