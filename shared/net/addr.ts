// The one IPv4 address text module (dotted quad ⇄ host-order uint32, prefix masks) and MAC text; for config,
// tools and tests, not for the per-packet path (the text side allocates).

/**
 * Parses a canonical dotted quad, as inet_pton(AF_INET) does: exactly four decimal parts 0..255, no leading
 * zeros ("010.0.0.1" is refused), no signs, no whitespace. Returns the address as a host-order uint32
 * (1.2.3.4 → 0x01020304).
 *
 * Failure behaviour (the only one): `undefined` when `s` is not such an address; it never throws. Callers that
 * must refuse bad text say so in their own words (see {@link ipv4FromTextOrThrow} for config and tools).
 * ipvsadm's looser inet_aton grammar ("10.1", "0x0a000001") lives in shared/ipvsadm/names.ts `inetAton`.
 */
export function ipv4FromText(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  let v = 0;
  for (let i = 1; i <= 4; i++) {
    const p = m[i];
    const o = Number(p);
    if (o > 255 || (p.length > 1 && p.charCodeAt(0) === 0x30)) return undefined;
    v = v * 256 + o;
  }
  return v;
}

/** Thrown by {@link ipv4FromTextOrThrow}; `code` is stable. */
export class Ipv4TextError extends RangeError {
  readonly code = 'EIPV4TEXT';
  /** The text that was refused. */
  readonly text: string;
  constructor(text: string, what: string) {
    super(`${what}: not an IPv4 address: ${JSON.stringify(text)}`);
    this.name = 'Ipv4TextError';
    this.text = text;
  }
}

/**
 * {@link ipv4FromText} for config, command lines and tests: the same grammar, but a refusal throws an
 * {@link Ipv4TextError} whose message starts with `what` (e.g. "--vip").
 */
export function ipv4FromTextOrThrow(s: string, what = 'address'): number {
  const v = ipv4FromText(s);
  if (v === undefined) throw new Ipv4TextError(s, what);
  return v;
}

/** Formats a host-order uint32 (any number; only its low 32 bits count) as a dotted quad: 0x01020304 → "1.2.3.4". */
export function ipv4ToText(v: number): string {
  return `${(v >>> 24) & 255}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/** Prefix length (bits, clamped to 0..32) → host-order mask: 24 → 0xffffff00. */
export function prefixToMask(len: number): number {
  return len <= 0 ? 0 : len >= 32 ? 0xffffffff : (0xffffffff << (32 - len)) >>> 0;
}

/** "aa:bb:cc:dd:ee:ff" (or with '-') → 6 bytes, or null if malformed. */
export function parseMac(s: string): Uint8Array | null {
  const parts = s.split(/[:-]/);
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) return null;
  return Uint8Array.from(parts, (p) => parseInt(p, 16));
}

/** 6 bytes at `b[off..off+6)` → "aa:bb:cc:dd:ee:ff". */
export function formatMac(b: Uint8Array, off = 0): string {
  const out: string[] = [];
  for (let i = 0; i < 6; i++) out.push(b[off + i].toString(16).padStart(2, '0'));
  return out.join(':');
}
