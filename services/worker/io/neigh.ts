// The director's L2 view over rtnetlink (through koffi): own MACs per interface, next-hop MACs from the
// kernel neighbour table kept current by an RTNLGRP_NEIGH subscription, probes for missing entries, and
// ARP frames (gratuitous ARP for a VIP).
import { C, SysError, bind, check, close, errno, raw, socket, uvPoll, type UvPollHandle } from './libc.ts';

const NETLINK_ROUTE = 0;
const RTMGRP_LINK = 1;
const RTMGRP_NEIGH = 4;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;
const RTM_GETLINK = 18;
const RTM_NEWNEIGH = 28;
const RTM_DELNEIGH = 29;
const RTM_GETNEIGH = 30;
const NLM_F_REQUEST = 1;
const NLM_F_ACK = 4;
const NLM_F_DUMP = 0x300;
const NLM_F_REPLACE = 0x100;
const NLM_F_CREATE = 0x400;
const IFLA_ADDRESS = 1;
const IFLA_IFNAME = 3;
const NDA_DST = 1;
const NDA_LLADDR = 2;
const NTF_USE = 0x01;

/** Neighbour states (NUD_*). */
export const Nud = {
  INCOMPLETE: 0x01, REACHABLE: 0x02, STALE: 0x04, DELAY: 0x08, PROBE: 0x10, FAILED: 0x20, NOARP: 0x40, PERMANENT: 0x80,
} as const;
/** States whose link-layer address may be used to forward. */
export const NUD_USABLE = Nud.REACHABLE | Nud.STALE | Nud.DELAY | Nud.PROBE | Nud.PERMANENT | Nud.NOARP;

/** One interface as RTM_GETLINK reports it. */
export interface LinkInfo {
  ifindex: number;
  ifname: string;
  /** Own hardware address (6 bytes for Ethernet; empty for interfaces without one). */
  mac: Uint8Array;
}

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
  private readonly fd: number;
  private mon = -1;
  private poller: UvPollHandle | null = null;
  private seq = 1;
  private readonly buf = new Uint8Array(64 * 1024);
  private readonly neigh = new Map<number, Uint8Array>();
  private readonly links = new Map<number, LinkInfo>();
  private onChange: ((ifindex: number, ip: number, mac: Uint8Array | null) => void) | null = null;

  private constructor() {
    this.fd = socket(C.AF_NETLINK, C.SOCK_RAW | C.SOCK_CLOEXEC, NETLINK_ROUTE, 'socket(AF_NETLINK, NETLINK_ROUTE)');
    bind(this.fd, sockaddrNl(0), 'bind(netlink)');
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
    this.request(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, linkMsg(), 'RTM_GETLINK dump');
    this.request(RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, neighMsg(0, 0, 0), 'RTM_GETNEIGH dump');
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
   * gone or unusable). Idempotent.
   */
  watch(cb?: (ifindex: number, ip: number, mac: Uint8Array | null) => void): void {
    if (cb) this.onChange = cb;
    if (this.mon >= 0) return;
    this.mon = socket(C.AF_NETLINK, C.SOCK_RAW | C.SOCK_CLOEXEC | C.SOCK_NONBLOCK, NETLINK_ROUTE, 'socket(netlink monitor)');
    bind(this.mon, sockaddrNl(RTMGRP_NEIGH | RTMGRP_LINK), 'bind(netlink monitor, RTNLGRP_NEIGH|RTNLGRP_LINK)');
    this.poller = uvPoll(this.mon, { readable: true }, () => {
      for (;;) {
        const n = raw.recv(this.mon, this.buf, this.buf.byteLength, 0);
        if (n <= 0) break;
        this.parse(n, -1);
      }
    });
  }

  /**
   * Asks the kernel to resolve `ip` on `ifindex` without sending any IP packet: RTM_NEWNEIGH with NTF_USE
   * creates the entry if needed and starts ARP resolution. The answer arrives through `watch()`.
   * Throws SysError when the kernel refuses (e.g. unknown interface).
   */
  probe(ifindex: number, ip: number): void {
    this.request(RTM_NEWNEIGH, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE, neighMsg(ifindex, ip, NTF_USE), 'RTM_NEWNEIGH NTF_USE (probe)');
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
    throw new Error(`neighbour ${ipToString(ip)} on ifindex ${ifindex} unresolved after ${timeoutMs} ms`);
  }

  /** Closes both netlink sockets. */
  close(): void {
    if (this.poller) this.poller.close();
    this.poller = null;
    close(this.mon);
    this.mon = -1;
    close(this.fd);
  }

  private request(type: number, flags: number, body: Uint8Array, what: string): void {
    const seq = this.seq++;
    const msg = new Uint8Array(16 + body.byteLength);
    const dv = new DataView(msg.buffer);
    dv.setUint32(0, msg.byteLength, true);
    dv.setUint16(4, type, true);
    dv.setUint16(6, flags, true);
    dv.setUint32(8, seq, true);
    msg.set(body, 16);
    check(raw.send(this.fd, msg, msg.byteLength, 0), `send(${what})`);
    for (;;) {
      const n = raw.recv(this.fd, this.buf, this.buf.byteLength, 0);
      if (n < 0) {
        if (errno() === C.EINTR) continue;
        throw new SysError(`recv(${what})`, errno());
      }
      const r = this.parse(n, seq);
      if (r === 'done') return;
      if (r !== 'more') throw new SysError(what, r);
    }
  }

  /** Parses `n` bytes of netlink messages; returns 'done' at NLMSG_DONE/ack for `seq`, an errno on error. */
  private parse(n: number, seq: number): 'done' | 'more' | number {
    const dv = new DataView(this.buf.buffer, 0, n);
    let off = 0;
    while (off + 16 <= n) {
      const len = dv.getUint32(off, true);
      const type = dv.getUint16(off + 4, true);
      const mseq = dv.getUint32(off + 8, true);
      if (len < 16 || off + len > n) break;
      if (type === NLMSG_DONE && mseq === seq) return 'done';
      if (type === NLMSG_ERROR && mseq === seq) {
        const e = -dv.getInt32(off + 16, true);
        return e === 0 ? 'done' : e;
      }
      if (type === RTM_NEWLINK || type === RTM_DELLINK) this.onLink(dv, off + 16, off + len, type === RTM_DELLINK);
      else if (type === RTM_NEWNEIGH || type === RTM_DELNEIGH) this.onNeigh(dv, off + 16, off + len, type === RTM_DELNEIGH);
      off += (len + 3) & ~3;
    }
    return 'more';
  }

  private onLink(dv: DataView, p: number, end: number, del: boolean): void {
    const ifindex = dv.getInt32(p + 4, true);
    if (del) {
      this.links.delete(ifindex);
      return;
    }
    let ifname = '';
    let mac = new Uint8Array(0);
    for (let a = p + 16; a + 4 <= end;) {
      const alen = dv.getUint16(a, true);
      const atype = dv.getUint16(a + 2, true) & 0x3fff;
      if (alen < 4) break;
      if (atype === IFLA_ADDRESS) mac = this.buf.slice(a + 4, a + alen);
      else if (atype === IFLA_IFNAME) ifname = new TextDecoder().decode(this.buf.subarray(a + 4, a + alen - 1));
      a += (alen + 3) & ~3;
    }
    this.links.set(ifindex, { ifindex, ifname, mac });
  }

  private onNeigh(dv: DataView, p: number, end: number, del: boolean): void {
    if (dv.getUint8(p) !== C.AF_INET) return;
    const ifindex = dv.getInt32(p + 4, true);
    const state = dv.getUint16(p + 8, true);
    let ip = -1;
    let mac: Uint8Array | null = null;
    for (let a = p + 12; a + 4 <= end;) {
      const alen = dv.getUint16(a, true);
      const atype = dv.getUint16(a + 2, true) & 0x3fff;
      if (alen < 4) break;
      if (atype === NDA_DST && alen === 8) ip = dv.getUint32(a + 4, false);
      else if (atype === NDA_LLADDR && alen >= 10) mac = this.buf.slice(a + 4, a + 10);
      a += (alen + 3) & ~3;
    }
    if (ip < 0) return;
    const k = key(ifindex, ip);
    const usable = !del && mac !== null && (state & NUD_USABLE) !== 0;
    if (usable) this.neigh.set(k, mac as Uint8Array);
    else this.neigh.delete(k);
    if (this.onChange) this.onChange(ifindex, ip, usable ? mac : null);
  }
}

function sockaddrNl(groups: number): Uint8Array {
  const a = new Uint8Array(12);
  const dv = new DataView(a.buffer);
  dv.setUint16(0, C.AF_NETLINK, true);
  dv.setUint32(8, groups, true);
  return a;
}

function linkMsg(): Uint8Array {
  return new Uint8Array(16);
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

/** Host-order u32 to dotted quad. */
export function ipToString(ip: number): string {
  return `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
}

/** ARP opcodes. */
export const ArpOp = { REQUEST: 1, REPLY: 2 } as const;

/**
 * Writes a 42-byte Ethernet ARP frame into `out` at `off` (returns 42): Ethernet dst `ethDst`, src
 * `senderMac`; ARP `op`, sender (senderMac, senderIp), target (targetMac, targetIp). IPs host-order u32.
 */
export function writeArp(out: Uint8Array, off: number, op: number, ethDst: Uint8Array, senderMac: Uint8Array, senderIp: number, targetMac: Uint8Array, targetIp: number): number {
  const dv = new DataView(out.buffer, out.byteOffset + off, 42);
  out.set(ethDst.subarray(0, 6), off);
  out.set(senderMac.subarray(0, 6), off + 6);
  dv.setUint16(12, C.ETH_P_ARP);
  dv.setUint16(14, 1); // htype Ethernet
  dv.setUint16(16, C.ETH_P_IP);
  dv.setUint8(18, 6);
  dv.setUint8(19, 4);
  dv.setUint16(20, op);
  out.set(senderMac.subarray(0, 6), off + 22);
  dv.setUint32(28, senderIp);
  out.set(targetMac.subarray(0, 6), off + 32);
  dv.setUint32(38, targetIp);
  return 42;
}

const BROADCAST = new Uint8Array([255, 255, 255, 255, 255, 255]);
const ZERO_MAC = new Uint8Array(6);

/** A gratuitous ARP request announcing `vip` at `mac` (broadcast, sender = target = vip). */
export function gratuitousArp(mac: Uint8Array, vip: number): Uint8Array {
  const f = new Uint8Array(42);
  writeArp(f, 0, ArpOp.REQUEST, BROADCAST, mac, vip, ZERO_MAC, vip);
  return f;
}

/** A broadcast ARP request "who has `targetIp` tell `senderIp`". */
export function arpRequest(mac: Uint8Array, senderIp: number, targetIp: number): Uint8Array {
  const f = new Uint8Array(42);
  writeArp(f, 0, ArpOp.REQUEST, BROADCAST, mac, senderIp, ZERO_MAC, targetIp);
  return f;
}
