// The golden-packet cases: input frame, operation, expected output frame, all built from scratch by the
// reference builder. gen-packet-fixtures.ts writes them to test/fixtures/packets/*.hex; the tests replay them.
import { eth, icmp, ipv4, tcp, udp } from './packet-ref.ts';

export const CLIENT = '10.0.0.1';
export const VIP = '10.0.100.100';
export const RIP = '10.0.2.11';
export const DIP = '10.0.2.1';
export const ROUTER = '10.0.0.254';
export const CLIENT_MAC = '02:00:00:00:00:0c';
export const DIR_MAC = '02:00:00:00:00:01';
export const RS_MAC = '02:00:00:00:00:11';

export interface GoldenCase {
  name: string;
  description: string;
  /** Operation line: `<fn> <args...>`, interpreted by the golden test. */
  op: string;
  input: number[];
  expected: number[];
}

const MSS = [2, 4, 0x05, 0xb4, 1, 1, 4, 2];
const SYN = 0x02;
const SYNACK = 0x12;
const hello = Array.from('hello, tsvs!', (c) => c.charCodeAt(0));

function tcpFrame(src: string, dst: string, sport: number, dport: number, flags: number, ttl: number, csum: 'full' | 'partial', macs: [string, string], extra: { vlan?: number; ipOptions?: number[]; payload?: number[] } = {}): number[] {
  const seg = tcp({ src, dst, sport, dport, flags, seq: 0x11223344, ack: flags & 0x10 ? 0x55667788 : 0, options: MSS, payload: extra.payload, csum });
  return eth(macs[0], macs[1], 0x0800, ipv4({ src, dst, proto: 6, ttl, id: 0xbeef, payload: seg, options: extra.ipOptions }), extra.vlan);
}

function udpFrame(src: string, dst: string, sport: number, dport: number, ttl: number, csum: 'full' | 'zero' | 'partial', macs: [string, string]): number[] {
  return eth(macs[0], macs[1], 0x0800, ipv4({ src, dst, proto: 17, ttl, id: 0x0101, df: false, payload: udp({ src, dst, sport, dport, payload: hello, csum }) }));
}

function innerUdp(ttl: number): number[] {
  return ipv4({ src: CLIENT, dst: VIP, proto: 17, ttl, id: 0x4242, tos: 0x0b, payload: udp({ src: CLIENT, dst: VIP, sport: 33000, dport: 53, payload: hello }) });
}

export function goldenCases(): GoldenCase[] {
  const toDir: [string, string] = [DIR_MAC, CLIENT_MAC];
  const fromRs: [string, string] = [DIR_MAC, RS_MAC];
  const cases: GoldenCase[] = [
    {
      name: 'nat-in-tcp-syn',
      description: 'NAT in: client SYN to VIP:80 becomes RIP:8080, TTL 64→63, complete checksums',
      op: `natIn ${RIP} 8080 complete`,
      input: tcpFrame(CLIENT, VIP, 40000, 80, SYN, 64, 'full', toDir),
      expected: tcpFrame(CLIENT, RIP, 40000, 8080, SYN, 63, 'full', toDir),
    },
    {
      name: 'nat-out-tcp-synack',
      description: 'NAT out: real server SYN-ACK from RIP:8080 leaves as VIP:80, TTL 64→63',
      op: `natOut ${VIP} 80 complete`,
      input: tcpFrame(RIP, CLIENT, 8080, 40000, SYNACK, 64, 'full', fromRs),
      expected: tcpFrame(VIP, CLIENT, 80, 40000, SYNACK, 63, 'full', fromRs),
    },
    {
      name: 'nat-in-tcp-vlan-ipopts',
      description: 'NAT in through an 802.1Q tag and a 4-byte IP option (NOP NOP NOP EOL), with payload',
      op: `natIn ${RIP} 8080 complete`,
      input: tcpFrame(CLIENT, VIP, 40001, 80, 0x18, 9, 'full', toDir, { vlan: 0x0064, ipOptions: [1, 1, 1, 0], payload: hello }),
      expected: tcpFrame(CLIENT, RIP, 40001, 8080, 0x18, 8, 'full', toDir, { vlan: 0x0064, ipOptions: [1, 1, 1, 0], payload: hello }),
    },
    {
      name: 'nat-in-udp-csum',
      description: 'NAT in: UDP datagram with a checksum to VIP:53 becomes RIP:5353',
      op: `natIn ${RIP} 5353 complete`,
      input: udpFrame(CLIENT, VIP, 33000, 53, 64, 'full', toDir),
      expected: udpFrame(CLIENT, RIP, 33000, 5353, 63, 'full', toDir),
    },
    {
      name: 'nat-in-udp-csum0',
      description: 'NAT in: UDP datagram without checksum (0) keeps checksum 0',
      op: `natIn ${RIP} 5353 complete`,
      input: udpFrame(CLIENT, VIP, 33000, 53, 64, 'zero', toDir),
      expected: udpFrame(CLIENT, RIP, 33000, 5353, 63, 'zero', toDir),
    },
    {
      name: 'nat-in-tcp-partial',
      description: 'NAT in, CHECKSUM_PARTIAL: the TCP field holds the pseudo-header sum before and the new pseudo-header sum after',
      op: `natIn ${RIP} 8080 partial`,
      input: tcpFrame(CLIENT, VIP, 40000, 80, SYN, 64, 'partial', toDir),
      expected: tcpFrame(CLIENT, RIP, 40000, 8080, SYN, 63, 'partial', toDir),
    },
    {
      name: 'nat-in-udp-partial',
      description: 'NAT in, CHECKSUM_PARTIAL UDP',
      op: `natIn ${RIP} 5353 partial`,
      input: udpFrame(CLIENT, VIP, 33000, 53, 64, 'partial', toDir),
      expected: udpFrame(CLIENT, RIP, 33000, 5353, 63, 'partial', toDir),
    },
    {
      name: 'nat-out-tcp-partial',
      description: 'NAT out, CHECKSUM_PARTIAL reply from the real server',
      op: `natOut ${VIP} 80 partial`,
      input: tcpFrame(RIP, CLIENT, 8080, 40000, SYNACK, 64, 'partial', fromRs),
      expected: tcpFrame(VIP, CLIENT, 80, 40000, SYNACK, 63, 'partial', fromRs),
    },
    {
      name: 'dr-mac',
      description: 'DR: MACs become director → real server, TTL decremented as IPVS does (Linux ≥ 5.3), addresses untouched',
      op: `dr ${RS_MAC} ${DIR_MAC}`,
      input: tcpFrame(CLIENT, VIP, 40000, 80, SYN, 64, 'full', toDir),
      expected: tcpFrame(CLIENT, VIP, 40000, 80, SYN, 63, 'full', [RS_MAC, DIR_MAC]),
    },
    {
      name: 'tun-ipip',
      description: 'TUN: IPIP to the RIP from the director address; outer TTL = inner TTL after decrement, DF and id copied, ECN CE → ECT(0)',
      op: `ipip ${DIP} ${RIP} ${RS_MAC} ${DIR_MAC}`,
      input: eth(DIR_MAC, CLIENT_MAC, 0x0800, innerUdp(64)),
      expected: eth(RS_MAC, DIR_MAC, 0x0800, ipv4({ src: DIP, dst: RIP, proto: 4, ttl: 63, id: 0x4242, tos: 0x0a, payload: innerUdp(63) })),
    },
    {
      name: 'tun-gue-nocsum',
      description: 'TUN over GUE to port 6080 from source port 50000, UDP checksum 0',
      op: `gue ${DIP} ${RIP} ${RS_MAC} ${DIR_MAC} 50000 6080 nocsum`,
      input: eth(DIR_MAC, CLIENT_MAC, 0x0800, innerUdp(64)),
      expected: eth(RS_MAC, DIR_MAC, 0x0800, ipv4({ src: DIP, dst: RIP, proto: 17, ttl: 63, id: 0x4242, tos: 0x0a, payload: udp({ src: DIP, dst: RIP, sport: 50000, dport: 6080, payload: [0, 4, 0, 0, ...innerUdp(63)], csum: 'zero' }) })),
    },
    {
      name: 'tun-gue-csum',
      description: 'TUN over GUE with the UDP checksum computed',
      op: `gue ${DIP} ${RIP} ${RS_MAC} ${DIR_MAC} 50000 6080 csum`,
      input: eth(DIR_MAC, CLIENT_MAC, 0x0800, innerUdp(64)),
      expected: eth(RS_MAC, DIR_MAC, 0x0800, ipv4({ src: DIP, dst: RIP, proto: 17, ttl: 63, id: 0x4242, tos: 0x0a, payload: udp({ src: DIP, dst: RIP, sport: 50000, dport: 6080, payload: [0, 4, 0, 0, ...innerUdp(63)], csum: 'full' }) })),
    },
  ];
  // ICMP port unreachable from the real server about client:33000 → RIP:5353 (the NATed datagram it got).
  const rsGot = udp({ src: CLIENT, dst: RIP, sport: 33000, dport: 5353, payload: hello });
  const rsGotCsum = rsGot[6] * 256 + rsGot[7];
  const embedded = (dst: string, dport: number): number[] =>
    ipv4({ src: CLIENT, dst, proto: 17, ttl: 63, id: 0x0101, df: false, payload: udp({ src: CLIENT, dst, sport: 33000, dport, payload: hello, rawCsum: rsGotCsum }) });
  cases.push({
    name: 'icmp-port-unreach-out',
    description: 'NAT of an ICMP port unreachable leaving the real server: outer src → VIP, embedded dst → VIP:53 (embedded UDP checksum left as is, like IPVS)',
    op: `natIcmpOut ${VIP} 53`,
    input: eth(DIR_MAC, RS_MAC, 0x0800, ipv4({ src: RIP, dst: CLIENT, proto: 1, ttl: 64, id: 0x7777, df: false, tos: 0xc0, payload: icmp(3, 3, [0, 0, 0, 0], embedded(RIP, 5353)) })),
    expected: eth(DIR_MAC, RS_MAC, 0x0800, ipv4({ src: VIP, dst: CLIENT, proto: 1, ttl: 63, id: 0x7777, df: false, tos: 0xc0, payload: icmp(3, 3, [0, 0, 0, 0], embedded(VIP, 53)) })),
  });
  // ICMP fragmentation needed from a router about a reply VIP:80 → client:40000 (only IP header + 8 bytes).
  const replyHead = (src: string, sport: number): number[] =>
    ipv4({ src, dst: CLIENT, proto: 6, ttl: 60, id: 0x0202, totalLen: 1500, payload: tcp({ src, dst: CLIENT, sport, dport: 40000, flags: 0x10, seq: 0xa0b0c0d0, ack: 1 }).slice(0, 8) });
  cases.push({
    name: 'icmp-frag-needed-in',
    description: 'NAT of an ICMP fragmentation-needed arriving for the VIP: outer dst → RIP, embedded src → RIP:8080',
    op: `natIcmpIn ${RIP} 8080`,
    input: eth(DIR_MAC, CLIENT_MAC, 0x0800, ipv4({ src: ROUTER, dst: VIP, proto: 1, ttl: 255, id: 0, payload: icmp(3, 4, [0, 0, 0x05, 0x78], replyHead(VIP, 80)) })),
    expected: eth(DIR_MAC, CLIENT_MAC, 0x0800, ipv4({ src: ROUTER, dst: RIP, proto: 1, ttl: 254, id: 0, payload: icmp(3, 4, [0, 0, 0x05, 0x78], replyHead(RIP, 8080)) })),
  });
  return cases;
}
