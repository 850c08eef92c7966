// Connection sync through the engine: director A forwards, its outbound ring's records are handed to director B's
// inbound ring (tsvsd's and the agents' job, done here by copying words), and B continues A's flows — mid-flow
// segments, NAT replies, persistence — without scheduling them afresh. Also what a forged record does (nothing).
import { describe, expect, it } from 'vitest';
import { ConnTable } from '../../shared/conntab/conn-table.ts';
import { TcpState } from '../../shared/conntab/tcp-state.ts';
import { Counters, countersBytes, Ev } from '../../shared/fwd/counters.ts';
import { FwdCode, SvcFlag } from '../../shared/model/ipvs.ts';
import { ipv4FromText } from '../../shared/net/addr.ts';
import { RECORD_WORDS, RecordOp, readRecord } from '../../shared/sync/record.ts';
import { SyncRing } from '../../shared/sync/ring.ts';
import { Engine, Verdict } from '../../services/worker/engine.ts';
import { eth, ipv4, tcp, udp } from '../support/packet-ref.ts';
import { CLIENT, CLIENT_MAC, DIR_BACK, DIR_FRONT, FakeL2, FakePort, RS_MAC, VIP, dest, service, table } from '../support/engine-fakes.ts';
import type { FwdTable } from '../../shared/fwd/table.ts';

const SYN = 0x02;
const ACK = 0x10;
const FIN = 0x01;
const RS_A = '10.1.0.101';
const RS_B = '10.1.0.102';

interface Director {
  engine: Engine;
  conns: ConnTable;
  front: FakePort;
  back: FakePort;
  out: SyncRing;
  inb: SyncRing;
  ev(name: keyof typeof Ev): number;
  feed(frame: number[]): number;
}

const clock = { now: 5_000_000 };

function director(t: FwdTable): Director {
  const front = new FakePort(1);
  const back = new FakePort(2);
  const counters = new Counters(new ArrayBuffer(countersBytes(1)), 1, true);
  const conns = ConnTable.create(1024, { counters: counters.rows[0].conns, epochMs: 0 });
  const out = SyncRing.create(new ArrayBuffer(SyncRing.bytes(256)), 0, 256);
  const inb = SyncRing.create(new ArrayBuffer(SyncRing.bytes(256)), 0, 256);
  const engine = new Engine({ conns, counters, worker: 0, l2: new FakeL2(), ports: new Map([[1, front], [2, back]]), now: () => clock.now, rng: () => 0.5, sync: { outbound: out, inbound: inb, shard: 0 } });
  engine.setTable(t);
  return {
    engine, conns, front, back, out, inb,
    ev: (name) => counters.rows[0].events[Ev[name]],
    feed: (frame) => {
      const buf = new Uint8Array(frame.length);
      buf.set(frame);
      return engine.frame(buf, 0, frame.length, false);
    },
  };
}

/** What the cluster does between two directors: every record A wrote reaches B's inbound ring. Returns the records. */
function carry(a: Director, b: Director): ReturnType<typeof readRecord>[] {
  const n = a.out.available();
  const words = new Uint32Array(n * RECORD_WORDS);
  a.out.drainInto(words, 0, n);
  b.inb.pushWords(words, 0, n);
  return Array.from({ length: n }, (_, i) => readRecord(words, i * RECORD_WORDS));
}

function tcpIn(sport: number, flags: number, src = CLIENT): number[] {
  return eth(DIR_FRONT, CLIENT_MAC, 0x0800, ipv4({ src, dst: VIP, proto: 6, payload: tcp({ src, dst: VIP, sport, dport: 80, flags, seq: 1001, ack: 5001 }) }));
}
function tcpReply(rs: string, sport: number, flags: number): number[] {
  return eth(DIR_BACK, RS_MAC[rs], 0x0800, ipv4({ src: rs, dst: CLIENT, proto: 6, payload: tcp({ src: rs, dst: CLIENT, sport: 80, dport: sport, flags }) }));
}
function udpIn(sport: number): number[] {
  return eth(DIR_FRONT, CLIENT_MAC, 0x0800, ipv4({ src: CLIENT, dst: VIP, proto: 17, payload: udp({ src: CLIENT, dst: VIP, sport, dport: 80, payload: [1, 2, 3, 4] }) }));
}
const ipAt = (b: Uint8Array, at: number): string => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
const natTable = (extra = {}): FwdTable => table([service(0, 6, 80, [dest(0, RS_A, 80, FwdCode.masq), dest(1, RS_B, 80, FwdCode.masq)], extra), service(1, 17, 80, [dest(2, RS_A, 80, FwdCode.masq), dest(3, RS_B, 80, FwdCode.masq)])]);

describe('connection sync through the engine', () => {
  it('sync engine: every state of a TCP connection is written, SYN_RECV included, with its timeout and what is left of it', () => {
    const a = director(natTable());
    const b = director(natTable());
    expect(a.feed(tcpIn(40000, SYN))).toBe(Verdict.FORWARD);
    const rs = ipAt(a.back.take()[0].bytes, 30);
    let recs = carry(a, b);
    expect(recs).toHaveLength(1);
    expect(recs[0]).toMatchObject({ op: RecordOp.NEW, proto: 6, state: TcpState.SYN_RECV, caddr: ipv4FromText(CLIENT), cport: 40000, vaddr: ipv4FromText(VIP), vport: 80, daddr: ipv4FromText(rs), dport: 80 });
    expect(recs[0].timeoutMs).toBe(a.conns.timeouts.tcp[TcpState.SYN_RECV]);
    expect(recs[0].remainingMs).toBe(recs[0].timeoutMs);
    a.feed(tcpReply(rs, 40000, SYN | ACK)); // stays SYN_RECV: nothing to write
    expect(a.out.available()).toBe(0);
    a.feed(tcpIn(40000, ACK));
    recs = carry(a, b);
    expect(recs.map((r) => [r.op, r.state])).toEqual([[RecordOp.UPDATE, TcpState.ESTABLISHED]]);
    expect(recs[0].timeoutMs).toBe(900_000);
    // Same state again within the refresh period: nothing more is written.
    a.feed(tcpIn(40000, ACK));
    expect(a.out.available()).toBe(0);
    // An eighth of the timeout later the entry is written again, so the peer's copy lives as long as the flow.
    clock.now += 900_000 / 8;
    a.engine.endBatch();
    a.feed(tcpIn(40000, ACK));
    recs = carry(a, b);
    expect(recs).toHaveLength(1);
    expect(recs[0]).toMatchObject({ op: RecordOp.UPDATE, state: TcpState.ESTABLISHED, remainingMs: 900_000 });
    expect(a.ev('sync_sent')).toBe(3);
  });

  it('sync engine: the peer installs the connections and carries them on — a mid-flow segment and a NAT reply go to the same real server', () => {
    const a = director(natTable());
    const b = director(natTable());
    const dests: string[] = [];
    for (const sport of [41000, 41001, 41002]) {
      a.feed(tcpIn(sport, SYN));
      const rs = ipAt(a.back.take()[0].bytes, 30);
      dests.push(rs);
      a.feed(tcpReply(rs, sport, SYN | ACK));
      a.feed(tcpIn(sport, ACK));
      a.back.take();
      a.front.take();
    }
    expect(new Set(dests).size).toBe(2); // rr spread them: B's own scheduler would not pick the same for all
    carry(a, b);
    b.engine.endBatch();
    expect(b.ev('sync_created')).toBe(3);
    expect(b.conns.size).toBe(3);
    for (let i = 0; i < 3; i++) {
      const sport = 41000 + i;
      const e = b.conns.lookupIn(6, ipv4FromText(CLIENT)!, sport, ipv4FromText(VIP)!, 80);
      expect(b.conns.state(e)).toBe(TcpState.ESTABLISHED);
      // A segment in the middle of the flow (no SYN): forwarded to A's choice, not dropped, not rescheduled.
      expect(b.feed(tcpIn(sport, ACK))).toBe(Verdict.FORWARD);
      expect(ipAt(b.back.take()[0].bytes, 30)).toBe(dests[i]);
      expect(b.feed(tcpReply(dests[i], sport, ACK))).toBe(Verdict.FORWARD);
      expect(ipAt(b.front.take()[0].bytes, 26)).toBe(VIP);
    }
    expect(b.ev('drop_no_conn')).toBe(0);
    expect(b.ev('conns_created')).toBe(0);
    // The synced connections count as active connections of their real servers on B, as on A.
    const active = (d: Director, id: number): number => d.engine['counters'].destConns(id, 0);
    expect(active(b, 0) + active(b, 1)).toBe(3);
  });

  it('sync engine: a packet that arrives before its entry was drained installs what is waiting, then matches', () => {
    const a = director(natTable());
    const b = director(natTable());
    a.feed(tcpIn(42000, SYN));
    a.feed(tcpIn(42001, SYN));
    const second = ipAt(a.back.take()[1].bytes, 30);
    carry(a, b); // in B's inbound ring, not drained (no batch end yet)
    expect(b.conns.size).toBe(0);
    expect(b.feed(tcpIn(42001, ACK))).toBe(Verdict.FORWARD);
    expect(ipAt(b.back.take()[0].bytes, 30)).toBe(second);
    expect(b.conns.size).toBe(2);
  });

  it('sync engine: a mid-flow segment and a NAT reply that outrun their entry are held, then forwarded once it arrives', () => {
    const a = director(natTable());
    const b = director(natTable());
    a.feed(tcpIn(46000, SYN));
    a.feed(tcpIn(46001, SYN));
    const second = ipAt(a.back.take()[1].bytes, 30);
    // B sees the flow before A's records reach it: nothing is sent, nothing is reset, the frames wait.
    expect(b.feed(tcpIn(46001, ACK))).toBe(Verdict.DROP);
    expect(b.feed(tcpReply(second, 46001, ACK))).toBe(Verdict.DROP);
    expect(b.ev('sync_held')).toBe(2);
    expect(b.back.take()).toHaveLength(0);
    expect(b.front.take()).toHaveLength(0);
    carry(a, b);
    b.engine.endBatch();
    expect(b.ev('sync_hold_released')).toBe(2);
    expect(ipAt(b.back.take()[0].bytes, 30)).toBe(second);
    expect(ipAt(b.front.take()[0].bytes, 26)).toBe(VIP);
    expect(b.ev('drop_no_conn') + b.ev('orphan_replies')).toBe(0);
  });

  it('sync engine: a held segment whose entry never comes is dropped after the hold time, counted', () => {
    const b = director(natTable());
    expect(b.feed(tcpIn(47000, ACK))).toBe(Verdict.DROP);
    b.engine.syncPoll();
    expect(b.ev('sync_hold_timeout')).toBe(0);
    clock.now += 250;
    b.engine.syncPoll();
    expect(b.ev('sync_hold_timeout')).toBe(1);
    expect(b.back.take()).toHaveLength(0);
    b.engine.syncPoll();
    expect(b.ev('sync_hold_timeout')).toBe(1);
  });

  it('sync engine: UDP flows and persistence templates move with their real server', () => {
    const persistent = natTable({ flags: SvcFlag.PERSISTENT, persistMs: 300_000 });
    const a = director(persistent);
    const b = director(persistent);
    a.feed(udpIn(43000));
    a.feed(udpIn(43001));
    const udpDests = a.back.take().map((f) => ipAt(f.bytes, 30));
    a.feed(tcpIn(43100, SYN));
    const tplDest = ipAt(a.back.take()[0].bytes, 30);
    const recs = carry(a, b);
    expect(recs.filter((r) => (r.flags & 0x1000) !== 0)).toHaveLength(1);
    b.engine.endBatch();
    expect(b.ev('sync_created')).toBe(recs.length);
    for (const [i, sport] of [43000, 43001].entries()) {
      expect(b.feed(udpIn(sport))).toBe(Verdict.FORWARD);
      expect(ipAt(b.back.take()[0].bytes, 30)).toBe(udpDests[i]);
    }
    // A new connection of the same client on B follows A's template, whatever B's scheduler would say.
    for (const sport of [43101, 43102, 43103]) {
      expect(b.feed(tcpIn(sport, SYN))).toBe(Verdict.FORWARD);
      expect(ipAt(b.back.take()[0].bytes, 30)).toBe(tplDest);
    }
  });

  it('sync engine: a connection removed on the sender (port reuse) is removed on the peer', () => {
    const a = director(natTable());
    const b = director(natTable());
    a.feed(tcpIn(44000, SYN));
    const rs = ipAt(a.back.take()[0].bytes, 30);
    a.feed(tcpReply(rs, 44000, SYN | ACK));
    a.feed(tcpIn(44000, ACK));
    a.feed(tcpIn(44000, FIN | ACK));
    a.feed(tcpReply(rs, 44000, FIN | ACK));
    a.feed(tcpIn(44000, ACK));
    carry(a, b);
    b.engine.endBatch();
    const e = b.conns.lookupIn(6, ipv4FromText(CLIENT)!, 44000, ipv4FromText(VIP)!, 80);
    expect(b.conns.state(e)).toBe(a.conns.state(a.conns.lookupIn(6, ipv4FromText(CLIENT)!, 44000, ipv4FromText(VIP)!, 80)));
    // The client reuses the port: A drops the old entry (CLOSE) and makes a new one (NEW).
    a.feed(tcpIn(44000, SYN));
    const recs = carry(a, b);
    expect(recs.map((r) => r.op)).toEqual([RecordOp.CLOSE, RecordOp.NEW]);
    b.engine.endBatch();
    expect(b.ev('sync_removed')).toBe(1);
    expect(b.conns.state(b.conns.lookupIn(6, ipv4FromText(CLIENT)!, 44000, ipv4FromText(VIP)!, 80))).toBe(TcpState.SYN_RECV);
  });

  it('sync engine: malformed records and records for services or real servers B does not have change nothing and are counted', () => {
    const b = director(natTable());
    const words = new Uint32Array(4 * RECORD_WORDS);
    words[0] = 9; // unknown op
    words[RECORD_WORDS] = RecordOp.NEW | (6 << 8);
    words[RECORD_WORDS + 2] = ipv4FromText(CLIENT)!;
    words[RECORD_WORDS + 3] = ipv4FromText('10.9.9.9')!; // no such VIP
    words[RECORD_WORDS + 5] = 45000 | (80 << 16);
    words[2 * RECORD_WORDS] = RecordOp.NEW | (6 << 8) | (TcpState.ESTABLISHED << 16);
    words[2 * RECORD_WORDS + 2] = ipv4FromText(CLIENT)!;
    words[2 * RECORD_WORDS + 3] = ipv4FromText(VIP)!;
    words[2 * RECORD_WORDS + 4] = ipv4FromText('10.1.0.199')!; // no such real server
    words[2 * RECORD_WORDS + 5] = 45001 | (80 << 16);
    words[2 * RECORD_WORDS + 6] = 80;
    words[3 * RECORD_WORDS] = RecordOp.NEW | (6 << 8) | (TcpState.ESTABLISHED << 16);
    words[3 * RECORD_WORDS + 8] = 10;
    words[3 * RECORD_WORDS + 9] = 20; // remaining beyond timeout
    b.inb.pushWords(words, 0, 4);
    b.engine.endBatch();
    expect(b.conns.size).toBe(0);
    expect(b.ev('sync_malformed')).toBe(2);
    expect(b.ev('sync_no_service')).toBe(1);
    expect(b.ev('sync_no_dest')).toBe(1);
    expect(b.feed(tcpIn(45001, ACK))).toBe(Verdict.DROP);
  });
});
