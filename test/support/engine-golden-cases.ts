// Engine golden cases, written by hand with the reference packet builder (packet-ref.ts shares no code with
// shared/net): frames in, verdicts, output bytes and counter deltas out. gen-engine-fixtures.ts stores them as
// test/fixtures/engine/*.json; engine-golden.test.ts and `npm run bench -- engine` replay the stored files.
import type { DestDelta, EngineCase, NeighbourSpec, OutFrame, PortSpec, ServiceSpec, StepSpec, TableSpec } from '../../ops/bench/_engine-cases.ts';
import { SvcFlag } from '../../shared/model/ipvs.ts';
import { eth, icmp, ipv4, tcp, toHex, udp } from './packet-ref.ts';

const SYN = 0x02;
const ACK = 0x10;
const FIN = 0x01;
const RST = 0x04;

const DIR_FRONT = '02:00:00:00:00:01';
const DIR_BACK = '02:00:00:00:00:02';
const CLIENT_MAC = '02:00:00:00:00:aa';
const RS1 = '10.1.0.101';
const RS2 = '10.1.0.102';
const RS_MAC: Record<string, string> = { [RS1]: '02:00:00:00:01:01', [RS2]: '02:00:00:00:01:02' };
const VIP = '10.0.0.10';
const CLIENT = '10.0.0.100';
const DIR_BACK_IP = '10.1.0.1';

const PORTS: Record<string, PortSpec> = {
  front: { ifindex: 1, mac: DIR_FRONT, ip: '10.0.0.1' },
  back: { ifindex: 2, mac: DIR_BACK, ip: DIR_BACK_IP },
};
const NEIGHBOURS: NeighbourSpec[] = [
  { net: '10.0.0.0/24', port: 'front', mac: CLIENT_MAC },
  { net: `${RS1}/32`, port: 'back', mac: RS_MAC[RS1] },
  { net: `${RS2}/32`, port: 'back', mac: RS_MAC[RS2] },
];

/** The 20-byte TCP segments below carry no options, so every TCP packet is 40 bytes of IP. */
const TCP_LEN = 40;

function svc(id: number, protocol: number, vport: number, dests: ServiceSpec['dests'], extra: Partial<ServiceSpec> = {}): ServiceSpec {
  return { id, protocol, vip: VIP, vport, scheduler: 'rr', dests, ...extra };
}

function tbl(services: ServiceSpec[], epoch = 1): TableSpec {
  return { epoch, services };
}

/** A client → VIP TCP frame as it arrives on the front port. */
function cTcp(sport: number, flags: number, o: { dst?: string; dport?: number; ttl?: number } = {}): number[] {
  const dst = o.dst ?? VIP;
  return eth(DIR_FRONT, CLIENT_MAC, 0x0800, ipv4({ src: CLIENT, dst, proto: 6, ttl: o.ttl ?? 64, payload: tcp({ src: CLIENT, dst, sport, dport: o.dport ?? 80, flags }) }));
}

/** The same packet NATed to real server `rs`:`rport`, leaving by the back port (TTL decremented). */
function toRsNat(rs: string, rport: number, sport: number, flags: number): OutFrame {
  return out('back', eth(RS_MAC[rs], DIR_BACK, 0x0800, ipv4({ src: CLIENT, dst: rs, proto: 6, ttl: 63, payload: tcp({ src: CLIENT, dst: rs, sport, dport: rport, flags }) })));
}

/** A real server's reply as it arrives on the back port. */
function rsTcp(rs: string, rport: number, sport: number, flags: number): number[] {
  return eth(DIR_BACK, RS_MAC[rs], 0x0800, ipv4({ src: rs, dst: CLIENT, proto: 6, payload: tcp({ src: rs, dst: CLIENT, sport: rport, dport: sport, flags }) }));
}

/** That reply after NAT: from VIP:80 to the client, by the front port. */
function toClientNat(sport: number, flags: number): OutFrame {
  return out('front', eth(CLIENT_MAC, DIR_FRONT, 0x0800, ipv4({ src: VIP, dst: CLIENT, proto: 6, ttl: 63, payload: tcp({ src: VIP, dst: CLIENT, sport: 80, dport: sport, flags }) })));
}

function out(port: string, frame: number[]): OutFrame {
  return { port, frame: toHex(frame) };
}

function step(note: string, input: number[], verdict: StepSpec['verdict'], o: { out?: OutFrame[]; events?: Record<string, number>; dests?: Record<string, DestDelta>; table?: TableSpec; advanceMs?: number } = {}): StepSpec {
  return {
    note, ...(o.advanceMs ? { advanceMs: o.advanceMs } : {}), ...(o.table ? { table: o.table } : {}), in: toHex(input),
    verdict, out: o.out ?? [], events: { rx_frames: 1, ...(o.events ?? {}) }, dests: o.dests ?? {},
  };
}

const fwdIn = (extra: Record<string, number> = {}): Record<string, number> => ({ forwarded_in: 1, tx_frames: 1, ...extra });
const fwdOut = { forwarded_out: 1, tx_frames: 1 };
const inTcp = (x: DestDelta = {}): DestDelta => ({ inpkts: 1, inbytes: TCP_LEN, ...x });
const outTcp: DestDelta = { outpkts: 1, outbytes: TCP_LEN };

function world(name: string, description: string, table: TableSpec, steps: StepSpec[]): EngineCase {
  return { name, description, ports: PORTS, neighbours: NEIGHBOURS, table, steps };
}

/** Every engine golden case, in file order. */
export function engineGoldenCases(): EngineCase[] {
  const natTwo = tbl([svc(0, 6, 80, [{ id: 0, addr: RS2, port: 8080, method: 'masq' }, { id: 1, addr: RS1, port: 8080, method: 'masq' }])]);
  const drOne = tbl([svc(0, 6, 80, [{ id: 0, addr: RS1, port: 80, method: 'route' }])]);
  const tunOne = tbl([svc(0, 17, 53, [{ id: 0, addr: RS1, port: 53, method: 'tunnel' }])]);
  const inner = (ttl: number): number[] => ipv4({ src: CLIENT, dst: VIP, proto: 17, ttl, id: 0x4242, payload: udp({ src: CLIENT, dst: VIP, sport: 3333, dport: 53, payload: [1, 2, 3, 4] }) });
  const innerLen = 20 + 8 + 4;
  const quiesced = tbl([svc(0, 6, 80, [{ id: 0, addr: RS1, port: 80, method: 'masq', weight: 0 }])]);
  const synToVip = cTcp(43000, SYN);

  return [
    world('nat-tcp-lifecycle', 'NAT, rr over two real servers: handshake, close to TIME_WAIT, port reuse rescheduled to the other server (conn_reuse_mode 1)', natTwo, [
      step('client SYN: a new connection on RS2 (kernel list order), VIP:80 → RS2:8080', cTcp(40000, SYN), 'FORWARD',
        { out: [toRsNat(RS2, 8080, 40000, SYN)], events: fwdIn({ conns_created: 1 }), dests: { 0: inTcp({ active: 1, conns: 1 }) } }),
      step('RS2 SYN-ACK goes back to the client from VIP:80', rsTcp(RS2, 8080, 40000, SYN | ACK), 'FORWARD',
        { out: [toClientNat(40000, SYN | ACK)], events: fwdOut, dests: { 0: outTcp } }),
      step('client ACK: ESTABLISHED', cTcp(40000, ACK), 'FORWARD', { out: [toRsNat(RS2, 8080, 40000, ACK)], events: fwdIn(), dests: { 0: inTcp() } }),
      step('client FIN: CLOSE_WAIT, the connection turns inactive', cTcp(40000, FIN | ACK), 'FORWARD',
        { out: [toRsNat(RS2, 8080, 40000, FIN | ACK)], events: fwdIn(), dests: { 0: inTcp({ active: -1, inactive: 1 }) } }),
      step('RS2 FIN: TIME_WAIT', rsTcp(RS2, 8080, 40000, FIN | ACK), 'FORWARD', { out: [toClientNat(40000, FIN | ACK)], events: fwdOut, dests: { 0: outTcp } }),
      step('client SYN on the TIME_WAIT port: the old connection goes, a new one is scheduled on RS1', cTcp(40000, SYN), 'FORWARD',
        { out: [toRsNat(RS1, 8080, 40000, SYN)], events: fwdIn({ conns_created: 1 }), dests: { 0: { inactive: -1 }, 1: inTcp({ active: 1, conns: 1 }) } }),
      step('an ACK from a port without a connection is dropped', cTcp(40001, ACK), 'DROP', { events: { drop_no_conn: 1 } }),
    ]),
    world('dr-tcp', 'DR: only the MACs change (and the TTL, as Linux >= 5.3 does); an established connection reset by the client (CLOSE) is reused by the next SYN', drOne, [
      step('client SYN to RS1 by MAC', cTcp(41000, SYN), 'FORWARD', {
        out: [out('back', eth(RS_MAC[RS1], DIR_BACK, 0x0800, ipv4({ src: CLIENT, dst: VIP, proto: 6, ttl: 63, payload: tcp({ src: CLIENT, dst: VIP, sport: 41000, dport: 80, flags: SYN }) })))],
        events: fwdIn({ conns_created: 1 }), dests: { 0: inTcp({ active: 1, conns: 1 }) },
      }),
      step('client ACK: ESTABLISHED', cTcp(41000, ACK), 'FORWARD', {
        out: [out('back', eth(RS_MAC[RS1], DIR_BACK, 0x0800, ipv4({ src: CLIENT, dst: VIP, proto: 6, ttl: 63, payload: tcp({ src: CLIENT, dst: VIP, sport: 41000, dport: 80, flags: ACK }) })))],
        events: fwdIn(), dests: { 0: inTcp() },
      }),
      step('client RST: CLOSE', cTcp(41000, RST), 'FORWARD', {
        out: [out('back', eth(RS_MAC[RS1], DIR_BACK, 0x0800, ipv4({ src: CLIENT, dst: VIP, proto: 6, ttl: 63, payload: tcp({ src: CLIENT, dst: VIP, sport: 41000, dport: 80, flags: RST }) })))],
        events: fwdIn(), dests: { 0: inTcp({ active: -1, inactive: 1 }) },
      }),
      step('client SYN on the CLOSE port: a new connection', cTcp(41000, SYN), 'FORWARD', {
        out: [out('back', eth(RS_MAC[RS1], DIR_BACK, 0x0800, ipv4({ src: CLIENT, dst: VIP, proto: 6, ttl: 63, payload: tcp({ src: CLIENT, dst: VIP, sport: 41000, dport: 80, flags: SYN }) })))],
        events: fwdIn({ conns_created: 1 }), dests: { 0: inTcp({ active: 1, inactive: -1, conns: 1 }) },
      }),
    ]),
    world('tun-udp-ipip', 'TUN: a UDP datagram wrapped in IPIP from the director (10.1.0.1) to RS1; outer TTL and id from the inner packet', tunOne, [
      step('client datagram to VIP:53', eth(DIR_FRONT, CLIENT_MAC, 0x0800, inner(64)), 'FORWARD', {
        out: [out('back', eth(RS_MAC[RS1], DIR_BACK, 0x0800, ipv4({ src: DIR_BACK_IP, dst: RS1, proto: 4, ttl: 63, id: 0x4242, payload: inner(63) })))],
        events: fwdIn({ conns_created: 1 }), dests: { 0: { inactive: 1, conns: 1, inpkts: 1, inbytes: innerLen } },
      }),
    ]),
    world('one-packet-udp', 'One-packet scheduling (-o): each datagram is scheduled and leaves no connection behind', tbl([svc(0, 17, 53, [{ id: 0, addr: RS1, port: 5353, method: 'masq' }], { flags: SvcFlag.ONEPACKET })]), [0, 1].map((i) =>
      step(`datagram ${i + 1}: NATed to RS1:5353, no connection kept`, eth(DIR_FRONT, CLIENT_MAC, 0x0800, ipv4({ src: CLIENT, dst: VIP, proto: 17, payload: udp({ src: CLIENT, dst: VIP, sport: 4000, dport: 53, payload: [9] }) })), 'FORWARD', {
        out: [out('back', eth(RS_MAC[RS1], DIR_BACK, 0x0800, ipv4({ src: CLIENT, dst: RS1, proto: 17, ttl: 63, payload: udp({ src: CLIENT, dst: RS1, sport: 4000, dport: 5353, payload: [9] }) })))],
        events: fwdIn({ conns_created: 1 }), dests: { 0: { conns: 1, inpkts: 1, inbytes: 29 } },
      }))),
    world('drops', 'Frames that are not forwarded: each verdict and the counter that explains it', natTwo, [
      step('TCP ACK without a connection', cTcp(42000, ACK), 'DROP', { events: { drop_no_conn: 1 } }),
      step('a fragment for the VIP', eth(DIR_FRONT, CLIENT_MAC, 0x0800, ipv4({ src: CLIENT, dst: VIP, proto: 6, frag: 0x2000, payload: tcp({ src: CLIENT, dst: VIP, sport: 1, dport: 80, flags: SYN }) })), 'DROP',
        { events: { net_drop_fragment: 1 } }),
      step('TCP to an address that is no VIP: the kernel\'s', cTcp(42002, SYN, { dst: '10.0.0.99' }), 'NOT_OURS', { events: { not_ours: 1 } }),
      step('TCP to the VIP on a port without a service: the kernel\'s', cTcp(42003, SYN, { dport: 81 }), 'NOT_OURS', { events: { not_ours: 1 } }),
      step('a real server\'s packet without a connection (NAT reply of nothing)', rsTcp(RS2, 8080, 42004, ACK), 'DROP', { events: { orphan_replies: 1 } }),
      step('an ARP frame is not IPv4: the kernel\'s', eth('ff:ff:ff:ff:ff:ff', CLIENT_MAC, 0x0806, new Array<number>(28).fill(0)), 'NOT_OURS', {}),
    ]),
    world('threshold-fo', 'Thresholds (-x 1) with weighted failover: RS2 (weight 2) takes the first connection and is overloaded; the next goes to RS1; once the reset connection expires (CLOSE, 10 s) RS2 is used again', tbl([svc(0, 6, 80, [
      { id: 0, addr: RS2, port: 8080, method: 'masq', weight: 2, uThreshold: 1 }, { id: 1, addr: RS1, port: 8080, method: 'masq', weight: 1 },
    ], { scheduler: 'fo' })]), [
      step('client SYN (port 45000): RS2, the heaviest; it now has 1 connection = u: overloaded', cTcp(45000, SYN), 'FORWARD',
        { out: [toRsNat(RS2, 8080, 45000, SYN)], events: fwdIn({ conns_created: 1 }), dests: { 0: inTcp({ active: 1, conns: 1 }) } }),
      step('client SYN (port 45001): RS2 is overloaded, so RS1', cTcp(45001, SYN), 'FORWARD',
        { out: [toRsNat(RS1, 8080, 45001, SYN)], events: fwdIn({ conns_created: 1 }), dests: { 1: inTcp({ active: 1, conns: 1 }) } }),
      step('client ACK on port 45000: ESTABLISHED', cTcp(45000, ACK), 'FORWARD', { out: [toRsNat(RS2, 8080, 45000, ACK)], events: fwdIn(), dests: { 0: inTcp() } }),
      step('client RST on port 45000: CLOSE (still counted, inactive, until it expires)', cTcp(45000, RST), 'FORWARD',
        { out: [toRsNat(RS2, 8080, 45000, RST)], events: fwdIn(), dests: { 0: inTcp({ active: -1, inactive: 1 }) } }),
      step('client SYN (port 45002) at once: RS2 still holds 1 connection, still overloaded: RS1', cTcp(45002, SYN), 'FORWARD',
        { out: [toRsNat(RS1, 8080, 45002, SYN)], events: fwdIn({ conns_created: 1 }), dests: { 1: inTcp({ active: 1, conns: 1 }) } }),
      step('11 s later the CLOSE connection has expired (0 < 3/4 u clears OVERLOAD): the SYN of port 45003 goes to RS2 again', cTcp(45003, SYN), 'FORWARD',
        { advanceMs: 11_000, out: [toRsNat(RS2, 8080, 45003, SYN)], events: fwdIn({ conns_created: 1, conns_expired: 1 }), dests: { 0: inTcp({ active: 1, inactive: -1, conns: 1 }) } }),
    ]),
    world('no-dest-icmp', 'Every real server quiesced (weight 0): the SYN is dropped and the client gets ICMP port unreachable from the VIP, quoting the IP header and 8 bytes (RFC 792; Linux quotes up to 576 bytes)', quiesced, [
      step('client SYN', synToVip, 'DROP', {
        out: [out('front', eth(CLIENT_MAC, DIR_FRONT, 0x0800, ipv4({ src: VIP, dst: CLIENT, proto: 1, id: 0, df: false, tos: 0xc0, payload: icmp(3, 3, [0, 0, 0, 0], synToVip.slice(14, 14 + 20 + 8)) })))],
        events: { drop_no_dest: 1, icmp_unreach_sent: 1, tx_frames: 1 },
      }),
    ]),
  ];
}
