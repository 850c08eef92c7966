// rtnetlink messages without sockets: the nlmsghdr walk, attribute tables, request framing, and the link,
// neighbour, route and address bodies the worker reads. Pure (no koffi), so the parsers run in unit tests on
// hand-built bytes. Every reader checks a length before it reads; a malformed message is counted, never thrown.

export const AF_INET = 2;

/** Control message types (NLMSG_*). */
export const Nlmsg = { NOOP: 1, ERROR: 2, DONE: 3, OVERRUN: 4 } as const;
/** nlmsghdr flags (NLM_F_*). */
export const NlmF = { REQUEST: 0x1, MULTI: 0x2, ACK: 0x4, DUMP_INTR: 0x10, REPLACE: 0x100, DUMP: 0x300, CREATE: 0x400 } as const;
/** rtnetlink message types (RTM_*). */
export const Rtm = {
  NEWLINK: 16, DELLINK: 17, GETLINK: 18, NEWADDR: 20, DELADDR: 21, GETADDR: 22,
  NEWROUTE: 24, DELROUTE: 25, GETROUTE: 26, NEWNEIGH: 28, DELNEIGH: 29, GETNEIGH: 30,
} as const;
/** Multicast group bits for bind(2) (the legacy RTMGRP_* masks of RTNLGRP_LINK, _NEIGH, _IPV4_IFADDR, _IPV4_ROUTE). */
export const RtmGrp = { LINK: 0x1, NEIGH: 0x4, IPV4_IFADDR: 0x10, IPV4_ROUTE: 0x40 } as const;
/** Route table ids, types and flags (RT_TABLE_*, RTN_*, RTM_F_*). */
export const RtTable = { COMPAT: 252, DEFAULT: 253, MAIN: 254, LOCAL: 255 } as const;
export const Rtn = { UNICAST: 1, LOCAL: 2, BROADCAST: 3, BLACKHOLE: 6 } as const;
export const RTM_F_CLONED = 0x200;

export const NLMSG_HDRLEN = 16;
const RTMSG_LEN = 12;
const IFADDRMSG_LEN = 8;
const IFINFOMSG_LEN = 16;
const NDMSG_LEN = 12;
const RTNH_LEN = 8;

const IFLA_ADDRESS = 1;
const IFLA_IFNAME = 3;
const NDA_DST = 1;
const NDA_LLADDR = 2;
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const IFA_CACHEINFO = 6;
const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const RTA_PRIORITY = 6;
const RTA_MULTIPATH = 9;
const RTA_TABLE = 15;

/**
 * One message of a datagram: its type and flags, a view over the datagram, where its body starts (after the
 * nlmsghdr) and where the message ends. Returns false when the body is malformed (the walker counts it);
 * messages the reader does not care about return true. A throw is caught and counted the same way.
 */
export type NlHandler = (type: number, flags: number, dv: DataView, body: number, end: number) => boolean;

/** What a netlink reader skipped or lost, for rate-limited logging by the owner. */
export interface NlStats {
  /** Messages seen (control messages included). */
  messages: number;
  /** Malformed or truncated messages skipped. */
  bad: number;
  /** The last one, described. */
  lastBad: string;
  /** ENOBUFS on a monitor socket: events were lost and the owner resynchronised by dumping. */
  overruns: number;
  /** Failed requests or dumps (the previous state was kept). */
  errors: number;
  lastError: string;
}

export function nlStats(): NlStats {
  return { messages: 0, bad: 0, lastBad: '', overruns: 0, errors: 0, lastError: '' };
}

/**
 * One line saying what went wrong since `before` (a copy the caller keeps; updated here), or null when
 * nothing did. `what` names the reader, e.g. "routes".
 */
export function nlProblems(what: string, now: NlStats, before: NlStats): string | null {
  const bad = now.bad - before.bad;
  const over = now.overruns - before.overruns;
  const err = now.errors - before.errors;
  Object.assign(before, now);
  if (bad === 0 && over === 0 && err === 0) return null;
  const parts: string[] = [];
  if (bad) parts.push(`${bad} malformed message(s) skipped (last: ${now.lastBad})`);
  if (over) parts.push(`${over} monitor overrun(s), resynchronised`);
  if (err) parts.push(`${err} failed request(s) (last: ${now.lastError})`);
  return `rtnetlink ${what}: ${parts.join('; ')}`;
}

function bad(stats: NlStats, what: string): void {
  stats.bad++;
  stats.lastBad = what;
}

/**
 * Walks the `n` bytes of one received datagram (at the start of `dv`). Control messages answer the request
 * `seq` (-1: none, a monitor socket): NLMSG_DONE or an ack ends it ('done'), an error reply returns its errno.
 * Every other message goes to `onMsg`. A header whose length is impossible ends the walk (the rest of the
 * datagram cannot be framed) and counts as one bad message. Never throws.
 */
export function walkMessages(dv: DataView, n: number, seq: number, onMsg: NlHandler, stats: NlStats): 'done' | 'more' | number {
  let off = 0;
  while (off + NLMSG_HDRLEN <= n) {
    const len = dv.getUint32(off, true);
    const type = dv.getUint16(off + 4, true);
    if (len < NLMSG_HDRLEN || len > n - off) {
      bad(stats, `nlmsg type ${type}: length ${len}, ${n - off} byte(s) left in the datagram`);
      return 'more';
    }
    const flags = dv.getUint16(off + 6, true);
    const mseq = dv.getUint32(off + 8, true);
    stats.messages++;
    if (type === Nlmsg.DONE) {
      if (mseq === seq) return 'done';
    } else if (type === Nlmsg.ERROR) {
      if (len < NLMSG_HDRLEN + 4) bad(stats, `NLMSG_ERROR of ${len} bytes`);
      else if (mseq === seq) {
        const e = -dv.getInt32(off + NLMSG_HDRLEN, true);
        return e === 0 ? 'done' : e;
      }
    } else if (type !== Nlmsg.NOOP && type !== Nlmsg.OVERRUN) {
      let ok = false;
      try {
        ok = onMsg(type, flags, dv, off + NLMSG_HDRLEN, off + len);
      } catch {
        ok = false;
      }
      if (!ok) bad(stats, `message type ${type}, ${len} bytes`);
    }
    off += (len + 3) & ~3;
  }
  if (off < n) bad(stats, `${n - off} trailing byte(s) after the last message`);
  return 'more';
}

/**
 * Indexes the attributes in [from, end): tb[type] = offset of the attribute's header, -1 when absent (a
 * repeated type keeps the last). Types ≥ tb.length are ignored; the NESTED/BYTEORDER bits are masked off.
 * Returns false when an attribute's length is below 4 or runs past `end` (the message is malformed).
 */
export function parseAttrs(dv: DataView, from: number, end: number, tb: Int32Array): boolean {
  tb.fill(-1);
  let a = from;
  while (a + 4 <= end) {
    const alen = dv.getUint16(a, true);
    if (alen < 4 || alen > end - a) return false;
    const t = dv.getUint16(a + 2, true) & 0x3fff;
    if (t < tb.length) tb[t] = a;
    a += (alen + 3) & ~3;
  }
  return true;
}

/** Payload length of the attribute whose header is at `at`. */
export function attrLen(dv: DataView, at: number): number {
  return dv.getUint16(at, true) - 4;
}

/** Reads a 4-byte attribute (u32 native order, or an IPv4 address big-endian → host-order u32); -1 when absent, -2 when not 4 bytes. */
function attr4(dv: DataView, tb: Int32Array, type: number, bigEndian: boolean): number {
  const at = tb[type];
  if (at < 0) return -1;
  if (attrLen(dv, at) !== 4) return -2;
  return dv.getUint32(at + 4, !bigEndian);
}

/** Frames a request: nlmsghdr (type, flags, seq, pid 0) followed by `body`. */
export function nlRequest(type: number, flags: number, seq: number, body: Uint8Array): Uint8Array {
  const msg = new Uint8Array(NLMSG_HDRLEN + body.byteLength);
  const dv = new DataView(msg.buffer);
  dv.setUint32(0, msg.byteLength, true);
  dv.setUint16(4, type, true);
  dv.setUint16(6, flags, true);
  dv.setUint32(8, seq, true);
  msg.set(body, NLMSG_HDRLEN);
  return msg;
}

/** A dump request body for RTM_GETROUTE (rtmsg) or RTM_GETADDR (ifaddrmsg) of one address family. */
export function familyBody(type: number, family: number): Uint8Array {
  const b = new Uint8Array(type === Rtm.GETROUTE ? RTMSG_LEN : type === Rtm.GETADDR ? IFADDRMSG_LEN : IFINFOMSG_LEN);
  b[0] = family;
  return b;
}

// ---- links and neighbours ----

/** One interface as RTM_NEWLINK reports it. */
export interface LinkInfo {
  ifindex: number;
  ifname: string;
  /** Own hardware address (6 bytes for Ethernet; empty for interfaces without one). */
  mac: Uint8Array;
}

const LINK_TB = new Int32Array(IFLA_IFNAME + 1);
const NEIGH_TB = new Int32Array(NDA_LLADDR + 1);
const decoder = new TextDecoder();

/** Parses an RTM_NEWLINK/RTM_DELLINK body; null when malformed. Allocates (names, MACs): control path only. */
export function parseLinkMsg(dv: DataView, p: number, end: number): LinkInfo | null {
  if (end - p < IFINFOMSG_LEN || !parseAttrs(dv, p + IFINFOMSG_LEN, end, LINK_TB)) return null;
  const ifindex = dv.getInt32(p + 4, true);
  const u8 = new Uint8Array(dv.buffer, dv.byteOffset, dv.byteLength);
  const ma = LINK_TB[IFLA_ADDRESS];
  const mac = ma < 0 ? new Uint8Array(0) : u8.slice(ma + 4, ma + 4 + attrLen(dv, ma));
  const na = LINK_TB[IFLA_IFNAME];
  let ifname = '';
  if (na >= 0) {
    const s = u8.subarray(na + 4, na + 4 + attrLen(dv, na));
    const nul = s.indexOf(0);
    ifname = decoder.decode(nul < 0 ? s : s.subarray(0, nul));
  }
  return { ifindex, ifname, mac };
}

/** An RTM_NEWNEIGH/RTM_DELNEIGH body: family, interface, NUD state, IPv4 destination (-1 absent), MAC (6 bytes, null absent). */
export interface NeighMsg {
  family: number;
  ifindex: number;
  state: number;
  ip: number;
  mac: Uint8Array | null;
}

/** Parses a neighbour body into `out` (the MAC is a copy); false when malformed. Non-IPv4 families leave ip -1. */
export function parseNeighMsg(dv: DataView, p: number, end: number, out: NeighMsg): boolean {
  if (end - p < NDMSG_LEN || !parseAttrs(dv, p + NDMSG_LEN, end, NEIGH_TB)) return false;
  out.family = dv.getUint8(p);
  out.ifindex = dv.getInt32(p + 4, true);
  out.state = dv.getUint16(p + 8, true);
  out.ip = -1;
  out.mac = null;
  if (out.family !== AF_INET) return true;
  const d = NEIGH_TB[NDA_DST];
  if (d >= 0 && attrLen(dv, d) === 4) out.ip = dv.getUint32(d + 4, false);
  const l = NEIGH_TB[NDA_LLADDR];
  if (l >= 0 && attrLen(dv, l) >= 6) out.mac = new Uint8Array(dv.buffer, dv.byteOffset + l + 4, 6).slice();
  return true;
}

// ---- routes and addresses ----

/** An RTM_NEWROUTE/RTM_DELROUTE body, IPv4. Addresses are host-order u32. */
export interface RouteMsg {
  family: number;
  /** Prefix length of the destination (0 = default). */
  dstLen: number;
  /** Table id: RTA_TABLE when present (ids above 255), else rtm_table. */
  table: number;
  /** RTN_* (unicast, local, broadcast, blackhole, ...). */
  type: number;
  /** rtm_flags (RTM_F_CLONED, ...). */
  flags: number;
  /** Destination prefix (0 when absent: the default route). */
  dst: number;
  /** Egress interface: RTA_OIF, or the first nexthop's of a multipath route; 0 when none. */
  ifindex: number;
  /** Gateway: RTA_GATEWAY, or the first nexthop's; 0 = on-link. */
  gateway: number;
  /** RTA_PRIORITY (the metric), 0 when absent. */
  priority: number;
  /** Nexthops in RTA_MULTIPATH (0 for a single-path route). */
  nexthops: number;
}

export function routeMsg(): RouteMsg {
  return { family: 0, dstLen: 0, table: 0, type: 0, flags: 0, dst: 0, ifindex: 0, gateway: 0, priority: 0, nexthops: 0 };
}

const ROUTE_TB = new Int32Array(RTA_TABLE + 1);
const NH_TB = new Int32Array(RTA_GATEWAY + 1);

/**
 * Parses a route body into `out`; false when malformed (short rtmsg, attributes past the end, an IPv4
 * address attribute that is not 4 bytes, a bad RTA_MULTIPATH). Non-IPv4 families return true with only
 * `family` set. A multipath route reports its first nexthop.
 */
export function parseRouteMsg(dv: DataView, p: number, end: number, out: RouteMsg): boolean {
  if (end - p < RTMSG_LEN || !parseAttrs(dv, p + RTMSG_LEN, end, ROUTE_TB)) return false;
  out.family = dv.getUint8(p);
  out.dstLen = dv.getUint8(p + 1);
  out.table = dv.getUint8(p + 4);
  out.type = dv.getUint8(p + 7);
  out.flags = dv.getUint32(p + 8, true);
  out.dst = 0;
  out.ifindex = 0;
  out.gateway = 0;
  out.priority = 0;
  out.nexthops = 0;
  if (out.family !== AF_INET) return true;
  if (out.dstLen > 32) return false;
  const table = attr4(dv, ROUTE_TB, RTA_TABLE, false);
  const dst = attr4(dv, ROUTE_TB, RTA_DST, true);
  const oif = attr4(dv, ROUTE_TB, RTA_OIF, false);
  const gw = attr4(dv, ROUTE_TB, RTA_GATEWAY, true);
  const prio = attr4(dv, ROUTE_TB, RTA_PRIORITY, false);
  if (table === -2 || dst === -2 || oif === -2 || gw === -2 || prio === -2) return false;
  if (table >= 0) out.table = table;
  if (dst >= 0) out.dst = dst;
  if (oif >= 0) out.ifindex = oif;
  if (gw >= 0) out.gateway = gw;
  if (prio >= 0) out.priority = prio;
  const mp = ROUTE_TB[RTA_MULTIPATH];
  if (mp >= 0) {
    const mend = mp + 4 + attrLen(dv, mp);
    for (let h = mp + 4; h + RTNH_LEN <= mend;) {
      const hlen = dv.getUint16(h, true);
      if (hlen < RTNH_LEN || hlen > mend - h) return false;
      if (out.nexthops === 0) {
        if (!parseAttrs(dv, h + RTNH_LEN, h + hlen, NH_TB)) return false;
        const hgw = attr4(dv, NH_TB, RTA_GATEWAY, true);
        if (hgw === -2) return false;
        out.ifindex = dv.getInt32(h + 4, true);
        out.gateway = hgw >= 0 ? hgw : 0;
      }
      out.nexthops++;
      h += (hlen + 3) & ~3;
    }
  }
  return true;
}

/** An RTM_NEWADDR/RTM_DELADDR body, IPv4. */
export interface AddrMsg {
  family: number;
  prefixLen: number;
  ifindex: number;
  /** The interface's own address: IFA_LOCAL, else IFA_ADDRESS (they differ on point-to-point links). */
  local: number;
}

export function addrMsg(): AddrMsg {
  return { family: 0, prefixLen: 0, ifindex: 0, local: 0 };
}

const ADDR_TB = new Int32Array(IFA_LOCAL + 1);

/** Parses an address body into `out`; false when malformed or an IPv4 message carries no 4-byte address. */
export function parseAddrMsg(dv: DataView, p: number, end: number, out: AddrMsg): boolean {
  if (end - p < IFADDRMSG_LEN || !parseAttrs(dv, p + IFADDRMSG_LEN, end, ADDR_TB)) return false;
  out.family = dv.getUint8(p);
  out.prefixLen = dv.getUint8(p + 1);
  out.ifindex = dv.getUint32(p + 4, true);
  out.local = 0;
  if (out.family !== AF_INET) return true;
  const local = attr4(dv, ADDR_TB, IFA_LOCAL, true);
  const address = attr4(dv, ADDR_TB, IFA_ADDRESS, true);
  if (local === -2 || address === -2 || (local < 0 && address < 0) || out.prefixLen > 32) return false;
  out.local = local >= 0 ? local : address;
  return true;
}

/** IFF_UP of ifinfomsg.ifi_flags. */
export const IFF_UP = 0x1;

/**
 * An RTM_NEWLINK/RTM_DELLINK request body (ifinfomsg): interface `ifindex`, `flags` applied under the `change`
 * mask (e.g. IFF_UP, IFF_UP to bring a link up).
 */
export function linkBody(ifindex: number, flags = 0, change = 0): Uint8Array {
  const b = new Uint8Array(IFINFOMSG_LEN);
  const dv = new DataView(b.buffer);
  dv.setInt32(4, ifindex, true);
  dv.setUint32(8, flags, true);
  dv.setUint32(12, change, true);
  return b;
}

/** ifa_cacheinfo's "forever" lifetime. */
export const IFA_INFINITY_LIFE = 0xffffffff;

/**
 * An RTM_NEWADDR/RTM_DELADDR request body (ifaddrmsg + IFA_LOCAL + IFA_ADDRESS, and IFA_CACHEINFO when
 * `lifetimeS` is given): IPv4 `addr` (host-order u32) / `prefixLen` on interface `ifindex`, scope global — what
 * `ip addr replace ADDR/LEN dev IF [valid_lft S preferred_lft S]` sends.
 */
export function addrBody(ifindex: number, addr: number, prefixLen: number, lifetimeS?: number): Uint8Array {
  const withLft = lifetimeS !== undefined;
  const b = new Uint8Array(IFADDRMSG_LEN + 8 + 8 + (withLft ? 4 + 16 : 0));
  const dv = new DataView(b.buffer);
  b[0] = AF_INET;
  b[1] = prefixLen;
  dv.setUint32(4, ifindex, true);
  let p = IFADDRMSG_LEN;
  for (const type of [IFA_LOCAL, IFA_ADDRESS]) {
    dv.setUint16(p, 8, true);
    dv.setUint16(p + 2, type, true);
    dv.setUint32(p + 4, addr >>> 0, false);
    p += 8;
  }
  if (withLft) {
    dv.setUint16(p, 20, true);
    dv.setUint16(p + 2, IFA_CACHEINFO, true);
    dv.setUint32(p + 4, lifetimeS >>> 0, true); // ifa_prefered
    dv.setUint32(p + 8, lifetimeS >>> 0, true); // ifa_valid
  }
  return b;
}
