// cluster sync protocol: batching with a bounded delay, per-sender sequence numbers, gap → NACK → resend from the
// latest-state queue, resync when the queue cannot answer, stale/restarted senders, and the codec's refusals.
import { describe, expect, it } from 'vitest';
import { LagHistogram, SyncReceiver, SyncSender } from '../../shared/cluster/sync.ts';
import { ClusterCodec, DropReason, MsgKind, recordBytes, recordWords, subjects } from '../../shared/cluster/codec.ts';
import { RECORD_WORDS, RecordOp, readRecord, writeRecord, type SyncRecord } from '../../shared/sync/record.ts';

function rec(i: number, state = 1): SyncRecord {
  return { op: RecordOp.UPDATE, proto: 6, state, flags: 0x0100, shard: 0, caddr: 0x0a000000 + i, cport: 2000 + (i % 1000), vaddr: 0xc000020a, vport: 80, daddr: 0x0a010165, dport: 80, fwmark: 0, timeoutMs: 900_000, remainingMs: 900_000 };
}
function words(rs: SyncRecord[]): Uint32Array {
  const w = new Uint32Array(rs.length * RECORD_WORDS);
  rs.forEach((r, i) => writeRecord(w, i * RECORD_WORDS, r));
  return w;
}
const caddrs = (w: Uint32Array | null): number[] => (w ? Array.from({ length: w.length / RECORD_WORDS }, (_, i) => readRecord(w, i * RECORD_WORDS).caddr - 0x0a000000) : []);
const recvOpts = { nackTimeoutMs: 20, nackTries: 3, maxNackRange: 1000 };

describe('cluster sync', () => {
  it('sync: a batch is sealed when full or when its first record has waited maxDelayMs', () => {
    const s = new SyncSender({ maxBatch: 4, maxDelayMs: 2, resendCapacity: 100 });
    s.add(words([rec(1), rec(2), rec(3), rec(4), rec(5)]), 0, 5, 100);
    let ready = s.takeReady();
    expect(ready.map((b) => [b.seq, b.count])).toEqual([[1, 4]]);
    expect(s.nextDeadline()).toBe(102);
    s.flushDue(101);
    expect(s.takeReady()).toEqual([]);
    s.flushDue(102);
    ready = s.takeReady();
    expect(ready.map((b) => [b.seq, b.count, b.at])).toEqual([[2, 1, 100]]);
    expect(caddrs(ready[0].words)).toEqual([5]);
    expect(s.nextDeadline()).toBe(-1);
  });

  it('sync: in-order batches are installed; a gap asks for the missing range; the resend repairs it', () => {
    const snd = new SyncSender({ maxBatch: 2, maxDelayMs: 1, resendCapacity: 100 });
    const rcv = new SyncReceiver(recvOpts);
    snd.add(words([1, 2, 3, 4, 5, 6].map((i) => rec(i))), 0, 6, 0);
    const [b1, b2, b3] = snd.takeReady();
    expect(caddrs(rcv.onBatch('d1', 7, b1.seq, b1.words, 0).install)).toEqual([1, 2]);
    const fx = rcv.onBatch('d1', 7, b3.seq, b3.words, 1); // b2 lost
    expect(caddrs(fx.install)).toEqual([5, 6]);
    expect(fx.nacks).toEqual([{ to: 'd1', te: 7, a: 2, b: 2 }]);
    const ans = snd.resend(2, 2);
    expect(ans.ok).toBe(true);
    expect(caddrs(ans.words)).toEqual([3, 4]);
    expect(caddrs(rcv.onResend('d1', 7, 2, 2, true, ans.words, 5).install)).toEqual([3, 4]);
    expect(rcv.counters).toMatchObject({ gaps: 1, repaired: 1, resyncs: 0, lost: 0, records: 6 });
    expect(rcv.openGaps()).toBe(0);
    void b2;
  });

  it('sync: a wide gap answered in pieces (each under the payload limit) is repaired piece by piece', () => {
    const snd = new SyncSender({ maxBatch: 1, maxDelayMs: 0, resendCapacity: 100 });
    const rcv = new SyncReceiver(recvOpts);
    snd.add(words([1, 2, 3, 4, 5, 6].map((i) => rec(i))), 0, 6, 0);
    const b = snd.takeReady();
    rcv.onBatch('d1', 7, b[0].seq, b[0].words, 0);
    expect(rcv.onBatch('d1', 7, b[5].seq, b[5].words, 1).nacks).toEqual([{ to: 'd1', te: 7, a: 2, b: 5 }]);
    expect(caddrs(rcv.onResend('d1', 7, 2, 3, true, snd.resend(2, 3).words, 2).install)).toEqual([2, 3]);
    expect(rcv.openGaps()).toBe(1);
    expect(caddrs(rcv.onResend('d1', 7, 4, 5, true, snd.resend(4, 5).words, 3).install)).toEqual([4, 5]);
    expect(rcv.openGaps()).toBe(0);
    expect(rcv.counters).toMatchObject({ gaps: 1, repaired: 1, resyncs: 0, lost: 0, records: 6, stale: 0 });
    // A piece outside any open gap is stale.
    expect(rcv.onResend('d1', 7, 2, 3, true, snd.resend(2, 3).words, 4).install).toBeNull();
    expect(rcv.counters.stale).toBe(1);
  });

  it('sync: the resend queue keeps only the latest state of each entry', () => {
    const snd = new SyncSender({ maxBatch: 1, maxDelayMs: 0, resendCapacity: 100 });
    snd.add(words([rec(1, 3)]), 0, 1, 0); // seq 1: entry 1 in state 3
    snd.add(words([rec(2, 1)]), 0, 1, 0); // seq 2
    snd.add(words([rec(1, 5)]), 0, 1, 0); // seq 3: entry 1 moves to state 5
    snd.takeReady();
    expect(caddrs(snd.resend(1, 1).words)).toEqual([]);
    const r = snd.resend(1, 3);
    expect(caddrs(r.words)).toEqual([2, 1]);
    expect(readRecord(r.words, RECORD_WORDS).state).toBe(5);
  });

  it('sync: a range older than the bounded queue keeps is refused, and the receiver resyncs and counts it lost', () => {
    const snd = new SyncSender({ maxBatch: 1, maxDelayMs: 0, resendCapacity: 2 });
    for (let i = 1; i <= 5; i++) snd.add(words([rec(i)]), 0, 1, 0);
    snd.takeReady();
    expect(snd.queueStats()).toEqual({ entries: 2, floor: 4 });
    expect(snd.resend(2, 3).ok).toBe(false);
    expect(snd.resend(4, 5).ok).toBe(true);
    const rcv = new SyncReceiver(recvOpts);
    rcv.onBatch('d1', 1, 1, words([rec(1)]), 0);
    expect(rcv.onBatch('d1', 1, 4, words([rec(4)]), 0).nacks).toEqual([{ to: 'd1', te: 1, a: 2, b: 3 }]);
    const fx = rcv.onResend('d1', 1, 2, 3, false, new Uint32Array(0), 1);
    expect(fx.resyncs).toEqual(['d1']);
    expect(rcv.counters).toMatchObject({ gaps: 1, resyncs: 1, lost: 2 });
  });

  it('sync: unanswered NACKs are repeated, then turn into a resync', () => {
    const rcv = new SyncReceiver(recvOpts);
    rcv.onBatch('d1', 1, 1, words([rec(1)]), 0);
    rcv.onBatch('d1', 1, 3, words([rec(3)]), 0);
    expect(rcv.tick(10).nacks).toEqual([]);
    expect(rcv.tick(20).nacks).toEqual([{ to: 'd1', te: 1, a: 2, b: 2 }]);
    expect(rcv.tick(40).nacks).toHaveLength(1);
    const fx = rcv.tick(60);
    expect(fx.resyncs).toEqual(['d1']);
    expect(rcv.counters.resyncs).toBe(1);
  });

  it('sync: a gap wider than maxNackRange resyncs at once; a snapshot covers older gaps', () => {
    const rcv = new SyncReceiver({ ...recvOpts, maxNackRange: 10 });
    rcv.onBatch('d1', 1, 1, words([rec(1)]), 0);
    expect(rcv.onBatch('d1', 1, 100, words([rec(2)]), 0).resyncs).toEqual(['d1']);
    rcv.onBatch('d1', 1, 102, words([rec(2)]), 0);
    expect(rcv.openGaps()).toBe(1);
    rcv.onSnapshot('d1', 1, 105);
    expect(rcv.openGaps()).toBe(0);
    expect(rcv.onBatch('d1', 1, 104, words([rec(2)]), 0).install).toBeNull();
    expect(rcv.onBatch('d1', 1, 106, words([rec(2)]), 0).nacks).toEqual([]);
  });

  it('sync: duplicates and an older epoch are stale; a restarted sender (new epoch) starts a new stream', () => {
    const rcv = new SyncReceiver(recvOpts);
    rcv.onBatch('d1', 5, 1, words([rec(1)]), 0);
    rcv.onBatch('d1', 5, 2, words([rec(2)]), 0);
    expect(rcv.onBatch('d1', 5, 2, words([rec(2)]), 0).install).toBeNull();
    expect(rcv.onBatch('d1', 4, 9, words([rec(2)]), 0).install).toBeNull();
    expect(rcv.counters.stale).toBe(2);
    const fx = rcv.onBatch('d1', 6, 1, words([rec(7)]), 0);
    expect(caddrs(fx.install)).toEqual([7]);
    expect(fx.nacks).toEqual([]);
  });

  it('sync: malformed records are dropped one by one and counted; the rest of the batch installs', () => {
    const rcv = new SyncReceiver(recvOpts);
    const w = words([rec(1), rec(2), rec(3)]);
    w[RECORD_WORDS] = 0xff; // bad op in record 2
    expect(caddrs(rcv.onBatch('d1', 1, 1, w, 0).install)).toEqual([1, 3]);
    expect(rcv.counters.malformedRecords).toBe(1);
  });

  it('codec: messages round-trip with pre-shared structures; records survive as bytes', () => {
    const a = new ClusterCodec('lab', 'd1', 11);
    const b = new ClusterCodec('lab', 'd2', 12);
    const w = words([rec(1), rec(2)]);
    const d = b.decode(a.encode(a.batch(3, 1.5, recordBytes(w, 0, 2))));
    expect(d.ok).toBe(true);
    if (!d.ok || d.msg.k !== MsgKind.BATCH) throw new Error('not a batch');
    expect(d.msg).toMatchObject({ c: 'lab', s: 'd1', e: 11, q: 3, at: 1.5 });
    expect(caddrs(recordWords(d.msg.w))).toEqual([1, 2]);
    const hb = b.decode(a.encode(a.heartbeat(1, 1, 4, 17, 'd1', 150, true, false, 99)));
    expect(hb.ok && hb.msg).toMatchObject({ k: MsgKind.HEARTBEAT, r: 1, t: 4, rv: 17, l: 'd1', p: 150, rd: true });
    expect(a.encode(a.heartbeat(1, 1, 4, 17, 'd1', 150, true, false, 99)).length).toBeLessThan(40);
  });

  it('codec: garbage, a foreign cluster, another schema version, wrong field types and own echoes are refused', () => {
    const a = new ClusterCodec('lab', 'd1', 1);
    const other = new ClusterCodec('prod', 'x1', 1);
    const reason = (bytes: Uint8Array): string => {
      const d = a.decode(bytes);
      return d.ok ? 'ok' : d.reason;
    };
    expect(reason(new Uint8Array([0xc1]))).toBe(DropReason.MALFORMED);
    expect(reason(new TextEncoder().encode('hello'))).toBe(DropReason.MALFORMED);
    expect(reason(new Uint8Array([0xd4, 0x40, 0x01]))).toBe(DropReason.MALFORMED);
    expect(reason(other.encode(other.batch(1, 0, new Uint8Array(48))))).toBe(DropReason.FOREIGN);
    expect(reason(a.encode({ ...new ClusterCodec('lab', 'd2', 1).batch(1, 0, new Uint8Array(48)), v: 2 }))).toBe(DropReason.VERSION);
    expect(reason(a.encode({ ...new ClusterCodec('lab', 'd2', 1).batch(1, 0, new Uint8Array(47)) }))).toBe(DropReason.MALFORMED);
    expect(reason(a.encode({ ...new ClusterCodec('lab', 'd2', 1).batch(0, 0, new Uint8Array(48)) }))).toBe(DropReason.MALFORMED);
    expect(reason(a.encode({ ...new ClusterCodec('lab', 'd2', 1).nack('d1', 1, 5, 2) }))).toBe(DropReason.MALFORMED);
    expect(reason(a.encode(a.heartbeat(1, 0, 0, 0, '', 100, true, false, 0)))).toBe(DropReason.SELF);
    expect(subjects('lab').sync).toBe('tsvs.lab.v1.sync');
  });

  it('lag histogram: quantiles at 50 µs resolution', () => {
    const h = new LagHistogram();
    for (let i = 0; i < 99; i++) h.add(0.2);
    h.add(7);
    expect(h.quantile(0.5)).toBe(0.25);
    expect(h.quantile(0.99)).toBe(0.25);
    expect(h.quantile(1)).toBe(7.05);
  });
});

describe('resend queue', () => {
  it('resend queue: matches a reference model over 20k random updates with evictions (latest state, ranges, floor)', async () => {
    const { ResendQueue } = await import('../../shared/cluster/resend-queue.ts');
    let seed = 7;
    const rnd = (n: number): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n);
    const cap = 64;
    const q = new ResendQueue(cap);
    const ref = new Map<number, { seq: number; state: number }>(); // key i → latest
    const order: number[] = []; // keys in last-sent order
    let floor = 1;
    const w = new Uint32Array(RECORD_WORDS);
    for (let seq = 1; seq <= 20_000; seq++) {
      const key = rnd(200);
      const state = rnd(11);
      writeRecord(w, 0, { ...rec(key, state), flags: key % 7 === 0 ? 0x1000 : 0x100, fwmark: key % 7 === 0 ? 5 : 0 });
      q.put(w, 0, seq);
      if (ref.has(key)) order.splice(order.indexOf(key), 1);
      else if (ref.size === cap) {
        const old = order.shift()!;
        floor = Math.max(floor, ref.get(old)!.seq + 1);
        ref.delete(old);
      }
      ref.set(key, { seq, state });
      order.push(key);
      if (seq % 997 === 0) {
        const a = Math.max(floor, seq - rnd(300));
        const got = q.range(a, seq);
        const want = order.filter((k) => ref.get(k)!.seq >= a);
        expect(caddrs(got)).toEqual(want);
        expect(Array.from({ length: got.length / RECORD_WORDS }, (_, i) => readRecord(got, i * RECORD_WORDS).state)).toEqual(want.map((k) => ref.get(k)!.state));
        expect(q.floor).toBe(floor);
        expect(q.size).toBe(ref.size);
      }
    }
  });
});
