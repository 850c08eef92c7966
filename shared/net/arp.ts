// ARP codec (Ethernet/IPv4 only): build gratuitous ARP and ARP request frames for VIP takeover and neighbour
// probes, parse ARP packets into a reused record. Zero allocation; verdicts, never exceptions.
import { EtherType, rd16, rd32, wr16, wr32 } from './parse.ts';
import { NetVerdict } from './verdict.ts';

/** Length of an untagged Ethernet ARP frame without padding (14 + 28). Senders may pad to 60. */
export const ARP_FRAME_LEN = 42;

/** ARP operation codes. */
export const ArpOp = { REQUEST: 1, REPLY: 2 } as const;

/**
 * An ARP packet as parsed. MACs are 48-bit numbers (exact in a JS number: 0xaabbccddeeff) plus the offset
 * of the sender MAC in the buffer for copying; addresses are uint32.
 */
export class ArpMeta {
  /** 802.1Q TCI, or -1 when untagged. */
  vlanTci = -1;
  op = 0;
  senderMac = 0;
  /** Offset of the sender hardware address in the parsed buffer. */
  senderMacOff = -1;
  senderIp = 0;
  targetMac = 0;
  targetIp = 0;
}

function rd48(b: Uint8Array, o: number): number {
  return rd16(b, o) * 0x100000000 + rd32(b, o + 2);
}

/**
 * Writes an ARP frame at `out[off..off+42)`: Ethernet `ethDst` ← `sha`, ARP `op`, sender `sha`/`spa`, target
 * `tha`/`tpa`. MACs are read from 6-byte arrays; addresses are uint32. Returns OK or DROP_NO_ROOM.
 */
export function buildArp(out: Uint8Array, off: number, ethDst: Uint8Array, op: number, sha: Uint8Array, spa: number, tha: Uint8Array, tpa: number): number {
  if (off < 0 || off + ARP_FRAME_LEN > out.length) return NetVerdict.DROP_NO_ROOM;
  for (let i = 0; i < 6; i++) {
    out[off + i] = ethDst[i];
    out[off + 6 + i] = sha[i];
    out[off + 22 + i] = sha[i];
    out[off + 32 + i] = tha[i];
  }
  wr16(out, off + 12, EtherType.ARP);
  wr16(out, off + 14, 1);
  wr16(out, off + 16, EtherType.IPV4);
  out[off + 18] = 6;
  out[off + 19] = 4;
  wr16(out, off + 20, op);
  wr32(out, off + 28, spa);
  wr32(out, off + 38, tpa);
  return NetVerdict.OK;
}

const BROADCAST = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
const ZERO_MAC = new Uint8Array(6);

/**
 * Gratuitous ARP announcing `ip` at `mac` (broadcast request with sender = target = `ip`, target MAC zero, as
 * `arping -U` and keepalived send it). Returns OK or DROP_NO_ROOM.
 */
export function buildGratuitousArp(out: Uint8Array, off: number, mac: Uint8Array, ip: number): number {
  return buildArp(out, off, BROADCAST, ArpOp.REQUEST, mac, ip, ZERO_MAC, ip);
}

/** Broadcast ARP request "who has `targetIp`, tell `srcIp`". Returns OK or DROP_NO_ROOM. */
export function buildArpRequest(out: Uint8Array, off: number, srcMac: Uint8Array, srcIp: number, targetIp: number): number {
  return buildArp(out, off, BROADCAST, ArpOp.REQUEST, srcMac, srcIp, ZERO_MAC, targetIp);
}

/**
 * Parses an Ethernet frame (optionally one 802.1Q tag) holding an Ethernet/IPv4 ARP packet into `a`.
 * Returns OK, DROP_TRUNCATED_ETH, or DROP_BAD_ARP (other ethertype, hardware/protocol type or lengths, or
 * fewer than 28 ARP bytes).
 */
export function parseArp(buf: Uint8Array, len: number, a: ArpMeta): number {
  const n = len < buf.length ? len : buf.length;
  a.vlanTci = -1;
  a.op = 0;
  a.senderMac = 0;
  a.senderMacOff = -1;
  a.senderIp = 0;
  a.targetMac = 0;
  a.targetIp = 0;
  if (n < 14) return NetVerdict.DROP_TRUNCATED_ETH;
  let o = 14;
  let et = rd16(buf, 12);
  if (et === EtherType.VLAN) {
    if (n < 18) return NetVerdict.DROP_TRUNCATED_ETH;
    a.vlanTci = rd16(buf, 14);
    et = rd16(buf, 16);
    o = 18;
  }
  if (et !== EtherType.ARP || n - o < 28) return NetVerdict.DROP_BAD_ARP;
  if (rd16(buf, o) !== 1 || rd16(buf, o + 2) !== EtherType.IPV4 || buf[o + 4] !== 6 || buf[o + 5] !== 4) return NetVerdict.DROP_BAD_ARP;
  a.op = rd16(buf, o + 6);
  a.senderMacOff = o + 8;
  a.senderMac = rd48(buf, o + 8);
  a.senderIp = rd32(buf, o + 14);
  a.targetMac = rd48(buf, o + 18);
  a.targetIp = rd32(buf, o + 24);
  return NetVerdict.OK;
}
