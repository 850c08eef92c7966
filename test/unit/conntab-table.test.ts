// conntab: the typed-array connection table: lookups, collisions, capacity, lifecycle, counters, wheel, attach.
import { describe, expect, it } from 'vitest';
import {
  ConnFlag, ConnTable, conntabBytes, ConnCount, destConnFlags, NO_DEST, shardOf,
} from '../../shared/conntab/conn-table.ts';
import { ShardedConnTable, readShardSnapshots } from '../../shared/conntab/sharded.ts';
import { Dir, TcpFlag, TcpState } from '../../shared/conntab/tcp-state.ts';
import { clientShard } from '../../shared/util/flowhash.ts';
import { mulberry32 } from '../../shared/util/rng.ts';
import { ipv4FromTextOrThrow } from '../../shared/net/addr.ts';

const TCP = 6;
const UDP = 17;
const MASQ = 0;
const ROUTE = 3;
const { SYN, FIN, ACK, RST } = TcpFlag;

const ip = (s: string): number => ipv4FromTextOrThrow(s);

const C = ip('192.0.2.10');
const V = ip('10.0.0.1');
const D = ip('172.16.0.5');

function counts(row: Int32Array, dest: number): [number, number, number] {
  const b = dest * ConnCount.width;
  return [row[b + ConnCount.active], row[b + ConnCount.inactive], row[b + ConnCount.persist]];
}


describe('conntab: lookups', () => {
  it('conntab: insert then lookupIn, lookupOut and lookupTemplate find the entry; other keys miss', () => {
    const t = ConnTable.create(64);
    const e = t.insert(TCP, C, 40000, V, 80, D, 8080, destConnFlags(MASQ), 3, 7, 0);
    expect(e).toBeGreaterThanOrEqual(0);
    expect(t.lookupIn(TCP, C, 40000, V, 80)).toBe(e);
    expect(t.lookupOut(TCP, C, 40000, D, 8080)).toBe(e);
    expect(t.lookupIn(UDP, C, 40000, V, 80)).toBe(-1);
    expect(t.lookupIn(TCP, C, 40001, V, 80)).toBe(-1);
    expect(t.lookupIn(TCP, C, 40000, V, 81)).toBe(-1);
    expect(t.lookupOut(TCP, C, 40000, D, 80)).toBe(-1);
    expect(t.lookupTemplate(TCP, C, V, 80)).toBe(-1);
    expect([t.proto(e), t.caddr(e), t.cport(e), t.vaddr(e), t.vport(e), t.daddr(e), t.dport(e), t.destId(e), t.service(e)]).toEqual([TCP, C, 40000, V, 80, D, 8080, 3, 7]);
    expect(t.state(e)).toBe(TcpState.NONE);
    expect(t.flags(e) & ConnFlag.INACTIVE).toBe(ConnFlag.INACTIVE);
    expect(t.expiresIn(e, 0)).toBe(3000);

    const tp = t.insertTemplate(TCP, ip('192.0.2.0'), V, 80, D, 8080, destConnFlags(MASQ), 3, 7, 360_000, 0);
    expect(t.lookupTemplate(TCP, ip('192.0.2.0'), V, 80)).toBe(tp);
    expect(t.lookupIn(TCP, ip('192.0.2.0'), 0, V, 80)).toBe(-1);
    expect(t.lookupTemplate(TCP, ip('192.0.2.0'), V, 443)).toBe(-1);
    const fw = t.insertTemplate(0, C, 1, 0, D, 0, destConnFlags(ROUTE), 3, 8, 360_000, 0);
    expect(t.lookupTemplate(0, C, 1, 0)).toBe(fw);
    expect(t.lookupTemplate(TCP, C, 1, 0)).toBe(-1);
  });

  it('conntab: delete and reinsert under heavy collision (one key run) keep every other entry findable', () => {
    const t = ConnTable.create(512);
    const live = new Map<number, number>();
    const r = mulberry32(7);
    for (let round = 0; round < 4000; round++) {
      const vport = 1 + Math.floor(r() * 300);
      const e = t.lookupIn(TCP, C, 5555, V, vport);
      if (e >= 0) {
        expect(live.get(vport)).toBe(e);
        expect(t.remove(e)).toBe(true);
        live.delete(vport);
      } else {
        expect(live.has(vport)).toBe(false);
        const n = t.insert(TCP, C, 5555, V, vport, D, vport, 0, NO_DEST, 0, 0);
        expect(n).toBeGreaterThanOrEqual(0);
        live.set(vport, n);
      }
      if (round % 97 === 0) for (const [vp, idx] of live) expect(t.lookupIn(TCP, C, 5555, V, vp)).toBe(idx);
    }
    expect(t.size).toBe(live.size);
  });

  it('conntab: filling to capacity fails cleanly with -1, counted, and nothing is corrupted', () => {
    const t = ConnTable.create(100);
    for (let i = 0; i < 100; i++) expect(t.insert(TCP, C + i, 1000, V, 80, D, 80, 0, NO_DEST, 0, 0)).toBe(i);
    expect(t.insert(TCP, C + 100, 1000, V, 80, D, 80, 0, NO_DEST, 0, 0)).toBe(-1);
    expect(t.insertTemplate(TCP, C, V, 80, D, 80, 0, NO_DEST, 0, 1000, 0)).toBe(-1);
    expect(t.stats().insertFails).toBe(2);
    expect(t.size).toBe(100);
    for (let i = 0; i < 100; i++) expect(t.lookupIn(TCP, C + i, 1000, V, 80)).toBe(i);
    expect(t.remove(42)).toBe(true);
    expect(t.insert(TCP, C + 100, 1000, V, 80, D, 80, 0, NO_DEST, 0, 0)).toBe(42);
    expect(t.lookupIn(TCP, C + 100, 1000, V, 80)).toBe(42);
    expect(t.lookupIn(TCP, C + 42, 1000, V, 80)).toBe(-1);
  });

  it('conntab: the buffer costs well under 128 bytes per connection at 1,000,000', () => {
    expect(conntabBytes(1 << 20) / 1_000_000).toBeLessThan(64);
  });
});

describe('conntab: lifecycle and counters', () => {
  it('conntab: NAT life through onPacket with Active/InAct counters and timeouts', () => {
    const row = new Int32Array(8 * ConnCount.width);
    const t = ConnTable.create(16, { counters: row });
    const e = t.insert(TCP, C, 40000, V, 80, D, 8080, destConnFlags(MASQ), 2, 0, 0);
    expect(counts(row, 2)).toEqual([0, 1, 0]);
    const step = (dir: number, f: number, now: number, name: number, exp: [number, number, number], timeoutS: number) => {
      expect(t.onPacket(e, dir, f, now)).toBe(name);
      expect(counts(row, 2)).toEqual(exp);
      expect(t.expiresIn(e, now)).toBe(timeoutS * 1000);
    };
    step(Dir.INPUT, SYN, 10, TcpState.SYN_RECV, [1, 0, 0], 60);
    step(Dir.OUTPUT, SYN | ACK, 20, TcpState.SYN_RECV, [1, 0, 0], 60);
    step(Dir.INPUT, ACK, 30, TcpState.ESTABLISHED, [1, 0, 0], 900);
    step(Dir.OUTPUT, ACK, 40, TcpState.ESTABLISHED, [1, 0, 0], 900);
    step(Dir.INPUT, FIN | ACK, 50, TcpState.CLOSE_WAIT, [0, 1, 0], 60);
    step(Dir.OUTPUT, FIN | ACK, 60, TcpState.TIME_WAIT, [0, 1, 0], 120);
    step(Dir.INPUT, ACK, 70, TcpState.TIME_WAIT, [0, 1, 0], 120);
    expect(t.entries(70).next().value?.state).toBe('TIME_WAIT');
    expect(t.expire(70 + 120_000)).toBe(1);
    expect(counts(row, 2)).toEqual([0, 0, 0]);
    expect(t.size).toBe(0);
  });

  it('conntab: DR life uses INPUT_ONLY (NOOUTPUT) and ends in FIN_WAIT for 120 s', () => {
    const row = new Int32Array(8 * ConnCount.width);
    const t = ConnTable.create(16, { counters: row });
    const e = t.insert(TCP, C, 40000, V, 80, D, 80, destConnFlags(ROUTE), 1, 0, 0);
    expect(t.flags(e) & ConnFlag.NOOUTPUT).toBe(ConnFlag.NOOUTPUT);
    t.onPacket(e, Dir.INPUT, SYN, 0);
    t.onPacket(e, Dir.INPUT, ACK, 1);
    expect(counts(row, 1)).toEqual([1, 0, 0]);
    expect(t.onPacket(e, Dir.INPUT, FIN | ACK, 2)).toBe(TcpState.FIN_WAIT);
    expect(counts(row, 1)).toEqual([0, 1, 0]);
    expect(t.onPacket(e, Dir.INPUT, ACK, 3)).toBe(TcpState.FIN_WAIT);
    expect(t.expiresIn(e, 3)).toBe(120_000);
  });

  it('conntab: the first OUTPUT packet clears NOOUTPUT; the client FIN then follows the INPUT rows', () => {
    const t = ConnTable.create(16);
    const e = t.insert(TCP, C, 40000, V, 80, D, 80, destConnFlags(ROUTE), NO_DEST, 0, 0);
    t.onPacket(e, Dir.INPUT, SYN, 0);
    t.onPacket(e, Dir.OUTPUT, SYN | ACK, 0);
    expect(t.flags(e) & ConnFlag.NOOUTPUT).toBe(0);
    t.onPacket(e, Dir.INPUT, ACK, 0);
    expect(t.onPacket(e, Dir.INPUT, FIN, 0)).toBe(TcpState.CLOSE_WAIT);
  });

  it('conntab: RST in ESTABLISHED goes CLOSE (10 s) and moves the conn to InAct; flagless packet gives CLOSE', () => {
    const row = new Int32Array(4 * ConnCount.width);
    const t = ConnTable.create(16, { counters: row });
    const e = t.insert(TCP, C, 1, V, 80, D, 80, destConnFlags(MASQ), 0, 0, 0);
    t.onPacket(e, Dir.INPUT, SYN, 0);
    t.onPacket(e, Dir.INPUT, ACK, 0);
    expect(t.onPacket(e, Dir.INPUT, RST | ACK, 5)).toBe(TcpState.CLOSE);
    expect(t.expiresIn(e, 5)).toBe(10_000);
    expect(counts(row, 0)).toEqual([0, 1, 0]);
    const f = t.insert(TCP, C, 2, V, 80, D, 80, destConnFlags(MASQ), 0, 0, 0);
    t.onPacket(f, Dir.INPUT, SYN, 0);
    expect(counts(row, 0)).toEqual([1, 1, 0]);
    expect(t.onPacket(f, Dir.INPUT, 0x08, 0)).toBe(TcpState.CLOSE);
    expect(counts(row, 0)).toEqual([0, 2, 0]);
  });

  it('conntab: UDP stays InAct, is refreshed to 300 s by every packet, and a reply assures the template', () => {
    const row = new Int32Array(4 * ConnCount.width);
    const t = ConnTable.create(16, { counters: row });
    const tp = t.insertTemplate(UDP, C, V, 53, D, 53, destConnFlags(MASQ), 1, 0, 360_000, 0);
    const e = t.insert(UDP, C, 5353, V, 53, D, 53, destConnFlags(MASQ), 1, 0, 0);
    t.control(e, tp);
    expect(counts(row, 1)).toEqual([0, 1, 1]);
    t.onPacket(e, Dir.INPUT, 0, 1000);
    expect(t.expiresIn(e, 1000)).toBe(300_000);
    expect(t.isAssured(tp)).toBe(false);
    t.onPacket(e, Dir.OUTPUT, 0, 2000);
    expect(t.isAssured(tp)).toBe(true);
    expect(counts(row, 1)).toEqual([0, 1, 1]);
    expect([...t.entries(2000)].map((x) => x.state)).toEqual(['ASSURED', 'UDP']);
  });

  it('conntab: reaching ESTABLISHED assures the controlling template', () => {
    const t = ConnTable.create(16);
    const tp = t.insertTemplate(TCP, C, V, 80, D, 80, 0, NO_DEST, 0, 360_000, 0);
    const e = t.insert(TCP, C, 1, V, 80, D, 80, 0, NO_DEST, 0, 0);
    expect(t.control(e, tp)).toBe(true);
    expect(t.control(tp, e)).toBe(false);
    t.onPacket(e, Dir.INPUT, SYN, 0);
    expect(t.isAssured(tp)).toBe(false);
    t.onPacket(e, Dir.INPUT, ACK, 0);
    expect(t.isAssured(tp)).toBe(true);
  });

  it('conntab: unbound entries (NO_DEST) touch no counter and out-of-row dests are counted as badDest', () => {
    const row = new Int32Array(ConnCount.width);
    const t = ConnTable.create(16, { counters: row });
    const e = t.insert(TCP, C, 1, V, 80, D, 80, 0, NO_DEST, 0, 0);
    t.onPacket(e, Dir.INPUT, SYN, 0);
    expect(Array.from(row)).toEqual([0, 0, 0]);
    t.insert(TCP, C, 2, V, 80, D, 80, 0, 5, 0, 0);
    expect(t.stats().badDest).toBe(1);
  });

  it('conntab: setState moves counters like a transition', () => {
    const row = new Int32Array(ConnCount.width);
    const t = ConnTable.create(16, { counters: row });
    const e = t.insert(TCP, C, 1, V, 80, D, 80, 0, 0, 0, 0);
    expect(t.setState(e, TcpState.ESTABLISHED, 0)).toBe(true);
    expect(counts(row, 0)).toEqual([1, 0, 0]);
    expect(t.expiresIn(e, 0)).toBe(900_000);
    expect(t.setState(e, TcpState.TIME_WAIT, 0)).toBe(true);
    expect(counts(row, 0)).toEqual([0, 1, 0]);
  });
});

describe('conntab: timer wheel', () => {
  it('conntab: entries expire in expiry order, not before their time, with callbacks', () => {
    const t = ConnTable.create(64, { tickShift: 4 });
    const order: number[] = [];
    const want: number[] = [];
    const r = mulberry32(3);
    for (let i = 0; i < 40; i++) {
      const e = t.insert(UDP, C + i, 53, V, 53, D, 53, 0, NO_DEST, 0, 0);
      t.rearm(e, 0, 1000 + Math.floor(r() * 200_000));
      want.push(e);
    }
    const expiry = new Map(want.map((e) => [e, t.expiresIn(e, 0)]));
    want.sort((a, b) => expiry.get(a)! - expiry.get(b)!);
    for (let now = 0; now <= 202_000; now += 50) {
      t.expire(now, 4096, (e) => {
        expect(expiry.get(e)!).toBeLessThanOrEqual(now);
        expect(expiry.get(e)!).toBeGreaterThan(now - 50);
        order.push(e);
      });
    }
    expect(order.map((e) => expiry.get(e))).toEqual(want.map((e) => expiry.get(e)));
    expect(t.size).toBe(0);
  });

  it('conntab: expire does bounded work per call and finishes over several calls', () => {
    const t = ConnTable.create(1000);
    for (let i = 0; i < 1000; i++) t.insert(UDP, C + i, 53, V, 53, D, 53, 0, NO_DEST, 0, 0);
    const freed: number[] = [];
    let calls = 0;
    while (t.size > 0) {
      const n = t.expire(10_000, 64);
      expect(n).toBeLessThanOrEqual(64);
      freed.push(n);
      calls++;
      expect(calls).toBeLessThan(100);
    }
    expect(freed.reduce((a, b) => a + b, 0)).toBe(1000);
    expect(calls).toBeGreaterThanOrEqual(16);
  });

  it('conntab: a long gap (more than a wheel revolution) still expires everything due, and only that', () => {
    const t = ConnTable.create(64, { wheelBits: 6, tickShift: 4 });
    const a = t.insert(UDP, C, 1, V, 53, D, 53, 0, NO_DEST, 0, 0);
    const b = t.insert(UDP, C, 2, V, 53, D, 53, 0, NO_DEST, 0, 0);
    t.rearm(a, 0, 5_000);
    t.rearm(b, 0, 50_000);
    expect(t.expire(20_000, 10_000)).toBe(1);
    expect(t.isLive(b)).toBe(true);
    expect(t.expire(49_999, 10_000)).toBe(0);
    expect(t.expire(50_000, 10_000)).toBe(1);
  });

  it('conntab: a controlled template is re-armed for 60 s instead of expiring; it goes after its last conn', () => {
    const row = new Int32Array(ConnCount.width);
    const t = ConnTable.create(16, { counters: row });
    const tp = t.insertTemplate(TCP, C, V, 80, D, 80, 0, 0, 0, 10_000, 0);
    const e = t.insert(TCP, C, 1, V, 80, D, 80, 0, 0, 0, 0);
    t.control(e, tp);
    expect(t.nControl(tp)).toBe(1);
    t.onPacket(e, Dir.INPUT, SYN, 0);
    t.onPacket(e, Dir.INPUT, ACK, 0);
    expect(t.expire(10_000)).toBe(0);
    expect(t.stats().rearmed).toBe(1);
    expect(t.expiresIn(tp, 10_000)).toBe(60_000);
    expect(t.remove(tp)).toBe(false);
    expect(t.expire(70_000)).toBe(0);
    expect(t.expiresIn(tp, 70_000)).toBe(60_000);
    t.onPacket(e, Dir.INPUT, RST, 80_000);
    expect(t.expire(90_000)).toBe(1);
    expect(t.nControl(tp)).toBe(0);
    expect(counts(row, 0)).toEqual([0, 0, 1]);
    expect(t.isLive(tp)).toBe(true);
    expect(t.expire(129_999)).toBe(0);
    expect(t.expire(130_000)).toBe(1);
    expect(counts(row, 0)).toEqual([0, 0, 0]);
    expect(t.size).toBe(0);
  });

  it('conntab: clocks far from the epoch and u32 wrap-around work', () => {
    const base = 1_700_000_000_000;
    const t = ConnTable.create(16, { epochMs: base });
    const e = t.insert(UDP, C, 1, V, 53, D, 53, 0, NO_DEST, 0, base + 2 ** 32 - 1000);
    t.onPacket(e, Dir.INPUT, 0, base + 2 ** 32 - 1000);
    expect(t.expire(base + 2 ** 32 + 298_999)).toBe(0);
    expect(t.expire(base + 2 ** 32 + 299_000)).toBe(1);
    const u = ConnTable.create(16);
    const f = u.insert(UDP, C, 1, V, 53, D, 53, 0, NO_DEST, 0, base);
    expect(u.expire(base + 2999)).toBe(0);
    expect(u.expire(base + 3000)).toBe(1);
    expect(u.isLive(f)).toBe(false);
  });
});

describe('conntab: buffer', () => {
  it('conntab: attach() over a copy of the buffer sees the same connections and keeps working', () => {
    const t = ConnTable.create(256, { epochMs: 1000 });
    for (let i = 0; i < 200; i++) {
      const e = t.insert(TCP, C + i, 2000 + i, V, 80, D, 80, destConnFlags(MASQ), NO_DEST, 1, 1000);
      t.onPacket(e, Dir.INPUT, SYN, 1000 + i);
    }
    const copy = t.buffer.slice(0);
    const a = ConnTable.attach(copy);
    expect(a.size).toBe(200);
    expect([...a.entries(5000)]).toEqual([...t.entries(5000)]);
    for (let i = 0; i < 200; i++) expect(a.lookupIn(TCP, C + i, 2000 + i, V, 80)).toBe(t.lookupIn(TCP, C + i, 2000 + i, V, 80));
    expect(a.expire(1000 + 60_000 + 99)).toBe(100);
    expect(t.size).toBe(200);
  });

  it('conntab: attach() rebuilds a buffer whose writer died mid-update, and recount restores counters', () => {
    const row = new Int32Array(4 * ConnCount.width);
    const t = ConnTable.create(64, { counters: row });
    const tp = t.insertTemplate(TCP, C, V, 80, D, 80, 0, 1, 0, 360_000, 0);
    for (let i = 0; i < 20; i++) {
      const e = t.insert(TCP, C, 3000 + i, V, 80, D, 80, 0, 1, 0, 0);
      t.control(e, tp);
      if (i % 2 === 0) t.onPacket(e, Dir.INPUT, SYN, 0);
    }
    const copy = new Uint32Array(t.buffer.slice(0));
    copy[14] = 1;
    const off = 32 + 64 * 12;
    copy.fill(0, off, off + 128);
    const a = ConnTable.attach(copy.buffer);
    expect(a.size).toBe(21);
    expect(a.nControl(tp)).toBe(20);
    for (let i = 0; i < 20; i++) expect(a.lookupIn(TCP, C, 3000 + i, V, 80)).toBeGreaterThanOrEqual(0);
    const r2 = new Int32Array(row.length);
    a.recount(r2);
    expect(Array.from(r2)).toEqual(Array.from(row));
    expect(counts(r2, 1)).toEqual([10, 10, 1]);
  });

  it('conntab: attach() rejects foreign or truncated buffers', () => {
    expect(() => ConnTable.attach(new ArrayBuffer(64))).toThrow(RangeError);
    expect(() => ConnTable.attach(new ArrayBuffer(4096))).toThrow(/magic/);
    const t = ConnTable.create(16);
    expect(() => ConnTable.attach(t.buffer.slice(0, t.buffer.byteLength - 4))).toThrow(/geometry/);
  });

  it('conntab: create() lays a table into a caller-provided (shared) buffer', () => {
    const sab = new SharedArrayBuffer(conntabBytes(32));
    const t = ConnTable.create(32, {}, sab);
    const e = t.insert(TCP, C, 1, V, 80, D, 80, 0, NO_DEST, 0, 0);
    expect(ConnTable.attach(sab).lookupIn(TCP, C, 1, V, 80)).toBe(e);
    expect(() => ConnTable.create(32, {}, new ArrayBuffer(100))).toThrow(RangeError);
  });
});

describe('conntab: sharding', () => {
  it('conntab: shardOf is the fanout function, and a sharded table routes by client', () => {
    for (let i = 0; i < 200; i++) expect(shardOf(C + i, 1024 + i, 4)).toBe(clientShard(C + i, 1024 + i, 4));
    const rows = [new Int32Array(3), new Int32Array(3)];
    const s = ShardedConnTable.create(2, 64, { counters: rows });
    for (let i = 0; i < 50; i++) s.tableOf(C + i, 1000 + i).insert(TCP, C + i, 1000 + i, V, 80, D, 80, 0, 0, 0, 0);
    expect(s.size).toBe(50);
    for (let i = 0; i < 50; i++) {
      expect(s.shards[s.shardOf(C + i, 1000 + i)].lookupIn(TCP, C + i, 1000 + i, V, 80)).toBeGreaterThanOrEqual(0);
      expect(s.shards[1 - s.shardOf(C + i, 1000 + i)].lookupIn(TCP, C + i, 1000 + i, V, 80)).toBe(-1);
    }
    expect(rows[0][ConnCount.inactive] + rows[1][ConnCount.inactive]).toBe(50);
    expect(rows[0][ConnCount.inactive]).toBeGreaterThan(0);
    expect(rows[1][ConnCount.inactive]).toBeGreaterThan(0);
    expect([...s.entries(0)].length).toBe(50);
  });

  it('conntab: readShardSnapshots lists every shard read-only, skips a missing shard and reports a broken one', () => {
    const bufs = [new ArrayBuffer(conntabBytes(64)), new ArrayBuffer(conntabBytes(64)), new ArrayBuffer(conntabBytes(64))];
    const s = new ShardedConnTable(bufs.map((b) => ConnTable.create(64, {}, b)));
    for (let i = 0; i < 30; i++) s.tableOf(C + i, 2000 + i).insert(TCP, C + i, 2000 + i, V, 80, D, 8080, 0, 0, 0, 0);
    const all = readShardSnapshots(bufs, 0);
    expect(all).toEqual(s.snapshots(0));
    expect(all.length).toBe(30);
    expect(all[0]).toEqual({ protocol: 'tcp', af: 4, caddr: expect.any(String), cport: expect.any(Number), vaddr: '10.0.0.1', vport: 80,
      daddr: expect.any(String), dport: 8080, state: expect.any(String), expires: expect.any(Number), template: false, pe: '', peData: '' });
    const inShard1 = [...s.shards[1].entries(0)].length;
    const errors: string[] = [];
    const some = readShardSnapshots([bufs[0], null, new ArrayBuffer(16), bufs[2]], 0, (k, e) => errors.push(`${k}: ${e.message}`));
    expect(some.length).toBe(30 - inShard1);
    expect(errors).toEqual(['2: conntab attach: buffer shorter than the header']);
    expect(() => ShardedConnTable.attach([bufs[0], new ArrayBuffer(16)])).toThrow('conntab shard 1: conntab attach: buffer shorter than the header');
    expect(ShardedConnTable.attach(bufs, { readOnly: true }).size).toBe(30);
  });
});

describe('conntab: property', () => {
  it('conntab: random inserts, removes, packets and expiry agree with a Map model', () => {
    const r = mulberry32(12345);
    const cap = 300;
    const row = new Int32Array(4 * ConnCount.width);
    const t = ConnTable.create(cap, { counters: row, tickShift: 3, wheelBits: 7 });
    type M = { e: number; expires: number; dest: number; active: boolean };
    const model = new Map<string, M>();
    const key = (c: number, p: number, v: number) => `${c}|${p}|${v}`;
    let now = 0;
    for (let op = 0; op < 20_000; op++) {
      const c = C + Math.floor(r() * 8);
      const p = 1000 + Math.floor(r() * 40);
      const vp = 80 + Math.floor(r() * 3);
      const k = key(c, p, vp);
      const x = r();
      const m = model.get(k);
      const found = t.lookupIn(TCP, c, p, V, vp);
      expect(found).toBe(m ? m.e : -1);
      if (x < 0.45) {
        if (!m) {
          const dest = Math.floor(r() * 4);
          const e = t.insert(TCP, c, p, V, vp, D + dest, 80, destConnFlags(MASQ), dest, 0, now);
          if (model.size >= cap) expect(e).toBe(-1);
          else {
            expect(e).toBeGreaterThanOrEqual(0);
            model.set(k, { e, expires: now + 3000, dest, active: false });
          }
        }
      } else if (x < 0.6) {
        if (m) {
          expect(t.remove(m.e)).toBe(true);
          model.delete(k);
        }
      } else if (x < 0.9) {
        if (m) {
          const flags = [SYN, ACK, FIN | ACK, RST][Math.floor(r() * 4)];
          const st = t.onPacket(m.e, r() < 0.5 ? Dir.INPUT : Dir.OUTPUT, flags, now);
          m.active = st === TcpState.ESTABLISHED || st === TcpState.SYN_RECV || st === TcpState.SYN_SENT || st === TcpState.SYNACK;
          m.expires = now + t.timeouts.tcp[st];
          expect(t.lookupOut(TCP, c, p, D + m.dest, 80)).toBe(m.e);
        }
      } else {
        now += Math.floor(r() * 20_000);
        const gone = new Set<number>();
        let n = 0;
        do n = t.expire(now, 100_000, (e) => gone.add(e)); while (n > 0);
        let due = 0;
        for (const [mk, mv] of model) {
          if (mv.expires <= now) {
            expect(gone.has(mv.e)).toBe(true);
            model.delete(mk);
            due++;
          } else expect(gone.has(mv.e)).toBe(false);
        }
        expect(gone.size).toBe(due);
      }
      if (op % 500 === 0) {
        expect(t.size).toBe(model.size);
        const want = new Int32Array(row.length);
        for (const mv of model.values()) want[mv.dest * ConnCount.width + (mv.active ? 0 : 1)]++;
        expect(Array.from(row)).toEqual(Array.from(want));
      }
    }
  });
});

describe('conntab: listing', () => {
  it('conntab: entries() reports templates (fwmark as address, cport 0) and connections as ipvsadm -L -c shows them', () => {
    const t = ConnTable.create(16);
    const fw = t.insertTemplate(0, ip('192.0.2.0'), 1, 0, D, 0, destConnFlags(ROUTE), 4, 2, 360_000, 0);
    const e = t.insert(TCP, C, 40000, V, 443, D, 443, destConnFlags(ROUTE), 4, 2, 0);
    t.control(e, fw);
    t.onPacket(e, Dir.INPUT, SYN, 0);
    const list = [...t.entries(1500)];
    expect(list.map(({ protocol, caddr, cport, vaddr, vport, daddr, dport, state, expires, template }) => ({ protocol, caddr, cport, vaddr, vport, daddr, dport, state, expires, template }))).toEqual([
      { protocol: 'ip', caddr: '192.0.2.0', cport: 0, vaddr: '0.0.0.1', vport: 0, daddr: '172.16.0.5', dport: 0, state: 'NONE', expires: 358, template: true },
      { protocol: 'tcp', caddr: '192.0.2.10', cport: 40000, vaddr: '10.0.0.1', vport: 443, daddr: '172.16.0.5', dport: 443, state: 'SYN_RECV', expires: 58, template: false },
    ]);
    expect(list[0].nControl).toBe(1);
    expect(list[1].control).toBe(fw);
    expect(list[1].flags & ConnFlag.FWD_MASK).toBe(ROUTE);
  });

  it('conntab: an invalidated template no longer matches its key', () => {
    const t = ConnTable.create(16);
    const tp = t.insertTemplate(TCP, C, V, 80, D, 80, 0, NO_DEST, 0, 360_000, 0);
    expect(t.invalidateTemplate(tp)).toBe(true);
    expect(t.lookupTemplate(TCP, C, V, 80)).toBe(-1);
    expect([t.vport(tp), t.dport(tp)]).toEqual([0xffff, 0xffff]);
    const n = t.insertTemplate(TCP, C, V, 80, D, 80, 0, NO_DEST, 0, 360_000, 0);
    expect(t.lookupTemplate(TCP, C, V, 80)).toBe(n);
  });
});

describe('conntab: property (templates)', () => {
  it('conntab: under random traffic and expiry a template outlives every connection it controls, and n_control is exact', () => {
    const r = mulberry32(99);
    const row = new Int32Array(2 * ConnCount.width);
    const t = ConnTable.create(256, { counters: row, tickShift: 5, wheelBits: 8 });
    const tmplOf = new Map<number, number>();
    let now = 0;
    for (let op = 0; op < 5000; op++) {
      const client = C + Math.floor(r() * 6);
      let tp = t.lookupTemplate(TCP, client, V, 80);
      if (tp < 0) tp = t.insertTemplate(TCP, client, V, 80, D, 80, 0, 1, 0, 5_000 + Math.floor(r() * 20_000), now);
      else t.rearm(tp, now, 10_000);
      const port = 1024 + Math.floor(r() * 50);
      let e = t.lookupIn(TCP, client, port, V, 80);
      if (e < 0 && tp >= 0) {
        e = t.insert(TCP, client, port, V, 80, D, 80, 0, 1, 0, now);
        if (e >= 0) {
          t.control(e, tp);
          tmplOf.set(e, tp);
        }
      }
      if (e >= 0) t.onPacket(e, Dir.INPUT, [SYN, ACK, FIN, RST][Math.floor(r() * 4)], now);
      now += Math.floor(r() * 3000);
      t.expire(now, 1_000_000, (x) => {
        if (t.isTemplate(x)) expect(t.nControl(x)).toBe(0);
        else tmplOf.delete(x);
      });
      if (op % 100 === 0) {
        const want = new Map<number, number>();
        for (const [c, tpl] of tmplOf) {
          expect(t.isLive(c)).toBe(true);
          expect(t.isLive(tpl) && t.isTemplate(tpl)).toBe(true);
          expect(t.controlOf(c)).toBe(tpl);
          want.set(tpl, (want.get(tpl) ?? 0) + 1);
        }
        for (const x of t.entries(now)) if (x.template) expect(x.nControl).toBe(want.get(x.index) ?? 0);
        const r2 = new Int32Array(row.length);
        t.recount(r2);
        expect(Array.from(row)).toEqual(Array.from(r2));
      }
    }
  });
});
