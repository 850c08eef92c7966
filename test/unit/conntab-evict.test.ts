// conntab evictEmbryonic: the oldest half-open TCP entry makes room; established, template-controlled, UDP
// entries and reused slots are never taken for it.
import { describe, expect, it } from 'vitest';
import { ConnTable, destConnFlags } from '../../shared/conntab/conn-table.ts';
import { Dir, TcpState } from '../../shared/conntab/tcp-state.ts';

const SYN = 0x02;
const V = 0x0a00000a;
const D = 0x0a010065;

function syn(t: ConnTable, caddr: number, cport: number, now = 0): number {
  const e = t.insert(6, caddr, cport, V, 80, D, 80, destConnFlags(0), 0, 0, now);
  t.onPacket(e, Dir.INPUT, SYN, now);
  return e;
}

describe('conntab evictEmbryonic', () => {
  it('conntab evict: takes the oldest half-open entry first, skipping established, UDP and controlled ones', () => {
    const t = ConnTable.create(8);
    const est = syn(t, 1, 1000);
    t.setState(est, TcpState.ESTABLISHED, 0);
    const udp = t.insert(17, 2, 53, V, 53, D, 53, destConnFlags(0), 0, 0, 0);
    const ctl = syn(t, 3, 1000);
    const tmpl = t.insertTemplate(6, 3, V, 80, D, 80, destConnFlags(0), 0, 0, 60_000, 0);
    t.control(ctl, tmpl);
    const a = syn(t, 4, 1000);
    const b = syn(t, 5, 1000);
    expect(t.evictEmbryonic()).toBe(a);
    expect(t.isLive(a)).toBe(false);
    expect(t.evictEmbryonic()).toBe(b);
    expect(t.evictEmbryonic()).toBe(-1);
    expect([est, udp, ctl, tmpl].every((e) => t.isLive(e))).toBe(true);
    expect(t.stats().evicted).toBe(2);
    expect(t.size).toBe(4);
  });

  it('conntab evict: a slot reused by a later connection is not evicted through the old record', () => {
    const t = ConnTable.create(4);
    const a = syn(t, 1, 1000);
    t.remove(a);
    const b = syn(t, 2, 2000);
    expect(b).toBe(a);
    const c = syn(t, 3, 3000);
    // The first record names slot a but a different key: skipped; the second (b's own record) is taken.
    expect(t.evictEmbryonic()).toBe(b);
    expect(t.evictEmbryonic()).toBe(c);
  });

  it('conntab evict: finds the half-open entry behind a long run of records whose entries expired', () => {
    const t = ConnTable.create(256);
    // 100 UDP entries (not queued for eviction), 156 half-open TCP entries of which the first 100 go away (expired).
    for (let i = 0; i < 100; i++) t.insert(17, 0x0c000000 + i, 53, V, 53, D, 53, destConnFlags(0), 0, 0, 0);
    const gone = Array.from({ length: 156 }, (_, i) => syn(t, 0x0b000000 + i, 1024));
    for (const e of gone.slice(0, 100)) t.remove(e);
    for (let i = 0; i < 100; i++) syn(t, 0x0d000000 + i, 1024);
    expect(t.size).toBe(256);
    expect(syn(t, 0x0e000000, 1024)).toBe(-1);
    // The queue's head holds 100 records of removed entries; the oldest live half-open entry is the 101st.
    expect(t.evictEmbryonic()).toBe(gone[100]);
    expect(syn(t, 0x0e000000, 1024)).toBeGreaterThanOrEqual(0);
  });

  it('conntab evict: a full table with evictEmbryonic keeps its bound under a stream of half-open entries', () => {
    const t = ConnTable.create(100);
    for (let i = 0; i < 10_000; i++) {
      if (syn(t, 0x0b000000 + i, 1024 + (i & 0x7fff), i) < 0) {
        expect(t.evictEmbryonic()).toBeGreaterThanOrEqual(0);
        expect(syn(t, 0x0b000000 + i, 1024 + (i & 0x7fff), i)).toBeGreaterThanOrEqual(0);
      }
    }
    expect(t.size).toBe(100);
    expect(t.stats().evicted).toBe(9900);
  });
});
