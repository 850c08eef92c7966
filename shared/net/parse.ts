// Zero-allocation parser: Ethernet (one optional 802.1Q tag) → IPv4 → TCP/UDP/ICMP/IPIP into a reused meta
// record, every header bounds-checked against the captured length before it is read. Never throws.
import { csumAdd, csumFold } from './checksum.ts';
import { NetVerdict } from './verdict.ts';

/** IP protocol numbers the codecs know. */
export const IpProto = { ICMP: 1, IPIP: 4, TCP: 6, UDP: 17 } as const;

/** Ethertypes the codecs know. */
export const EtherType = { IPV4: 0x0800, ARP: 0x0806, VLAN: 0x8100 } as const;

/** TCP flag bits as they sit in byte 13 of the TCP header. */
export const TcpFlag = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20 } as const;

/** ICMP types that carry an embedded IP header + 8 bytes (RFC 792): unreachable, quench, redirect, time, param. */
export function isIcmpError(type: number): boolean {
  return type === 3 || type === 4 || type === 5 || type === 11 || type === 12;
}

/**
 * What the parser learned about one packet. Create one per worker with `new PacketMeta()` and reuse it: every
 * field is a number (fixed shape, no allocation); parse functions overwrite all of them. Offsets are byte
 * offsets into the caller's buffer; addresses are IPv4 addresses as unsigned 32-bit numbers (1.2.3.4 =
 * 0x01020304); ports are host numbers. Fields past the point where parsing stopped are left at their reset
 * values (-1 for offsets, 0 otherwise).
 */
export class PacketMeta {
  /** Bytes captured (the `len` given to the parser). */
  frameLen = 0;
  /** Offset of the IPv4 header (14, 18 with a VLAN tag; the given `off` for {@link parseIpv4}). */
  l3Off = -1;
  /** 802.1Q TCI of the tag, or -1 when untagged. */
  vlanTci = -1;
  /** Ethertype after any VLAN tag (0 for {@link parseIpv4}). */
  etherType = 0;
  /** IP header length in bytes (20..60). */
  ihl = 0;
  tos = 0;
  /** IP total length in bytes; the packet ends at `l3Off + totalLen` (the capture may carry padding after). */
  totalLen = 0;
  ipId = 0;
  /** Raw 16-bit flags + fragment offset field. */
  fragField = 0;
  ttl = 0;
  proto = 0;
  saddr = 0;
  daddr = 0;
  /** Offset of the L4 header (for IPIP: of the inner IPv4 header). */
  l4Off = -1;
  /** IP payload length in bytes (`totalLen - ihl`). */
  l4Len = 0;
  /** TCP/UDP ports; for ICMP echo request/reply both hold the identifier. */
  sport = 0;
  dport = 0;
  /** TCP flags byte (TcpFlag bits). */
  tcpFlags = 0;
  /** TCP header length in bytes. */
  tcpHdrLen = 0;
  /** Offset of the L4 checksum field (TCP +16, UDP +6, ICMP +2), -1 for others. */
  l4CsumOff = -1;
  icmpType = -1;
  icmpCode = -1;
  /** For ICMP errors: offset of the embedded IPv4 header, else -1. */
  innerOff = -1;
  innerIhl = 0;
  innerProto = 0;
  innerSaddr = 0;
  innerDaddr = 0;
  /** For ICMP errors about TCP/UDP: offset of the embedded L4 header (its first 8 bytes are present), else -1. */
  innerL4Off = -1;
  innerSport = 0;
  innerDport = 0;
}

function reset(m: PacketMeta, len: number): void {
  m.frameLen = len;
  m.l3Off = -1;
  m.vlanTci = -1;
  m.etherType = 0;
  m.ihl = 0;
  m.tos = 0;
  m.totalLen = 0;
  m.ipId = 0;
  m.fragField = 0;
  m.ttl = 0;
  m.proto = 0;
  m.saddr = 0;
  m.daddr = 0;
  m.l4Off = -1;
  m.l4Len = 0;
  m.sport = 0;
  m.dport = 0;
  m.tcpFlags = 0;
  m.tcpHdrLen = 0;
  m.l4CsumOff = -1;
  m.icmpType = -1;
  m.icmpCode = -1;
  m.innerOff = -1;
  m.innerIhl = 0;
  m.innerProto = 0;
  m.innerSaddr = 0;
  m.innerDaddr = 0;
  m.innerL4Off = -1;
  m.innerSport = 0;
  m.innerDport = 0;
}

/**
 * Moves every offset in `m` by `delta` bytes: for a frame copied unchanged to another place (e.g. from a receive
 * ring into a transmit slot), instead of parsing it again. Offsets that are -1 (absent) stay -1.
 */
export function rebaseMeta(m: PacketMeta, delta: number): void {
  if (m.l3Off >= 0) m.l3Off += delta;
  if (m.l4Off >= 0) m.l4Off += delta;
  if (m.l4CsumOff >= 0) m.l4CsumOff += delta;
  if (m.innerOff >= 0) m.innerOff += delta;
  if (m.innerL4Off >= 0) m.innerL4Off += delta;
}

/** Big-endian 16-bit read. The caller has bounds-checked `o + 2 <= length`. */
export function rd16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}

/** Big-endian unsigned 32-bit read. The caller has bounds-checked `o + 4 <= length`. */
export function rd32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

/** Big-endian 16-bit write. */
export function wr16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 8) & 0xff;
  b[o + 1] = v & 0xff;
}

/** Big-endian 32-bit write. */
export function wr32(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 24) & 0xff;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}

/**
 * Parses an Ethernet frame of `len` captured bytes starting at `buf[start]` (default 0: the start of `buf`;
 * a ring hands frames at offsets inside one large buffer) into `m`. Accepts one 802.1Q tag. Offsets in `m`
 * are offsets into `buf`. Returns a {@link NetVerdict} code: OK, or the first problem found (see
 * {@link parseIpv4} for L3/L4). For a non-IPv4 ethertype returns DROP_NOT_IPV4 with `m.etherType` set, so the
 * caller can route ARP elsewhere.
 */
export function parseFrame(buf: Uint8Array, len: number, m: PacketMeta, start = 0): number {
  const end = start + len < buf.length ? start + len : buf.length;
  reset(m, end - start);
  if (start < 0 || end - start < 14) return NetVerdict.DROP_TRUNCATED_ETH;
  let et = rd16(buf, start + 12);
  let off = start + 14;
  if (et === EtherType.VLAN) {
    if (end - start < 18) return NetVerdict.DROP_TRUNCATED_ETH;
    m.vlanTci = rd16(buf, start + 14);
    et = rd16(buf, start + 16);
    off = start + 18;
  }
  m.etherType = et;
  if (et !== EtherType.IPV4) return NetVerdict.DROP_NOT_IPV4;
  return ipv4(buf, off, end, m);
}

/**
 * Parses an IPv4 packet starting at `buf[off]`, the capture ending at `end` (exclusive; clamped to
 * `buf.length`), into `m` (resetting it). Checks, in order: header captured, version 4, IHL ≥ 5 and within
 * capture, total length within [IHL, captured], header checksum, fragments (MF or offset ≠ 0 →
 * DROP_FRAGMENT, with the IP fields filled so the worker can count per address), then the L4 header:
 * TCP (data offset), UDP (length field), ICMP (8 bytes; for errors the embedded IP header + 8 bytes), IPIP
 * (`l4Off` points at the inner header; it is not parsed). Other protocols → DROP_UNSUPPORTED_PROTO.
 */
export function parseIpv4(buf: Uint8Array, off: number, end: number, m: PacketMeta): number {
  const n = end < buf.length ? end : buf.length;
  reset(m, n);
  return ipv4(buf, off, n, m);
}

function ipv4(buf: Uint8Array, off: number, n: number, m: PacketMeta): number {
  m.l3Off = off;
  if (off < 0 || n - off < 20) return NetVerdict.DROP_TRUNCATED_IP;
  const vi = buf[off];
  if (vi >> 4 !== 4) return NetVerdict.DROP_BAD_IP_VERSION;
  const ihl = (vi & 0x0f) << 2;
  if (ihl < 20 || off + ihl > n) return NetVerdict.DROP_BAD_IHL;
  const tot = rd16(buf, off + 2);
  if (tot < ihl || off + tot > n) return NetVerdict.DROP_BAD_TOTAL_LEN;
  if (csumFold(csumAdd(0, buf, off, ihl)) !== 0xffff) return NetVerdict.DROP_BAD_IP_CSUM;
  m.ihl = ihl;
  m.tos = buf[off + 1];
  m.totalLen = tot;
  m.ipId = rd16(buf, off + 4);
  m.fragField = rd16(buf, off + 6);
  m.ttl = buf[off + 8];
  m.proto = buf[off + 9];
  m.saddr = rd32(buf, off + 12);
  m.daddr = rd32(buf, off + 16);
  if (m.fragField & 0x3fff) return NetVerdict.DROP_FRAGMENT;
  const l4 = off + ihl;
  const l4Len = tot - ihl;
  m.l4Off = l4;
  m.l4Len = l4Len;
  switch (m.proto) {
    case IpProto.TCP: {
      if (l4Len < 20) return NetVerdict.DROP_TRUNCATED_L4;
      const doff = (buf[l4 + 12] >> 4) << 2;
      if (doff < 20 || doff > l4Len) return NetVerdict.DROP_BAD_TCP_DOFF;
      m.sport = rd16(buf, l4);
      m.dport = rd16(buf, l4 + 2);
      m.tcpHdrLen = doff;
      m.tcpFlags = buf[l4 + 13];
      m.l4CsumOff = l4 + 16;
      return NetVerdict.OK;
    }
    case IpProto.UDP: {
      if (l4Len < 8) return NetVerdict.DROP_TRUNCATED_L4;
      const ulen = rd16(buf, l4 + 4);
      if (ulen < 8 || ulen > l4Len) return NetVerdict.DROP_BAD_UDP_LEN;
      m.sport = rd16(buf, l4);
      m.dport = rd16(buf, l4 + 2);
      m.l4CsumOff = l4 + 6;
      return NetVerdict.OK;
    }
    case IpProto.ICMP: {
      if (l4Len < 8) return NetVerdict.DROP_TRUNCATED_L4;
      const type = buf[l4];
      m.icmpType = type;
      m.icmpCode = buf[l4 + 1];
      m.l4CsumOff = l4 + 2;
      if (type === 0 || type === 8) {
        m.sport = rd16(buf, l4 + 4);
        m.dport = m.sport;
        return NetVerdict.OK;
      }
      if (!isIcmpError(type)) return NetVerdict.OK;
      return icmpInner(buf, l4 + 8, off + tot, m);
    }
    case IpProto.IPIP:
      return NetVerdict.OK;
    default:
      return NetVerdict.DROP_UNSUPPORTED_PROTO;
  }
}

function icmpInner(buf: Uint8Array, io: number, end: number, m: PacketMeta): number {
  if (end - io < 28) return NetVerdict.DROP_BAD_ICMP_INNER;
  const vi = buf[io];
  const ihl = (vi & 0x0f) << 2;
  if (vi >> 4 !== 4 || ihl < 20 || io + ihl + 8 > end) return NetVerdict.DROP_BAD_ICMP_INNER;
  m.innerOff = io;
  m.innerIhl = ihl;
  m.innerProto = buf[io + 9];
  m.innerSaddr = rd32(buf, io + 12);
  m.innerDaddr = rd32(buf, io + 16);
  if ((m.innerProto === IpProto.TCP || m.innerProto === IpProto.UDP) && (rd16(buf, io + 6) & 0x1fff) === 0) {
    m.innerL4Off = io + ihl;
    m.innerSport = rd16(buf, io + ihl);
    m.innerDport = rd16(buf, io + ihl + 2);
  }
  return NetVerdict.OK;
}
