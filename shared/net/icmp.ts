// Builds ICMP error frames the director originates (port unreachable when a service has no real server
// available, as ip_vs_leave does): Ethernet + IPv4 + ICMP + the offending IP header and 8 bytes of payload.
import { inetChecksum } from './checksum.ts';
import type { PacketMeta } from './parse.ts';
import { wr16, wr32 } from './parse.ts';

/** Bytes of a built error frame for an offending packet with `ihl`-byte header: 14 + 20 + 8 + ihl + 8. */
export function icmpErrorFrameLen(ihl: number): number {
  return 14 + 20 + 8 + ihl + 8;
}

/**
 * Writes the Ethernet header and a 20-byte IPv4 header (TTL 64, id 0, checksum filled) of a packet the director
 * originates in answer to `m`: from `m`'s destination to its source. `frag` is the flags/fragment word (0x4000 =
 * DF). Returns the offset of the IPv4 header in `out`. The caller has checked that 34 bytes fit. No allocation.
 */
export function writeReplyHeaders(out: Uint8Array, outOff: number, dstMac: Uint8Array, srcMac: Uint8Array, m: PacketMeta, tos: number, totalLen: number, frag: number, proto: number): number {
  for (let i = 0; i < 6; i++) {
    out[outOff + i] = dstMac[i];
    out[outOff + 6 + i] = srcMac[i];
  }
  wr16(out, outOff + 12, 0x0800);
  const ip = outOff + 14;
  out[ip] = 0x45;
  out[ip + 1] = tos;
  wr16(out, ip + 2, totalLen);
  wr16(out, ip + 4, 0);
  wr16(out, ip + 6, frag);
  out[ip + 8] = 64;
  out[ip + 9] = proto;
  wr16(out, ip + 10, 0);
  wr32(out, ip + 12, m.daddr >>> 0);
  wr32(out, ip + 16, m.saddr >>> 0);
  wr16(out, ip + 10, inetChecksum(out, ip, 20));
  return ip;
}

/**
 * Writes an ICMP error (`type`/`code`, e.g. 3/3 port unreachable) about the packet `m` describes in
 * `buf` (parsed at `m.l3Off`) into `out[outOff..)`: from the packet's destination to its source, TTL 64,
 * quoting its IP header and first 8 payload bytes (RFC 792). Returns the frame length, or 0 when the
 * output has no room or the packet was not parsed as IPv4. `off`/`len` are the offending frame's bounds.
 */
export function buildIcmpUnreach(buf: Uint8Array, off: number, len: number, m: PacketMeta, out: Uint8Array, outOff: number, dstMac: Uint8Array, srcMac: Uint8Array, type: number, code: number): number {
  if (m.l3Off < 0 || m.ihl < 20) return 0;
  const quote = m.ihl + 8;
  if (m.l3Off + quote > off + len) return 0;
  const total = icmpErrorFrameLen(m.ihl);
  if (outOff < 0 || outOff + total > out.length) return 0;
  // Precedence "internetwork control" (0xc0), as Linux sends ICMP errors; no DF.
  const ip = writeReplyHeaders(out, outOff, dstMac, srcMac, m, 0xc0, 20 + 8 + quote, 0, 1);
  const ic = ip + 20;
  out[ic] = type;
  out[ic + 1] = code;
  wr16(out, ic + 2, 0);
  wr32(out, ic + 4, 0);
  for (let i = 0; i < quote; i++) out[ic + 8 + i] = buf[m.l3Off + i];
  wr16(out, ic + 2, inetChecksum(out, ic, 8 + quote));
  return total;
}
