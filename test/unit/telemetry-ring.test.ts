// telemetry: the decision ring (writer, reader, overwrite and torn-record detection) and span attributes.
import { describe, expect, it } from 'vitest';
import {
  DecisionReader,
  DecisionRingError,
  DecisionWriter,
  MAX_CANDIDATES,
  Outcome,
  TemplateUse,
  decisionRingBytes,
  noneReason,
  overheadFor,
  schedulerIndex,
  type DecisionRecord,
} from '../../shared/telemetry/decision-ring.ts';
import { Attr, parseRatio, recordToAttributes, traceSettings, TraceConfigError } from '../../shared/telemetry/attributes.ts';
import type { DestView } from '../../shared/sched/types.ts';

const ip = (s: string): number => s.split('.').reduce((a, b) => a * 256 + Number(b), 0);

function view(i: number, addr: string, port: number, weight: number, act = 0, ina = 0, over = false, available = true): DestView {
  return { index: i, addr: ip(addr), port, weight, lastWeight: weight, overloaded: over, available, activeConns: act, inactConns: ina };
}

function ring(records = 8): { w: DecisionWriter; r: DecisionReader; buf: ArrayBuffer } {
  const buf = new ArrayBuffer(decisionRingBytes(records));
  const w = new DecisionWriter(buf, { init: true, worker: 1, director: 'd1', epochMs: 1_700_000_000_000 });
  return { w, r: new DecisionReader(buf), buf };
}

function write(w: DecisionWriter, cport: number, views: DestView[], chosen: number, sched = 'wlc'): void {
  w.begin(1000 + cport, 6, ip('10.200.0.100'), cport, ip('10.200.0.10'), 80, 0, 3);
  w.candidates(schedulerIndex(sched), views, chosen);
  if (chosen >= 0) w.commit(Outcome.scheduled, TemplateUse.none, 40 + chosen, views[chosen].addr, views[chosen].port, 0);
  else w.commit(noneReason(views), TemplateUse.none, -1, 0, 0, 255);
}

describe('telemetry decision ring', () => {
  it('telemetry ring: a record reads back with flow, scheduler, candidates, chosen dest, worker, director, time', () => {
    const { w, r } = ring();
    const views = [view(0, '10.200.1.103', 80, 1, 2, 5), view(1, '10.200.1.102', 80, 1, 1, 0), view(2, '10.200.1.101', 8080, 3, 4, 1)];
    write(w, 40001, views, 1);
    const { records, lost, torn } = r.poll();
    expect(lost).toBe(0);
    expect(torn).toBe(0);
    expect(records).toHaveLength(1);
    const rec = records[0];
    expect(rec).toMatchObject({
      seq: 1,
      timeMs: 1_700_000_000_000 + 1000 + 40001,
      worker: 1,
      director: 'd1',
      protocol: 'tcp',
      clientAddress: '10.200.0.100',
      clientPort: 40001,
      vip: '10.200.0.10',
      vport: 80,
      serviceId: 3,
      scheduler: 'wlc',
      outcome: 'scheduled',
      template: 'none',
      dest: { id: 41, address: '10.200.1.102', port: 80, method: 'masq' },
      candidateCount: 3,
    });
    expect(rec.candidates.map((c) => [c.address, c.port, c.weight, c.active, c.inactive, c.overhead, c.chosen])).toEqual([
      ['10.200.1.103', 80, 1, 2, 5, 2 * 256 + 5, false],
      ['10.200.1.102', 80, 1, 1, 0, 256, true],
      ['10.200.1.101', 8080, 3, 4, 1, 4 * 256 + 1, false],
    ]);
  });

  it('telemetry ring: more dests than MAX_CANDIDATES keeps the first ones and always the chosen one', () => {
    const { w, r } = ring();
    const views = Array.from({ length: 20 }, (_, i) => view(i, `10.0.0.${i + 1}`, 80, 1));
    write(w, 1, views, 15, 'rr');
    const rec = r.poll().records[0];
    expect(rec.candidateCount).toBe(20);
    expect(rec.candidates).toHaveLength(MAX_CANDIDATES);
    expect(rec.candidates.filter((c) => c.chosen).map((c) => c.address)).toEqual(['10.0.0.16']);
    expect(rec.candidates[0].address).toBe('10.0.0.1');
    expect(rec.candidates[0].overhead).toBe(0);
  });

  it('telemetry ring: why none — no dest, quiescent, overloaded', () => {
    expect(noneReason([])).toBe(Outcome.noDest);
    expect(noneReason([view(0, '10.0.0.1', 80, 0), view(1, '10.0.0.2', 80, 0)])).toBe(Outcome.quiescent);
    expect(noneReason([view(0, '10.0.0.1', 80, 1, 0, 0, true), view(1, '10.0.0.2', 80, 0)])).toBe(Outcome.overloaded);
    expect(noneReason([view(0, '10.0.0.1', 80, 1, 0, 0, false, false)])).toBe(Outcome.noDest);
    const { w, r } = ring();
    write(w, 5, [view(0, '10.0.0.1', 80, 0)], -1);
    const rec = r.poll().records[0];
    expect(rec.outcome).toBe('quiescent');
    expect(rec.dest).toBeNull();
  });

  it('telemetry ring: the writer overwrites the oldest and the reader counts what it lost', () => {
    const { w, r } = ring(8);
    const views = [view(0, '10.0.0.1', 80, 1)];
    for (let i = 1; i <= 20; i++) write(w, i, views, 0);
    const { records, lost, torn } = r.poll();
    // 8 slots, one kept as margin: the newest 7 are read, 13 lost.
    expect(lost).toBe(13);
    expect(torn).toBe(0);
    expect(records.map((x) => x.clientPort)).toEqual([14, 15, 16, 17, 18, 19, 20]);
    expect(r.poll().records).toEqual([]);
    write(w, 21, views, 0);
    expect(r.poll().records.map((x) => x.seq)).toEqual([21]);
  });

  it('telemetry ring: a record being written or overwritten while read is reported torn, never returned', () => {
    const { w, r } = ring(8);
    const views = [view(0, '10.0.0.1', 80, 1)];
    write(w, 1, views, 0);
    // The writer starts the next record in the same slot as seq 1 (8 later) without committing.
    for (let i = 2; i <= 8; i++) write(w, i, views, 0);
    w.begin(0, 6, 1, 9, 2, 80, 0, 0);
    expect(r.read(1)).toBeNull();
    expect(r.read(9)).toBeNull();
    expect(r.read(8)?.clientPort).toBe(8);
  });

  it('telemetry ring: a reader started late, recent() answers "where did this client go" newest first', () => {
    const { w, buf } = ring(16);
    const views = [view(0, '10.0.0.1', 80, 1), view(1, '10.0.0.2', 80, 1)];
    for (let i = 1; i <= 10; i++) write(w, 40000 + i, views, i % 2);
    const r = new DecisionReader(buf);
    expect(r.poll().records).toEqual([]);
    const hit = r.recent((x: DecisionRecord) => x.clientPort === 40003);
    expect(hit).toHaveLength(1);
    expect(hit[0].dest?.address).toBe('10.0.0.2');
    expect(r.recent().map((x) => x.seq)).toEqual([10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
  });

  it('telemetry ring: a restarted writer attaches and continues the sequence', () => {
    const { w, buf } = ring(8);
    write(w, 1, [view(0, '10.0.0.1', 80, 1)], 0);
    const w2 = new DecisionWriter(buf, { init: false, worker: 1, director: 'd1', epochMs: 5 });
    expect(w2.head).toBe(1);
    write(w2, 2, [view(0, '10.0.0.1', 80, 1)], 0);
    expect(new DecisionReader(buf).recent().map((x) => x.seq)).toEqual([2, 1]);
  });

  it('telemetry ring: a ring formatted anew under a reader (worker restart with init) is read from its start', () => {
    const { w, r, buf } = ring(8);
    for (let i = 1; i <= 5; i++) write(w, i, [view(0, '10.0.0.1', 80, 1)], 0);
    expect(r.poll().records).toHaveLength(5);
    const w2 = new DecisionWriter(buf, { init: true, worker: 1, director: 'd1', epochMs: 0 });
    write(w2, 77, [view(0, '10.0.0.1', 80, 1)], 0);
    const p = r.poll();
    expect(p.records.map((x) => x.clientPort)).toEqual([77]);
    expect(p.lost).toBe(0);
  });

  it('telemetry ring: the consumer starts from the oldest record still in the ring, and a new consumer resumes after the last commit', () => {
    const { w, buf } = ring(8);
    for (let i = 0; i < 3; i++) write(w, 100 + i, [view(0, '10.200.1.101', 80, 1)], 0);
    // A first consumer attaching after 3 decisions still gets them; a plain reader starts at the head.
    expect(new DecisionReader(buf).poll().records).toEqual([]);
    const c1 = new DecisionReader(buf, { from: 'consumer' });
    expect(c1.consumed).toBeNull();
    expect(c1.poll().records.map((x) => x.clientPort)).toEqual([100, 101, 102]);
    c1.commit();
    write(w, 103, [view(0, '10.200.1.101', 80, 1)], 0);
    // The consumer "restarts": the new one resumes after 102, never re-reading what was consumed.
    const c2 = new DecisionReader(buf, { from: 'consumer' });
    expect(c2.consumed).toBe(3);
    expect(c2.poll().records.map((x) => x.clientPort)).toEqual([103]);
    // More than the ring holds before the first consumer attaches: it starts at the oldest intact record, none counted lost.
    const { w: w2, buf: b2 } = ring(8);
    for (let i = 0; i < 20; i++) write(w2, 200 + i, [view(0, '10.200.1.101', 80, 1)], 0);
    const p = new DecisionReader(b2, { from: 'consumer' }).poll();
    expect([p.lost, p.records.map((x) => x.clientPort)]).toEqual([0, [213, 214, 215, 216, 217, 218, 219]]);
    // A ring formatted anew (tsvsd restarted) forgets the consumer.
    new DecisionWriter(buf, { init: true, worker: 1, director: 'd1', epochMs: 0 });
    expect(new DecisionReader(buf, { from: 'consumer' }).consumed).toBeNull();
  });

  it('telemetry ring: bad segments are refused with a typed error', () => {
    expect(() => new DecisionWriter(new ArrayBuffer(1000), { init: true, worker: 0, director: '', epochMs: 0 })).toThrow(DecisionRingError);
    expect(() => new DecisionReader(new ArrayBuffer(decisionRingBytes(8)))).toThrow(/magic/);
  });

  it('telemetry ring: overhead is the figure each scheduler compares', () => {
    expect(overheadFor(schedulerIndex('wlc'), 3, 7)).toBe(3 * 256 + 7);
    expect(overheadFor(schedulerIndex('sed'), 3, 7)).toBe(4);
    expect(overheadFor(schedulerIndex('wrr'), 3, 7)).toBe(0);
    expect(schedulerIndex('nope')).toBe(255);
  });
});

describe('telemetry attributes and sampling', () => {
  function rec(): DecisionRecord {
    const { w, r } = ring();
    write(w, 40001, [view(0, '10.200.1.102', 80, 1, 1, 0), view(1, '10.200.1.101', 80, 3, 0, 2)], 1, 'wrr');
    return r.poll().records[0];
  }

  it('telemetry attributes: semantic-convention names for the flow, lvs.* for the decision', () => {
    const a = recordToAttributes(rec());
    expect(a).toMatchObject({
      [Attr.clientAddress]: '10.200.0.100',
      [Attr.clientPort]: 40001,
      [Attr.serverAddress]: '10.200.0.10',
      [Attr.serverPort]: 80,
      [Attr.networkTransport]: 'tcp',
      'lvs.scheduler': 'wrr',
      'lvs.dest.address': '10.200.1.101',
      'lvs.dest.port': 80,
      'lvs.outcome': 'scheduled',
      'lvs.method': 'masq',
      'lvs.service': 'TCP 10.200.0.10:80',
      'lvs.candidates.count': 2,
      'lvs.worker': 1,
      'lvs.director': 'd1',
    });
    expect(a['lvs.candidates']).toEqual(['10.200.1.102:80 w=1 a=1 i=0 o=0', '10.200.1.101:80 w=3 a=0 i=2 o=0 chosen']);
    expect(a['error.type']).toBeUndefined();
  });

  it('telemetry attributes: a failed decision carries error.type and no dest', () => {
    const { w, r } = ring();
    write(w, 7, [], -1);
    const a = recordToAttributes(r.poll().records[0]);
    expect(a['error.type']).toBe('no-dest');
    expect(a['lvs.outcome']).toBe('no-dest');
    expect(a['lvs.dest.address']).toBeUndefined();
  });

  it('telemetry settings: options win over OTEL_* variables; bad values are typed errors', () => {
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318/', OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25', OTEL_SERVICE_NAME: 'dir1' };
    expect(traceSettings({}, env)).toEqual({ endpoint: 'http://127.0.0.1:4318', tracesUrl: 'http://127.0.0.1:4318/v1/traces', ratio: 0.25, serviceName: 'dir1' });
    expect(traceSettings({ otlp: 'http://127.0.0.1:46001', ratio: '0' }, env)).toMatchObject({ tracesUrl: 'http://127.0.0.1:46001/v1/traces', ratio: 0 });
    expect(traceSettings({}, { OTEL_TRACES_SAMPLER: 'always_off' })).toMatchObject({ endpoint: null, ratio: 0, serviceName: 'tsvsd' });
    expect(traceSettings({}, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://h:1/v1/traces' })).toMatchObject({ endpoint: 'http://h:1', tracesUrl: 'http://h:1/v1/traces' });
    expect(() => traceSettings({ ratio: '2' }, {})).toThrow(TraceConfigError);
    expect(() => traceSettings({}, { OTEL_TRACES_SAMPLER: 'jaeger_remote' })).toThrow(/not supported/);
    expect(() => traceSettings({ otlp: 'ftp://x' }, {})).toThrow(/http/);
    expect(() => parseRatio('', 'x')).toThrow(TraceConfigError);
  });
});
