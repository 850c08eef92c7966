// A slow, obviously-correct reference packet builder for golden tests: builds frames from fields with full
// checksums computed from scratch, independently of shared/net (it shares no code with it).

/** Reference one's-complement sum of 16-bit big-endian words, folded, not complemented. */
export function refSum(bytes: ArrayLike<number>, initial = 0): number {
  let s = initial;
  for (let i = 0; i < bytes.length; i += 2) s += bytes[i] * 256 + (i + 1 < bytes.length ? bytes[i + 1] : 0);
  while (s > 0xffff) s = (s % 0x10000) + Math.floor(s / 0x10000);
  return s;
}

/** Reference internet checksum (complemented). */
export function refChecksum(bytes: ArrayLike<number>, initial = 0): number {
  return 0xffff - refSum(bytes, initial);
}

export function ip(s: string): number[] {
  return s.split('.').map(Number);
}

export function mac(s: string): number[] {
  return s.split(':').map((h) => parseInt(h, 16));
}

function be16(v: number): number[] {
  return [(v >> 8) & 255, v & 255];
}

function pseudo(src: string, dst: string, proto: number, len: number): number {
  return refSum([...ip(src), ...ip(dst), 0, proto, ...be16(len)]);
}

export interface IpSpec {
  src: string;
  dst: string;
  proto: number;
  payload: number[];
  ttl?: number;
  id?: number;
  tos?: number;
  df?: boolean;
  /** Raw flags+fragment field; overrides df. */
  frag?: number;
  options?: number[];
  /** Total length to write (an embedded, truncated header keeps its original length); default the real one. */
  totalLen?: number;
}

export function ipv4(p: IpSpec): number[] {
  const opts = p.options ?? [];
  const ihl = 20 + opts.length;
  const tot = p.totalLen ?? ihl + p.payload.length;
  const frag = p.frag ?? (p.df === false ? 0 : 0x4000);
  const h = [0x40 | (ihl / 4), p.tos ?? 0, ...be16(tot), ...be16(p.id ?? 0x1234), ...be16(frag), p.ttl ?? 64, p.proto, 0, 0, ...ip(p.src), ...ip(p.dst), ...opts];
  const c = refChecksum(h);
  h[10] = c >> 8;
  h[11] = c & 255;
  return [...h, ...p.payload];
}

/** How the L4 checksum field is filled: complete, zero (UDP "none"), or the CHECKSUM_PARTIAL pseudo-header sum. */
export type CsumMode = 'full' | 'zero' | 'partial';

export interface TcpSpec {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  seq?: number;
  ack?: number;
  flags: number;
  window?: number;
  options?: number[];
  payload?: number[];
  csum?: CsumMode;
}

function fillL4(seg: number[], at: number, src: string, dst: string, proto: number, mode: CsumMode): number[] {
  if (mode === 'zero') return seg;
  const ps = pseudo(src, dst, proto, seg.length);
  let c = mode === 'partial' ? ps : refChecksum(seg, ps);
  if (mode === 'full' && proto === 17 && c === 0) c = 0xffff;
  seg[at] = c >> 8;
  seg[at + 1] = c & 255;
  return seg;
}

export function tcp(t: TcpSpec): number[] {
  const opts = t.options ?? [];
  const hl = 20 + opts.length;
  const seq = t.seq ?? 1000;
  const ack = t.ack ?? 0;
  const seg = [
    ...be16(t.sport), ...be16(t.dport),
    (seq >>> 24) & 255, (seq >>> 16) & 255, (seq >>> 8) & 255, seq & 255,
    (ack >>> 24) & 255, (ack >>> 16) & 255, (ack >>> 8) & 255, ack & 255,
    (hl / 4) << 4, t.flags, ...be16(t.window ?? 64240), 0, 0, 0, 0, ...opts, ...(t.payload ?? []),
  ];
  return fillL4(seg, 16, t.src, t.dst, 6, t.csum ?? 'full');
}

export interface UdpSpec {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  payload: number[];
  csum?: CsumMode;
  /** Use this literal checksum value instead (for embedded headers copied verbatim). */
  rawCsum?: number;
}

export function udp(u: UdpSpec): number[] {
  const seg = [...be16(u.sport), ...be16(u.dport), ...be16(8 + u.payload.length), 0, 0, ...u.payload];
  if (u.rawCsum !== undefined) {
    seg[6] = u.rawCsum >> 8;
    seg[7] = u.rawCsum & 255;
    return seg;
  }
  return fillL4(seg, 6, u.src, u.dst, 17, u.csum ?? 'full');
}

export function icmp(type: number, code: number, rest: number[], payload: number[]): number[] {
  const m = [type, code, 0, 0, ...rest, ...payload];
  const c = refChecksum(m);
  m[2] = c >> 8;
  m[3] = c & 255;
  return m;
}

export function eth(dst: string, src: string, type: number, payload: number[], vlanTci?: number): number[] {
  const tag = vlanTci === undefined ? [] : [0x81, 0x00, ...be16(vlanTci)];
  return [...mac(dst), ...mac(src), ...tag, ...be16(type), ...payload];
}

export function toHex(b: ArrayLike<number>): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

export function fromHex(h: string): Uint8Array {
  const s = h.replace(/\s+/g, '');
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}
