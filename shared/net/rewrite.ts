// In-place packet rewrites for the forwarding methods: NAT (masq) both ways including ICMP errors, DR (MACs),
// TUN (IPIP and GUE encapsulation), with incremental checksums. Zero allocation; verdicts, never exceptions.
import { csumAdd, csumFold, csumReplace16, csumReplace32, inetChecksum, partialReplace32, pseudoHeaderSum } from './checksum.ts';
import { IpProto, rd16, wr16, wr32 } from './parse.ts';
import type { PacketMeta } from './parse.ts';
import { NetVerdict } from './verdict.ts';

/** Bytes an IPIP encapsulation adds in front of the inner IPv4 packet (the outer IPv4 header). */
export const IPIP_OVERHEAD = 20;
/** Bytes a GUE encapsulation adds: outer IPv4 (20) + UDP (8) + GUE base header (4). */
export const GUE_OVERHEAD = 32;

/**
 * Decrements the IPv4 TTL of the packet `m` describes and fixes the header checksum incrementally, as IPVS
 * does for every forwarding method to a non-local destination since Linux 5.3 (`decrement_ttl()` in
 * `__ip_vs_get_out_rt`, commit "ipvs: Decrement ttl"): NAT, DR and TUN alike. Returns DROP_TTL_EXPIRED when
 * the TTL is ≤ 1 (the kernel would send ICMP time exceeded; the worker counts and drops), else OK.
 */
export function decTtl(buf: Uint8Array, m: PacketMeta): number {
  const ip = m.l3Off;
  const ttl = buf[ip + 8];
  if (ttl <= 1) return NetVerdict.DROP_TTL_EXPIRED;
  const proto = buf[ip + 9];
  wr16(buf, ip + 10, csumReplace16(rd16(buf, ip + 10), (ttl << 8) | proto, ((ttl - 1) << 8) | proto));
  buf[ip + 8] = ttl - 1;
  m.ttl = ttl - 1;
  return NetVerdict.OK;
}

function setAddr(buf: Uint8Array, ip: number, field: number, from: number, to: number): void {
  wr32(buf, ip + field, to);
  wr16(buf, ip + 10, csumReplace32(rd16(buf, ip + 10), from, to));
}

/**
 * Updates the TCP/UDP checksum for an address change `from → to` (a pseudo-header field) and a port change
 * `pfrom → pto` at L4 offset `portOff` (0 = source, 2 = destination). Complete checksums: RFC 1624 for both;
 * UDP checksum 0 (none) stays 0 and a computed 0 is sent as 0xffff. Partial checksums: only the address moves
 * the field (with the inverted sign, see partialReplace32); the port is summed later by whoever completes it.
 */
function l4Nat(buf: Uint8Array, m: PacketMeta, from: number, to: number, portOff: number, pfrom: number, pto: number, partial: boolean): void {
  const co = m.l4CsumOff;
  const c = rd16(buf, co);
  if (partial) {
    wr16(buf, co, partialReplace32(c, from, to));
  } else if (!(m.proto === IpProto.UDP && c === 0)) {
    let n = csumReplace16(csumReplace32(c, from, to), pfrom, pto);
    if (n === 0 && m.proto === IpProto.UDP) n = 0xffff;
    wr16(buf, co, n);
  }
  wr16(buf, m.l4Off + portOff, pto);
}

/**
 * NAT, client → real server: destination address and port become `rip:rport` (uint32, port), TTL is
 * decremented, IP and L4 checksums are fixed incrementally. `partial` says the L4 checksum field holds the
 * CHECKSUM_PARTIAL pseudo-header sum (TP_STATUS_CSUMNOTREADY / VNET_HDR NEEDS_CSUM); it then stays a partial
 * sum, of the new pseudo-header. Requires a successful parse of a TCP or UDP packet (else DROP_WRONG_PROTO).
 * `ttl` false leaves the TTL alone, for callers whose packet the kernel forwards afterwards (NFQUEUE).
 * Updates `m.daddr`, `m.dport`, `m.ttl`. Returns OK, DROP_TTL_EXPIRED or DROP_WRONG_PROTO.
 */
export function natIn(buf: Uint8Array, m: PacketMeta, rip: number, rport: number, partial: boolean, ttl = true): number {
  if (m.proto !== IpProto.TCP && m.proto !== IpProto.UDP) return NetVerdict.DROP_WRONG_PROTO;
  const v = ttl ? decTtl(buf, m) : NetVerdict.OK;
  if (v !== NetVerdict.OK) return v;
  setAddr(buf, m.l3Off, 16, m.daddr, rip >>> 0);
  l4Nat(buf, m, m.daddr, rip >>> 0, 2, m.dport, rport, partial);
  m.daddr = rip >>> 0;
  m.dport = rport;
  return NetVerdict.OK;
}

/**
 * NAT, real server → client (the reply): source address and port become `vip:vport`; otherwise as
 * {@link natIn}. Updates `m.saddr`, `m.sport`, `m.ttl`.
 */
export function natOut(buf: Uint8Array, m: PacketMeta, vip: number, vport: number, partial: boolean, ttl = true): number {
  if (m.proto !== IpProto.TCP && m.proto !== IpProto.UDP) return NetVerdict.DROP_WRONG_PROTO;
  const v = ttl ? decTtl(buf, m) : NetVerdict.OK;
  if (v !== NetVerdict.OK) return v;
  setAddr(buf, m.l3Off, 12, m.saddr, vip >>> 0);
  l4Nat(buf, m, m.saddr, vip >>> 0, 0, m.sport, vport, partial);
  m.saddr = vip >>> 0;
  m.sport = vport;
  return NetVerdict.OK;
}

/**
 * Rewrites the embedded packet of an ICMP error and the ICMP checksum: the embedded address at `field`
 * (12 = source, 16 = destination) becomes `addr`, its port at `portOff` (0/2) becomes `port` when the
 * embedded L4 header is TCP/UDP. The embedded IP checksum is fixed; the embedded L4 checksum is left alone,
 * as IPVS does (ip_vs_nat_icmp), since only 8 bytes of it are guaranteed.
 */
function icmpInner(buf: Uint8Array, m: PacketMeta, field: number, addr: number, portOff: number, port: number): void {
  const io = m.innerOff;
  const co = m.l4CsumOff;
  let ic = rd16(buf, co);
  const oldA = field === 12 ? m.innerSaddr : m.innerDaddr;
  const oldIc = rd16(buf, io + 10);
  const newIc = csumReplace32(oldIc, oldA, addr);
  wr32(buf, io + field, addr);
  wr16(buf, io + 10, newIc);
  ic = csumReplace16(csumReplace32(ic, oldA, addr), oldIc, newIc);
  if (field === 12) m.innerSaddr = addr;
  else m.innerDaddr = addr;
  if (m.innerL4Off >= 0) {
    const oldP = rd16(buf, m.innerL4Off + portOff);
    wr16(buf, m.innerL4Off + portOff, port);
    ic = csumReplace16(ic, oldP, port);
    if (portOff === 0) m.innerSport = port;
    else m.innerDport = port;
  }
  wr16(buf, co, ic);
}

/**
 * NAT of an ICMP error leaving a real server about a packet it received through NAT (e.g. port unreachable
 * for client:cport → RIP:rport): outer source → `vip`, embedded destination → `vip:vport`, embedded IP and
 * ICMP checksums fixed incrementally, TTL decremented. ICMP checksums are complete (the real server's kernel
 * computes them in software), so there is no partial variant. Requires an ICMP error with its embedded header
 * parsed (`m.innerOff >= 0`), else DROP_WRONG_PROTO.
 */
export function natIcmpOut(buf: Uint8Array, m: PacketMeta, vip: number, vport: number, ttl = true): number {
  if (m.proto !== IpProto.ICMP || m.innerOff < 0) return NetVerdict.DROP_WRONG_PROTO;
  const v = ttl ? decTtl(buf, m) : NetVerdict.OK;
  if (v !== NetVerdict.OK) return v;
  setAddr(buf, m.l3Off, 12, m.saddr, vip >>> 0);
  m.saddr = vip >>> 0;
  icmpInner(buf, m, 16, vip >>> 0, 2, vport);
  return NetVerdict.OK;
}

/**
 * NAT of an ICMP error arriving for the VIP about a reply the director sent (embedded VIP:vport → client):
 * outer destination → `rip`, embedded source → `rip:rport`, checksums fixed, TTL decremented. As
 * {@link natIcmpOut} otherwise.
 */
export function natIcmpIn(buf: Uint8Array, m: PacketMeta, rip: number, rport: number, ttl = true): number {
  if (m.proto !== IpProto.ICMP || m.innerOff < 0) return NetVerdict.DROP_WRONG_PROTO;
  const v = ttl ? decTtl(buf, m) : NetVerdict.OK;
  if (v !== NetVerdict.OK) return v;
  setAddr(buf, m.l3Off, 16, m.daddr, rip >>> 0);
  m.daddr = rip >>> 0;
  icmpInner(buf, m, 12, rip >>> 0, 0, rport);
  return NetVerdict.OK;
}

/**
 * DR: writes the destination and source MAC (6 bytes each, read from `dst[0..6)` and `src[0..6)`) at the
 * start of the frame, `buf[start..start+12)`; the IP packet is untouched. IPVS DR also decrements the TTL
 * (Linux ≥ 5.3): call {@link decTtl} first to match it. The frame must hold at least 12 bytes (any parsed frame
 * does).
 */
export function setMacs(buf: Uint8Array, dst: Uint8Array, src: Uint8Array, start = 0): void {
  for (let i = 0; i < 6; i++) {
    buf[start + i] = dst[i];
    buf[start + 6 + i] = src[i];
  }
}

/** Writes an untagged Ethernet header (dst MAC, src MAC, ethertype) at `out[off..off+14)`. */
export function writeEth(out: Uint8Array, off: number, dst: Uint8Array, src: Uint8Array, etherType: number): void {
  for (let i = 0; i < 6; i++) {
    out[off + i] = dst[i];
    out[off + 6 + i] = src[i];
  }
  wr16(out, off + 12, etherType);
}

/**
 * Completes a CHECKSUM_PARTIAL TCP/UDP checksum in software: the field holds the pseudo-header sum, so the
 * final checksum is the complement of the sum over the L4 segment with that field in place (what the device
 * would do). Needed before encapsulating a partial packet unless the sender sets VNET_HDR csum_start/offset
 * on the inner header. A UDP result of 0 is stored as 0xffff. No-op for other protocols.
 */
export function finishPartial(buf: Uint8Array, m: PacketMeta): void {
  if (m.proto !== IpProto.TCP && m.proto !== IpProto.UDP) return;
  let c = inetChecksum(buf, m.l4Off, m.l4Len);
  if (c === 0 && m.proto === IpProto.UDP) c = 0xffff;
  wr16(buf, m.l4CsumOff, c);
}

/** The outer-header TOS for an inner TOS: DSCP copied, ECN encapsulated as RFC 6040 (CE → ECT(0)). */
function encapTos(tos: number): number {
  return (tos & 3) === 3 ? (tos & 0xfc) | 2 : tos;
}

function outerIp(out: Uint8Array, o: number, tos: number, tot: number, id: number, df: number, ttl: number, proto: number, saddr: number, daddr: number): void {
  out[o] = 0x45;
  out[o + 1] = tos;
  wr16(out, o + 2, tot);
  wr16(out, o + 4, id);
  wr16(out, o + 6, df);
  out[o + 8] = ttl;
  out[o + 9] = proto;
  wr16(out, o + 10, 0);
  wr32(out, o + 12, saddr);
  wr32(out, o + 16, daddr);
  wr16(out, o + 10, inetChecksum(out, o, 20));
}

/**
 * Prepares the inner packet and places it at `out[outOff + hdr ..)`: decrements its TTL (as IPVS does before
 * encapsulating) and copies it unless it already sits there (`out === buf` with the right headroom; an
 * overlapping move is safe). Returns a verdict.
 */
function placeInner(buf: Uint8Array, m: PacketMeta, out: Uint8Array, outOff: number, hdr: number): number {
  if (m.l3Off < 0 || m.totalLen < 20) return NetVerdict.DROP_WRONG_PROTO;
  if (outOff < 0 || outOff + hdr + m.totalLen > out.length) return NetVerdict.DROP_NO_ROOM;
  const v = decTtl(buf, m);
  if (v !== NetVerdict.OK) return v;
  const dst = outOff + hdr;
  if (out === buf) {
    if (dst !== m.l3Off) out.copyWithin(dst, m.l3Off, m.l3Off + m.totalLen);
  } else {
    for (let i = 0; i < m.totalLen; i++) out[dst + i] = buf[m.l3Off + i];
  }
  return NetVerdict.OK;
}

/**
 * TUN (IPIP, protocol 4): writes an outer IPv4 header at `out[outOff..outOff+20)` (src `saddr` = the
 * director's address, dst `daddr` = the RIP, DF copied from the inner packet, TOS copied with ECN
 * encapsulation, IP id = the inner id, TTL `ttl` or, when `ttl` is 0, the inner TTL after its decrement, as
 * IPVS does) followed by the inner IPv4 packet (`m.totalLen` bytes). The outer checksum is computed in full.
 * The caller writes the Ethernet header at `outOff - 14` if it needs one. The output is `IPIP_OVERHEAD +
 * m.totalLen` bytes. A CHECKSUM_PARTIAL inner packet must be completed first ({@link finishPartial}) or sent
 * with VNET_HDR pointing at the inner L4 header. Returns OK, DROP_NO_ROOM, DROP_TTL_EXPIRED or
 * DROP_WRONG_PROTO (no parsed IPv4 packet).
 */
export function encapIpip(buf: Uint8Array, m: PacketMeta, out: Uint8Array, outOff: number, saddr: number, daddr: number, ttl: number): number {
  const v = placeInner(buf, m, out, outOff, IPIP_OVERHEAD);
  if (v !== NetVerdict.OK) return v;
  const o = outOff + IPIP_OVERHEAD;
  outerIp(out, outOff, encapTos(out[o + 1]), IPIP_OVERHEAD + m.totalLen, rd16(out, o + 4), rd16(out, o + 6) & 0x4000, ttl > 0 ? ttl : out[o + 8], IpProto.IPIP, saddr >>> 0, daddr >>> 0);
  return NetVerdict.OK;
}

/**
 * TUN over GUE (IPVS `--tun-type gue`): outer IPv4 (proto 17, fields as {@link encapIpip}), UDP from `sport`
 * (the caller's flow hash, so that receivers can spread flows) to `dport` (the dest's tun_port), a 4-byte GUE
 * header (version 0, C 0, hlen 0, flags 0, proto_ctype 4 = IPIP), then the inner packet. With `csum` the UDP
 * checksum is computed in full over the pseudo-header and the whole datagram (0 becomes 0xffff); without, it is
 * 0, as IPVS sends it by default. Output is `GUE_OVERHEAD + m.totalLen` bytes. Same verdicts as encapIpip.
 */
export function encapGue(buf: Uint8Array, m: PacketMeta, out: Uint8Array, outOff: number, saddr: number, daddr: number, sport: number, dport: number, csum: boolean, ttl: number): number {
  const v = placeInner(buf, m, out, outOff, GUE_OVERHEAD);
  if (v !== NetVerdict.OK) return v;
  const o = outOff + GUE_OVERHEAD;
  const udpLen = 12 + m.totalLen;
  const u = outOff + 20;
  wr16(out, u, sport);
  wr16(out, u + 2, dport);
  wr16(out, u + 4, udpLen);
  wr16(out, u + 6, 0);
  out[u + 8] = 0;
  out[u + 9] = IpProto.IPIP;
  wr16(out, u + 10, 0);
  outerIp(out, outOff, encapTos(out[o + 1]), GUE_OVERHEAD + m.totalLen, rd16(out, o + 4), rd16(out, o + 6) & 0x4000, ttl > 0 ? ttl : out[o + 8], IpProto.UDP, saddr >>> 0, daddr >>> 0);
  if (csum) {
    let c = ~csumFold(csumAdd(pseudoHeaderSum(saddr >>> 0, daddr >>> 0, IpProto.UDP, udpLen), out, u, udpLen)) & 0xffff;
    if (c === 0) c = 0xffff;
    wr16(out, u + 6, c);
  }
  return NetVerdict.OK;
}
