// The sync record: one connection or persistence template change, 12 little-endian u32 words (48 bytes), the
// unit that workers write to their outbound ring, that the cluster agent batches on the wire, and that the
// inbound ring hands to the owning worker.
//
// Word layout (version 1):
//   0  op (u8: RecordOp) | proto << 8 (IP protocol number) | state << 16 (TCP state / template state) | 0 << 24
//   1  flags (u16, ConnFlag bits of shared/conntab, LIVE cleared) | shard << 16 (worker shard of the writer)
//   2  caddr (IPv4, host order u32)      3  vaddr (fwmark for fwmark templates)      4  daddr (0 = unbound)
//   5  cport | vport << 16                6  dport | 0 << 16
//   7  fwmark of the service (0 = none)
//   8  timeout of the current state, ms (the full timeout, as IPVS sync v1 sends it, in ms instead of s)
//   9  remaining time to expiry when written, ms (≤ timeout; the receiver arms expiry = its now + this)
//  10  reserved (0)                       11  reserved (0)
// Fields are plain numbers; nothing here allocates. IPv6 would need a second, wider record under a new version.

/** What happened to the entry. */
export const RecordOp = {
  /** A new connection or template. */
  NEW: 1,
  /** State, flags, dest or timeout changed. */
  UPDATE: 2,
  /** Removed (expired, reset, or closed): the receiver deletes its copy. */
  CLOSE: 3,
} as const;
export type RecordOpValue = (typeof RecordOp)[keyof typeof RecordOp];

/** Words per record. */
export const RECORD_WORDS = 12;
/** Bytes per record. */
export const RECORD_BYTES = RECORD_WORDS * 4;

/** Word offsets inside a record. */
export const RecordWord = {
  OP_PROTO_STATE: 0, FLAGS_SHARD: 1, CADDR: 2, VADDR: 3, DADDR: 4, PORTS: 5, DPORT: 6, FWMARK: 7, TIMEOUT_MS: 8,
  REMAINING_MS: 9,
} as const;

/** Template flag bit (ConnFlag.TEMPLATE of shared/conntab), repeated here so the codec needs no conntab import. */
export const RECORD_TEMPLATE_FLAG = 0x1000;

/** A record as an object, for the control plane and tests (the data path uses the words directly). */
export interface SyncRecord {
  op: RecordOpValue;
  /** IP protocol number (6 TCP, 17 UDP). */
  proto: number;
  state: number;
  flags: number;
  shard: number;
  caddr: number;
  cport: number;
  vaddr: number;
  vport: number;
  daddr: number;
  dport: number;
  fwmark: number;
  /** Timeout of the current state, ms. */
  timeoutMs: number;
  /** Time left to expiry when the record was written, ms. */
  remainingMs: number;
}

/** Writes `r` into `words` at word offset `off`. No allocation; fields are truncated to their widths. */
export function writeRecord(words: Uint32Array, off: number, r: SyncRecord): void {
  words[off] = (r.op & 0xff) | ((r.proto & 0xff) << 8) | ((r.state & 0xff) << 16);
  words[off + 1] = (r.flags & 0xffff) | ((r.shard & 0xffff) << 16);
  words[off + 2] = r.caddr >>> 0;
  words[off + 3] = r.vaddr >>> 0;
  words[off + 4] = r.daddr >>> 0;
  words[off + 5] = (r.cport & 0xffff) | ((r.vport & 0xffff) << 16);
  words[off + 6] = r.dport & 0xffff;
  words[off + 7] = r.fwmark >>> 0;
  words[off + 8] = r.timeoutMs >>> 0;
  words[off + 9] = r.remainingMs >>> 0;
  words[off + 10] = 0;
  words[off + 11] = 0;
}

/** Reads the record at word offset `off` as an object (allocates: control plane and tests only). */
export function readRecord(words: Uint32Array, off: number): SyncRecord {
  const w0 = words[off];
  const w1 = words[off + 1];
  const ports = words[off + 5];
  return {
    op: (w0 & 0xff) as RecordOpValue,
    proto: (w0 >>> 8) & 0xff,
    state: (w0 >>> 16) & 0xff,
    flags: w1 & 0xffff,
    shard: w1 >>> 16,
    caddr: words[off + 2],
    vaddr: words[off + 3],
    daddr: words[off + 4],
    cport: ports & 0xffff,
    vport: ports >>> 16,
    dport: words[off + 6] & 0xffff,
    fwmark: words[off + 7],
    timeoutMs: words[off + 8],
    remainingMs: words[off + 9],
  };
}

/** Largest TCP state number a record may carry (TCP_STATE_COUNT − 1 of shared/conntab). */
const MAX_STATE = 10;

/**
 * Checks the record at `off` for a receiver: known op, TCP/UDP/SCTP protocol (0 for fwmark templates), state in range, remaining ≤
 * timeout, reserved bits zero. Returns null when valid, else the reason (a counted drop, never an exception).
 */
export function recordProblem(words: Uint32Array, off: number): string | null {
  const w0 = words[off];
  const op = w0 & 0xff;
  if (op < RecordOp.NEW || op > RecordOp.CLOSE) return 'op';
  const proto = (w0 >>> 8) & 0xff;
  // Protocol 0 only for a fwmark service's template (its key carries the mark, not a protocol).
  if (proto !== 6 && proto !== 17 && proto !== 132 && !(proto === 0 && (words[off + 1] & RECORD_TEMPLATE_FLAG) !== 0)) return 'proto';
  if (((w0 >>> 16) & 0xff) > MAX_STATE) return 'state';
  if (w0 >>> 24 !== 0 || words[off + 6] >>> 16 !== 0 || words[off + 10] !== 0 || words[off + 11] !== 0) return 'reserved';
  if (words[off + 9] > words[off + 8]) return 'remaining';
  return null;
}

/**
 * The identity of the entry a record describes, as one string (control side: resend queue and replicas).
 * Connections: proto, caddr, cport, vaddr, vport; templates add the template bit and the fwmark.
 */
export function recordKey(words: Uint32Array, off: number): string {
  const w0 = words[off];
  const tpl = (words[off + 1] & RECORD_TEMPLATE_FLAG) !== 0;
  return `${(w0 >>> 8) & 0xff}:${words[off + 2]}:${words[off + 5]}:${words[off + 3]}${tpl ? `:t${words[off + 7]}` : ''}`;
}
