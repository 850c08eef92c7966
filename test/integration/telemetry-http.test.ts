// telemetry http: tsvsd's listener on loopback, over real HTTP: /metrics (checked by promtool), /api/* JSON of the
// read model, decisions from a real decision ring, server-sent events, errors.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { spawnSync } from 'node:child_process';
import { startHttp, type HttpProvider, type RunningHttp } from '../../services/tsvsd/http/server.ts';
import { DecisionReader, DecisionWriter, Outcome, TemplateUse, decisionRingBytes, schedulerIndex } from '../../shared/telemetry/decision-ring.ts';
import type { MetricsInput } from '../../shared/telemetry/prometheus.ts';
import { sampleMetricsInput } from '../unit/telemetry-sample.ts';
import { DecisionRings } from '../../services/tsvsd/http/decisions.ts';
import { mapShared } from '../../shared/sys/shm.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PORT = 45020;
let http: RunningHttp;
let model: MetricsInput;
const buf = new ArrayBuffer(decisionRingBytes(64));
const writer = new DecisionWriter(buf, { init: true, worker: 0, director: 'd1', epochMs: Date.now() });
const reader = new DecisionReader(buf);

function decide(cport: number, daddr: number): void {
  writer.begin(1, 6, 0x0ac80064, cport, 0x0ac8000a, 80, 0, 0);
  writer.candidates(schedulerIndex('rr'), [{ index: 0, addr: daddr, port: 80, weight: 1, lastWeight: 1, overloaded: false, available: true, activeConns: 0, inactConns: 0 }], 0);
  writer.commit(Outcome.scheduled, TemplateUse.none, 0, daddr, 80, 0);
}

function get(path: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((ok, bad) => {
    const r = request({ host: '127.0.0.1', port: PORT, path, method }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += String(c)));
      res.on('end', () => ok({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body }));
    });
    r.on('error', bad);
    r.end();
  });
}

beforeAll(async () => {
  model = sampleMetricsInput();
  const provider: HttpProvider = { director: 'd1', read: () => model, decisions: (max, filter) => reader.recent(filter, max) };
  http = await startHttp(`127.0.0.1:${PORT}`, provider, { tickMs: 100 });
});
afterAll(async () => {
  await http.close();
});

describe('telemetry http (real listener on loopback)', () => {
  it('telemetry http: /metrics is Prometheus text that promtool accepts, with the read model numbers', async () => {
    const r = await get('/metrics');
    expect(r.status).toBe(200);
    expect(r.type).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(r.body).toContain('\nnode_ipvs_incoming_packets_total 63\n');
    const p = spawnSync('/usr/bin/promtool', ['check', 'metrics'], { input: r.body, encoding: 'utf8', timeout: 20_000 });
    if (p.error) throw new Error(`promtool did not run (${p.error.message}): this test needs Debian's prometheus package (bash ops/setup.sh)`);
    expect(`${p.stdout}${p.stderr}`).toBe('');
    expect(p.status).toBe(0);
  });

  it('telemetry http: /api/stats is the read model as JSON; /api/frame the page frame', async () => {
    const r = await get('/api/stats');
    expect(r.type).toMatch(/^application\/json/);
    expect(JSON.parse(r.body)).toEqual(JSON.parse(JSON.stringify(model)));
    const f = JSON.parse((await get('/api/frame')).body);
    expect(f.director).toBe('d1');
    expect(f.services[0].dests[0].address).toBe('10.200.1.101');
  });

  it('telemetry http: /api/decisions answers "where did this client go" from the ring', async () => {
    decide(40001, 0x0ac80165);
    decide(40002, 0x0ac80166);
    decide(40001, 0x0ac80167);
    const all = JSON.parse((await get('/api/decisions')).body);
    expect(all.map((d: { clientPort: number }) => d.clientPort).slice(0, 3)).toEqual([40001, 40002, 40001]);
    const one = JSON.parse((await get('/api/decisions?client=10.200.0.100:40002')).body);
    expect(one).toHaveLength(1);
    expect(one[0].dest.address).toBe('10.200.1.102');
    const last = JSON.parse((await get('/api/decisions?client=10.200.0.100:40001&limit=1')).body);
    expect(last.map((d: { dest: { address: string } }) => d.dest.address)).toEqual(['10.200.1.103']);
  });

  it('telemetry http: /api/events streams the history, then a frame per tick', async () => {
    const events: Array<{ event: string; data: unknown }> = [];
    await new Promise<void>((ok, bad) => {
      const r = request({ host: '127.0.0.1', port: PORT, path: '/api/events' }, (res) => {
        expect(res.headers['content-type']).toBe('text/event-stream');
        let buf2 = '';
        res.on('data', (c: Buffer) => {
          buf2 += String(c);
          let i;
          while ((i = buf2.indexOf('\n\n')) >= 0) {
            const block = buf2.slice(0, i);
            buf2 = buf2.slice(i + 2);
            const ev = /^event: (\w+)$/m.exec(block)?.[1];
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (ev && data) events.push({ event: ev, data: JSON.parse(data) });
          }
          if (events.filter((e) => e.event === 'frame').length >= 3) {
            r.destroy();
            ok();
          }
        });
      });
      r.on('error', (e) => (events.length > 0 ? ok() : bad(e)));
      r.end();
    });
    expect(events[0].event).toBe('history');
    expect(Array.isArray(events[0].data)).toBe(true);
    const frames = events.filter((e) => e.event === 'frame').map((e) => e.data as { t: number; decisions: unknown[] });
    expect(frames.length).toBeGreaterThanOrEqual(3);
    expect(frames[2].t).toBeGreaterThan(frames[0].t);
  });

  it('telemetry http: unknown paths 404, other methods 405, a provider failure 500 without stopping the listener', async () => {
    expect((await get('/nope')).status).toBe(404);
    expect((await get('/metrics', 'POST')).status).toBe(405);
    const saved = model;
    model = null as unknown as MetricsInput;
    expect((await get('/metrics')).status).toBe(500);
    model = saved;
    expect((await get('/metrics')).status).toBe(200);
  });

  it('telemetry http: DecisionRings merges the rings of every worker in a directory, newest first', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsvs-rings-'));
    const segs = [0, 1].map((i) => mapShared(join(dir, `decisions-${i}`), decisionRingBytes(16), { create: true }));
    try {
      const ws = segs.map((s, i) => new DecisionWriter(s.buffer, { init: true, worker: i, director: 'd1', epochMs: 1000 }));
      const rings = new DecisionRings(dir);
      for (const [w, t, port] of [[0, 1, 50001], [1, 2, 50002], [0, 3, 50003]] as const) {
        ws[w].begin(t, 17, 0x0ac80064, port, 0x0ac8000a, 53, 0, 1);
        ws[w].candidates(schedulerIndex('rr'), [], -1);
        ws[w].commit(Outcome.noDest, TemplateUse.none, -1, 0, 0, 255);
      }
      const got = rings.recent(10);
      expect(got.map((r) => [r.worker, r.clientPort, r.protocol, r.outcome])).toEqual([
        [0, 50003, 'udp', 'no-dest'],
        [1, 50002, 'udp', 'no-dest'],
        [0, 50001, 'udp', 'no-dest'],
      ]);
      expect(rings.recent(1, (r) => r.worker === 1).map((r) => r.clientPort)).toEqual([50002]);
      rings.close();
    } finally {
      for (const s of segs) s.unmap();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('telemetry http: a port in use is a listen error', async () => {
    const blocker = createServer();
    await new Promise<void>((ok) => blocker.listen(PORT + 1, '127.0.0.1', ok));
    try {
      await expect(startHttp(`127.0.0.1:${PORT + 1}`, { director: 'x', read: () => model })).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await new Promise<void>((ok) => blocker.close(() => ok()));
    }
  });
});
