// Address text ↔ number conversions for configuration and tests (not for the per-packet path: they allocate).

/** Dotted quad → uint32 (1.2.3.4 → 0x01020304), or -1 if `s` is not a canonical IPv4 address. */
export function ipv4ToU32(s: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return -1;
  let v = 0;
  for (let i = 1; i <= 4; i++) {
    const o = Number(m[i]);
    if (o > 255 || (m[i].length > 1 && m[i][0] === '0')) return -1;
    v = v * 256 + o;
  }
  return v;
}

/** uint32 → dotted quad. */
export function u32ToIpv4(v: number): string {
  return `${(v >>> 24) & 255}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
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
