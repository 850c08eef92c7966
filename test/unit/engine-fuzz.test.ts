// engine-fuzz: the worker's engine never throws on input and never sends a malformed packet. Valid frames of
// every kind the engine handles (NAT both ways with port mapping, DR, TUN, persistence, fwmark, ICMP errors about
// NAT connections, pings) are mutated at random (bytes, header fields set to edge values, truncation, growth) and
// fed through the L2 path (AF_PACKET) and the L3 path (NFQUEUE); every frame that leaves must be well-formed IPv4
// with valid header checksums (so must every packet handed to the local stack), and afterwards the engine still forwards a fresh connection. Seeded: a failure
// names the seed and iteration that caused it.
import { describe, expect, it } from 'vitest';
import { ConnTable } from '../../shared/conntab/conn-table.ts';
import { Counters, countersBytes, Ev } from '../../shared/fwd/counters.ts';
import { parseMarkRules } from '../../shared/fwd/mark-rules.ts';
import { FwdCode, SvcFlag } from '../../shared/model/ipvs.ts';
import { inetChecksum } from '../../shared/net/checksum.ts';
import { mulberry32 } from '../../shared/util/rng.ts';
import { Engine, Verdict } from '../../services/worker/engine.ts';
import { eth, icmp, ipv4, tcp, udp } from '../support/packet-ref.ts';
import { CLIENT, CLIENT_MAC, DIR_BACK, DIR_FRONT, FakeL2, FakeL3, FakePort, RS_MAC, VIP, dest, service, table } from '../support/engine-fakes.ts';

const RS1 = '10.1.0.101';
const RS2 = '10.1.0.102';
const ITERATIONS = 150_000;

function build(seed: number): { engine: Engine; front: FakePort; back: FakePort; counters: Counters; l3: FakeL3; local: Uint8Array[]; tick: (ms: number) => void } {
  let now = 5_000_000;
  const front = new FakePort(1);
  const back = new FakePort(2);
  const counters = new Counters(new ArrayBuffer(countersBytes(1)), 1, true);
  const conns = ConnTable.create(4096, { counters: counters.rows[0].conns, epochMs: 0 });
  const rng = mulberry32(seed);
  const local: Uint8Array[] = [];
  const engine = new Engine({ conns, counters, worker: 0, l2: new FakeL2(), ports: new Map([[1, front], [2, back]]), now: () => now, rng, local: { write: (b, off, len) => (local.push(b.slice(off, off + len)), true) } });
  const t = table([
    service(0, 6, 80, [dest(0, RS1, 8080, FwdCode.masq), dest(1, RS2, 8080, FwdCode.masq)]),
    service(1, 17, 53, [dest(2, RS1, 53, FwdCode.route), dest(3, RS2, 53, FwdCode.route)]),
    service(2, 6, 443, [dest(4, RS1, 443, FwdCode.tunnel), dest(5, RS2, 443, FwdCode.tunnel)], { flags: SvcFlag.PERSISTENT, persistMs: 300_000 }),
    service(3, 17, 0, [dest(6, RS2, 0, FwdCode.masq)], { flags: SvcFlag.PERSISTENT, persistMs: 60_000 }),
    service(4, 0, 0, [dest(7, RS1, 0, FwdCode.masq)], { fwmark: 7, vaddr: 0 }),
  ]);
  t.marks = parseMarkRules(`-A PREROUTING -t mangle -p tcp -d ${VIP} -m multiport --dports 8000:8010 -j MARK --set-mark 7\n`);
  engine.setTable(t);
  return { engine, front, back, counters, l3: new FakeL3(), local, tick: (ms) => (now += ms) };
}

/** Valid frames of every kind: requests to each service, NAT replies, ICMP errors about NAT connections, a ping. */
function seeds(): number[][] {
  const out: number[][] = [];
  const toVip = (sport: number, dport: number, proto: 6 | 17, flags = 0x02): number[] =>
    eth(DIR_FRONT, CLIENT_MAC, 0x0800, ipv4({ src: CLIENT, dst: VIP, proto, payload: proto === 6 ? tcp({ src: CLIENT, dst: VIP, sport, dport, flags }) : udp({ src: CLIENT, dst: VIP, sport, dport, payload: [1, 2, 3, 4] }) }));
  for (const [dport, proto] of [[80, 6], [53, 17], [443, 6], [5000, 17], [8005, 6]] as const) {
    out.push(toVip(40000 + dport, dport, proto));
    if (proto === 6) out.push(toVip(40000 + dport, dport, proto, 0x10), toVip(40000 + dport, dport, proto, 0x11));
  }
  // NAT replies from the real servers (the engine has seen the matching requests first in each round).
  const reply = (rs: string, sport: number, dport: number, proto: 6 | 17): number[] =>
    eth(DIR_BACK, RS_MAC[rs], 0x0800, ipv4({ src: rs, dst: CLIENT, proto, payload: proto === 6 ? tcp({ src: rs, dst: CLIENT, sport, dport, flags: 0x12 }) : udp({ src: rs, dst: CLIENT, sport, dport, payload: [9, 9] }) }));
  out.push(reply(RS1, 8080, 40080, 6), reply(RS2, 8080, 40080, 6), reply(RS2, 5000, 45000, 17));
  // An ICMP error from a real server about a NAT reply, embedding the original packet's header and 8 bytes.
  const inner = ipv4({ src: CLIENT, dst: RS1, proto: 6, payload: tcp({ src: CLIENT, dst: RS1, sport: 40080, dport: 8080, flags: 0x10 }) }).slice(0, 28);
  out.push(eth(DIR_BACK, RS_MAC[RS1], 0x0800, ipv4({ src: RS1, dst: CLIENT, proto: 1, payload: icmp(3, 3, [0, 0, 0, 0], inner) })));
  out.push(eth(DIR_FRONT, CLIENT_MAC, 0x0800, ipv4({ src: CLIENT, dst: VIP, proto: 1, payload: icmp(8, 0, [0, 1, 0, 1], [1, 2, 3, 4, 5, 6, 7, 8]) })));
  return out;
}

/** Edge values for header fields that bounds checks hinge on. */
const EDGES = [0, 1, 0x0f, 0x40, 0x45, 0x46, 0x4f, 0x5f, 0x7f, 0x80, 0xf0, 0xff];

function mutate(base: readonly number[], rnd: () => number): Uint8Array {
  let b = Uint8Array.from(base);
  const n = 1 + Math.floor(rnd() * 4);
  for (let k = 0; k < n; k++) {
    const r = rnd();
    if (r < 0.35) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
    else if (r < 0.55) b[14 + Math.floor(rnd() * Math.min(48, b.length - 14))] = EDGES[Math.floor(rnd() * EDGES.length)];
    else if (r < 0.7) b[Math.floor(rnd() * b.length)] ^= 1 << Math.floor(rnd() * 8);
    else if (r < 0.85) b = b.slice(0, Math.floor(rnd() * b.length));
    else {
      const g = new Uint8Array(b.length + 1 + Math.floor(rnd() * 64));
      g.set(b);
      for (let i = b.length; i < g.length; i++) g[i] = Math.floor(rnd() * 256);
      b = g;
    }
  }
  // Most of the time the IPv4 header checksum is made right again, so that the mutation reaches the checks behind it.
  if (rnd() < 0.6 && b.length >= 34 && b[14] >> 4 === 4) {
    const ihl = (b[14] & 0x0f) * 4;
    if (ihl >= 20 && 14 + ihl <= b.length) {
      b[24] = 0;
      b[25] = 0;
      const c = inetChecksum(b, 14, ihl);
      b[24] = c >> 8;
      b[25] = c & 0xff;
    }
  }
  return b;
}

/** Throws unless `f` is an IPv4 packet (from byte `l3`) whose header checksum is valid and whose length fits. */
function assertWellFormed(f: Uint8Array, l3: number, what: string): void {
  if (f.length < l3 + 20) throw new Error(`${what}: ${f.length} bytes, no room for an IPv4 header`);
  const ihl = (f[l3] & 0x0f) * 4;
  if (f[l3] >> 4 !== 4 || ihl < 20) throw new Error(`${what}: version/IHL byte 0x${f[l3].toString(16)}`);
  const total = (f[l3 + 2] << 8) | f[l3 + 3];
  if (total < ihl || l3 + total > f.length) throw new Error(`${what}: total length ${total} in a ${f.length - l3}-byte packet`);
  if (inetChecksum(f, l3, ihl) !== 0) throw new Error(`${what}: bad IPv4 header checksum`);
}

describe('engine-fuzz', () => {
  for (const seed of [1, 2]) {
    it(`engine-fuzz: ${ITERATIONS} mutated frames (seed ${seed}) through L2 and L3: no throw, every frame sent is well-formed IPv4`, () => {
      const { engine, front, back, counters, l3, local, tick } = build(seed);
      const rnd = mulberry32(seed * 7919);
      const base = seeds();
      const buf = new Uint8Array(4096);
      let sent = 0;
      const check = (i: number): void => {
        for (const port of [front, back]) {
          for (const s of port.take()) {
            sent++;
            assertWellFormed(s.bytes, 14, `seed ${seed} iteration ${i}, frame out of port ${port.ifindex}`);
          }
        }
        for (const p of local.splice(0)) assertWellFormed(p, 0, `seed ${seed} iteration ${i}, packet to the local stack`);
        for (const v of l3.verdicts.splice(0)) {
          if (v.kind === 'modified' && v.bytes) assertWellFormed(v.bytes, 0, `seed ${seed} iteration ${i}, L3 verdict`);
        }
      };
      for (let i = 0; i < ITERATIONS; i++) {
        // Every 500 iterations the valid frames go through as they are: connections exist for replies and ICMP.
        const f = i % 500 < base.length ? Uint8Array.from(base[i % 500]) : mutate(base[Math.floor(rnd() * base.length)], rnd);
        const off = 2 + (i & 7);
        buf.set(f, off);
        if (i & 1) engine.frame(buf, off, f.length, (i & 2) !== 0);
        else if (f.length > 14) engine.packet(buf, off + 14, f.length - 14, i, l3);
        check(i);
        if ((i & 63) === 63) {
          engine.endBatch();
          tick(1 + Math.floor(rnd() * 2000));
        }
      }
      const e = counters.rows[0].events;
      const drops = Object.entries(Ev).filter(([k]) => k.startsWith('net_drop_')).reduce((sum, [, v]) => sum + e[v], 0);
      process.stdout.write(`engine-fuzz seed ${seed}: ${sent} frames sent, ${drops} net drops, ${JSON.stringify(Object.fromEntries(Object.entries(Ev).map(([k, v]) => [k, e[v]]).filter(([, v]) => v !== 0)))}\n`);
      expect(drops).toBeGreaterThan(ITERATIONS / 20);
      expect(sent).toBeGreaterThan(1000);
      // Still a director: a new client's SYN to the NAT service leaves for a real server, port-mapped.
      const syn = eth(DIR_FRONT, CLIENT_MAC, 0x0800, ipv4({ src: '10.0.0.77', dst: VIP, proto: 6, payload: tcp({ src: '10.0.0.77', dst: VIP, sport: 55555, dport: 80, flags: 0x02 }) }));
      buf.set(syn, 0);
      expect(engine.frame(buf, 0, syn.length, false)).toBe(Verdict.FORWARD);
      const out = back.take();
      expect(out).toHaveLength(1);
      assertWellFormed(out[0].bytes, 14, 'fresh SYN');
      expect((out[0].bytes[36] << 8) | out[0].bytes[37]).toBe(8080);
    });
  }
});
