// net checksum: full sums against the reference, RFC 1624 incremental updates against full recomputes, and the
// CHECKSUM_PARTIAL variant against the pseudo-header sum of the new header.
import { describe, expect, it } from 'vitest';
import { csumFold, csumReplace16, csumReplace32, inetChecksum, partialReplace16, partialReplace32, pseudoHeaderSum } from '../../shared/net/checksum.ts';
import { refChecksum, refSum } from '../support/packet-ref.ts';
import { mulberry32U32 } from '../../shared/util/rng.ts';

/** Seeded uint32s so failures reproduce. */
const rng = mulberry32U32;

describe('net checksum', () => {
  it('net checksum: RFC 1071 example words sum to 0xddf2', () => {
    const b = Uint8Array.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
    expect(csumFold(0x0001 + 0xf203 + 0xf4f5 + 0xf6f7)).toBe(0xddf2);
    expect(inetChecksum(b, 0, b.length)).toBe(~0xddf2 & 0xffff);
  });

  it('net checksum: full checksum equals the reference for random lengths, odd ones included', () => {
    const r = rng(7);
    for (let n = 0; n < 2000; n++) {
      const b = Uint8Array.from({ length: r() % 300 }, () => r() & 255);
      expect(inetChecksum(b, 0, b.length)).toBe(refChecksum(b));
    }
  });

  it('net checksum: 16- and 32-bit incremental updates verify like a full recompute', () => {
    const r = rng(11);
    for (let n = 0; n < 20000; n++) {
      const b = Uint8Array.from({ length: 2 * (4 + (r() % 20)) }, () => r() & 255);
      b[0] = 0;
      b[1] = 0;
      const c = inetChecksum(b, 0, b.length);
      b[0] = c >> 8;
      b[1] = c & 255;
      const at = 2 + 2 * (r() % (b.length / 2 - 3));
      if (n & 1) {
        const from = (b[at] << 8) | b[at + 1];
        const to = r() & 0xffff;
        b[at] = to >> 8;
        b[at + 1] = to & 255;
        const nc = csumReplace16(c, from, to);
        b[0] = nc >> 8;
        b[1] = nc & 255;
      } else {
        const from = ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
        const to = r();
        b[at] = to >>> 24;
        b[at + 1] = (to >>> 16) & 255;
        b[at + 2] = (to >>> 8) & 255;
        b[at + 3] = to & 255;
        const nc = csumReplace32(c, from, to);
        b[0] = nc >> 8;
        b[1] = nc & 255;
      }
      expect(refSum(b)).toBe(0xffff);
    }
  });

  it('net checksum: partial updates give the partial sum of the new pseudo-header', () => {
    const r = rng(13);
    for (let n = 0; n < 20000; n++) {
      const s = r();
      const d = r();
      const len = r() & 0xffff;
      const field = csumFold(pseudoHeaderSum(s, d, 6, len));
      const d2 = r();
      const want = refSum([s >>> 24, (s >>> 16) & 255, (s >>> 8) & 255, s & 255, d2 >>> 24, (d2 >>> 16) & 255, (d2 >>> 8) & 255, d2 & 255, 0, 6, len >> 8, len & 255]);
      // One's-complement has two zeros; compare modulo 0xffff.
      expect(partialReplace32(field, d, d2) % 0xffff).toBe(want % 0xffff);
      expect(~csumReplace32(~field & 0xffff, d, d2) & 0xffff).toBe(partialReplace32(field, d, d2));
      const w = d2 & 0xffff;
      expect(partialReplace16(partialReplace16(field, w, w ^ 0x5a5a), w ^ 0x5a5a, w) % 0xffff).toBe(field % 0xffff);
    }
  });
});
