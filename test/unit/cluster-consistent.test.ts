// cluster-consistent: in active-active every director schedules new flows with its own scheduler instances; mh, sh
// and dh must send a flow to the same real server on every director (same table, same flow → same dest, whatever
// each director saw before), which an ECMP rehash relies on; rr and wlc keep per-director state and do not.
import { describe, expect, it } from 'vitest';
import { ConnTable } from '../../shared/conntab/conn-table.ts';
import { Counters, countersBytes } from '../../shared/fwd/counters.ts';
import type { FwdTable } from '../../shared/fwd/table.ts';
import { FwdCode, SvcFlag } from '../../shared/model/ipvs.ts';
import { ipv4FromText, ipv4ToText } from '../../shared/net/addr.ts';
import { Engine, Verdict, type Hop, type L2Resolver } from '../../services/worker/engine.ts';
import { FakePort, VIP, dest, service, table } from '../support/engine-fakes.ts';
import { eth, ipv4, tcp, udp } from '../support/packet-ref.ts';

const FRONT_MAC = '02:00:00:00:00:01';
const BACK_MAC = '02:00:00:00:00:02';
const CLIENT_MAC = '02:00:00:00:00:aa';
const SYN = 0x02;

/** Real servers 10.1.0.1..n: MAC 02:00:00:00:01:<last octet>, behind the back port. */
class RsL2 implements L2Resolver {
  resolve(daddr: number, hop: Hop): boolean {
    if (daddr >>> 8 !== ipv4FromText('10.1.0.0')! >>> 8) return false;
    hop.dstMac.set([2, 0, 0, 0, 1, daddr & 255]);
    hop.srcMac.set([2, 0, 0, 0, 0, 2]);
    hop.ifindex = 2;
    hop.srcIp = ipv4FromText('10.1.0.254')!;
    return true;
  }
  isLocal(): boolean {
    return false;
  }
  sourceFor(): number {
    return ipv4FromText('10.1.0.254')!;
  }
  hold(): null {
    return null;
  }
}

/** One director's worker: its own engine, connection table, counters and scheduler instances. */
class Director {
  readonly back = new FakePort(2);
  readonly engine: Engine;
  constructor(t: FwdTable) {
    const counters = new Counters(new ArrayBuffer(countersBytes(1)), 1, true);
    const conns = ConnTable.create(8192, { counters: counters.rows[0].conns, epochMs: 0 });
    this.engine = new Engine({ conns, counters, worker: 0, l2: new RsL2(), ports: new Map([[1, new FakePort(1)], [2, this.back]]), now: () => 1_000_000, rng: () => 0.5 });
    this.engine.setTable(t);
  }

  /** Feeds the first packet of a flow; returns the real server it went to (DR: the destination MAC names it). */
  first(f: Flow): string {
    const l4 = f.proto === 6 ? tcp({ src: f.src, dst: VIP, sport: f.sport, dport: f.dport, flags: SYN }) : udp({ src: f.src, dst: VIP, sport: f.sport, dport: f.dport, payload: [1, 2, 3, 4] });
    const frame = eth(FRONT_MAC, CLIENT_MAC, 0x0800, ipv4({ src: f.src, dst: VIP, proto: f.proto, payload: l4 }));
    const buf = new Uint8Array(frame.length + 16);
    buf.set(frame, 16);
    const v = this.engine.frame(buf, 16, frame.length, false);
    if (v !== Verdict.FORWARD) return `verdict ${v}`;
    const sent = this.back.take();
    expect(sent).toHaveLength(1);
    expect([...sent[0].bytes.slice(6, 12)]).toEqual(BACK_MAC.split(':').map((x) => parseInt(x, 16)));
    return `10.1.0.${sent[0].bytes[5]}`;
  }
}

interface Flow {
  proto: 6 | 17;
  src: string;
  sport: number;
  dport: number;
}

/** `n` flows from many clients and source ports (deterministic). */
function flows(n: number, proto: 6 | 17 = 6, dport = 80): Flow[] {
  const out: Flow[] = [];
  let x = 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + i) >>> 0;
    out.push({ proto, src: ipv4ToText((ipv4FromText('198.51.100.0')! + (x & 0x3f)) >>> 0), sport: 1024 + ((x >>> 8) % 60000), dport });
  }
  return out;
}

/** The same table as every director compiles it from the cluster's configuration. */
function sharedTable(scheduler: string, flags = 0, weights = [1, 1, 1, 1, 1], proto: 6 | 17 = 6, vport = 80): FwdTable {
  const ds = weights.map((w, i) => dest(i, `10.1.0.${i + 1}`, vport, FwdCode.route, w));
  return table([service(0, proto, vport, ds, { scheduler, flags })]);
}

/** Three directors with different histories: fresh; after 333 other flows; after a table swap and 77 other flows. */
function threeDirectors(t: () => FwdTable, proto: 6 | 17 = 6, dport = 80): Director[] {
  const d1 = new Director(t());
  const d2 = new Director(t());
  for (const f of flows(333, proto, dport).map((f) => ({ ...f, src: '203.0.113.7' }))) d2.first(f);
  const d3 = new Director(t());
  const swapped = t();
  swapped.epoch = 2;
  d3.engine.setTable(swapped);
  for (const f of flows(77, proto, dport).map((f) => ({ ...f, src: '203.0.113.9', sport: f.sport ^ 1 }))) d3.first(f);
  return [d1, d2, d3];
}

describe('cluster-consistent: hashing schedulers agree across directors', () => {
  const cases: [string, number, string][] = [
    ['mh', 0, 'source address'],
    ['mh', SvcFlag.SCHED2, 'source address and port (mh-port)'],
    ['sh', 0, 'source address'],
    ['sh', SvcFlag.SCHED2, 'source address and port (sh-port)'],
    ['dh', 0, 'destination address'],
  ];
  for (const [sched, flags, key] of cases) {
    it(`cluster-consistent: ${sched} keyed on the ${key}: 500 flows go to the same real server on three directors with different histories`, () => {
      const dirs = threeDirectors(() => sharedTable(sched, flags, [1, 2, 1, 3, 1]));
      const fs = flows(500);
      // Each director sees the flows in its own order (an ECMP router splits and interleaves them).
      const order = [fs, [...fs].reverse(), [...fs.filter((_, i) => i % 2 === 1), ...fs.filter((_, i) => i % 2 === 0)]];
      const got = dirs.map((d, k) => {
        const m = new Map<Flow, string>();
        for (const f of order[k]) m.set(f, d.first(f));
        return fs.map((f) => m.get(f)!);
      });
      expect(got[0].every((x) => x.startsWith('10.1.0.'))).toBe(true);
      expect(got[1]).toEqual(got[0]);
      expect(got[2]).toEqual(got[0]);
      if (sched !== 'dh') expect(new Set(got[0]).size).toBeGreaterThan(1); // dh: one VIP, so one bucket
    });
  }

  it('cluster-consistent: UDP flows with mh-port agree too', () => {
    const dirs = threeDirectors(() => sharedTable('mh', SvcFlag.SCHED2, [1, 1, 1], 17, 53), 17, 53);
    const fs = flows(300, 17, 53);
    const got = dirs.map((d) => fs.map((f) => d.first(f)));
    expect(got[1]).toEqual(got[0]);
    expect(got[2]).toEqual(got[0]);
  });
});

describe('cluster-consistent: position and count schedulers are per director', () => {
  it('cluster-consistent: rr and wrr spread by weight on each director, but a flow\'s real server depends on what that director saw before', () => {
    for (const sched of ['rr', 'wrr']) {
      const dirs = threeDirectors(() => sharedTable(sched, 0, [3, 1, 1, 1, 1]));
      const fs = flows(280);
      const got = dirs.map((d) => fs.map((f) => d.first(f)));
      expect(got[1]).not.toEqual(got[0]);
      for (const g of got) {
        const per = new Map<string, number>();
        for (const x of g) per.set(x, (per.get(x) ?? 0) + 1);
        if (sched === 'wrr') expect(per.get('10.1.0.1')).toBe(120); // 3 of every 7
        else expect([...per.values()]).toEqual([56, 56, 56, 56, 56]);
      }
    }
  });

  it('cluster-consistent: wlc counts only the connections this director holds: the same new flow goes elsewhere on a busier director', () => {
    const a = new Director(sharedTable('wlc', 0, [1, 1, 1]));
    const b = new Director(sharedTable('wlc', 0, [1, 1, 1]));
    // b already holds two connections (on the first two real servers, wlc's tie-break in list order); a holds none.
    expect(flows(2).map((f) => b.first(f))).toEqual(['10.1.0.1', '10.1.0.2']);
    const next = flows(3)[2];
    expect(a.first(next)).toBe('10.1.0.1');
    expect(b.first(next)).toBe('10.1.0.3');
  });
});
