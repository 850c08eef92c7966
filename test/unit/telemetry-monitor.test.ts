// telemetry monitor: the frame the page shows, its history, and the --http address parser.
import { describe, expect, it } from 'vitest';
import { History, historyPoint, monitorFrame } from '../../shared/telemetry/monitor.ts';
import { DecisionReader, DecisionWriter, Outcome, TemplateUse, decisionRingBytes, schedulerIndex } from '../../shared/telemetry/decision-ring.ts';
import { parseListen, HttpListenError } from '../../services/tsvsd/http/server.ts';
import { sampleCluster, sampleMetricsInput, sampleHealth } from './telemetry-sample.ts';
import { parseCli, USAGE } from '../../services/tsvsd/args.ts';

describe('telemetry monitor', () => {
  it('telemetry monitor: a frame lists services, real servers with health, drops by count, decisions', () => {
    const m = sampleMetricsInput();
    m.health = sampleHealth().map((h) => ({ ...h, remoteAddress: '10.200.1.102', remotePort: 8080 }));
    const buf = new ArrayBuffer(decisionRingBytes(8));
    const w = new DecisionWriter(buf, { init: true, worker: 0, director: 'd1', epochMs: 0 });
    w.begin(5, 6, 0x0ac80064, 40000, 0x0ac8000a, 80, 0, 0);
    w.candidates(schedulerIndex('wrr'), [{ index: 0, addr: 0x0ac80165, port: 80, weight: 3, lastWeight: 3, overloaded: false, available: true, activeConns: 1, inactConns: 0 }], 0);
    w.commit(Outcome.scheduled, TemplateUse.none, 0, 0x0ac80165, 80, 0);
    const f = monitorFrame(1000, 'd1', m, new DecisionReader(buf).recent());
    expect(f.services.map((s) => s.label)).toEqual(['TCP 10.200.0.10:80', 'FWM 42']);
    expect(f.services[0].dests.map((d) => [d.address, d.port, d.method, d.weight, d.health])).toEqual([
      ['10.200.1.101', 80, 'Masq', 3, null],
      ['10.200.1.102', 8080, 'Masq', 1, 'down'],
    ]);
    expect(f.services[0].dests[1].healthDetail).toBe('TCP_CHECK 10.200.1.101:80: connection refused, 3 of 40 failed, 1 up / 2 down');
    expect(f.drops).toEqual([{ reason: 'orphan_replies', count: 4 }, { reason: 'no_dest', count: 2 }, { reason: 'net_bad_csum', count: 1 }]);
    expect(f.decisions).toEqual([{ seq: 1, timeMs: 5, worker: 0, director: 'd1', client: '10.200.0.100:40000', service: 'TCP 10.200.0.10:80', scheduler: 'wrr', outcome: 'scheduled', template: 'none', dest: '10.200.1.101:80', candidates: ['10.200.1.101:80 w=3 a=1 i=0 o=0 *'] }]);
    expect(historyPoint(f).d['tcp|4|10.200.0.10|80>10.200.1.101:80']).toEqual([6, 2, 5, 24]);
  });

  it('telemetry monitor: the frame carries the cluster and who holds each VIP (this director, else the leader)', () => {
    const m = { ...sampleMetricsInput(), cluster: sampleCluster(), vipsHeld: ['10.200.0.10'] };
    const f = monitorFrame(1000, 'd1', m, []);
    expect(f.cluster).toMatchObject({ self: 'd1', leader: 'd1', term: 4, role: 'leader' });
    expect(f.vips).toEqual([{ vip: '10.200.0.10', owner: 'd1' }]);
    const backup = { ...m, cluster: { ...sampleCluster(), self: 'd2', role: 'backup' as const }, vipsHeld: [] };
    expect(monitorFrame(1000, 'd2', backup, []).vips).toEqual([{ vip: '10.200.0.10', owner: 'd1' }]);
    expect(monitorFrame(1000, 'd1', sampleMetricsInput(), []).vips).toEqual([{ vip: '10.200.0.10', owner: '' }]);
  });

  it('telemetry monitor: history keeps the window and a bounded number of points', () => {
    const h = new History(10_000, 5);
    for (let t = 0; t <= 20_000; t += 1000) h.add({ t, d: {}, s: {} });
    expect(h.all().map((p) => p.t)).toEqual([16_000, 17_000, 18_000, 19_000, 20_000]);
    const h2 = new History(3000, 100);
    for (let t = 0; t <= 10_000; t += 1000) h2.add({ t, d: {}, s: {} });
    expect(h2.all().map((p) => p.t)).toEqual([7000, 8000, 9000, 10_000]);
  });

  it('telemetry monitor: --http takes ADDR:PORT, [V6]:PORT or PORT (loopback)', () => {
    expect(parseListen('127.0.0.1:9180')).toEqual({ host: '127.0.0.1', port: 9180 });
    expect(parseListen('[::1]:9180')).toEqual({ host: '::1', port: 9180 });
    expect(parseListen('9180')).toEqual({ host: '127.0.0.1', port: 9180 });
    expect(() => parseListen('::1:80')).toThrow(HttpListenError);
    expect(() => parseListen('127.0.0.1:99999')).toThrow(/not a port/);
    expect(() => parseListen('host:')).toThrow(/not a port/);
  });

  it('telemetry monitor: tsvsd takes --http, --otlp and --trace-ratio, checks them, and documents them in --help', () => {
    const r = parseCli(['--http', '127.0.0.1:9180', '--otlp', 'http://127.0.0.1:4318', '--trace-ratio', '0.01']);
    expect(r.kind === 'run' && [r.opts.http, r.opts.otlp, r.opts.traceRatio]).toEqual(['127.0.0.1:9180', 'http://127.0.0.1:4318', '0.01']);
    expect(parseCli(['--http', 'x:y'])).toMatchObject({ kind: 'error', message: expect.stringMatching(/not a port/) });
    expect(parseCli(['--otlp', '127.0.0.1:4318'])).toMatchObject({ kind: 'error', message: expect.stringMatching(/http\(s\) URL/) });
    expect(parseCli(['--trace-ratio', '1.5'])).toMatchObject({ kind: 'error', message: expect.stringMatching(/not a ratio/) });
    for (const f of ['--http', '--otlp', '--trace-ratio']) {
      expect(USAGE.slice(0, USAGE.indexOf('\n\n')), f).toMatch(new RegExp(`\\[${f}\\b`));
      expect(USAGE, f).toMatch(new RegExp(`^  ${f}\\b`, 'm'));
    }
  });
});
