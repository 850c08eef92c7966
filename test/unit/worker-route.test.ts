// worker/route: rtnetlink route and address messages → RouteTable, without a socket. Golden vectors are real
// kernel messages (captured from an RTM_GETROUTE / RTM_GETADDR dump of a namespace with two veths d0 = 3 and
// d1 = 5); hand-built ones cover the malformed cases, which are counted and skipped, never thrown.
import { describe, expect, it } from 'vitest';
import { RouteCollector, RouteTable } from '../../services/worker/route.ts';
import {
  AF_INET, Nlmsg, Rtm, RtTable, Rtn, addrMsg, nlProblems, nlStats, parseAddrMsg, parseLinkMsg, parseNeighMsg, parseRouteMsg,
  routeMsg, walkMessages, type NlHandler, type NlStats,
} from '../../shared/sys/rtnl-codec.ts';
import { ipv4FromText, ipv4ToText } from '../../shared/net/addr.ts';

const ip = (s: string): number => ipv4FromText(s)!;

/** Kernel messages, whole (nlmsghdr included), seq 1. */
const K = {
  // default via 10.9.1.254 dev d1
  defaultRoute: '3400000018000200010000001963000002000000fe0300010000000008000f00fe000000080005000a0901fe0800040005000000',
  // 10.9.0.0/24 dev d0 proto kernel scope link src 10.9.0.1
  linkRoute: '3c00000018000200010000001963000002180000fe02fd010000000008000f00fe000000080001000a090000080007000a0900010800040003000000',
  // 10.50.0.0/16 nexthop via 10.9.0.2 dev d0 nexthop via 10.9.1.2 dev d1
  multipath: '5000000018000200010000001963000002100000fe0300010000000008000f00fe000000080001000a320000240009001000000003000000080005000a0900021000000005000000080005000a090102',
  // 10.70.0.0/16 via 10.9.0.3 dev d0 metric 5
  metric5: '4400000018000200010000001963000002100000fe0300010000000008000f00fe000000080001000a4600000800060005000000080005000a0900030800040003000000',
  // local 10.9.0.1 dev d0 table local
  local: '3c00000018000200010000001963000002200000ff02fe020000000008000f00ff000000080001000a090001080007000a0900010800040003000000',
  // broadcast 10.9.0.255 dev d0 table local
  broadcast: '3c00000018000200010000001963000002200000ff02fd030000000008000f00ff000000080001000a0900ff080007000a0900010800040003000000',
  // 127.0.0.1/8 dev lo, 10.100.0.10/32 dev lo, 10.9.0.1/24 dev d0, 10.9.1.1/24 dev d1
  addrLo: '4c000000140002000200000019630000020880fe01000000080001007f000001080002007f000001070003006c6f0000080008008000000014000600ffffffffffffffff0c220f000c220f00',
  addrVip: '4c0000001400020002000000196300000220800001000000080001000a64000a080002000a64000a070003006c6f0000080008008000000014000600ffffffffffffffff0e220f000e220f00',
  addrD0: '4c0000001400020002000000196300000218800003000000080001000a090001080002000a0900010700030064300000080008008000000014000600ffffffffffffffff0e220f000e220f00',
  addrD1: '4c0000001400020002000000196300000218800005000000080001000a090101080002000a0901010700030064310000080008008000000014000600ffffffffffffffff0e220f000e220f00',
} as const;

function hex(h: string): Uint8Array {
  return Uint8Array.from(Buffer.from(h, 'hex'));
}

function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}

function u32le(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
}

function be(a: string): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, ip(a), false);
  return b;
}

/** An attribute, padded to 4 bytes; `len` overrides the length field (for malformed cases). */
function attr(type: number, payload: Uint8Array, len = 4 + payload.byteLength): Uint8Array {
  const b = new Uint8Array((4 + payload.byteLength + 3) & ~3);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, len, true);
  dv.setUint16(2, type, true);
  b.set(payload, 4);
  return b;
}

/** A netlink message; `len` overrides the header's length (for malformed cases). */
function nlmsg(type: number, body: Uint8Array, seq = 1, flags = 2, len = 16 + body.byteLength): Uint8Array {
  const b = new Uint8Array(16 + body.byteLength);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, len, true);
  dv.setUint16(4, type, true);
  dv.setUint16(6, flags, true);
  dv.setUint32(8, seq, true);
  b.set(body, 16);
  return b;
}

function rtmsg(o: { family?: number; dstLen?: number; table?: number; type?: number; flags?: number }, ...attrs: Uint8Array[]): Uint8Array {
  const h = new Uint8Array(12);
  const dv = new DataView(h.buffer);
  h[0] = o.family ?? AF_INET;
  h[1] = o.dstLen ?? 0;
  h[4] = o.table ?? RtTable.MAIN;
  h[5] = 3;
  h[7] = o.type ?? Rtn.UNICAST;
  dv.setUint32(8, o.flags ?? 0, true);
  return cat(h, ...attrs);
}

function ifaddrmsg(prefixLen: number, ifindex: number, ...attrs: Uint8Array[]): Uint8Array {
  const h = new Uint8Array(8);
  h[0] = AF_INET;
  h[1] = prefixLen;
  new DataView(h.buffer).setUint32(4, ifindex, true);
  return cat(h, ...attrs);
}

const done = (seq = 1): Uint8Array => nlmsg(Nlmsg.DONE, u32le(0), seq);

/** Walks `bytes` as one datagram into a collector the way RouteSync does; returns the walk result and the table. */
function collect(bytes: Uint8Array, seq = 1): { r: ReturnType<typeof walkMessages>; t: RouteTable; stats: NlStats; kept: number } {
  const c = new RouteCollector();
  const rm = routeMsg();
  const am = addrMsg();
  const stats = nlStats();
  const onMsg: NlHandler = (type, _f, dv, p, end) => {
    if (type === Rtm.NEWROUTE) {
      if (!parseRouteMsg(dv, p, end, rm)) return false;
      c.addRoute(rm);
    } else if (type === Rtm.NEWADDR) {
      if (!parseAddrMsg(dv, p, end, am)) return false;
      c.addAddr(am);
    }
    return true;
  };
  const r = walkMessages(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), bytes.byteLength, seq, onMsg, stats);
  const t = new RouteTable();
  c.applyTo(t);
  return { r, t, stats, kept: c.routeCount };
}

function parseOne(bytes: Uint8Array): ReturnType<typeof routeMsg> | null {
  const m = routeMsg();
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return parseRouteMsg(dv, 16, dv.getUint32(0, true), m) ? m : null;
}

function lookup(t: RouteTable, a: string): string {
  const out = { ifindex: 0, nexthop: 0 };
  if (!t.lookup(ip(a), out)) return 'none';
  return `${out.ifindex} ${ipv4ToText(out.nexthop)}`;
}

describe('worker/route: RTM_NEWROUTE parsing (kernel messages)', () => {
  it('route: a gateway route gives dst/len, table, type, oif, gateway and metric in host order', () => {
    expect(parseOne(hex(K.metric5))).toEqual({
      family: AF_INET, dstLen: 16, table: RtTable.MAIN, type: Rtn.UNICAST, flags: 0,
      dst: ip('10.70.0.0'), ifindex: 3, gateway: ip('10.9.0.3'), priority: 5, nexthops: 0,
    });
  });

  it('route: the default route has no RTA_DST: dst 0/0', () => {
    expect(parseOne(hex(K.defaultRoute))).toMatchObject({ dstLen: 0, dst: 0, ifindex: 5, gateway: ip('10.9.1.254') });
  });

  it('route: an on-link route has no gateway', () => {
    expect(parseOne(hex(K.linkRoute))).toMatchObject({ dstLen: 24, dst: ip('10.9.0.0'), ifindex: 3, gateway: 0 });
  });

  it('route: a multipath route reports its first nexthop and how many there are', () => {
    expect(parseOne(hex(K.multipath))).toMatchObject({ dstLen: 16, dst: ip('10.50.0.0'), ifindex: 3, gateway: ip('10.9.0.2'), nexthops: 2 });
  });

  it('route: local-table entries keep their table and type', () => {
    expect(parseOne(hex(K.local))).toMatchObject({ table: RtTable.LOCAL, type: Rtn.LOCAL });
    expect(parseOne(hex(K.broadcast))).toMatchObject({ table: RtTable.LOCAL, type: Rtn.BROADCAST });
  });

  it('route: RTA_TABLE overrides rtm_table (ids above 255 travel as RT_TABLE_COMPAT)', () => {
    const m = parseOne(nlmsg(Rtm.NEWROUTE, rtmsg({ dstLen: 8, table: RtTable.COMPAT }, attr(15, u32le(1000)), attr(1, be('10.0.0.0')), attr(4, u32le(3)))));
    expect(m).toMatchObject({ table: 1000, dst: ip('10.0.0.0'), ifindex: 3 });
  });
});

describe('worker/route: RTM_NEWADDR parsing (kernel messages)', () => {
  it('addr: family, prefix length, ifindex and the local address', () => {
    for (const [h, len, ifx, a] of [[K.addrLo, 8, 1, '127.0.0.1'], [K.addrVip, 32, 1, '10.100.0.10'], [K.addrD0, 24, 3, '10.9.0.1']] as const) {
      const b = hex(h);
      const m = addrMsg();
      expect(parseAddrMsg(new DataView(b.buffer), 16, b.byteLength, m)).toBe(true);
      expect(m).toEqual({ family: AF_INET, prefixLen: len, ifindex: ifx, local: ip(a) });
    }
  });

  it('addr: IFA_LOCAL wins over IFA_ADDRESS (a point-to-point peer); IFA_ADDRESS alone is the address', () => {
    const m = addrMsg();
    const ptp = nlmsg(Rtm.NEWADDR, ifaddrmsg(32, 7, attr(1, be('192.0.2.2')), attr(2, be('192.0.2.1'))));
    expect(parseAddrMsg(new DataView(ptp.buffer), 16, ptp.byteLength, m)).toBe(true);
    expect(m.local).toBe(ip('192.0.2.1'));
    const only = nlmsg(Rtm.NEWADDR, ifaddrmsg(24, 7, attr(1, be('192.0.2.9'))));
    expect(parseAddrMsg(new DataView(only.buffer), 16, only.byteLength, m)).toBe(true);
    expect(m.local).toBe(ip('192.0.2.9'));
  });
});

describe('worker/route: a dump → RouteTable (the semantics of the former `ip -j route/addr` reading)', () => {
  const dump = cat(hex(K.defaultRoute), hex(K.linkRoute), hex(K.multipath), hex(K.metric5), hex(K.local), hex(K.broadcast),
    hex(K.addrLo), hex(K.addrVip), hex(K.addrD0), hex(K.addrD1), done());

  it('dump: main-table unicast routes are kept, local/broadcast entries are not; longest prefix wins', () => {
    const { r, t, stats, kept } = collect(dump);
    expect(r).toBe('done');
    expect(stats.bad).toBe(0);
    expect(kept).toBe(4);
    expect(lookup(t, '10.9.0.77')).toBe('3 10.9.0.77');
    expect(lookup(t, '10.70.1.2')).toBe('3 10.9.0.3');
    expect(lookup(t, '10.50.9.9')).toBe('3 10.9.0.2');
    expect(lookup(t, '8.8.8.8')).toBe('5 10.9.1.254');
  });

  it('dump: every address is local; the source of an interface is its first address shorter than /32', () => {
    const { t } = collect(dump);
    for (const a of ['127.0.0.1', '10.100.0.10', '10.9.0.1', '10.9.1.1']) expect(t.isLocal(ip(a)), a).toBe(true);
    expect(t.isLocal(ip('10.9.0.2'))).toBe(false);
    expect(t.source(1)).toBe(ip('127.0.0.1'));
    expect(t.source(3)).toBe(ip('10.9.0.1'));
    expect(t.source(5)).toBe(ip('10.9.1.1'));
    expect(t.source(9)).toBe(0);
  });

  it('dump: a /32 added before an interface\'s real address is local but not its source; a lone /32 is', () => {
    const { t } = collect(cat(
      nlmsg(Rtm.NEWADDR, ifaddrmsg(32, 3, attr(2, be('10.9.0.100')))),
      nlmsg(Rtm.NEWADDR, ifaddrmsg(24, 3, attr(2, be('10.9.0.1')))),
      nlmsg(Rtm.NEWADDR, ifaddrmsg(24, 3, attr(2, be('10.9.0.7')))),
      nlmsg(Rtm.NEWADDR, ifaddrmsg(32, 4, attr(2, be('10.4.0.4')))),
      done(),
    ));
    expect(t.source(3)).toBe(ip('10.9.0.1'));
    expect(t.isLocal(ip('10.9.0.100'))).toBe(true);
    expect(t.isLocal(ip('10.9.0.7'))).toBe(true);
    expect(t.source(4)).toBe(ip('10.4.0.4'));
  });

  it('dump: other tables, blackholes (no oif), cloned entries and other families are left out; equal prefixes keep the kernel\'s (metric) order', () => {
    const dst = attr(1, be('10.60.0.0'));
    const { t, kept, stats } = collect(cat(
      nlmsg(Rtm.NEWROUTE, rtmsg({ dstLen: 16, table: RtTable.COMPAT }, attr(15, u32le(1000)), dst, attr(4, u32le(7)))),
      nlmsg(Rtm.NEWROUTE, rtmsg({ dstLen: 16, type: Rtn.BLACKHOLE }, dst)),
      nlmsg(Rtm.NEWROUTE, rtmsg({ dstLen: 16, flags: 0x200 }, dst, attr(4, u32le(7)))),
      nlmsg(Rtm.NEWROUTE, rtmsg({ family: 10, dstLen: 64 }, attr(1, new Uint8Array(16)), attr(4, u32le(7)))),
      nlmsg(Rtm.NEWROUTE, rtmsg({ dstLen: 16 }, dst, attr(6, u32le(1)), attr(5, be('10.9.1.3')), attr(4, u32le(5)))),
      nlmsg(Rtm.NEWROUTE, rtmsg({ dstLen: 16 }, dst, attr(6, u32le(9)), attr(5, be('10.9.0.3')), attr(4, u32le(3)))),
      done(),
    ));
    expect(stats.bad).toBe(0);
    expect(kept).toBe(2);
    expect(lookup(t, '10.60.1.1')).toBe('5 10.9.1.3');
  });
});

describe('worker/route: walking datagrams', () => {
  const walk = (b: Uint8Array, seq: number, stats = nlStats()): ReturnType<typeof walkMessages> =>
    walkMessages(new DataView(b.buffer), b.byteLength, seq, () => true, stats);

  it('walk: NLMSG_DONE or an ack of our seq ends a request; an error reply returns its errno; other seqs are ignored', () => {
    expect(walk(done(5), 5)).toBe('done');
    expect(walk(done(4), 5)).toBe('more');
    expect(walk(nlmsg(Nlmsg.ERROR, cat(u32le(0), new Uint8Array(16)), 5), 5)).toBe('done');
    expect(walk(nlmsg(Nlmsg.ERROR, cat(u32le(-1), new Uint8Array(16)), 5), 5)).toBe(1);
    expect(walk(nlmsg(Nlmsg.ERROR, cat(u32le(-1), new Uint8Array(16)), 4), 5)).toBe('more');
    expect(walk(done(5), -1)).toBe('more');
  });
});

describe('worker/route: malformed messages are skipped and counted, never thrown', () => {
  const good = nlmsg(Rtm.NEWROUTE, rtmsg({ dstLen: 16 }, attr(1, be('10.60.0.0')), attr(4, u32le(3))));

  const cases: [string, Uint8Array][] = [
    ['rtmsg shorter than 12 bytes', nlmsg(Rtm.NEWROUTE, new Uint8Array(8))],
    ['an attribute running past the message', nlmsg(Rtm.NEWROUTE, rtmsg({ dstLen: 16 }, attr(1, be('10.61.0.0'), 40)))],
    ['an attribute length below 4', nlmsg(Rtm.NEWROUTE, rtmsg({ dstLen: 16 }, attr(1, be('10.61.0.0'), 2)))],
    ['RTA_DST of 3 bytes', nlmsg(Rtm.NEWROUTE, rtmsg({ dstLen: 16 }, attr(1, be('10.61.0.0').subarray(0, 3)), attr(4, u32le(3))))],
    ['RTA_OIF of 2 bytes', nlmsg(Rtm.NEWROUTE, rtmsg({ dstLen: 16 }, attr(1, be('10.61.0.0')), attr(4, new Uint8Array(2))))],
    ['a prefix length above 32', nlmsg(Rtm.NEWROUTE, rtmsg({ dstLen: 33 }, attr(1, be('10.61.0.0')), attr(4, u32le(3))))],
    ['a multipath nexthop longer than RTA_MULTIPATH', nlmsg(Rtm.NEWROUTE, rtmsg({ dstLen: 16 }, attr(1, be('10.61.0.0')), attr(9, cat(new Uint8Array([64, 0, 0, 0]), u32le(3)))))],
    ['a multipath gateway of 2 bytes', nlmsg(Rtm.NEWROUTE, rtmsg({ dstLen: 16 }, attr(1, be('10.61.0.0')), attr(9, cat(new Uint8Array([16, 0, 0, 0]), u32le(3), attr(5, new Uint8Array(2))))))],
    ['ifaddrmsg shorter than 8 bytes', nlmsg(Rtm.NEWADDR, new Uint8Array(4))],
    ['an IPv4 address message without an address', nlmsg(Rtm.NEWADDR, ifaddrmsg(24, 3, attr(3, new TextEncoder().encode('d0\0'))))],
    ['an NLMSG_ERROR without its errno', nlmsg(Nlmsg.ERROR, new Uint8Array(0))],
  ];

  for (const [what, msg] of cases) {
    it(`malformed: ${what} is counted, and the next message is still read`, () => {
      const { r, stats, kept, t } = collect(cat(msg, good, done()));
      expect(r).toBe('done');
      expect(stats.bad).toBe(1);
      expect(kept).toBe(1);
      expect(lookup(t, '10.60.0.1')).toBe('3 10.60.0.1');
      expect(lookup(t, '10.61.0.1')).toBe('none');
    });
  }

  it('malformed: a header longer than the datagram ends the walk (counted); the messages before it count', () => {
    const { r, stats, kept } = collect(cat(good, nlmsg(Rtm.NEWROUTE, rtmsg({}), 1, 2, 4000), good, done()));
    expect(r).toBe('more');
    expect(stats.bad).toBe(1);
    expect(kept).toBe(1);
  });

  it('malformed: a header length below 16 ends the walk; trailing bytes after the last message are counted', () => {
    expect(collect(cat(good, nlmsg(Rtm.NEWROUTE, rtmsg({}), 1, 2, 8))).stats.bad).toBe(1);
    const { stats, kept } = collect(cat(good, new Uint8Array(7)));
    expect(stats.bad).toBe(1);
    expect(kept).toBe(1);
  });

  it('malformed: a handler that throws is counted as a bad message, not propagated', () => {
    const stats = nlStats();
    const b = cat(good, good);
    expect(walkMessages(new DataView(b.buffer), b.byteLength, -1, () => {
      throw new RangeError('boom');
    }, stats)).toBe('more');
    expect(stats).toMatchObject({ messages: 2, bad: 2 });
  });

  it('malformed: every truncation and 2000 random corruptions of a kernel dump: no parser throws, nothing crashes', () => {
    const dump = cat(hex(K.defaultRoute), hex(K.multipath), hex(K.metric5), hex(K.addrVip), hex(K.addrD0), done());
    let threw = 0;
    const rm = routeMsg();
    const am = addrMsg();
    const onMsg: NlHandler = (type, _f, dv, p, end) => {
      try {
        return type === Rtm.NEWROUTE ? parseRouteMsg(dv, p, end, rm) : type === Rtm.NEWADDR ? parseAddrMsg(dv, p, end, am) : true;
      } catch {
        threw++;
        return false;
      }
    };
    for (let n = 0; n <= dump.byteLength; n++) {
      const cut = dump.slice(0, n);
      walkMessages(new DataView(cut.buffer), n, 1, onMsg, nlStats());
    }
    let seed = 0x2545f491;
    const rnd = (k: number): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % k;
    };
    for (let i = 0; i < 2000; i++) {
      const b = dump.slice();
      for (let j = 0; j < 1 + rnd(4); j++) b[rnd(b.byteLength)] = rnd(256);
      const n = rnd(b.byteLength + 1);
      walkMessages(new DataView(b.buffer), n, 1, onMsg, nlStats());
    }
    expect(threw).toBe(0);
  });

  it('malformed: nlProblems reports what changed since the last report, once', () => {
    const now = nlStats();
    const before = nlStats();
    expect(nlProblems('routes', now, before)).toBeNull();
    now.bad = 2;
    now.lastBad = 'message type 24, 20 bytes';
    now.overruns = 1;
    expect(nlProblems('routes', now, before)).toBe('rtnetlink routes: 2 malformed message(s) skipped (last: message type 24, 20 bytes); 1 monitor overrun(s), resynchronised');
    expect(nlProblems('routes', now, before)).toBeNull();
  });
});

describe('worker/route: link and neighbour bodies (shared with shared/sys/neigh.ts)', () => {
  it('link: ifindex, name without its NUL, own MAC', () => {
    const body = cat(new Uint8Array([0, 0, 1, 0]), u32le(3), new Uint8Array(8),
      attr(3, new TextEncoder().encode('front\0')), attr(1, new Uint8Array([2, 0, 0, 0, 0, 1])));
    const b = nlmsg(Rtm.NEWLINK, body);
    expect(parseLinkMsg(new DataView(b.buffer), 16, b.byteLength)).toEqual({ ifindex: 3, ifname: 'front', mac: new Uint8Array([2, 0, 0, 0, 0, 1]) });
    expect(parseLinkMsg(new DataView(b.buffer), 16, 16 + 12)).toBeNull();
  });

  it('neigh: IPv4 destination, state and a copy of the MAC; absent fields stay -1 / null', () => {
    const nd = (...attrs: Uint8Array[]): Uint8Array => nlmsg(Rtm.NEWNEIGH, cat(new Uint8Array([AF_INET, 0, 0, 0]), u32le(5), new Uint8Array([2, 0, 0, 1]), ...attrs));
    const m = { family: 0, ifindex: 0, state: 0, ip: -1, mac: null as Uint8Array | null };
    const b = nd(attr(1, be('10.9.1.2')), attr(2, new Uint8Array([2, 0, 0, 0, 1, 2])));
    expect(parseNeighMsg(new DataView(b.buffer), 16, b.byteLength, m)).toBe(true);
    expect(m).toEqual({ family: AF_INET, ifindex: 5, state: 2, ip: ip('10.9.1.2'), mac: new Uint8Array([2, 0, 0, 0, 1, 2]) });
    b.fill(0xee, b.byteLength - 8);
    expect(m.mac).toEqual(new Uint8Array([2, 0, 0, 0, 1, 2]));
    const none = nd();
    expect(parseNeighMsg(new DataView(none.buffer), 16, none.byteLength, m)).toBe(true);
    expect(m).toMatchObject({ ip: -1, mac: null });
  });
});
