// IPv4 address text ⇄ host-order uint32, without allocation on the numeric side.

/** Parses a dotted quad to a host-order uint32, or undefined when it is not one. */
export function ipv4ToInt(s: string): number | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    v = v * 256 + n;
  }
  return v >>> 0;
}

/** Formats a host-order uint32 as a dotted quad. */
export function intToIpv4(v: number): string {
  return `${(v >>> 24) & 255}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/** Prefix length → host-order mask (0..32). */
export function prefixToMask(len: number): number {
  return len <= 0 ? 0 : len >= 32 ? 0xffffffff : (0xffffffff << (32 - len)) >>> 0;
}
