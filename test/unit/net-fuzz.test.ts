// net fuzz: 100k random, truncated and bit-flipped frames through every parser and rewriter never throw, always
// return a known verdict, and a rewrite that says OK leaves a packet that parses again.
import { describe, expect, it } from 'vitest';
import { NET_VERDICT_COUNT, NetVerdict } from '../../shared/net/verdict.ts';
import { PacketMeta, parseFrame } from '../../shared/net/parse.ts';
import { decTtl, encapGue, encapIpip, finishPartial, natIcmpIn, natIcmpOut, natIn, natOut, setMacs } from '../../shared/net/rewrite.ts';
import { ArpMeta, parseArp } from '../../shared/net/arp.ts';
import { decapGue, decapIpip } from '../../shared/net/tunnel.ts';
import { goldenCases } from '../support/golden-cases.ts';
import { mulberry32U32 } from '../../shared/util/rng.ts';

/** Seeded uint32s so failures reproduce. */
const rng = mulberry32U32;

const known = (v: number): boolean => Number.isInteger(v) && v >= 0 && v < NET_VERDICT_COUNT;

describe('net fuzz', () => {
  it('net fuzz: 100k random/truncated/mutated frames never throw and always get a verdict', () => {
    const r = rng(0xc0ffee);
    const seeds = goldenCases().flatMap((c) => [c.input, c.expected]).map((b) => Uint8Array.from(b));
    const m = new PacketMeta();
    const m2 = new PacketMeta();
    const a = new ArpMeta();
    const buf = new Uint8Array(2048);
    const out = new Uint8Array(2048);
    const mac = Uint8Array.from([2, 0, 0, 0, 0, 9]);
    let ok = 0;
    let reparsed = 0;
    for (let n = 0; n < 100_000; n++) {
      let len: number;
      const kind = n % 4;
      if (kind === 0) {
        len = r() % 200;
        for (let i = 0; i < len; i++) buf[i] = r() & 255;
        if (len > 14 && r() & 1) {
          buf[12] = 8;
          buf[13] = 0;
          buf[14] = 0x40 | (r() & 15);
        }
      } else {
        const s = seeds[r() % seeds.length];
        buf.set(s);
        len = s.length;
        if (kind === 1) len = r() % (s.length + 1);
        else {
          const flips = 1 + (r() % 4);
          for (let i = 0; i < flips; i++) buf[r() % s.length] ^= 1 << (r() & 7);
          if (kind === 3) len = r() % (s.length + 1);
        }
      }
      const v = parseFrame(buf, len, m);
      expect(known(v)).toBe(true);
      expect(known(parseArp(buf, len, a))).toBe(true);
      expect(known(decapIpip(buf.subarray(14), Math.max(0, len - 14), m2))).toBe(true);
      expect(known(decapGue(buf.subarray(42), Math.max(0, len - 42), m2))).toBe(true);
      if (v !== NetVerdict.OK) continue;
      ok++;
      const partial = (r() & 1) === 1;
      let rv: number;
      switch (r() % 8) {
        case 0: rv = natIn(buf, m, r(), r() & 0xffff, partial); break;
        case 1: rv = natOut(buf, m, r(), r() & 0xffff, partial); break;
        case 2: rv = natIcmpOut(buf, m, r(), r() & 0xffff); break;
        case 3: rv = natIcmpIn(buf, m, r(), r() & 0xffff); break;
        case 4: rv = decTtl(buf, m); setMacs(buf, mac, mac); break;
        case 5: rv = encapIpip(buf, m, out, r() % 2100 - 20, r(), r(), r() & 255); break;
        case 6: rv = encapGue(buf, m, out, 14, r(), r(), r() & 0xffff, 6080, partial, 0); break;
        default: finishPartial(buf, m); rv = NetVerdict.OK;
      }
      expect(known(rv)).toBe(true);
      if (rv === NetVerdict.OK) {
        const again = parseFrame(buf, len, m2);
        expect(again).toBe(NetVerdict.OK);
        reparsed++;
      }
    }
    expect(ok).toBeGreaterThan(1000);
    expect(reparsed).toBeGreaterThan(500);
  });
});
