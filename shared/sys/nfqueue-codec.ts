// The nfnetlink_queue wire format, pure: packet messages parsed into a reused record, verdict and config messages
// built into caller-owned buffers. No system calls here (the socket is services/worker/io/nfqueue.ts); unit tests
// feed it built bytes.

// Netlink and nfnetlink_queue wire constants (linux/netlink.h, linux/netfilter/nfnetlink_queue.h).
export const NLMSG_HDR = 16;
export const NFGEN_HDR = 4;
export const NLM_F_REQUEST = 1;
export const NLM_F_ACK = 4;
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
const NFNL_SUBSYS_QUEUE = 3;
/** nfnetlink message types of the queue subsystem. */
export const NfqMsg = {
  PACKET: (NFNL_SUBSYS_QUEUE << 8) | 0,
  VERDICT: (NFNL_SUBSYS_QUEUE << 8) | 1,
  CONFIG: (NFNL_SUBSYS_QUEUE << 8) | 2,
} as const;
/** NFQA_* packet and verdict attributes. */
export const Nfqa = { PACKET_HDR: 1, VERDICT_HDR: 2, MARK: 3, IFINDEX_INDEV: 5, IFINDEX_OUTDEV: 6, PAYLOAD: 10, CAP_LEN: 13 } as const;
/** NFQA_CFG_* config attributes. */
export const NfqaCfg = { CMD: 1, PARAMS: 2, QUEUE_MAXLEN: 3, MASK: 4, FLAGS: 5 } as const;
/** NFQNL_CFG_CMD_* commands. */
export const NfqCmd = { BIND: 1, UNBIND: 2 } as const;
/** NFQA_CFG_F_* flags. */
export const NfqCfgFlag = { FAIL_OPEN: 1, ALL: 0x1f } as const;
/** Netfilter verdicts. */
export const NfVerdict = { DROP: 0, ACCEPT: 1 } as const;
const COPY_PACKET = 2;
const NLA_TYPE_MASK = 0x3fff;
const AF_INET = 2;

/** Bytes of a verdict message without payload: nlmsghdr + nfgenmsg + VERDICT_HDR attribute. */
export const VERDICT_MSG = NLMSG_HDR + NFGEN_HDR + 12;
/** Bytes a NFQA_MARK attribute adds. */
export const MARK_ATTR = 8;
/** Bytes of the payload attribute header of a modified-packet verdict. */
export const PAYLOAD_ATTR = 4;
/** Largest payload the kernel accepts in a verdict (nfqnl_mangle: the IP total length is 16 bits). */
export const MAX_PAYLOAD = 0xffff;

/** Netlink alignment (4 bytes). */
export const align4 = (n: number): number => (n + 3) & ~3;

/** One queued packet as {@link parseNfqPacket} found it. Reused; valid until the next parse. */
export class NfqPacketInfo {
  /** Packet id for the verdict, -1 when the message has none. */
  id = -1;
  mark = 0;
  /** Netfilter hook (NfHook). */
  hook = 0;
  indev = 0;
  outdev = 0;
  /** Offset and length of the IPv4 packet in the parsed buffer; -1 when absent. */
  payOff = -1;
  payLen = 0;
  /** Full length of the packet on the wire (NFQA_CAP_LEN), -1 when not truncated. */
  capLen = -1;
}

/** Results of {@link parseNfqPacket}. */
export const NfqParse = {
  OK: 0,
  /** No usable packet header: no id to give a verdict to. */
  NO_ID: 1,
  /** Has an id, but an attribute is malformed or the payload is missing: drop it. */
  BAD: 2,
} as const;

/**
 * Parses the attributes of an NFQNL_MSG_PACKET body `[start, end)` (after nlmsghdr and nfgenmsg) into `out`.
 * Zero allocation; never throws. Returns an {@link NfqParse} code.
 */
export function parseNfqPacket(dv: DataView, start: number, end: number, out: NfqPacketInfo): number {
  out.id = -1;
  out.mark = 0;
  out.hook = 0;
  out.indev = 0;
  out.outdev = 0;
  out.payOff = -1;
  out.payLen = 0;
  out.capLen = -1;
  let bad = false;
  let a = start;
  if (end > dv.byteLength) end = dv.byteLength;
  while (end - a >= 4) {
    const alen = dv.getUint16(a, true);
    if (alen < 4 || a + alen > end) {
      bad = true;
      break;
    }
    const d = a + 4;
    const dl = alen - 4;
    switch (dv.getUint16(a + 2, true) & NLA_TYPE_MASK) {
      case Nfqa.PACKET_HDR:
        if (dl >= 7) {
          out.id = dv.getUint32(d, false);
          out.hook = dv.getUint8(d + 6);
        } else bad = true;
        break;
      case Nfqa.MARK:
        if (dl >= 4) out.mark = dv.getUint32(d, false);
        break;
      case Nfqa.IFINDEX_INDEV:
        if (dl >= 4) out.indev = dv.getUint32(d, false);
        break;
      case Nfqa.IFINDEX_OUTDEV:
        if (dl >= 4) out.outdev = dv.getUint32(d, false);
        break;
      case Nfqa.PAYLOAD:
        out.payOff = d;
        out.payLen = dl;
        break;
      case Nfqa.CAP_LEN:
        if (dl >= 4) out.capLen = dv.getUint32(d, false);
        break;
      default:
        break;
    }
    a += align4(alen);
  }
  if (out.id < 0) return NfqParse.NO_ID;
  if (bad || out.payOff < 0) return NfqParse.BAD;
  return NfqParse.OK;
}

/**
 * Writes nlmsghdr + nfgenmsg + NFQA_VERDICT_HDR of a `size`-byte verdict message for packet `id` of `queue` at
 * `dv[p]`. The caller appends the mark or payload attribute ({@link writeMarkAttr}, {@link writePayloadAttr}).
 */
export function writeVerdictHeader(dv: DataView, p: number, size: number, queue: number, id: number, verdict: number): void {
  dv.setUint32(p, size, true);
  dv.setUint16(p + 4, NfqMsg.VERDICT, true);
  dv.setUint16(p + 6, NLM_F_REQUEST, true);
  dv.setUint32(p + 8, 0, true);
  dv.setUint32(p + 12, 0, true);
  dv.setUint8(p + 16, 0);
  dv.setUint8(p + 17, 0);
  dv.setUint16(p + 18, queue, false);
  dv.setUint16(p + 20, 12, true);
  dv.setUint16(p + 22, Nfqa.VERDICT_HDR, true);
  dv.setUint32(p + 24, verdict, false);
  dv.setUint32(p + 28, id >>> 0, false);
}

/** Writes an NFQA_MARK attribute (8 bytes) at `dv[p]`. */
export function writeMarkAttr(dv: DataView, p: number, mark: number): void {
  dv.setUint16(p, MARK_ATTR, true);
  dv.setUint16(p + 2, Nfqa.MARK, true);
  dv.setUint32(p + 4, mark >>> 0, false);
}

/** Writes the header of an NFQA_PAYLOAD attribute for `len` bytes at `dv[p]`; the packet follows at p + 4. */
export function writePayloadAttr(dv: DataView, p: number, len: number): void {
  dv.setUint16(p, PAYLOAD_ATTR + len, true);
  dv.setUint16(p + 2, Nfqa.PAYLOAD, true);
}

/** Turns the verdict message at `dv[p]` into a bare DROP (no attribute after the verdict header). */
export function rewriteAsDrop(dv: DataView, p: number): void {
  dv.setUint32(p, VERDICT_MSG, true);
  dv.setUint32(p + 24, NfVerdict.DROP, false);
}

/** A big-endian uint32 attribute value. */
export function be32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, false);
  return b;
}

/** struct nfqnl_msg_config_cmd { u8 command; u8 pad; __be16 pf } with pf = AF_INET. */
export function cmdAttr(cmd: number): Uint8Array {
  const b = new Uint8Array(4);
  b[0] = cmd;
  new DataView(b.buffer).setUint16(2, AF_INET, false);
  return b;
}

/** struct nfqnl_msg_config_params { __be32 copy_range; u8 copy_mode = COPY_PACKET } (packed: 5 bytes). */
export function paramsAttr(copyRange: number): Uint8Array {
  const b = new Uint8Array(5);
  new DataView(b.buffer).setUint32(0, copyRange, false);
  b[4] = COPY_PACKET;
  return b;
}

/** An NFQNL_MSG_CONFIG message for `queue` with attributes given as (type, value) pairs. Allocates: control path. */
export function configMsg(queue: number, seq: number, ack: boolean, attrs: (number | Uint8Array)[]): Uint8Array {
  let len = NLMSG_HDR + NFGEN_HDR;
  for (let i = 1; i < attrs.length; i += 2) len += align4(4 + (attrs[i] as Uint8Array).byteLength);
  const b = new Uint8Array(len);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, len, true);
  dv.setUint16(4, NfqMsg.CONFIG, true);
  dv.setUint16(6, NLM_F_REQUEST | (ack ? NLM_F_ACK : 0), true);
  dv.setUint32(8, seq, true);
  b[16] = 0; // AF_UNSPEC
  b[17] = 0; // NFNETLINK_V0
  dv.setUint16(18, queue, false);
  let p = NLMSG_HDR + NFGEN_HDR;
  for (let i = 0; i < attrs.length; i += 2) {
    const v = attrs[i + 1] as Uint8Array;
    dv.setUint16(p, 4 + v.byteLength, true);
    dv.setUint16(p + 2, attrs[i] as number, true);
    b.set(v, p + 4);
    p += align4(4 + v.byteLength);
  }
  return b;
}

/**
 * Parses one line set of /proc/net/netfilter/nfnetlink_queue for `queue`: total queued (field 3), queue-full
 * drops (field 6), user drops (field 7). Zeros when the queue's line is absent.
 */
export function parseQueueStats(text: string, queue: number): { queued: number; queueDropped: number; userDropped: number } {
  let queued = 0;
  let queueDropped = 0;
  let userDropped = 0;
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 7 || Number(f[0]) !== queue) continue;
    queued = Number(f[2]);
    queueDropped = Number(f[5]);
    userDropped = Number(f[6]);
  }
  return { queued, queueDropped, userDropped };
}
