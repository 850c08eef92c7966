// The kernel hashes the schedulers use: hash_32 (include/linux/hash.h) and 64-bit hsiphash (lib/siphash.c).

/** GOLDEN_RATIO_32 of include/linux/hash.h. */
const GOLDEN_RATIO_32 = 0x61c88647;

/**
 * `hash_32(v, bits)`: the top `bits` bits of the 32-bit product `v * 0x61C88647`. `v` is taken as uint32;
 * `bits` is 1..32. Used by dh and sh (8 bits) and by lblc/lblcr (10 bits).
 */
export function hash32(v: number, bits: number): number {
  return (Math.imul(v >>> 0, GOLDEN_RATIO_32) >>> 0) >>> (32 - bits);
}

/**
 * Folds an IPv6 address given as four host-order uint32 words into the 32-bit value the kernel hashes
 * (`ip6[0] ^ ip6[1] ^ ip6[2] ^ ip6[3]`, then `ntohl`; XOR commutes with the byte swap).
 */
export function foldIPv6(w0: number, w1: number, w2: number, w3: number): number {
  return (w0 ^ w1 ^ w2 ^ w3) >>> 0;
}

/**
 * A 64-bit-kernel hsiphash key: two `unsigned long` words, each given as high and low 32-bit halves.
 * mh's keys are small (< 2^32), so their high halves are 0.
 */
export interface HsipKey {
  readonly k0hi: number;
  readonly k0lo: number;
  readonly k1hi: number;
  readonly k1lo: number;
}

/** mh's fixed hash1 key {2654435761, 2654435761} (ip_vs_mh.c generate_hash_secret). */
export const MH_KEY1: HsipKey = { k0hi: 0, k0lo: 2654435761, k1hi: 0, k1lo: 2654435761 };
/** mh's fixed hash2 key {2654446892, 2654446892}. */
export const MH_KEY2: HsipKey = { k0hi: 0, k0lo: 2654446892, k1hi: 0, k1lo: 2654446892 };

/**
 * `hsiphash(&v, 4, key)` as a 64-bit kernel computes it: SipHash-1-3 over the 4-byte little-endian value
 * `v` (uint32), truncated to the low 32 bits of `(v0 ^ v1) ^ (v2 ^ v3)`. Allocation-free: the 64-bit state
 * lives in eight local 32-bit halves (aN high, bN low); round r = 0 is the compression round, 1..3 finalise.
 */
export function hsiphash32(v: number, key: HsipKey): number {
  // PREAMBLE: "somepseudorandomlygeneratedbytes" ^ key
  let a0 = (0x736f6d65 ^ key.k0hi) >>> 0, b0 = (0x70736575 ^ key.k0lo) >>> 0;
  let a1 = (0x646f7261 ^ key.k1hi) >>> 0, b1 = (0x6e646f6d ^ key.k1lo) >>> 0;
  let a2 = (0x6c796765 ^ key.k0hi) >>> 0, b2 = (0x6e657261 ^ key.k0lo) >>> 0;
  let a3 = (0x74656462 ^ key.k1hi) >>> 0, b3 = (0x79746573 ^ key.k1lo) >>> 0;
  // The only message word: b = (len << 56) | le32(v), len = 4.
  const mhi = 0x04000000;
  const mlo = v >>> 0;
  a3 = (a3 ^ mhi) >>> 0;
  b3 = (b3 ^ mlo) >>> 0;
  let lo: number, t: number;
  for (let r = 0; r < 4; r++) {
    if (r === 1) {
      a0 = (a0 ^ mhi) >>> 0;
      b0 = (b0 ^ mlo) >>> 0;
      b2 = (b2 ^ 0xff) >>> 0;
    }
    // v0 += v1; v1 = rol64(v1, 13) ^ v0; v0 = rol64(v0, 32)
    lo = (b0 + b1) >>> 0; a0 = (a0 + a1 + (lo < b0 ? 1 : 0)) >>> 0; b0 = lo;
    t = a1; a1 = ((a1 << 13) | (b1 >>> 19)) ^ a0; b1 = ((b1 << 13) | (t >>> 19)) ^ b0;
    t = a0; a0 = b0; b0 = t;
    // v2 += v3; v3 = rol64(v3, 16) ^ v2
    lo = (b2 + b3) >>> 0; a2 = (a2 + a3 + (lo < b2 ? 1 : 0)) >>> 0; b2 = lo;
    t = a3; a3 = ((a3 << 16) | (b3 >>> 16)) ^ a2; b3 = ((b3 << 16) | (t >>> 16)) ^ b2;
    a1 >>>= 0; b1 >>>= 0; a3 >>>= 0; b3 >>>= 0;
    // v0 += v3; v3 = rol64(v3, 21) ^ v0
    lo = (b0 + b3) >>> 0; a0 = (a0 + a3 + (lo < b0 ? 1 : 0)) >>> 0; b0 = lo;
    t = a3; a3 = (((a3 << 21) | (b3 >>> 11)) ^ a0) >>> 0; b3 = (((b3 << 21) | (t >>> 11)) ^ b0) >>> 0;
    // v2 += v1; v1 = rol64(v1, 17) ^ v2; v2 = rol64(v2, 32)
    lo = (b2 + b1) >>> 0; a2 = (a2 + a1 + (lo < b2 ? 1 : 0)) >>> 0; b2 = lo;
    t = a1; a1 = (((a1 << 17) | (b1 >>> 15)) ^ a2) >>> 0; b1 = (((b1 << 17) | (t >>> 15)) ^ b2) >>> 0;
    t = a2; a2 = b2; b2 = t;
  }
  return (b0 ^ b1 ^ b2 ^ b3) >>> 0;
}
