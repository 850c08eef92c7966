// Builds the TCP reset the director sends a client whose connection it ended (its real server was removed:
// expire_nodest_conn, docs/dataplane.md): Ethernet + IPv4 + a 20-byte TCP header, RFC 793's reset generation.
import { inetChecksum, pseudoHeaderSum } from './checksum.ts';
import type { PacketMeta } from './parse.ts';
import { rd32, wr16, wr32 } from './parse.ts';
import { writeReplyHeaders } from './icmp.ts';

/** Bytes of a built reset frame: 14 + 20 + 20. */
export const TCP_RST_FRAME_LEN = 54;

/**
 * Writes a TCP RST answering the segment `m` describes in `buf` (parsed at `m.l3Off`, TCP) into
 * `out[outOff..)`: from the segment's destination to its source, ports swapped, TTL 64. RFC 793: when the
 * segment carries ACK the reset has seq = SEG.ACK and no ACK; otherwise seq 0, ACK, ack = SEG.SEQ + SEG.LEN
 * (SYN and FIN count one each). Returns the frame length, or 0 when the output has no room or the packet is
 * not a parsed TCP segment. No allocation.
 */
export function buildTcpRst(buf: Uint8Array, m: PacketMeta, out: Uint8Array, outOff: number, dstMac: Uint8Array, srcMac: Uint8Array): number {
  if (m.l3Off < 0 || m.l4Off < 0 || m.proto !== 6) return 0;
  if (m.l4Off + 20 > buf.length || outOff < 0 || outOff + TCP_RST_FRAME_LEN > out.length) return 0;
  const t = m.l4Off;
  const flags = buf[t + 13];
  const doff = (buf[t + 12] >>> 4) << 2;
  const segLen = Math.max(0, m.totalLen - m.ihl - doff) + ((flags & 0x02) !== 0 ? 1 : 0) + ((flags & 0x01) !== 0 ? 1 : 0);
  const hasAck = (flags & 0x10) !== 0;
  const seq = hasAck ? rd32(buf, t + 8) : 0;
  const ack = hasAck ? 0 : (rd32(buf, t + 4) + segLen) >>> 0;
  const ip = writeReplyHeaders(out, outOff, dstMac, srcMac, m, 0, 40, 0x4000, 6);
  const tc = ip + 20;
  wr16(out, tc, m.dport);
  wr16(out, tc + 2, m.sport);
  wr32(out, tc + 4, seq);
  wr32(out, tc + 8, ack);
  out[tc + 12] = 5 << 4;
  out[tc + 13] = hasAck ? 0x04 : 0x14;
  wr16(out, tc + 14, 0);
  wr16(out, tc + 16, 0);
  wr16(out, tc + 18, 0);
  wr16(out, tc + 16, inetChecksum(out, tc, 20, pseudoHeaderSum(m.daddr >>> 0, m.saddr >>> 0, 6, 20)));
  return TCP_RST_FRAME_LEN;
}
