// sync ring: SPSC records over an ArrayBuffer — wrap-around, overflow counting, attach checks, record codec.
import { describe, expect, it } from 'vitest';
import { SyncRing, SyncRingError, workerSyncBytes, workerSyncRings } from '../../shared/sync/ring.ts';
import { RECORD_WORDS, RecordOp, readRecord, recordKey, recordProblem, writeRecord, type SyncRecord } from '../../shared/sync/record.ts';

function rec(i: number): SyncRecord {
  return {
    op: RecordOp.UPDATE, proto: 6, state: i % 11, flags: 0x0100, shard: 3, caddr: 0xc6336400 + i, cport: 1024 + (i % 60000),
    vaddr: 0xc000020a, vport: 80, daddr: 0x0a000165, dport: 8080, fwmark: 0, timeoutMs: 900_000, remainingMs: 899_000,
  };
}

describe('sync ring', () => {
  it('sync ring: a record round-trips through its 12 words', () => {
    const w = new Uint32Array(RECORD_WORDS);
    const r = rec(7);
    writeRecord(w, 0, r);
    expect(readRecord(w, 0)).toEqual(r);
    expect(recordProblem(w, 0)).toBeNull();
  });

  it('sync ring: records come out in order across many wraps', () => {
    const buf = new ArrayBuffer(SyncRing.bytes(8));
    const prod = SyncRing.create(buf, 0, 8);
    const cons = SyncRing.attach(buf, 0);
    let next = 0;
    for (let i = 0; i < 1000; i++) {
      expect(prod.pushRecord(rec(i))).toBe(true);
      if (i % 3 === 2) {
        const n = cons.available();
        for (let k = 0; k < n; k++) expect(readRecord(cons.words, cons.offsetAt(k)).caddr).toBe(rec(next++).caddr);
        cons.release(n);
      }
    }
    const dst = new Uint32Array(8 * RECORD_WORDS);
    const n = cons.drainInto(dst, 0, 8);
    for (let k = 0; k < n; k++) expect(readRecord(dst, k * RECORD_WORDS).caddr).toBe(rec(next++).caddr);
    expect(next).toBe(1000);
    expect(prod.stats()).toEqual({ capacity: 8, used: 0, written: 1000, consumed: 1000, dropped: 0 });
  });

  it('sync ring: a full ring drops and counts, never overwrites an unread record', () => {
    const buf = new ArrayBuffer(SyncRing.bytes(4));
    const ring = SyncRing.create(buf, 0, 4);
    for (let i = 0; i < 4; i++) expect(ring.pushRecord(rec(i))).toBe(true);
    expect(ring.pushRecord(rec(99))).toBe(false);
    expect(ring.reserve()).toBe(-1);
    expect(ring.stats().dropped).toBe(2);
    expect(readRecord(ring.words, ring.offsetAt(0)).caddr).toBe(rec(0).caddr);
    ring.release(1);
    expect(ring.pushRecord(rec(4))).toBe(true);
    const dst = new Uint32Array(4 * RECORD_WORDS);
    expect(ring.drainInto(dst, 0, 10)).toBe(4);
    expect([0, 1, 2, 3].map((k) => readRecord(dst, k * RECORD_WORDS).caddr)).toEqual([1, 2, 3, 4].map((i) => rec(i).caddr));
  });

  it('sync ring: pushWords copies what fits and counts the rest as dropped', () => {
    const src = new Uint32Array(6 * RECORD_WORDS);
    for (let i = 0; i < 6; i++) writeRecord(src, i * RECORD_WORDS, rec(i));
    const ring = SyncRing.create(new ArrayBuffer(SyncRing.bytes(4)), 0, 4);
    expect(ring.pushWords(src, 0, 6)).toBe(4);
    expect(ring.stats().dropped).toBe(2);
  });

  it('sync ring: head and tail survive u32 wrap-around', () => {
    const buf = new ArrayBuffer(SyncRing.bytes(4));
    const ring = SyncRing.create(buf, 0, 4);
    const hdr = new Int32Array(buf, 0, 32);
    hdr[8] = -2; // head = 2^32 - 2
    hdr[16] = -2; // tail
    for (let i = 0; i < 4; i++) expect(ring.pushRecord(rec(i))).toBe(true);
    expect(ring.pushRecord(rec(4))).toBe(false);
    expect(ring.available()).toBe(4);
    const dst = new Uint32Array(4 * RECORD_WORDS);
    expect(ring.drainInto(dst, 0, 4)).toBe(4);
    expect(readRecord(dst, 3 * RECORD_WORDS).caddr).toBe(rec(3).caddr);
    expect(ring.available()).toBe(0);
  });

  it('sync ring: create and attach refuse bad capacity, offset, size and headers with a typed error', () => {
    const buf = new ArrayBuffer(4096);
    const code = (f: () => unknown): string => {
      try {
        f();
        return 'none';
      } catch (e) {
        return e instanceof SyncRingError ? e.code : 'other';
      }
    };
    expect(code(() => SyncRing.create(buf, 0, 6))).toBe('bad-capacity');
    expect(code(() => SyncRing.create(buf, 4, 4))).toBe('bad-offset');
    expect(code(() => SyncRing.create(buf, 0, 128))).toBe('too-small');
    expect(code(() => SyncRing.attach(buf, 0))).toBe('bad-magic');
    SyncRing.create(buf, 0, 8);
    new Int32Array(buf)[1] = 9;
    expect(code(() => SyncRing.attach(buf, 0))).toBe('bad-version');
  });

  it('sync ring: a worker segment holds an outbound and an inbound ring that do not overlap', () => {
    const buf = new ArrayBuffer(workerSyncBytes(16));
    const a = workerSyncRings(buf, 16, true);
    const b = workerSyncRings(buf, 16, false);
    a.outbound.pushRecord(rec(1));
    expect(b.inbound.available()).toBe(0);
    expect(b.outbound.available()).toBe(1);
  });

  it('sync record: receivers reject bad op, protocol, state, reserved bits and remaining > timeout', () => {
    const w = new Uint32Array(RECORD_WORDS);
    const bad = (patch: (w: Uint32Array) => void): string | null => {
      writeRecord(w, 0, rec(1));
      patch(w);
      return recordProblem(w, 0);
    };
    expect(bad((x) => (x[0] = (x[0] & ~0xff) | 9))).toBe('op');
    expect(bad((x) => (x[0] = (x[0] & ~0xff00) | (50 << 8)))).toBe('proto');
    expect(bad((x) => (x[0] = (x[0] & ~0xff0000) | (200 << 16)))).toBe('state');
    expect(bad((x) => (x[11] = 1))).toBe('reserved');
    expect(bad((x) => (x[9] = x[8] + 1))).toBe('remaining');
  });

  it('sync record: the key separates connections from templates and ignores state', () => {
    const w = new Uint32Array(2 * RECORD_WORDS);
    writeRecord(w, 0, rec(1));
    writeRecord(w, RECORD_WORDS, { ...rec(1), state: 5, flags: 0x1000 });
    expect(recordKey(w, 0)).not.toBe(recordKey(w, RECORD_WORDS));
    writeRecord(w, RECORD_WORDS, { ...rec(1), state: 5 });
    expect(recordKey(w, 0)).toBe(recordKey(w, RECORD_WORDS));
  });
});
