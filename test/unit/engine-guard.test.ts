// engine guard: dead destinations (expire_nodest_conn, expire_quiescent_template) and the table under a SYN
// flood (embryonic eviction, the pressure timeout, the per-source rate limit), through fake ports and L2.
import { describe, expect, it } from 'vitest';
import { ConnTable } from '../../shared/conntab/conn-table.ts';
import { TcpState } from '../../shared/conntab/tcp-state.ts';
import { Counters, countersBytes, Ev } from '../../shared/fwd/counters.ts';
import { FwdCode, SvcFlag } from '../../shared/model/ipvs.ts';
import { inetChecksum } from '../../shared/net/checksum.ts';
import { ipv4FromText } from '../../shared/net/addr.ts';
import { Engine, Verdict } from '../../services/worker/engine.ts';
import type { GuardOptions } from '../../shared/fwd/guard.ts';
import { eth, ipv4, tcp, udp } from '../support/packet-ref.ts';
import { CLIENT, CLIENT_MAC, DIR_BACK, DIR_FRONT, FakeL2, FakePort, RS_MAC, VIP, dest, service, table } from '../support/engine-fakes.ts';

const SYN = 0x02;
const ACK = 0x10;
const RS_A = '10.1.0.101';
const RS_B = '10.1.0.102';

interface Rig {
  engine: Engine;
  conns: ConnTable;
  front: FakePort;
  back: FakePort;
  ev(name: keyof typeof Ev): number;
  feed(frame: number[]): number;
  clock: { now: number };
}

function rig(guard: Partial<GuardOptions> = {}, capacity = 1024): Rig {
  const front = new FakePort(1);
  const back = new FakePort(2);
  const counters = new Counters(new ArrayBuffer(countersBytes(1)), 1, true);
  const conns = ConnTable.create(capacity, { counters: counters.rows[0].conns, epochMs: 0 });
  const clock = { now: 1_000_000 };
  const engine = new Engine({ conns, counters, worker: 0, l2: new FakeL2(), ports: new Map([[1, front], [2, back]]), now: () => clock.now, rng: () => 0.5, guard });
  return {
    engine, conns, front, back, clock,
    ev: (name) => counters.rows[0].events[Ev[name]],
    feed: (frame) => {
      const buf = new Uint8Array(frame.length);
      buf.set(frame);
      return engine.frame(buf, 0, frame.length, false);
    },
  };
}

function tcpIn(sport: number, flags: number, opts: { src?: string; seq?: number; ack?: number; payload?: number[] } = {}): number[] {
  const src = opts.src ?? CLIENT;
  return eth(DIR_FRONT, CLIENT_MAC, 0x0800, ipv4({ src, dst: VIP, proto: 6, payload: tcp({ src, dst: VIP, sport, dport: 80, flags, seq: opts.seq, ack: opts.ack, payload: opts.payload }) }));
}
function tcpReply(rs: string, sport: number, flags: number): number[] {
  return eth(DIR_BACK, RS_MAC[rs], 0x0800, ipv4({ src: rs, dst: CLIENT, proto: 6, payload: tcp({ src: rs, dst: CLIENT, sport: 80, dport: sport, flags }) }));
}
function udpIn(sport: number): number[] {
  return eth(DIR_FRONT, CLIENT_MAC, 0x0800, ipv4({ src: CLIENT, dst: VIP, proto: 17, payload: udp({ src: CLIENT, dst: VIP, sport, dport: 53, payload: [1, 2, 3, 4] }) }));
}
const ipAt = (b: Uint8Array, at: number): string => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
const rd32 = (b: Uint8Array, at: number): number => ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;

/** An established NAT connection from CLIENT:sport; returns its real server. */
function establish(r: Rig, sport: number): string {
  r.back.take();
  expect(r.feed(tcpIn(sport, SYN))).toBe(Verdict.FORWARD);
  const rs = ipAt(r.back.take()[0].bytes, 30);
  expect(r.feed(tcpReply(rs, sport, SYN | ACK))).toBe(Verdict.FORWARD);
  r.front.take();
  expect(r.feed(tcpIn(sport, ACK, { seq: 1001, ack: 5001 }))).toBe(Verdict.FORWARD);
  r.back.take();
  return rs;
}

describe('engine guard: dead destinations', () => {
  it('engine guard: a UDP flow whose real server was removed is scheduled afresh on its next packet (same source port)', () => {
    const r = rig();
    r.engine.setTable(table([service(0, 17, 53, [dest(0, RS_A, 53, FwdCode.masq), dest(1, RS_B, 53, FwdCode.masq)])]));
    expect(r.feed(udpIn(41000))).toBe(Verdict.FORWARD);
    const first = ipAt(r.back.take()[0].bytes, 30);
    const other = first === RS_A ? RS_B : RS_A;
    r.engine.setTable(table([service(0, 17, 53, [dest(first === RS_A ? 1 : 0, other, 53, FwdCode.masq)])], 2));
    expect(r.feed(udpIn(41000))).toBe(Verdict.FORWARD);
    expect(ipAt(r.back.take()[0].bytes, 30)).toBe(other);
    expect(r.ev('nodest_expired')).toBe(1);
    expect(r.ev('nodest_rescheduled')).toBe(1);
    expect(r.ev('drop_dest_gone')).toBe(0);
    expect(r.conns.size).toBe(1);
  });

  it('engine guard: an established TCP connection of a removed server ends at once: RST to the client from the VIP, entry gone', () => {
    const r = rig();
    r.engine.setTable(table([service(0, 6, 80, [dest(0, RS_A, 80, FwdCode.masq), dest(1, RS_B, 80, FwdCode.masq)])]));
    const rs = establish(r, 42000);
    const keep = rs === RS_A ? dest(1, RS_B, 80, FwdCode.masq) : dest(0, RS_A, 80, FwdCode.masq);
    r.engine.setTable(table([service(0, 6, 80, [keep])], 2));
    expect(r.feed(tcpIn(42000, ACK, { seq: 1001, ack: 0x12345678, payload: [1, 2, 3] }))).toBe(Verdict.DROP);
    const [rst] = r.front.take();
    expect(rst.bytes.length).toBe(54);
    expect(ipAt(rst.bytes, 26)).toBe(VIP);
    expect(ipAt(rst.bytes, 30)).toBe(CLIENT);
    expect((rst.bytes[34] << 8) | rst.bytes[35]).toBe(80);
    expect((rst.bytes[36] << 8) | rst.bytes[37]).toBe(42000);
    expect(rd32(rst.bytes, 38)).toBe(0x12345678);
    expect(rst.bytes[47]).toBe(0x04);
    expect(inetChecksum(rst.bytes, 14, 20)).toBe(0);
    // TCP checksum over the pseudo header.
    const ph = [...rst.bytes.slice(26, 34), 0, 6, 0, 20, ...rst.bytes.slice(34, 54)];
    expect(inetChecksum(new Uint8Array(ph), 0, ph.length)).toBe(0);
    expect(r.ev('nodest_expired')).toBe(1);
    expect(r.ev('nodest_rst_sent')).toBe(1);
    expect(r.ev('drop_dest_gone')).toBe(1);
    expect(r.conns.size).toBe(0);
    // The next segment matches nothing (no second reset); a new SYN from the same port goes to the live server.
    expect(r.feed(tcpIn(42000, ACK))).toBe(Verdict.DROP);
    expect(r.front.take()).toHaveLength(0);
    expect(r.ev('drop_no_conn')).toBe(1);
    expect(r.feed(tcpIn(42000, SYN))).toBe(Verdict.FORWARD);
    expect(ipAt(r.back.take()[0].bytes, 30)).toBe(keep.addrText);
  });

  it('engine guard: a retransmitted SYN of a removed server is scheduled afresh; nodestTcp drop sends no reset', () => {
    const r = rig({ nodestTcp: 'drop' });
    r.engine.setTable(table([service(0, 6, 80, [dest(0, RS_A, 80, FwdCode.masq)])]));
    expect(r.feed(tcpIn(43000, SYN))).toBe(Verdict.FORWARD);
    expect(r.feed(tcpIn(43001, SYN))).toBe(Verdict.FORWARD);
    r.back.take();
    r.engine.setTable(table([service(0, 6, 80, [dest(1, RS_B, 80, FwdCode.masq)])], 2));
    expect(r.feed(tcpIn(43000, SYN))).toBe(Verdict.FORWARD);
    expect(ipAt(r.back.take()[0].bytes, 30)).toBe(RS_B);
    expect(r.feed(tcpIn(43001, ACK))).toBe(Verdict.DROP);
    expect(r.front.take()).toHaveLength(0);
    expect(r.ev('nodest_expired')).toBe(2);
    expect(r.ev('nodest_rescheduled')).toBe(1);
    expect(r.ev('nodest_rst_sent')).toBe(0);
  });

  it('engine guard: with expire_nodest_conn off, packets of a removed server are dropped and the entry stays (the kernel\'s old default)', () => {
    const r = rig({ expireNodestConn: false });
    r.engine.setTable(table([service(0, 17, 53, [dest(0, RS_A, 53, FwdCode.masq)])]));
    r.feed(udpIn(41000));
    r.engine.setTable(table([service(0, 17, 53, [dest(1, RS_B, 53, FwdCode.masq)])], 2));
    expect(r.feed(udpIn(41000))).toBe(Verdict.DROP);
    expect(r.ev('drop_dest_gone')).toBe(1);
    expect(r.conns.size).toBe(1);
  });

  it('engine guard: expire_quiescent_template: a persistent client of a weight-0 server is scheduled afresh; off, it stays', () => {
    for (const on of [true, false]) {
      const r = rig({ expireQuiescentTemplate: on });
      const svc = (wA: number, epoch: number) => table([service(0, 6, 80, [dest(0, RS_A, 80, FwdCode.masq, wA), dest(1, RS_B, 80, FwdCode.masq, 0)], { flags: SvcFlag.PERSISTENT, persistMs: 360_000 })], epoch);
      r.engine.setTable(svc(1, 1));
      expect(r.feed(tcpIn(44000, SYN))).toBe(Verdict.FORWARD);
      expect(ipAt(r.back.take()[0].bytes, 30)).toBe(RS_A);
      r.engine.setTable(table([service(0, 6, 80, [dest(0, RS_A, 80, FwdCode.masq, 0), dest(1, RS_B, 80, FwdCode.masq, 1)], { flags: SvcFlag.PERSISTENT, persistMs: 360_000 })], 2));
      expect(r.feed(tcpIn(44001, SYN))).toBe(Verdict.FORWARD);
      expect(ipAt(r.back.take()[0].bytes, 30)).toBe(on ? RS_B : RS_A);
      expect(r.ev('quiescent_templates_expired')).toBe(on ? 1 : 0);
    }
  });

  it('engine guard: a UDP flow of a server set to weight 0 (inhibited) moves on its next packet; a TCP connection continues', () => {
    const r = rig();
    r.engine.setTable(table([service(0, 17, 53, [dest(0, RS_A, 53, FwdCode.masq), dest(1, RS_B, 53, FwdCode.masq)]), service(1, 6, 80, [dest(2, RS_A, 80, FwdCode.masq), dest(3, RS_B, 80, FwdCode.masq)])]));
    r.feed(udpIn(41000));
    const first = ipAt(r.back.take()[0].bytes, 30);
    const rs = establish(r, 45000);
    const w = (addr: string) => (addr === first ? 0 : 1);
    const wt = (addr: string) => (addr === rs ? 0 : 1);
    r.engine.setTable(table([service(0, 17, 53, [dest(0, RS_A, 53, FwdCode.masq, w(RS_A)), dest(1, RS_B, 53, FwdCode.masq, w(RS_B))]), service(1, 6, 80, [dest(2, RS_A, 80, FwdCode.masq, wt(RS_A)), dest(3, RS_B, 80, FwdCode.masq, wt(RS_B))])], 2));
    expect(r.feed(udpIn(41000))).toBe(Verdict.FORWARD);
    expect(ipAt(r.back.take()[0].bytes, 30)).not.toBe(first);
    expect(r.feed(tcpIn(45000, ACK, { seq: 1001, ack: 5001 }))).toBe(Verdict.FORWARD);
    expect(ipAt(r.back.take()[0].bytes, 30)).toBe(rs);
    expect(r.ev('nodest_rescheduled')).toBe(1);
  });
});

describe('engine guard: the table under a SYN flood', () => {
  const rand = (i: number): string => `172.${16 + ((i >>> 16) & 15)}.${(i >>> 8) & 255}.${i & 255}`;

  it('engine guard: a full table evicts the oldest half-open entries, never established ones; legitimate SYNs get in', () => {
    const r = rig({}, 256);
    r.engine.setTable(table([service(0, 6, 80, [dest(0, RS_A, 80, FwdCode.masq), dest(1, RS_B, 80, FwdCode.masq)])]));
    for (let p = 0; p < 32; p++) establish(r, 46000 + p);
    let refused = 0;
    for (let i = 0; i < 5000; i++) {
      if (r.feed(tcpIn(1024 + (i % 60000), SYN, { src: rand(i) })) !== Verdict.FORWARD) refused++;
      if (i % 32 === 0) r.back.take();
      if (i % 1000 === 999) {
        // A legitimate client between flood packets: its SYN gets in and its handshake completes.
        expect(establish(r, 47000 + i)).toMatch(/^10\.1\.0\./);
      }
    }
    expect(refused, JSON.stringify({ txe: r.ev("tx_errors"), full: r.ev("drop_table_full"), neigh: r.ev("drop_no_neigh") })).toBe(0);
    expect(r.conns.size).toBeLessThanOrEqual(256);
    expect(r.ev('evict_embryonic')).toBeGreaterThan(4000);
    expect(r.ev('drop_table_full')).toBe(0);
    for (let p = 0; p < 32; p++) expect(r.conns.lookupIn(6, ipv4FromText(CLIENT)!, 46000 + p, ipv4FromText(VIP)!, 80)).toBeGreaterThanOrEqual(0);
  });

  it('engine guard: a table full of established connections refuses new ones, counted as drop_table_full', () => {
    const r = rig({}, 16);
    r.engine.setTable(table([service(0, 6, 80, [dest(0, RS_A, 80, FwdCode.masq)])]));
    for (let p = 0; p < 16; p++) establish(r, 46000 + p);
    expect(r.feed(tcpIn(48000, SYN))).toBe(Verdict.DROP);
    expect(r.ev('drop_table_full')).toBe(1);
    expect(r.ev('evict_embryonic')).toBe(0);
  });

  it('engine guard: past the pressure fill, new half-open entries get the short SYN_RECV timeout; restored once drained', () => {
    const r = rig({ pressurePct: 50, pressureSynRecvMs: 2000 }, 64);
    r.engine.setTable(table([service(0, 6, 80, [dest(0, RS_A, 80, FwdCode.masq)])]));
    const src = ipv4FromText(CLIENT)!;
    const vip = ipv4FromText(VIP)!;
    r.feed(tcpIn(50000, SYN));
    expect(r.conns.expiresIn(r.conns.lookupIn(6, src, 50000, vip, 80), r.clock.now)).toBeGreaterThan(50_000);
    for (let i = 1; i < 40; i++) r.feed(tcpIn(50000 + i, SYN, { src: rand(i) }));
    r.back.take();
    r.engine.endBatch();
    expect(r.engine.underPressure).toBe(true);
    expect(r.ev('table_pressure')).toBe(1);
    r.feed(tcpIn(51000, SYN));
    expect(r.conns.state(r.conns.lookupIn(6, src, 51000, vip, 80))).toBe(TcpState.SYN_RECV);
    expect(r.conns.expiresIn(r.conns.lookupIn(6, src, 51000, vip, 80), r.clock.now)).toBe(2000);
    r.clock.now += 2100;
    r.engine.endBatch();
    expect(r.conns.lookupIn(6, src, 51000, vip, 80)).toBe(-1);
    // The flood's earlier entries keep their 60 s; once they expire the table drains and the timeout is restored.
    r.clock.now += 60_000;
    r.engine.endBatch();
    r.engine.endBatch();
    expect(r.conns.size).toBe(0);
    expect(r.engine.underPressure).toBe(false);
    r.feed(tcpIn(52000, SYN));
    expect(r.conns.expiresIn(r.conns.lookupIn(6, src, 52000, vip, 80), r.clock.now)).toBeGreaterThan(50_000);
  });

  it('engine guard: the per-source rate limit refuses a source over its budget, counted; other sources and later seconds pass', () => {
    const r = rig({ newConnRate: 5, newConnBurst: 5 });
    r.engine.setTable(table([service(0, 6, 80, [dest(0, RS_A, 80, FwdCode.masq)])]));
    const v = Array.from({ length: 8 }, (_, i) => r.feed(tcpIn(53000 + i, SYN)));
    expect(v.filter((x) => x === Verdict.FORWARD)).toHaveLength(5);
    expect(r.ev('drop_rate_limit')).toBe(3);
    expect(r.feed(tcpIn(53100, SYN, { src: '10.0.0.101' }))).toBe(Verdict.FORWARD);
    r.clock.now += 1000;
    r.engine.endBatch();
    expect(r.feed(tcpIn(53200, SYN))).toBe(Verdict.FORWARD);
  });
});
