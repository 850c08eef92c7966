// Decapsulation for the real-server side: find and validate the inner IPv4 packet of an IPIP packet (as a raw
// IPPROTO_IPIP socket delivers it) or of a GUE payload (as a UDP socket delivers it). Zero allocation.
import { IpProto, parseIpv4 } from './parse.ts';
import type { PacketMeta } from './parse.ts';
import { NetVerdict } from './verdict.ts';

/**
 * True when a parse verdict of the inner packet still means "a well-formed IPv4 packet the local stack can
 * take": OK, a fragment (the kernel reassembles) or a protocol the codecs do not parse.
 */
export function innerDeliverable(v: number): boolean {
  return v === NetVerdict.OK || v === NetVerdict.DROP_FRAGMENT || v === NetVerdict.DROP_UNSUPPORTED_PROTO;
}

/**
 * `buf[0..len)` is an outer IPv4 packet with protocol 4. Validates the outer header, then parses the inner
 * packet into `m` (so `m.l3Off`/`m.totalLen` locate it). Returns the outer verdict if the outer header is bad,
 * DROP_WRONG_PROTO if it is not IPIP, else the inner packet's verdict (see {@link innerDeliverable}).
 */
export function decapIpip(buf: Uint8Array, len: number, m: PacketMeta): number {
  const v = parseIpv4(buf, 0, len, m);
  if (v !== NetVerdict.OK) return v;
  if (m.proto !== IpProto.IPIP) return NetVerdict.DROP_WRONG_PROTO;
  return parseIpv4(buf, m.l4Off, m.l3Off + m.totalLen, m);
}

/**
 * `buf[0..len)` is a GUE UDP payload. Accepts version 0, data messages (C = 0), any option length (hlen
 * words are skipped), proto_ctype 4 (IPIP); else DROP_BAD_GUE (DROP_TRUNCATED_L4 when shorter than the
 * header). Parses the inner IPv4 packet into `m` and returns its verdict.
 */
export function decapGue(buf: Uint8Array, len: number, m: PacketMeta): number {
  const n = len < buf.length ? len : buf.length;
  if (n < 4) return NetVerdict.DROP_TRUNCATED_L4;
  const b0 = buf[0];
  if (b0 >> 5 !== 0 || buf[1] !== IpProto.IPIP) return NetVerdict.DROP_BAD_GUE;
  const inner = 4 + ((b0 & 0x1f) << 2);
  if (inner > n) return NetVerdict.DROP_TRUNCATED_L4;
  return parseIpv4(buf, inner, n, m);
}
