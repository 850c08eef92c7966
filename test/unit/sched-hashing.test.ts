// sched: the table schedulers dh, sh and mh: table fill, lookups, fallback, ports, rebuild rules.
import { describe, expect, it } from 'vitest';
import { SvcFlag } from '../../shared/model/ipvs.ts';
import { createScheduler } from '../../shared/sched/index.ts';
import type { DestView, Scheduler } from '../../shared/sched/index.ts';
import { DestinationHashing, MaglevHashing, SourceHashing, mhHash } from '../../shared/sched/hashing.ts';
import { MH_KEY1, MH_KEY2, hash32 } from '../../shared/sched/hash.ts';
import { dest, dests, pkt, renumber } from '../support/sched.ts';

function make<T extends Scheduler>(name: string, ds: DestView[], flags = 0, mhTableSize?: number): T {
  const s = createScheduler(name, { flags, mhTableSize });
  if (!s) throw new Error(name);
  s.update(ds, { kind: 'init' });
  return s as T;
}

const counts = (table: Int32Array, n: number): number[] => {
  const c = new Array<number>(n).fill(0);
  for (const x of table) if (x >= 0) c[x]++;
  return c;
};

describe('sched dh', () => {
  it('sched: dh fills buckets cyclically in list order, ignoring weights', () => {
    const ds = dests([5, 1, 1]);
    const s = make<DestinationHashing>('dh', ds);
    expect(Array.from(s.table.slice(0, 7))).toEqual([0, 1, 2, 0, 1, 2, 0]);
  });
  it('sched: dh keeps a client (destination address) on one server', () => {
    const ds = dests([1, 1, 1, 1]);
    const s = make<DestinationHashing>('dh', ds);
    const daddr = 0xc0a80a07;
    const want = hash32(daddr, 8) % 4;
    for (let i = 0; i < 20; i++) expect(s.schedule(ds, pkt({ daddr, saddr: i, sport: 1000 + i }), 0)).toBe(want);
  });
  it('sched: dh is rebuilt on add/delete but not on edit, and has no fallback', () => {
    const ds = dests([1, 1]);
    const s = make<DestinationHashing>('dh', ds);
    const daddr = 7;
    const b = hash32(daddr, 8);
    const before = s.schedule(ds, pkt({ daddr }), 0);
    ds[before].weight = 0;
    s.update(ds, { kind: 'edit', at: before });
    expect(s.table[b]).toBe(b % 2);
    expect(s.schedule(ds, pkt({ daddr }), 0)).toBe(-1);
    const grown = renumber([dest(0, 1), ...ds]);
    s.update(grown, { kind: 'add', at: 0 });
    expect(s.table[b]).toBe(b % 3);
  });
  it('sched: dh returns -1 for an unavailable or overloaded bucket owner', () => {
    const ds = dests([1]);
    const s = make<DestinationHashing>('dh', ds);
    ds[0].overloaded = true;
    expect(s.schedule(ds, pkt({ daddr: 1 }), 0)).toBe(-1);
    ds[0].overloaded = false;
    ds[0].available = false;
    expect(s.schedule(ds, pkt({ daddr: 1 }), 0)).toBe(-1);
  });
});

describe('sched sh', () => {
  it('sched: sh weights replicate consecutive buckets: [2,1] gives A A B A A B ...', () => {
    const s = make<SourceHashing>('sh', dests([2, 1]));
    expect(Array.from(s.table.slice(0, 9))).toEqual([0, 0, 1, 0, 0, 1, 0, 0, 1]);
    expect(counts(s.table, 2)).toEqual([171, 85]);
  });
  it('sched: sh weight 0 still takes one bucket', () => {
    const s = make<SourceHashing>('sh', dests([0, 2]));
    expect(Array.from(s.table.slice(0, 6))).toEqual([0, 1, 1, 0, 1, 1]);
  });
  it('sched: sh with Σweights > 256 leaves later dests without buckets', () => {
    const s = make<SourceHashing>('sh', dests([200, 100]));
    expect(counts(s.table, 2)).toEqual([200, 56]);
  });
  it('sched: sh keys on the source address; sh-port adds the source port', () => {
    const ds = dests(new Array<number>(16).fill(1));
    const plain = make<SourceHashing>('sh', ds);
    const withPort = make<SourceHashing>('sh', ds, SvcFlag.SCHED2);
    const saddr = 0x0a010203;
    const b = hash32(saddr, 8);
    const seen = new Set<number>();
    for (let port = 1000; port < 1032; port++) {
      expect(plain.schedule(ds, pkt({ saddr, sport: port }), 0)).toBe(b % 16);
      const pb = hash32((saddr + port) >>> 0, 8);
      expect(withPort.schedule(ds, pkt({ saddr, sport: port }), 0)).toBe(pb % 16);
      seen.add(pb % 16);
    }
    expect(seen.size).toBeGreaterThan(1);
  });
  it('sched: sh without fallback returns -1 for a quiesced owner; sh-fallback probes deterministically', () => {
    const ds = dests(new Array<number>(8).fill(1));
    const saddr = 0x0a000063;
    const ih = hash32(saddr, 8);
    const owner = ih % 8;
    ds[owner].weight = 0;
    const plain = make<SourceHashing>('sh', ds);
    expect(plain.schedule(ds, pkt({ saddr }), 0)).toBe(-1);
    const fb = make<SourceHashing>('sh', ds, SvcFlag.SCHED1);
    // Probe o = 0..255: bucket (((o + ih) % 256) + ih) & 255, first available owner.
    let want = -1;
    for (let o = 0; o < 256 && want < 0; o++) {
      const d = fb.table[(((o + ih) % 256) + ih) & 255];
      if (ds[d].weight > 0 && !ds[d].overloaded) want = d;
    }
    expect(want).toBeGreaterThanOrEqual(0);
    expect(want).not.toBe(owner);
    for (let i = 0; i < 3; i++) expect(fb.schedule(ds, pkt({ saddr, sport: i }), 0)).toBe(want);
  });
  it('sched: sh-fallback gives -1 when every dest is unavailable', () => {
    const ds = dests([1, 1]);
    for (const d of ds) d.overloaded = true;
    const fb = make<SourceHashing>('sh', ds, SvcFlag.SCHED1);
    expect(fb.schedule(ds, pkt({ saddr: 5 }), 0)).toBe(-1);
  });
});

/** Straightforward Maglev fill from the kernel description, with its own gcd/turns, for comparison. */
function mhReference(ds: DestView[], M: number, tabBits: number): number[] {
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  const ws = ds.map((d) => d.lastWeight);
  const g = ws.filter((w) => w > 0).reduce((a, b) => gcd(a, b), 0);
  const table = new Array<number>(M).fill(-1);
  if (g < 1) return table;
  const mw = Math.max(...ws) / g;
  const rshift = Math.max(Math.floor(Math.log2(Math.floor(mw))) + 1 - tabBits, 0);
  const setup = ds.map((d) => ({
    perm: mhHash(d.addr, d.port, 0, MH_KEY1) % M,
    skip: (mhHash(d.addr, d.port, 0, MH_KEY2) % (M - 1)) + 1,
    turns: Math.floor(Math.floor(d.lastWeight / g) / 2 ** rshift) || (d.lastWeight !== 0 ? 1 : 0),
  }));
  let n = 0;
  for (;;) {
    for (let i = 0; i < ds.length; i++) {
      for (let t = 0; t < setup[i].turns; t++) {
        while (table[setup[i].perm] !== -1) setup[i].perm = (setup[i].perm + setup[i].skip) % M;
        table[setup[i].perm] = i;
        if (++n === M) return table;
      }
    }
  }
}

describe('sched mh', () => {
  it('sched: mh default table size is 4093 and the table matches a straightforward Maglev fill', () => {
    const ds = dests([1, 1, 1, 1, 1]);
    const s = make<MaglevHashing>('mh', ds);
    expect(s.size).toBe(4093);
    expect(Array.from(s.table)).toEqual(mhReference(ds, 4093, 6));
    const w = dests([3, 1, 7, 2]);
    const sw = make<MaglevHashing>('mh', w, 0, 251);
    expect(Array.from(sw.table)).toEqual(mhReference(w, 251, 4));
    // max/gcd = 200 needs 8 bits > IP_VS_MH_TAB_BITS 6: rshift 2, turns 50, 1 (3 >> 2 = 0 but non-zero), 25.
    const big = dests([200, 3, 100]);
    const sb = make<MaglevHashing>('mh', big);
    expect(Array.from(sb.table)).toEqual(mhReference(big, 4093, 6));
    expect(counts(sb.table, 3)[1]).toBeLessThan(60);
  });
  it('sched: mh with equal weights gives each backend M/N ± 1 slots', () => {
    for (const n of [3, 7, 10, 64]) {
      const ds = dests(new Array<number>(n).fill(1));
      const s = make<MaglevHashing>('mh', ds);
      for (const c of counts(s.table, n)) {
        expect(c).toBeGreaterThanOrEqual(Math.floor(4093 / n) - 1);
        expect(c).toBeLessThanOrEqual(Math.ceil(4093 / n) + 1);
      }
    }
  });
  it('sched: mh turns follow lastWeight/gcd: [2,1] splits 2729/1364', () => {
    const s = make<MaglevHashing>('mh', dests([4, 2]));
    expect(counts(s.table, 2)).toEqual([2729, 1364]);
  });
  it('sched: mh weight-0 dest keeps its slots (lastWeight) and returns -1 without fallback', () => {
    const ds = dests([1, 1, 1]);
    const s = make<MaglevHashing>('mh', ds);
    const before = Array.from(s.table);
    ds[1].weight = 0; // lastWeight stays 1
    s.update(ds, { kind: 'edit', at: 1 });
    expect(Array.from(s.table)).toEqual(before);
    let hitQuiesced = 0;
    for (let saddr = 1; saddr < 200; saddr++) {
      const slot = mhHash(saddr, 0, 0, MH_KEY1) % 4093;
      const r = s.schedule(ds, pkt({ saddr }), 0);
      if (before[slot] === 1) {
        hitQuiesced++;
        expect(r).toBe(-1);
      } else expect(r).toBe(before[slot]);
    }
    expect(hitQuiesced).toBeGreaterThan(0);
  });
  it('sched: mh-fallback moves clients of a quiesced dest deterministically and leaves others alone', () => {
    const ds = dests([1, 1, 1]);
    ds[1].weight = 0;
    const s = make<MaglevHashing>('mh', ds, SvcFlag.SCHED1);
    for (let saddr = 1; saddr < 200; saddr++) {
      const ih = mhHash(saddr, 0, 0, MH_KEY1) % 4093;
      let want = s.table[ih];
      if (want === 1) {
        want = -1;
        for (let o = 0; o < 4093 && want < 0; o++) {
          const d = s.table[mhHash(saddr, 0, (o + ih) % 4093, MH_KEY1) % 4093];
          if (d !== 1) want = d;
        }
      }
      expect(s.schedule(ds, pkt({ saddr }), 0)).toBe(want);
      expect(s.schedule(ds, pkt({ saddr }), 0)).toBe(want);
    }
  });
  it('sched: mh-port hashes the source port too', () => {
    const ds = dests(new Array<number>(8).fill(1));
    const plain = make<MaglevHashing>('mh', ds);
    const port = make<MaglevHashing>('mh', ds, SvcFlag.SCHED2);
    const saddr = 0x0a0a0a0a;
    const seen = new Set<number>();
    for (let sport = 1; sport < 40; sport++) {
      expect(plain.schedule(ds, pkt({ saddr, sport }), 0)).toBe(plain.table[mhHash(saddr, 0, 0, MH_KEY1) % 4093]);
      const r = port.schedule(ds, pkt({ saddr, sport }), 0);
      expect(r).toBe(port.table[mhHash(saddr, sport, 0, MH_KEY1) % 4093]);
      seen.add(r);
    }
    expect(seen.size).toBeGreaterThan(1);
  });
  it('sched: mh with no positive lastWeight has an empty table; more dests than slots is rejected', () => {
    const ds = dests([0, 0]);
    ds[0].lastWeight = 0;
    ds[1].lastWeight = 0;
    const s = make<MaglevHashing>('mh', ds);
    expect(s.schedule(ds, pkt({ saddr: 1 }), 0)).toBe(-1);
    const big = dests(new Array<number>(252).fill(1));
    expect(() => make('mh', big, 0, 251)).toThrow(RangeError);
    expect(() => createScheduler('mh', { flags: 0, mhTableSize: 4095 })).toThrow(RangeError);
  });
});

describe('sched tables never throw', () => {
  it('sched: dh, sh and mh return -1 (never throw) for a slot past a list shrunk without update()', () => {
    for (const name of ['dh', 'sh', 'mh']) {
      const ds = dests([1, 1, 1, 1]);
      const s = make(name, ds, SvcFlag.SCHED1);
      const shrunk = ds.slice(0, 1);
      for (let a = 0; a < 64; a++) {
        const r = s.schedule(shrunk, pkt({ saddr: a * 7919, daddr: a * 104729 }), 0);
        expect([-1, 0]).toContain(r);
      }
    }
  });
});
