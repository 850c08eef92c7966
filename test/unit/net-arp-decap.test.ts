// net arp and decap: ARP frames byte for byte, ARP parsing, and IPIP/GUE decapsulation verdicts.
import { describe, expect, it } from 'vitest';
import { ArpMeta, ArpOp, ARP_FRAME_LEN, buildArp, buildArpRequest, buildGratuitousArp, parseArp } from '../../shared/net/arp.ts';
import { decapGue, decapIpip, innerDeliverable } from '../../shared/net/tunnel.ts';
import { PacketMeta } from '../../shared/net/parse.ts';
import { NetVerdict, NET_VERDICT_NAMES } from '../../shared/net/verdict.ts';
import { CLIENT, DIP, RIP, VIP } from '../support/golden-cases.ts';
import { fromHex, ipv4, toHex, udp } from '../support/packet-ref.ts';
import { formatMac, ipv4FromTextOrThrow, ipv4ToText, parseMac } from '../../shared/net/addr.ts';

const M1 = parseMac('02:00:00:00:00:01')!;
const M2 = parseMac('02:00:00:00:00:11')!;

describe('net arp', () => {
  it('net arp: gratuitous ARP for the VIP is the broadcast request arping -U sends', () => {
    const out = new Uint8Array(64);
    expect(buildGratuitousArp(out, 0, M1, ipv4FromTextOrThrow(VIP))).toBe(NetVerdict.OK);
    expect(toHex(out.subarray(0, ARP_FRAME_LEN))).toBe('ffffffffffff020000000001' + '0806' + '0001080006040001' + '020000000001' + '0a006464' + '000000000000' + '0a006464');
  });

  it('net arp: request and reply round-trip through the parser', () => {
    const out = new Uint8Array(ARP_FRAME_LEN);
    expect(buildArpRequest(out, 0, M1, ipv4FromTextOrThrow(DIP), ipv4FromTextOrThrow(RIP))).toBe(NetVerdict.OK);
    const a = new ArpMeta();
    expect(parseArp(out, out.length, a)).toBe(NetVerdict.OK);
    expect(a).toMatchObject({ op: ArpOp.REQUEST, senderMac: 0x020000000001, senderIp: ipv4FromTextOrThrow(DIP), targetMac: 0, targetIp: ipv4FromTextOrThrow(RIP), senderMacOff: 22 });
    expect(buildArp(out, 0, M1, ArpOp.REPLY, M2, ipv4FromTextOrThrow(RIP), M1, ipv4FromTextOrThrow(DIP))).toBe(NetVerdict.OK);
    expect(parseArp(out, out.length, a)).toBe(NetVerdict.OK);
    expect(a.op).toBe(ArpOp.REPLY);
    expect(formatMac(out, a.senderMacOff)).toBe('02:00:00:00:00:11');
    expect(ipv4ToText(a.senderIp)).toBe(RIP);
  });

  it('net arp: short buffers and non-ARP frames are verdicts, not exceptions', () => {
    expect(buildArp(new Uint8Array(41), 0, M1, 1, M1, 0, M1, 0)).toBe(NetVerdict.DROP_NO_ROOM);
    const a = new ArpMeta();
    expect(parseArp(new Uint8Array(10), 10, a)).toBe(NetVerdict.DROP_TRUNCATED_ETH);
    const f = new Uint8Array(ARP_FRAME_LEN);
    buildGratuitousArp(f, 0, M1, 1);
    expect(parseArp(f, 41, a)).toBe(NetVerdict.DROP_BAD_ARP);
    f[19] = 16;
    expect(parseArp(f, 42, a)).toBe(NetVerdict.DROP_BAD_ARP);
  });
});

describe('net decap', () => {
  const inner = ipv4({ src: CLIENT, dst: VIP, proto: 17, payload: udp({ src: CLIENT, dst: VIP, sport: 1234, dport: 9000, payload: [1, 2, 3] }) });

  it('net decap: IPIP gives the inner packet offset and length', () => {
    const outer = Uint8Array.from(ipv4({ src: DIP, dst: RIP, proto: 4, payload: inner }));
    const m = new PacketMeta();
    expect(NET_VERDICT_NAMES[decapIpip(outer, outer.length, m)]).toBe('OK');
    expect(m.l3Off).toBe(20);
    expect(m.totalLen).toBe(inner.length);
    expect(m.dport).toBe(9000);
  });

  it('net decap: IPIP with a non-IPIP outer or a bad inner is refused with a reason', () => {
    const m = new PacketMeta();
    const notIpip = Uint8Array.from(ipv4({ src: DIP, dst: RIP, proto: 17, payload: udp({ src: DIP, dst: RIP, sport: 1, dport: 2, payload: [] }) }));
    expect(decapIpip(notIpip, notIpip.length, m)).toBe(NetVerdict.DROP_WRONG_PROTO);
    const badInner = Uint8Array.from(ipv4({ src: DIP, dst: RIP, proto: 4, payload: [0x45, ...inner.slice(1, 10)] }));
    expect(innerDeliverable(decapIpip(badInner, badInner.length, m))).toBe(false);
  });

  it('net decap: GUE version 0 / proto 4 is accepted, options skipped; anything else is DROP_BAD_GUE', () => {
    const m = new PacketMeta();
    const g = Uint8Array.from([0, 4, 0, 0, ...inner]);
    expect(decapGue(g, g.length, m)).toBe(NetVerdict.OK);
    expect(m.l3Off).toBe(4);
    const withOpt = Uint8Array.from([1, 4, 0, 0, 0, 0, 0, 0, ...inner]);
    expect(decapGue(withOpt, withOpt.length, m)).toBe(NetVerdict.OK);
    expect(m.l3Off).toBe(8);
    expect(decapGue(fromHex('40040000'), 4, m)).toBe(NetVerdict.DROP_BAD_GUE);
    expect(decapGue(fromHex('00290000'), 4, m)).toBe(NetVerdict.DROP_BAD_GUE);
    expect(decapGue(fromHex('0004'), 2, m)).toBe(NetVerdict.DROP_TRUNCATED_L4);
  });
});
