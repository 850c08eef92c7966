// The ARP watcher's parsing of tcpdump lines and its analysis (ops/lab/arp-watch.ts): who answered when, and
// whether one request was answered by two MACs.
import { describe, expect, it } from 'vitest';
import { analyseArp, parseTcpdumpArp } from '../../ops/lab/arp-watch.ts';
import type { ArpEvent } from '../../ops/lab/arp-watch.ts';

const VIP = '10.200.0.10';
const C = 'aa:aa:aa:aa:aa:01';
const D1 = 'd1:d1:d1:d1:d1:01';
const D2 = 'd2:d2:d2:d2:d2:02';

describe('lab arp watch', () => {
  it('arp watch: parses tcpdump -e -tt requests, replies and gratuitous announcements about the address', () => {
    expect(parseTcpdumpArp(`1796500000.123456 ${C} > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Request who-has ${VIP} tell 10.200.0.100, length 28`, VIP))
      .toEqual({ at: 1796500000123, kind: 'request', mac: C, from: '10.200.0.100' });
    expect(parseTcpdumpArp(`1796500000.123456 ${C} > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Request who-has ${VIP} (ff:ff:ff:ff:ff:ff) tell 10.200.0.100, length 28`, VIP))
      .toEqual({ at: 1796500000123, kind: 'request', mac: C, from: '10.200.0.100' });
    expect(parseTcpdumpArp(`1796500000.124000 ${D1} > ${C}, ethertype ARP (0x0806), length 42: Reply ${VIP} is-at ${D1}, length 28`, VIP))
      .toEqual({ at: 1796500000124, kind: 'reply', mac: D1 });
    expect(parseTcpdumpArp(`1796500000.200000 ${D2} > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 60: Request who-has ${VIP} tell ${VIP}, length 46`, VIP))
      .toEqual({ at: 1796500000200, kind: 'gratuitous', mac: D2 });
    expect(parseTcpdumpArp(`1796500000.300000 ${D2} > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Announcement ${VIP}, length 28`, VIP))
      .toEqual({ at: 1796500000300, kind: 'gratuitous', mac: D2 });
    expect(parseTcpdumpArp(`1796500000.300000 ${D2} > ${C}, ethertype ARP (0x0806), length 42: Reply 10.200.0.11 is-at ${D2}, length 28`, VIP)).toBeNull();
    expect(parseTcpdumpArp('tcpdump: verbose output suppressed', VIP)).toBeNull();
  });

  it('arp watch: a clean handover: one owner at a time, no overlap, the gap between the last and first answer', () => {
    const ev: ArpEvent[] = [];
    for (let t = 0; t < 200; t += 20) ev.push({ at: t, kind: 'request', mac: C, from: '10.200.0.100' }, { at: t + 1, kind: 'reply', mac: D1 });
    for (let t = 200; t < 300; t += 20) ev.push({ at: t, kind: 'request', mac: C, from: '10.200.0.100' });
    ev.push({ at: 290, kind: 'gratuitous', mac: D2 });
    for (let t = 300; t < 400; t += 20) ev.push({ at: t, kind: 'request', mac: C, from: '10.200.0.100' }, { at: t + 2, kind: 'reply', mac: D2 });
    const r = analyseArp(ev, '10.200.0.100');
    expect(r.requests).toBe(20);
    expect(r.answered).toBe(15);
    expect(r.overlaps).toEqual([]);
    expect(r.owners).toEqual([{ mac: D1, from: 1, to: 181 }, { mac: D2, from: 290, to: 382 }]);
    expect(r.max_unanswered_ms).toBe(120);
    expect(r.macs.map((m) => m.mac)).toEqual([D1, D2]);
  });

  it('arp watch: a request answered by two MACs is an overlap', () => {
    const ev: ArpEvent[] = [
      { at: 0, kind: 'request', mac: C, from: '10.200.0.100' }, { at: 1, kind: 'reply', mac: D1 },
      { at: 20, kind: 'request', mac: C, from: '10.200.0.100' }, { at: 21, kind: 'reply', mac: D2 }, { at: 22, kind: 'reply', mac: D1 },
      { at: 40, kind: 'request', mac: C, from: '10.200.0.100' }, { at: 41, kind: 'reply', mac: D2 },
    ];
    expect(analyseArp(ev, '10.200.0.100').overlaps).toEqual([{ at: 20, macs: [D1, D2] }]);
  });
});
