// The nexthop probe of active-active: a router (the lab's nexthop watcher) asks each director over UDP whether it
// forwards the VIPs now; the director's tsvsd answers up or down. A BFD-like liveness check that also carries
// readiness (snapshot installed, NATS reachable): a director that answers nothing or "down" leaves the ECMP route.

/** UDP port tsvsd answers probes on (tsvsd --probe-port), on every address of the director. */
export const DEFAULT_PROBE_PORT = 7790;

/** First bytes of a request and of a reply ("TSVSPRB1"). */
const MAGIC = [0x54, 0x53, 0x56, 0x53, 0x50, 0x52, 0x42, 0x31] as const;

/** Request: magic (8 B) + sequence (u32 BE) = 12 bytes. */
export const PROBE_REQUEST_BYTES = 12;
/** Reply: magic (8) + sequence (u32 BE) + state (u8: 1 up, 0 down) + name length (u8) + name (≤ 64 B, ASCII). */
export const PROBE_REPLY_MAX_BYTES = 8 + 4 + 1 + 1 + 64;

/** A decoded reply. */
export interface ProbeReply {
  seq: number;
  /** True when the director forwards the VIPs now. */
  up: boolean;
  /** The director's node name. */
  node: string;
}

function hasMagic(b: Uint8Array): boolean {
  for (let i = 0; i < MAGIC.length; i++) if (b[i] !== MAGIC[i]) return false;
  return true;
}

/** A request carrying `seq` (taken modulo 2^32). */
export function encodeProbeRequest(seq: number): Uint8Array {
  const b = new Uint8Array(PROBE_REQUEST_BYTES);
  b.set(MAGIC);
  new DataView(b.buffer).setUint32(8, seq >>> 0);
  return b;
}

/** The sequence of a request, or null when `b` is not one (wrong size or magic). */
export function decodeProbeRequest(b: Uint8Array): number | null {
  if (b.length !== PROBE_REQUEST_BYTES || !hasMagic(b)) return null;
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(8);
}

/** A reply to request `seq`. `node` is cut to 64 ASCII characters (other characters become '?'). */
export function encodeProbeReply(seq: number, up: boolean, node: string): Uint8Array {
  const name = node.slice(0, 64);
  const b = new Uint8Array(14 + name.length);
  b.set(MAGIC);
  new DataView(b.buffer).setUint32(8, seq >>> 0);
  b[12] = up ? 1 : 0;
  b[13] = name.length;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    b[14 + i] = c >= 0x20 && c < 0x7f ? c : 0x3f;
  }
  return b;
}

/** A decoded reply, or null when `b` is not a well-formed one. */
export function decodeProbeReply(b: Uint8Array): ProbeReply | null {
  if (b.length < 14 || b.length > PROBE_REPLY_MAX_BYTES || !hasMagic(b)) return null;
  const state = b[12];
  const len = b[13];
  if ((state !== 0 && state !== 1) || b.length !== 14 + len) return null;
  let node = '';
  for (let i = 0; i < len; i++) node += String.fromCharCode(b[14 + i]);
  return { seq: new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(8), up: state === 1, node };
}
