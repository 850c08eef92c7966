// sched: the kernel hashes (hash_32, 64-bit hsiphash) against an independent BigInt SipHash and hex vectors.
import { describe, expect, it } from 'vitest';
import { MH_KEY1, MH_KEY2, foldIPv6, hash32, hsiphash32 } from '../../shared/sched/hash.ts';
import type { HsipKey } from '../../shared/sched/hash.ts';
import { mulberry32 } from '../support/sched.ts';

const M64 = (1n << 64n) - 1n;
const rotl = (x: bigint, b: bigint): bigint => ((x << b) | (x >> (64n - b))) & M64;

/** Textbook SipHash-c-d over bytes with 64-bit key words k0, k1 (Aumasson & Bernstein), in BigInt. */
function sipRef(c: number, d: number, k0: bigint, k1: bigint, msg: Uint8Array): bigint {
  let v0 = 0x736f6d6570736575n ^ k0;
  let v1 = 0x646f72616e646f6dn ^ k1;
  let v2 = 0x6c7967656e657261n ^ k0;
  let v3 = 0x7465646279746573n ^ k1;
  const round = (): void => {
    v0 = (v0 + v1) & M64; v1 = rotl(v1, 13n); v1 ^= v0; v0 = rotl(v0, 32n);
    v2 = (v2 + v3) & M64; v3 = rotl(v3, 16n); v3 ^= v2;
    v0 = (v0 + v3) & M64; v3 = rotl(v3, 21n); v3 ^= v0;
    v2 = (v2 + v1) & M64; v1 = rotl(v1, 17n); v1 ^= v2; v2 = rotl(v2, 32n);
  };
  const whole = msg.length - (msg.length % 8);
  const word = (off: number, n: number): bigint => {
    let m = 0n;
    for (let i = n - 1; i >= 0; i--) m = (m << 8n) | BigInt(msg[off + i]);
    return m;
  };
  for (let off = 0; off < whole; off += 8) {
    const m = word(off, 8);
    v3 ^= m;
    for (let i = 0; i < c; i++) round();
    v0 ^= m;
  }
  const b = (BigInt(msg.length & 0xff) << 56n) | word(whole, msg.length - whole);
  v3 ^= b;
  for (let i = 0; i < c; i++) round();
  v0 ^= b;
  v2 ^= 0xffn;
  for (let i = 0; i < d; i++) round();
  return v0 ^ v1 ^ v2 ^ v3;
}

function hsipRef(v: number, key: HsipKey): number {
  const k0 = (BigInt(key.k0hi) << 32n) | BigInt(key.k0lo);
  const k1 = (BigInt(key.k1hi) << 32n) | BigInt(key.k1lo);
  const msg = new Uint8Array(4);
  new DataView(msg.buffer).setUint32(0, v >>> 0, true);
  return Number(sipRef(1, 3, k0, k1, msg) & 0xffffffffn);
}

const hex = (x: number): string => x.toString(16).padStart(8, '0');

describe('sched hashes', () => {
  it('sched: the BigInt reference reproduces the SipHash-2-4 paper vectors', () => {
    const k0 = 0x0706050403020100n;
    const k1 = 0x0f0e0d0c0b0a0908n;
    expect(sipRef(2, 4, k0, k1, new Uint8Array(0)).toString(16)).toBe('726fdb47dd0e0e31');
    expect(sipRef(2, 4, k0, k1, Uint8Array.from({ length: 15 }, (_, i) => i)).toString(16)).toBe('a129ca6149be45e5');
  });

  it('sched: hsiphash32 equals the reference SipHash-1-3 (low 32 bits) on 2000 random inputs and keys', () => {
    const rnd = mulberry32(42);
    const u32 = (): number => Math.floor(rnd() * 2 ** 32) >>> 0;
    for (let i = 0; i < 2000; i++) {
      const key: HsipKey = { k0hi: u32(), k0lo: u32(), k1hi: u32(), k1lo: u32() };
      const v = u32();
      expect(hex(hsiphash32(v, key))).toBe(hex(hsipRef(v, key)));
    }
    for (const v of [0, 1, 0xffffffff, 0x0a000001 + 80]) {
      expect(hex(hsiphash32(v, MH_KEY1))).toBe(hex(hsipRef(v, MH_KEY1)));
      expect(hex(hsiphash32(v, MH_KEY2))).toBe(hex(hsipRef(v, MH_KEY2)));
    }
  });

  it('sched: mh hash vectors in hex (hsiphash with the kernel\'s fixed keys)', () => {
    // v = 10.0.0.1 + port 80 (host order, uint32 sum), and a few edge values; checked against the reference above.
    const v1 = (0x0a000001 + 80) >>> 0;
    const got = [0, 1, v1, 0xffffffff].map((v) => `${hex(hsiphash32(v, MH_KEY1))}/${hex(hsiphash32(v, MH_KEY2))}`);
    const want = [0, 1, v1, 0xffffffff].map((v) => `${hex(hsipRef(v, MH_KEY1))}/${hex(hsipRef(v, MH_KEY2))}`);
    expect(got).toEqual(want);
    expect(got).toEqual(['1d5a77c2/f882433f', '16ec66b2/8210aad1', '439c0cbe/97b3dc47', '22c5d719/f75a0f5d']);
  });

  it('sched: hash_32 is the top bits of v * 0x61C88647 mod 2^32', () => {
    for (const v of [0, 1, 0x0a000001, 0xffffffff, 0xc0a80101]) {
      const ref = Number(((BigInt(v) * 0x61c88647n) & 0xffffffffn) >> 22n);
      expect(hash32(v, 10)).toBe(ref);
      expect(hash32(v, 8)).toBe(ref >> 2);
    }
    expect(hex(hash32(0x0a000001, 32))).toBe(hex(Number((0x0a000001n * 0x61c88647n) & 0xffffffffn)));
  });

  it('sched: IPv6 folds by XOR of the four words', () => {
    expect(foldIPv6(0x20010db8, 0, 0, 1)).toBe((0x20010db8 ^ 1) >>> 0);
  });
});
