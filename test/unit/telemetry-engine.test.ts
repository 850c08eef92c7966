// telemetry engine hook: the worker's engine writes one decision record per scheduling decision into its ring —
// the chosen real server is where the packet went; failures say why; template hits name the template's server.
import { beforeEach, describe, expect, it } from 'vitest';
import { ConnTable } from '../../shared/conntab/conn-table.ts';
import { TcpState } from '../../shared/conntab/tcp-state.ts';
import { Counters, countersBytes } from '../../shared/fwd/counters.ts';
import { FwdCode, SvcFlag } from '../../shared/model/ipvs.ts';
import { Engine, Verdict } from '../../services/worker/engine.ts';
import { DecisionReader, DecisionWriter, decisionRingBytes } from '../../shared/telemetry/decision-ring.ts';
import { eth, ipv4, tcp } from '../support/packet-ref.ts';
import { CLIENT, CLIENT_MAC, DIR_FRONT, FakeL2, FakePort, VIP, dest, service, table } from '../support/engine-fakes.ts';

let now = 5_000;
let back: FakePort;
let engine: Engine;
let reader: DecisionReader;
let conns: ConnTable;

function newEngine(traced: boolean, capacity = 1024): void {
  const front = new FakePort(1);
  back = new FakePort(2);
  const counters = new Counters(new ArrayBuffer(countersBytes(1)), 1, true);
  conns = ConnTable.create(capacity, { counters: counters.rows[0].conns, epochMs: 0 });
  const ring = new ArrayBuffer(decisionRingBytes(64));
  const decisions = traced ? new DecisionWriter(ring, { init: true, worker: 0, director: 'd1', epochMs: 1_000_000 }) : null;
  if (!traced) new DecisionWriter(ring, { init: true, worker: 0, director: '', epochMs: 0 });
  reader = new DecisionReader(ring);
  engine = new Engine({ conns, counters, worker: 0, l2: new FakeL2(), ports: new Map([[1, front], [2, back]]), now: () => now, rng: () => 0.5, decisions });
}

function syn(sport: number, dport = 80, src = CLIENT): number {
  const f = eth(DIR_FRONT, CLIENT_MAC, 0x0800, ipv4({ src, dst: VIP, proto: 6, payload: tcp({ src, dst: VIP, sport, dport, flags: 0x02 }) }));
  const buf = new Uint8Array(f.length);
  buf.set(f);
  return engine.frame(buf, 0, f.length, false);
}

function sentTo(): string {
  const b = back.take()[0].bytes;
  return `${b[30]}.${b[31]}.${b[32]}.${b[33]}`;
}

beforeEach(() => {
  now = 5_000;
});

describe('telemetry engine hook', () => {
  it('telemetry engine: each new connection leaves a record whose chosen server is where the packet went', () => {
    newEngine(true);
    engine.setTable(table([service(3, 6, 80, [dest(7, '10.1.0.102', 8080, FwdCode.masq, 1), dest(8, '10.1.0.101', 8080, FwdCode.masq, 3)], { scheduler: 'wlc' })]));
    const went: string[] = [];
    for (let p = 40000; p < 40004; p++) {
      expect(syn(p)).toBe(Verdict.FORWARD);
      went.push(sentTo());
    }
    const { records, lost, torn } = reader.poll();
    expect([lost, torn]).toEqual([0, 0]);
    expect(records.map((r) => r.dest?.address)).toEqual(went);
    const r = records[1];
    expect(r).toMatchObject({ clientAddress: CLIENT, clientPort: 40001, vip: VIP, vport: 80, protocol: 'tcp', serviceId: 3, scheduler: 'wlc', outcome: 'scheduled', template: 'none', director: 'd1', timeMs: 1_000_000 + 5_000 });
    expect(r.dest).toMatchObject({ port: 8080, method: 'masq' });
    expect(r.candidates.map((c) => [c.address, c.weight])).toEqual([['10.1.0.102', 1], ['10.1.0.101', 3]]);
    // The second decision saw the first connection (a new TCP connection counts active, as in IPVS) on its real
    // server: overhead (active << 8) + inactive.
    const first = records[0].dest!.address;
    expect(r.candidates.find((c) => c.address === first)).toMatchObject({ active: 1, inactive: 0, overhead: 256 });
  });

  it('telemetry engine: all quiesced → a quiescent failure record, no dest', () => {
    newEngine(true);
    engine.setTable(table([service(0, 6, 80, [dest(0, '10.1.0.101', 80, FwdCode.masq, 0)])]));
    expect(syn(41000)).toBe(Verdict.DROP);
    const [r] = reader.poll().records;
    expect(r).toMatchObject({ outcome: 'quiescent', dest: null, clientPort: 41000, scheduler: 'rr' });
    expect(r.candidates.map((c) => c.weight)).toEqual([0]);
  });

  it('telemetry engine: persistence — a miss schedules, the hits name the template server without candidates', () => {
    newEngine(true);
    engine.setTable(table([service(0, 6, 443, [dest(0, '10.1.0.102', 443, FwdCode.masq), dest(1, '10.1.0.101', 443, FwdCode.masq)], { flags: SvcFlag.PERSISTENT, persistMs: 360_000 })]));
    for (const p of [50000, 50001, 50002]) syn(p, 443);
    const rs = reader.poll().records;
    expect(rs.map((r) => [r.template, r.outcome, r.candidates.length])).toEqual([
      ['miss', 'scheduled', 2],
      ['hit', 'persistent', 0],
      ['hit', 'persistent', 0],
    ]);
    expect(new Set(rs.map((r) => r.dest?.address)).size).toBe(1);
  });

  it('telemetry engine: a full connection table is recorded as table-full with the chosen server', () => {
    newEngine(true, 2);
    engine.setTable(table([service(0, 6, 80, [dest(0, '10.1.0.101', 80, FwdCode.route)])]));
    // Established connections fill it (half-open ones would be evicted to make room: engine-guard tests).
    const establish = (): void => {
      for (const c of [...conns.entries(0)]) conns.setState(c.index, TcpState.ESTABLISHED, 0);
    };
    const verdicts = [60000, 60001, 60002, 60003].map((p) => {
      const v = syn(p);
      establish();
      return v;
    });
    const rs = reader.poll().records;
    const full = rs.filter((r) => r.outcome === 'table-full');
    expect(verdicts.filter((v) => v === Verdict.DROP).length).toBe(full.length);
    expect(full.length).toBeGreaterThan(0);
    expect(full[0].dest?.address).toBe('10.1.0.101');
  });

  it('telemetry engine: without a ring the engine forwards the same and writes nothing', () => {
    newEngine(false);
    engine.setTable(table([service(0, 6, 80, [dest(0, '10.1.0.101', 80, FwdCode.masq)])]));
    expect(syn(42000)).toBe(Verdict.FORWARD);
    expect(reader.poll().records).toEqual([]);
  });
});
