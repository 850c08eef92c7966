// engine: the worker's per-packet decisions, frame in → verdict → frame out, through fake ports and L2 (the
// connection table, schedulers and packet codecs are the real ones): NAT both ways, DR, TUN, persistence,
// port reuse, no destination (ICMP unreachable), one-packet scheduling, local delivery, malformed input.
import { describe, expect, it, beforeEach } from 'vitest';
import { ConnTable } from '../../shared/conntab/conn-table.ts';
import { Counters, countersBytes, Ev } from '../../shared/fwd/counters.ts';
import type { FwdDest, FwdService } from '../../shared/fwd/table.ts';
import { FwdCode, SvcFlag } from '../../shared/model/ipvs.ts';
import { inetChecksum } from '../../shared/net/checksum.ts';
import { Engine, Verdict, type LocalSink } from '../../services/worker/engine.ts';
import { eth, icmp, ipv4, tcp, udp } from '../support/packet-ref.ts';
import { CLIENT, CLIENT_MAC, DIR_BACK, DIR_FRONT, FakeL2, FakeL3, FakePort, RS_MAC, VIP, dest, service, table } from '../support/engine-fakes.ts';
import { createScheduler } from '../../shared/sched/index.ts';
import type { DestView } from '../../shared/sched/types.ts';
import { ipv4FromText } from '../../shared/net/addr.ts';
import { mulberry32U32 } from '../../shared/util/rng.ts';

const SYN = 0x02;
const ACK = 0x10;
const FIN = 0x01;
const RST = 0x04;

let now = 1_000_000;
let front: FakePort;
let back: FakePort;
let l2: FakeL2;
let counters: Counters;
let conns: ConnTable;
let localWrites: Uint8Array[];
let engine: Engine;

function newEngine(): void {
  front = new FakePort(1);
  back = new FakePort(2);
  l2 = new FakeL2();
  counters = new Counters(new ArrayBuffer(countersBytes(1)), 1, true);
  conns = ConnTable.create(1024, { counters: counters.rows[0].conns, epochMs: 0 });
  localWrites = [];
  const local: LocalSink = { write: (b, off, len) => (localWrites.push(b.slice(off, off + len)), true) };
  engine = new Engine({ conns, counters, worker: 0, l2, ports: new Map([[1, front], [2, back]]), now: () => now, rng: () => 0.5, local });
}

function feed(frame: number[], partial = false): number {
  const buf = new Uint8Array(frame.length + 10);
  buf.set(frame, 10);
  return engine.frame(buf, 10, frame.length, partial);
}

function synFrame(sport: number, dport = 80, flags = SYN, src = CLIENT): number[] {
  return eth(DIR_FRONT, CLIENT_MAC, 0x0800, ipv4({ src, dst: VIP, proto: 6, payload: tcp({ src, dst: VIP, sport, dport, flags }) }));
}

function ev(name: keyof typeof Ev): number {
  return counters.rows[0].events[Ev[name]];
}

function ipOf(bytes: Uint8Array, at: number): string {
  return `${bytes[at]}.${bytes[at + 1]}.${bytes[at + 2]}.${bytes[at + 3]}`;
}

beforeEach(newEngine);

describe('engine', () => {
  it('engine: NAT SYN goes to the scheduled real server, rewritten, with valid checksums; the reply comes back as the VIP', () => {
    engine.setTable(table([service(0, 6, 80, [dest(0, '10.1.0.102', 8080, FwdCode.masq), dest(1, '10.1.0.101', 8080, FwdCode.masq)])]));
    expect(feed(synFrame(40000))).toBe(Verdict.FORWARD);
    const [out] = back.take();
    const expected = eth(RS_MAC['10.1.0.102'], DIR_BACK, 0x0800, ipv4({ src: CLIENT, dst: '10.1.0.102', proto: 6, ttl: 63, payload: tcp({ src: CLIENT, dst: '10.1.0.102', sport: 40000, dport: 8080, flags: SYN }) }));
    expect([...out.bytes]).toEqual(expected);
    expect(conns.size).toBe(1);
    // SYN-ACK from the real server → to the client from VIP:80.
    const reply = eth(DIR_BACK, RS_MAC['10.1.0.102'], 0x0800, ipv4({ src: '10.1.0.102', dst: CLIENT, proto: 6, payload: tcp({ src: '10.1.0.102', dst: CLIENT, sport: 8080, dport: 40000, flags: SYN | ACK }) }));
    expect(feed(reply)).toBe(Verdict.FORWARD);
    const [back2] = front.take();
    const exp2 = eth(CLIENT_MAC, DIR_FRONT, 0x0800, ipv4({ src: VIP, dst: CLIENT, proto: 6, ttl: 63, payload: tcp({ src: VIP, dst: CLIENT, sport: 80, dport: 40000, flags: SYN | ACK }) }));
    expect([...back2.bytes]).toEqual(exp2);
    expect(ev('forwarded_in')).toBe(1);
    expect(ev('forwarded_out')).toBe(1);
    // The next SYN (new client port) goes to the other dest: rr in kernel list order.
    feed(synFrame(40001));
    expect(ipOf(back.take()[0].bytes, 14 + 16)).toBe('10.1.0.101');
    expect(counters.svcStat(0, 0)).toBe(2);
  });

  it('engine: CHECKSUM_PARTIAL packets leave with NEEDS_CSUM pointing at their L4 checksum', () => {
    engine.setTable(table([service(0, 6, 80, [dest(0, '10.1.0.101', 80, FwdCode.masq)])]));
    feed(eth(DIR_FRONT, CLIENT_MAC, 0x0800, ipv4({ src: CLIENT, dst: VIP, proto: 6, payload: tcp({ src: CLIENT, dst: VIP, sport: 5555, dport: 80, flags: SYN, csum: 'partial' }) })), true);
    const [out] = back.take();
    expect(out.vnet).toBe(1);
    expect(out.csumStart).toBe(34);
    expect(out.csumOffset).toBe(16);
  });

  it('engine: DR changes only the MACs (and the TTL, as Linux >= 5.3 does)', () => {
    engine.setTable(table([service(0, 6, 80, [dest(0, '10.1.0.101', 80, FwdCode.route)])]));
    const f = synFrame(41000);
    feed(f);
    const [out] = back.take();
    const expected = eth(RS_MAC['10.1.0.101'], DIR_BACK, 0x0800, ipv4({ src: CLIENT, dst: VIP, proto: 6, ttl: 63, payload: tcp({ src: CLIENT, dst: VIP, sport: 41000, dport: 80, flags: SYN }) }));
    expect([...out.bytes]).toEqual(expected);
  });

  it('engine: TUN wraps the packet in IPIP from the director to the real server', () => {
    engine.setTable(table([service(0, 17, 53, [dest(0, '10.1.0.101', 53, FwdCode.tunnel)])]));
    const inner = ipv4({ src: CLIENT, dst: VIP, proto: 17, payload: udp({ src: CLIENT, dst: VIP, sport: 3333, dport: 53, payload: [1, 2, 3, 4] }) });
    feed(eth(DIR_FRONT, CLIENT_MAC, 0x0800, inner));
    const [out] = back.take();
    expect(out.bytes[14 + 9]).toBe(4);
    expect(ipOf(out.bytes, 14 + 12)).toBe('10.1.0.1');
    expect(ipOf(out.bytes, 14 + 16)).toBe('10.1.0.101');
    expect(inetChecksum(out.bytes, 14, 20)).toBe(0);
    expect(ipOf(out.bytes, 34 + 16)).toBe(VIP);
    expect(out.bytes[34 + 8]).toBe(63);
  });

  it('engine: persistence keeps every connection of a client on one real server; a template is made once', () => {
    engine.setTable(table([service(0, 6, 443, [dest(0, '10.1.0.102', 443, FwdCode.masq), dest(1, '10.1.0.101', 443, FwdCode.masq)], { flags: SvcFlag.PERSISTENT, persistMs: 360_000 })]));
    const dsts = [50000, 50001, 50002, 50003].map((p) => (feed(synFrame(p, 443)), ipOf(back.take()[0].bytes, 30)));
    expect(new Set(dsts).size).toBe(1);
    expect(ev('templates_created')).toBe(1);
    // Another client is scheduled afresh (rr moves on).
    feed(synFrame(50004, 443, SYN, '10.0.0.101'));
    expect(ipOf(back.take()[0].bytes, 30)).not.toBe(dsts[0]);
  });

  it('engine: a non-SYN without a connection is dropped and counted', () => {
    engine.setTable(table([service(0, 6, 80, [dest(0, '10.1.0.101', 80, FwdCode.route)])]));
    expect(feed(synFrame(42000, 80, ACK))).toBe(Verdict.DROP);
    expect(ev('drop_no_conn')).toBe(1);
    expect(conns.size).toBe(0);
  });

  it('engine: with every real server quiesced a SYN gets ICMP port unreachable from the VIP', () => {
    engine.setTable(table([service(0, 6, 80, [dest(0, '10.1.0.101', 80, FwdCode.masq, 0)])]));
    expect(feed(synFrame(43000))).toBe(Verdict.DROP);
    expect(ev('drop_no_dest')).toBe(1);
    const [icmpOut] = front.take();
    expect(icmpOut.bytes[14 + 9]).toBe(1);
    expect(ipOf(icmpOut.bytes, 14 + 12)).toBe(VIP);
    expect(ipOf(icmpOut.bytes, 14 + 16)).toBe(CLIENT);
    expect([icmpOut.bytes[34], icmpOut.bytes[35]]).toEqual([3, 3]);
    expect(inetChecksum(icmpOut.bytes, 34, icmpOut.bytes.length - 34)).toBe(0);
  });

  it('engine: one-packet scheduling (-o) forwards each datagram and keeps no connection', () => {
    engine.setTable(table([service(0, 17, 53, [dest(0, '10.1.0.101', 53, FwdCode.masq)], { flags: SvcFlag.ONEPACKET })]));
    const f = eth(DIR_FRONT, CLIENT_MAC, 0x0800, ipv4({ src: CLIENT, dst: VIP, proto: 17, payload: udp({ src: CLIENT, dst: VIP, sport: 4000, dport: 53, payload: [9] }) }));
    expect(feed(f)).toBe(Verdict.FORWARD);
    expect(feed(f)).toBe(Verdict.FORWARD);
    expect(conns.size).toBe(0);
    expect(ev('conns_created')).toBe(2);
  });

  it('engine: a real server on the director itself gets the packet unchanged through the local sink', () => {
    engine.setTable(table([service(0, 6, 80, [dest(0, '10.0.0.1', 80, FwdCode.route)])]));
    l2.local.add(ipv4FromText('10.0.0.1')!);
    expect(feed(synFrame(44000))).toBe(Verdict.FORWARD);
    expect(localWrites).toHaveLength(1);
    expect(ipOf(localWrites[0], 16)).toBe(VIP);
    expect(ev('local_delivered')).toBe(1);
  });

  it('engine: a reply to a client whose MAC is not known yet goes, NATed, to the kernel (which resolves and queues)', () => {
    engine.setTable(table([service(0, 6, 80, [dest(0, '10.1.0.101', 80, FwdCode.masq)])]));
    const stranger = '10.9.9.9';
    expect(feed(synFrame(48000, 80, SYN, stranger))).toBe(Verdict.FORWARD);
    back.take();
    const reply = eth(DIR_BACK, RS_MAC['10.1.0.101'], 0x0800, ipv4({ src: '10.1.0.101', dst: stranger, proto: 6, payload: tcp({ src: '10.1.0.101', dst: stranger, sport: 80, dport: 48000, flags: SYN | ACK }) }));
    expect(feed(reply)).toBe(Verdict.FORWARD);
    expect(localWrites).toHaveLength(1);
    const expected = ipv4({ src: VIP, dst: stranger, proto: 6, ttl: 63, payload: tcp({ src: VIP, dst: stranger, sport: 80, dport: 48000, flags: SYN | ACK }) });
    expect([...localWrites[0]]).toEqual(expected);
    expect(ev('via_kernel')).toBe(1);
    expect(ev('forwarded_out')).toBe(1);
  });

  it('engine: dests added one by one keep wrr where the kernel keeps it (reported as adds, not a rebuild)', () => {
    const d3 = dest(3, '10.1.0.103', 80, FwdCode.masq, 1);
    const d2 = dest(2, '10.1.0.102', 80, FwdCode.masq, 1);
    const d1 = dest(1, '10.1.0.101', 80, FwdCode.masq, 3);
    const svc = (ds: FwdDest[]): FwdService => service(0, 6, 80, ds, { scheduler: 'wrr' });
    engine.setTable(table([svc([])], 1));
    engine.setTable(table([svc([d3])], 2));
    engine.setTable(table([svc([d2, d3])], 3));
    engine.setTable(table([svc([d1, d2, d3])], 4));
    RS_MAC['10.1.0.103'] = '02:00:00:00:01:03';
    const got = Array.from({ length: 10 }, (_, i) => (feed(synFrame(49000 + i)), ipOf(back.take()[0].bytes, 30).split('.')[3]));
    // The same changes fed straight to the kernel-exact scheduler.
    const views: DestView[] = [];
    const w = createScheduler('wrr', { flags: 0 })!;
    w.update(views, { kind: 'init' });
    for (const d of [d3, d2, d1]) {
      views.unshift({ index: 0, addr: d.addr, port: 80, weight: d.weight, lastWeight: d.weight, overloaded: false, available: true, activeConns: 0, inactConns: 0 });
      views.forEach((v, i) => (v.index = i));
      w.update(views, { kind: 'add', at: 0 });
    }
    const want = Array.from({ length: 10 }, () => String(views[w.schedule(views, { saddr: 0, sport: 0, daddr: 0, dport: 0 }, 0)].addr & 255));
    expect(got).toEqual(want);
    // A rebuild would have started a full cycle at once; the kernel does not.
    expect(want.slice(0, 5)).not.toEqual(['101', '101', '101', '102', '103']);
    delete RS_MAC['10.1.0.103'];
  });

  it('engine: L3 (NFQUEUE) NAT rewrites in place without touching the TTL (the kernel forwards), both ways', () => {
    engine.setTable(table([service(0, 6, 80, [dest(0, '10.1.0.101', 8080, FwdCode.masq)])]));
    const q = new FakeL3();
    const pkt = ipv4({ src: CLIENT, dst: VIP, proto: 6, payload: tcp({ src: CLIENT, dst: VIP, sport: 51000, dport: 80, flags: SYN }) });
    const buf = Uint8Array.from(pkt);
    expect(engine.packet(buf, 0, buf.length, 7, q)).toBe(Verdict.FORWARD);
    expect(q.verdicts[0].kind).toBe('modified');
    expect([...q.verdicts[0].bytes!]).toEqual(ipv4({ src: CLIENT, dst: '10.1.0.101', proto: 6, payload: tcp({ src: CLIENT, dst: '10.1.0.101', sport: 51000, dport: 8080, flags: SYN }) }));
    const rep = Uint8Array.from(ipv4({ src: '10.1.0.101', dst: CLIENT, proto: 6, payload: tcp({ src: '10.1.0.101', dst: CLIENT, sport: 8080, dport: 51000, flags: SYN | ACK }) }));
    engine.packet(rep, 0, rep.length, 8, q);
    expect([...q.verdicts[1].bytes!]).toEqual(ipv4({ src: VIP, dst: CLIENT, proto: 6, payload: tcp({ src: VIP, dst: CLIENT, sport: 80, dport: 51000, flags: SYN | ACK }) }));
    // Not ours: accepted back to the kernel, exactly one verdict each.
    const other = Uint8Array.from(ipv4({ src: CLIENT, dst: '10.0.0.1', proto: 6, payload: tcp({ src: CLIENT, dst: '10.0.0.1', sport: 1, dport: 22, flags: SYN }) }));
    engine.packet(other, 0, other.length, 9, q);
    expect(q.verdicts.map((v) => [v.id, v.kind])).toEqual([[7, 'modified'], [8, 'modified'], [9, 'accept']]);
  });

  it('engine: L3 DR marks the packet for the real server\'s policy route; L3 TUN grows it by an outer header', () => {
    engine.setTable(table([
      service(0, 6, 80, [dest(0, '10.1.0.101', 80, FwdCode.route, 1, { drMark: 0x101 })]),
      service(1, 17, 53, [dest(1, '10.1.0.102', 53, FwdCode.tunnel)]),
    ]));
    const q = new FakeL3();
    const syn = Uint8Array.from(ipv4({ src: CLIENT, dst: VIP, proto: 6, payload: tcp({ src: CLIENT, dst: VIP, sport: 52000, dport: 80, flags: SYN }) }));
    engine.packet(syn, 0, syn.length, 1, q);
    expect(q.verdicts[0]).toEqual({ id: 1, kind: 'mark', mark: 0x101 });
    const dns = Uint8Array.from(ipv4({ src: CLIENT, dst: VIP, proto: 17, payload: udp({ src: CLIENT, dst: VIP, sport: 5353, dport: 53, payload: [1, 2] }) }));
    engine.packet(dns, 0, dns.length, 2, q);
    expect(q.verdicts[1].kind).toBe('reserved');
    const g = q.grown();
    expect(g.length).toBe(20 + dns.length);
    expect(g[9]).toBe(4);
    expect(ipOf(g, 12)).toBe('10.1.0.1');
    expect(ipOf(g, 16)).toBe('10.1.0.102');
    expect(ipOf(g, 20 + 16)).toBe(VIP);
  });

  it('engine: an ICMP error from a NAT real server reaches the client as from the VIP, the embedded packet un-NATed', () => {
    engine.setTable(table([service(0, 17, 53, [dest(0, '10.1.0.101', 5353, FwdCode.masq)])]));
    feed(eth(DIR_FRONT, CLIENT_MAC, 0x0800, ipv4({ src: CLIENT, dst: VIP, proto: 17, payload: udp({ src: CLIENT, dst: VIP, sport: 6000, dport: 53, payload: [7, 7] }) })));
    const [fwd] = back.take();
    const embedded = [...fwd.bytes.slice(14, 14 + 28)];
    const err = eth(DIR_BACK, RS_MAC['10.1.0.101'], 0x0800, ipv4({ src: '10.1.0.101', dst: CLIENT, proto: 1, payload: icmp(3, 3, [0, 0, 0, 0], embedded) }));
    expect(feed(err)).toBe(Verdict.FORWARD);
    const [out] = front.take();
    expect(ipOf(out.bytes, 14 + 12)).toBe(VIP);
    expect(ipOf(out.bytes, 14 + 16)).toBe(CLIENT);
    // Embedded: CLIENT:6000 → VIP:53, as the client sent it.
    expect(ipOf(out.bytes, 42 + 16)).toBe(VIP);
    expect((out.bytes[42 + 22] << 8) | out.bytes[42 + 23]).toBe(53);
    expect(inetChecksum(out.bytes, 34, out.bytes.length - 34)).toBe(0);
    expect(inetChecksum(out.bytes, 42, 20)).toBe(0);
    expect(ev('icmp_translated')).toBe(1);
  });

  it('engine: traffic for no service is not ours; a reply from a NAT server with no connection is an orphan', () => {
    engine.setTable(table([service(0, 6, 80, [dest(0, '10.1.0.101', 80, FwdCode.masq)])]));
    expect(feed(synFrame(45000, 22))).toBe(Verdict.NOT_OURS);
    const stray = eth(DIR_BACK, RS_MAC['10.1.0.101'], 0x0800, ipv4({ src: '10.1.0.101', dst: CLIENT, proto: 6, payload: tcp({ src: '10.1.0.101', dst: CLIENT, sport: 80, dport: 45001, flags: ACK }) }));
    expect(feed(stray)).toBe(Verdict.DROP);
    expect(ev('orphan_replies')).toBe(1);
  });

  it('engine: malformed frames for the VIP are dropped and counted by reason, never thrown', () => {
    engine.setTable(table([service(0, 6, 80, [dest(0, '10.1.0.101', 80, FwdCode.masq)])]));
    const good = synFrame(46000);
    const badIhl = [...good];
    badIhl[14] = 0x43;
    const frag = eth(DIR_FRONT, CLIENT_MAC, 0x0800, ipv4({ src: CLIENT, dst: VIP, proto: 6, frag: 0x2000, payload: tcp({ src: CLIENT, dst: VIP, sport: 1, dport: 80, flags: SYN }) }));
    expect(feed(badIhl)).not.toBe(Verdict.FORWARD);
    expect(feed(frag)).toBe(Verdict.DROP);
    expect(counters.events().net_drop_bad_ihl).toBe(1);
    expect(counters.events().net_drop_fragment).toBe(1);
    const rnd = mulberry32U32(99);
    for (let i = 0; i < 5000; i++) {
      const f = [...good];
      for (let k = 0; k < 3; k++) f[rnd() % f.length] = rnd() & 255;
      feed(f.slice(0, 14 + (rnd() % (f.length - 13))));
    }
    expect(ev('rx_frames')).toBe(5002);
  });

  it('engine: a table swap keeps connections flowing to their real server and drops those of a deleted dest', () => {
    engine.setTable(table([service(0, 6, 80, [dest(0, '10.1.0.101', 80, FwdCode.masq), dest(1, '10.1.0.102', 80, FwdCode.masq)])]));
    feed(synFrame(47000));
    const first = ipOf(back.take()[0].bytes, 30);
    // -e: weights change, a dest is added; the connection keeps its server.
    engine.setTable(table([service(0, 6, 80, [dest(2, '10.1.0.103', 80, FwdCode.masq), dest(0, '10.1.0.101', 80, FwdCode.masq, 5), dest(1, '10.1.0.102', 80, FwdCode.masq)])], 2));
    feed(synFrame(47000, 80, ACK));
    expect(ipOf(back.take()[0].bytes, 30)).toBe(first);
    // -d of that server: its connection's packets are dropped (the kernel's default without expire_nodest_conn).
    const remaining = first === '10.1.0.101' ? dest(1, '10.1.0.102', 80, FwdCode.masq) : dest(0, '10.1.0.101', 80, FwdCode.masq);
    engine.setTable(table([service(0, 6, 80, [remaining])], 3));
    expect(feed(synFrame(47000, 80, ACK))).toBe(Verdict.DROP);
    expect(ev('drop_dest_gone')).toBe(1);
    now += 1;
  });
});

/** The one connection of client port `sport`: its state name and real server, or undefined. */
function connOf(sport: number): { state: string; daddr: string; template: boolean } | undefined {
  const e = [...conns.entries(now)].find((x) => x.cport === sport && !x.template);
  return e && { state: e.state, daddr: e.daddr, template: e.template };
}

/** A packet from real server `rs` (port 80) to the client's port `sport`. */
function fromRs(rs: string, sport: number, flags: number): number[] {
  return eth(DIR_BACK, RS_MAC[rs], 0x0800, ipv4({ src: rs, dst: CLIENT, proto: 6, payload: tcp({ src: rs, dst: CLIENT, sport: 80, dport: sport, flags }) }));
}

/** The real server a DR frame was sent to, by its destination MAC (DR leaves the IP header's VIP alone). */
function drTarget(bytes: Uint8Array): string | undefined {
  const m = Array.from(bytes.subarray(0, 6), (b) => b.toString(16).padStart(2, '0')).join(':');
  return Object.keys(RS_MAC).find((k) => RS_MAC[k] === m);
}

/** Sum over workers of dest `id`'s [active, inactive] connection counts. */
function destCounts(id: number): [number, number] {
  return [counters.destConns(id, 0), counters.destConns(id, 1)];
}

/** NAT handshake and close: client SYN, RS SYN-ACK, client ACK, client FIN, RS FIN: the connection ends in TIME_WAIT. */
function natToTimeWait(sport: number): string {
  expect(feed(synFrame(sport))).toBe(Verdict.FORWARD);
  const rs = ipOf(back.take()[0].bytes, 30);
  expect(feed(fromRs(rs, sport, SYN | ACK))).toBe(Verdict.FORWARD);
  expect(feed(synFrame(sport, 80, ACK))).toBe(Verdict.FORWARD);
  expect(feed(synFrame(sport, 80, FIN | ACK))).toBe(Verdict.FORWARD);
  expect(connOf(sport)?.state).toBe('CLOSE_WAIT');
  expect(feed(fromRs(rs, sport, FIN | ACK))).toBe(Verdict.FORWARD);
  front.take();
  back.take();
  expect(connOf(sport)).toEqual({ state: 'TIME_WAIT', daddr: rs, template: false });
  return rs;
}

// IPVS's conn_reuse_mode (default 1, /work/shared/reference/ipvs-semantics.md §6): a SYN on an existing connection
// reschedules it when the old connection is uncontrolled and in TIME_WAIT or CLOSE; otherwise the packet belongs
// to the old connection. Each case first proves the connection really reached the state it names.
describe('engine: port reuse (conn_reuse_mode 1)', () => {
  const RS_A = '10.1.0.102';
  const RS_B = '10.1.0.101';
  const twoNat = (): void => engine.setTable(table([service(0, 6, 80, [dest(0, RS_A, 80, FwdCode.masq), dest(1, RS_B, 80, FwdCode.masq)])]));
  const twoDr = (): void => engine.setTable(table([service(0, 6, 80, [dest(0, RS_A, 80, FwdCode.route), dest(1, RS_B, 80, FwdCode.route)])]));

  it('engine: a SYN on a TIME_WAIT connection expires it and schedules a new one (rr moves on to the other real server)', () => {
    twoNat();
    expect(natToTimeWait(42001)).toBe(RS_A);
    expect(destCounts(0)).toEqual([0, 1]);
    expect(feed(synFrame(42001))).toBe(Verdict.FORWARD);
    const [out] = back.take();
    expect(ipOf(out.bytes, 30)).toBe(RS_B);
    expect(out.bytes[14 + 20 + 13]).toBe(SYN);
    expect(ev('conns_created')).toBe(2);
    expect(conns.size).toBe(1);
    expect(connOf(42001)).toEqual({ state: 'SYN_RECV', daddr: RS_B, template: false });
    // The old connection's count left RS_A; the new one counts on RS_B.
    expect(destCounts(0)).toEqual([0, 0]);
    expect(destCounts(1)).toEqual([1, 0]);
    expect(counters.svcStat(0, 0)).toBe(2);
  });

  it('engine: a SYN on a CLOSE connection (reset by the client, DR) is rescheduled too', () => {
    twoDr();
    feed(synFrame(42002));
    expect(drTarget(back.take()[0].bytes)).toBe(RS_A);
    feed(synFrame(42002, 80, ACK));
    expect(connOf(42002)?.state).toBe('ESTABLISHED');
    feed(synFrame(42002, 80, RST));
    expect(connOf(42002)?.state).toBe('CLOSE');
    back.take();
    expect(feed(synFrame(42002))).toBe(Verdict.FORWARD);
    expect(drTarget(back.take()[0].bytes)).toBe(RS_B);
    expect(ev('conns_created')).toBe(2);
    expect(conns.size).toBe(1);
  });

  it('engine: a SYN on an ESTABLISHED connection is a retransmission: same real server, no new connection', () => {
    twoNat();
    feed(synFrame(42003));
    feed(fromRs(RS_A, 42003, SYN | ACK));
    feed(synFrame(42003, 80, ACK));
    expect(connOf(42003)?.state).toBe('ESTABLISHED');
    back.take();
    expect(feed(synFrame(42003))).toBe(Verdict.FORWARD);
    expect(ipOf(back.take()[0].bytes, 30)).toBe(RS_A);
    expect(ev('conns_created')).toBe(1);
  });

  it('engine: FIN_WAIT without replies (DR) is not reused in mode 1 (that is mode bit 2): the SYN stays on the old real server', () => {
    twoDr();
    feed(synFrame(42004));
    feed(synFrame(42004, 80, ACK));
    feed(synFrame(42004, 80, FIN | ACK));
    expect(connOf(42004)?.state).toBe('FIN_WAIT');
    back.take();
    expect(feed(synFrame(42004))).toBe(Verdict.FORWARD);
    expect(drTarget(back.take()[0].bytes)).toBe(RS_A);
    expect(ev('conns_created')).toBe(1);
    expect(connOf(42004)).toEqual({ state: 'SYN_RECV', daddr: RS_A, template: false });
  });

  it('engine: a template-controlled TIME_WAIT connection is not reused: the SYN continues it under persistence', () => {
    engine.setTable(table([service(0, 6, 80, [dest(0, RS_A, 80, FwdCode.masq), dest(1, RS_B, 80, FwdCode.masq)], { flags: SvcFlag.PERSISTENT, persistMs: 360_000 })]));
    expect(natToTimeWait(42005)).toBe(RS_A);
    expect(feed(synFrame(42005))).toBe(Verdict.FORWARD);
    expect(ipOf(back.take()[0].bytes, 30)).toBe(RS_A);
    expect(ev('conns_created')).toBe(1);
    expect(ev('templates_created')).toBe(1);
    expect(connOf(42005)?.state).toBe('SYN_RECV');
  });

  it('engine: a SYN on a TIME_WAIT connection whose real server was deleted is rescheduled, not dropped (reuse precedes the dest check)', () => {
    twoNat();
    expect(natToTimeWait(42006)).toBe(RS_A);
    engine.setTable(table([service(0, 6, 80, [dest(1, RS_B, 80, FwdCode.masq)])], 2));
    expect(feed(synFrame(42006, 80, ACK))).toBe(Verdict.DROP);
    expect(ev('drop_dest_gone')).toBe(1);
    expect(feed(synFrame(42006))).toBe(Verdict.FORWARD);
    expect(ipOf(back.take()[0].bytes, 30)).toBe(RS_B);
    expect(ev('drop_dest_gone')).toBe(1);
    expect(ev('conns_created')).toBe(2);
    expect(connOf(42006)?.daddr).toBe(RS_B);
  });

  it('engine: a SYN with RST on a TIME_WAIT connection expires it and creates nothing (dropped as no connection)', () => {
    twoNat();
    natToTimeWait(42007);
    expect(feed(synFrame(42007, 80, SYN | RST))).toBe(Verdict.DROP);
    expect(ev('drop_no_conn')).toBe(1);
    expect(conns.size).toBe(0);
    expect(destCounts(0)).toEqual([0, 0]);
  });
});
