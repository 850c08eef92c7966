// net parse: the meta record for good packets and the named verdict for each kind of malformed one.
import { describe, expect, it } from 'vitest';
import { NetVerdict, NET_VERDICT_COUNT, NET_VERDICT_NAMES } from '../../shared/net/verdict.ts';
import { PacketMeta, parseFrame, TcpFlag } from '../../shared/net/parse.ts';
import { CLIENT, CLIENT_MAC, DIR_MAC, RIP, VIP } from '../support/golden-cases.ts';
import { eth, icmp, ipv4, tcp, udp } from '../support/packet-ref.ts';
import { ipv4FromTextOrThrow } from '../../shared/net/addr.ts';

function parse(frame: number[], len = frame.length): { v: string; m: PacketMeta } {
  const m = new PacketMeta();
  const v = parseFrame(Uint8Array.from(frame), len, m);
  return { v: NET_VERDICT_NAMES[v], m };
}

const syn = (): number[] => eth(DIR_MAC, CLIENT_MAC, 0x0800, ipv4({ src: CLIENT, dst: VIP, proto: 6, ttl: 64, id: 7, payload: tcp({ src: CLIENT, dst: VIP, sport: 40000, dport: 80, flags: 0x02 }) }));

describe('net parse', () => {
  it('net parse: verdict names cover every code, OK is 0', () => {
    expect(NetVerdict.OK).toBe(0);
    expect(NET_VERDICT_NAMES.length).toBe(NET_VERDICT_COUNT);
    for (let i = 0; i < NET_VERDICT_COUNT; i++) expect(NET_VERDICT_NAMES[i]).toMatch(/^(OK|DROP_[A-Z0-9_]+)$/);
  });

  it('net parse: a TCP SYN fills the meta record', () => {
    const { v, m } = parse(syn());
    expect(v).toBe('OK');
    expect(m).toMatchObject({ l3Off: 14, vlanTci: -1, etherType: 0x800, ihl: 20, totalLen: 40, ipId: 7, fragField: 0x4000, ttl: 64, proto: 6, l4Off: 34, l4Len: 20, sport: 40000, dport: 80, tcpFlags: TcpFlag.SYN, tcpHdrLen: 20, l4CsumOff: 50, innerOff: -1 });
    expect(m.saddr).toBe(ipv4FromTextOrThrow(CLIENT));
    expect(m.daddr).toBe(ipv4FromTextOrThrow(VIP));
    expect(m.daddr).toBe(0x0a006464);
  });

  it('net parse: a VLAN tag and IP options move the offsets', () => {
    const f = eth(DIR_MAC, CLIENT_MAC, 0x0800, ipv4({ src: CLIENT, dst: VIP, proto: 17, options: [1, 1, 1, 0, 1, 1, 1, 0], payload: udp({ src: CLIENT, dst: VIP, sport: 1, dport: 53, payload: [1, 2, 3] }) }), 0x2005);
    const { v, m } = parse(f);
    expect(v).toBe('OK');
    expect(m).toMatchObject({ l3Off: 18, vlanTci: 0x2005, ihl: 28, l4Off: 46, sport: 1, dport: 53, l4CsumOff: 52 });
  });

  it('net parse: Ethernet padding after the IP packet is allowed', () => {
    const f = [...syn(), 0, 0, 0, 0, 0, 0];
    expect(parse(f).v).toBe('OK');
  });

  it('net parse: an ICMP error exposes the embedded header', () => {
    const emb = ipv4({ src: CLIENT, dst: RIP, proto: 17, payload: udp({ src: CLIENT, dst: RIP, sport: 33000, dport: 5353, payload: [] }) });
    const { v, m } = parse(eth(DIR_MAC, CLIENT_MAC, 0x800, ipv4({ src: RIP, dst: CLIENT, proto: 1, payload: icmp(3, 3, [0, 0, 0, 0], emb) })));
    expect(v).toBe('OK');
    expect(m).toMatchObject({ icmpType: 3, icmpCode: 3, innerOff: 42, innerIhl: 20, innerProto: 17, innerL4Off: 62, innerSport: 33000, innerDport: 5353 });
    expect(m.innerSaddr).toBe(ipv4FromTextOrThrow(CLIENT));
    expect(m.innerDaddr).toBe(ipv4FromTextOrThrow(RIP));
  });

  it('net parse: an ICMP echo exposes its identifier as both ports', () => {
    const { v, m } = parse(eth(DIR_MAC, CLIENT_MAC, 0x800, ipv4({ src: CLIENT, dst: VIP, proto: 1, payload: icmp(8, 0, [0x12, 0x34, 0, 1], [9, 9]) })));
    expect(v).toBe('OK');
    expect(m).toMatchObject({ icmpType: 8, sport: 0x1234, dport: 0x1234, innerOff: -1 });
  });

  const bad: [string, string, () => number[]][] = [
    ['DROP_TRUNCATED_ETH', '13-byte frame', () => syn().slice(0, 13)],
    ['DROP_TRUNCATED_ETH', 'VLAN tag cut short', () => eth(DIR_MAC, CLIENT_MAC, 0x0800, [], 5).slice(0, 16)],
    ['DROP_NOT_IPV4', 'ARP ethertype', () => eth(DIR_MAC, CLIENT_MAC, 0x0806, new Array(28).fill(0))],
    ['DROP_NOT_IPV4', 'IPv6 ethertype', () => eth(DIR_MAC, CLIENT_MAC, 0x86dd, new Array(40).fill(0))],
    ['DROP_TRUNCATED_IP', '19 bytes of IP header', () => syn().slice(0, 14 + 19)],
    ['DROP_BAD_IP_VERSION', 'IP version 6', () => { const f = syn(); f[14] = 0x65; return f; }],
    ['DROP_BAD_IHL', 'IHL 4', () => { const f = syn(); f[14] = 0x44; return f; }],
    ['DROP_BAD_IHL', 'IHL 15 beyond capture', () => { const f = syn(); f[14] = 0x4f; return f.slice(0, 14 + 40); }],
    ['DROP_BAD_TOTAL_LEN', 'total length below IHL', () => { const f = syn(); f[17] = 10; return f; }],
    ['DROP_BAD_TOTAL_LEN', 'total length beyond capture', () => syn().slice(0, 14 + 39)],
    ['DROP_BAD_IP_CSUM', 'IP checksum flipped', () => { const f = syn(); f[14 + 10] ^= 1; return f; }],
    ['DROP_FRAGMENT', 'MF set', () => eth(DIR_MAC, CLIENT_MAC, 0x800, ipv4({ src: CLIENT, dst: VIP, proto: 17, frag: 0x2000, payload: new Array(16).fill(1) }))],
    ['DROP_FRAGMENT', 'fragment offset 2', () => eth(DIR_MAC, CLIENT_MAC, 0x800, ipv4({ src: CLIENT, dst: VIP, proto: 17, frag: 0x0002, payload: new Array(16).fill(1) }))],
    ['DROP_TRUNCATED_L4', 'TCP header of 19 bytes', () => eth(DIR_MAC, CLIENT_MAC, 0x800, ipv4({ src: CLIENT, dst: VIP, proto: 6, payload: new Array(19).fill(0x50) }))],
    ['DROP_TRUNCATED_L4', 'UDP header of 7 bytes', () => eth(DIR_MAC, CLIENT_MAC, 0x800, ipv4({ src: CLIENT, dst: VIP, proto: 17, payload: [0, 1, 0, 2, 0, 8, 0] }))],
    ['DROP_TRUNCATED_L4', 'ICMP header of 4 bytes', () => eth(DIR_MAC, CLIENT_MAC, 0x800, ipv4({ src: CLIENT, dst: VIP, proto: 1, payload: [8, 0, 0, 0] }))],
    ['DROP_BAD_TCP_DOFF', 'TCP data offset 4', () => eth(DIR_MAC, CLIENT_MAC, 0x800, ipv4({ src: CLIENT, dst: VIP, proto: 6, payload: [...new Array(12).fill(0), 0x40, ...new Array(7).fill(0)] }))],
    ['DROP_BAD_TCP_DOFF', 'TCP data offset beyond payload', () => eth(DIR_MAC, CLIENT_MAC, 0x800, ipv4({ src: CLIENT, dst: VIP, proto: 6, payload: [...new Array(12).fill(0), 0x60, ...new Array(7).fill(0)] }))],
    ['DROP_BAD_UDP_LEN', 'UDP length beyond payload', () => eth(DIR_MAC, CLIENT_MAC, 0x800, ipv4({ src: CLIENT, dst: VIP, proto: 17, payload: [0, 1, 0, 2, 0, 9, 0, 0] }))],
    ['DROP_BAD_UDP_LEN', 'UDP length 7', () => eth(DIR_MAC, CLIENT_MAC, 0x800, ipv4({ src: CLIENT, dst: VIP, proto: 17, payload: [0, 1, 0, 2, 0, 7, 0, 0] }))],
    ['DROP_UNSUPPORTED_PROTO', 'SCTP', () => eth(DIR_MAC, CLIENT_MAC, 0x800, ipv4({ src: CLIENT, dst: VIP, proto: 132, payload: new Array(12).fill(0) }))],
    ['DROP_BAD_ICMP_INNER', 'ICMP error with 27 embedded bytes', () => eth(DIR_MAC, CLIENT_MAC, 0x800, ipv4({ src: RIP, dst: CLIENT, proto: 1, payload: icmp(3, 3, [0, 0, 0, 0], new Array(27).fill(0x45)) }))],
    ['DROP_BAD_ICMP_INNER', 'ICMP error embedding IP version 6', () => eth(DIR_MAC, CLIENT_MAC, 0x800, ipv4({ src: RIP, dst: CLIENT, proto: 1, payload: icmp(11, 0, [0, 0, 0, 0], [0x65, ...new Array(27).fill(0)]) }))],
  ];
  for (const [name, what, make] of bad) {
    it(`net parse: ${what} → ${name}`, () => {
      expect(parse(make()).v).toBe(name);
    });
  }

  it('net parse: a captured length shorter than the buffer is honoured', () => {
    const f = syn();
    expect(parse(f, 14 + 30).v).toBe('DROP_BAD_TOTAL_LEN');
  });
});
