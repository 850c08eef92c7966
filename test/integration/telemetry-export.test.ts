// telemetry export: the exporter child tails a real decision ring (a mapped file), samples, and sends spans over
// OTLP http/protobuf to a receiver this test runs on loopback, which decodes the protobuf by walking the wire format.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fork, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { mapShared, type SharedSegment } from '../../shared/sys/shm.ts';
import { DecisionWriter, Outcome, TemplateUse, decisionRingBytes, noneReason, schedulerIndex } from '../../shared/telemetry/decision-ring.ts';
import type { DestView } from '../../shared/sched/types.ts';
import type { FromTelemetry, TelemetryStats, ToTelemetry } from '../../shared/proto/telemetry.ts';
import { decodeTraces, type DecodedSpan } from './telemetry-otlp.ts';

const MAIN = resolve(import.meta.dirname, '../../services/telemetry/main.ts');
const PORT = 45010;

// ---- the receiver ----
let server: Server;
const received: DecodedSpan[] = [];
let contentTypes: string[] = [];
let answerDelayMs = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      contentTypes.push(String(req.headers['content-type']));
      received.push(...decodeTraces(new Uint8Array(Buffer.concat(chunks))));
      setTimeout(() => res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(), answerDelayMs);
    });
  });
  await new Promise<void>((ok, bad) => {
    server.once('error', bad);
    server.listen(PORT, '127.0.0.1', ok);
  });
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((ok) => server.close(() => ok()));
});

// ---- the ring and the child ----
const ip = (s: string): number => s.split('.').reduce((a, b) => a * 256 + Number(b), 0);
function view(i: number, addr: string, weight: number, act = 0, ina = 0): DestView {
  return { index: i, addr: ip(addr), port: 80, weight, lastWeight: weight, overloaded: false, available: true, activeConns: act, inactConns: ina };
}

let dir = '';
let seg: SharedSegment | null = null;
let child: ChildProcess | null = null;
let lastStats: TelemetryStats | null = null;
const epochMs = Date.now();

function setup(ratio: string, extra: string[] = [], before?: (w: DecisionWriter) => void): Promise<DecisionWriter> {
  dir = mkdtempSync(join(tmpdir(), 'tsvs-telemetry-'));
  const path = join(dir, 'decisions-0');
  seg = mapShared(path, decisionRingBytes(1024), { create: true });
  const w = new DecisionWriter(seg.buffer, { init: true, worker: 0, director: 'd1', epochMs });
  received.length = 0;
  contentTypes = [];
  lastStats = null;
  before?.(w);
  return startChild(path, ratio, extra).then(() => w);
}

/** Forks the exporter child on the ring at `path` and resolves once it says ready. */
function startChild(path: string, ratio: string, extra: string[] = []): Promise<void> {
  const c = fork(MAIN, ['--ring', path, '--otlp', `http://127.0.0.1:${PORT}`, '--trace-ratio', ratio, '--export-delay-ms', '50', '--stats-ms', '50', ...extra], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  child = c;
  c.on('message', (m: FromTelemetry) => {
    if (m.type === 'stats') lastStats = m.stats;
  });
  return new Promise((ok, bad) => {
    c.once('exit', (code) => bad(new Error(`telemetry child exited ${code}`)));
    c.on('message', (m: FromTelemetry) => {
      if (m.type === 'ready') ok();
    });
  });
}

afterEach(async () => {
  const c = child;
  if (c && c.exitCode === null && c.signalCode === null) {
    const exited = new Promise((ok) => c.once('exit', ok));
    c.kill('SIGTERM');
    await exited;
  }
  child = null;
  seg?.unmap();
  seg = null;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function until<T>(what: string, f: () => T | undefined | false | null, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function decide(w: DecisionWriter, cport: number, views: DestView[], chosen: number, sched: string): void {
  w.begin(Date.now() - epochMs, 6, ip('10.200.0.100'), cport, ip('10.200.0.10'), 80, 0, 0);
  w.candidates(schedulerIndex(sched), views, chosen);
  if (chosen >= 0) w.commit(Outcome.scheduled, TemplateUse.none, 7 + chosen, views[chosen].addr, 80, 0);
  else w.commit(noneReason(views), TemplateUse.none, -1, 0, 0, 255);
}

describe('telemetry export (real child process, OTLP over loopback)', () => {
  it('telemetry export: at ratio 1 a decision becomes a span naming scheduler, candidates and chosen server', async () => {
    const w = await setup('1');
    const t0 = Date.now();
    decide(w, 40001, [view(0, '10.200.1.103', 1, 2, 1), view(1, '10.200.1.101', 3, 0, 4)], 1, 'wlc');
    const spans = await until('one span', () => received.length >= 1 && received);
    expect(contentTypes[0]).toBe('application/x-protobuf');
    const s = spans[0];
    expect(s.name).toBe('lvs.schedule');
    expect(s.resource['service.name']).toBe('tsvsd');
    expect(Math.abs(Number(s.startNs / 1_000_000n) - t0)).toBeLessThan(1000);
    expect(s.attributes).toMatchObject({
      'client.address': '10.200.0.100',
      'client.port': 40001,
      'server.address': '10.200.0.10',
      'server.port': 80,
      'network.transport': 'tcp',
      'lvs.scheduler': 'wlc',
      'lvs.outcome': 'scheduled',
      'lvs.dest.address': '10.200.1.101',
      'lvs.dest.port': 80,
      'lvs.director': 'd1',
      'lvs.candidates': ['10.200.1.103:80 w=1 a=2 i=1 o=513', '10.200.1.101:80 w=3 a=0 i=4 o=4 chosen'],
      'lvs.candidates.count': 2,
    });
    expect(s.attributes['error.type']).toBeUndefined();
    expect(s.statusCode).toBe(0);
  });

  it('telemetry export: at ratio 0 only the failed decisions and the control event are exported', async () => {
    const w = await setup('0');
    for (let i = 0; i < 50; i++) decide(w, 41000 + i, [view(0, '10.200.1.101', 1)], 0, 'rr');
    decide(w, 42000, [view(0, '10.200.1.101', 0)], -1, 'rr');
    decide(w, 42001, [], -1, 'wrr');
    const ev: ToTelemetry = { type: 'control-event', event: { name: 'config-applied', timeMs: Date.now(), attributes: { 'lvs.epoch': 7 } } };
    child!.send(ev);
    await until('stats', () => lastStats !== null && lastStats.decisionsRead === 52 && lastStats.exported === 3 && lastStats);
    await new Promise((r) => setTimeout(r, 300));
    expect(received.map((s) => s.name).sort()).toEqual(['lvs.control config-applied', 'lvs.schedule', 'lvs.schedule']);
    const failed = received.filter((s) => s.name === 'lvs.schedule');
    expect(failed.map((s) => [s.attributes['client.port'], s.attributes['error.type'], s.statusCode])).toEqual([
      [42000, 'quiescent', 2],
      [42001, 'no-dest', 2],
    ]);
    expect(received.find((s) => s.name.startsWith('lvs.control'))?.attributes).toMatchObject({ 'lvs.event': 'config-applied', 'lvs.epoch': 7 });
    expect(lastStats).toMatchObject({ decisionsRead: 52, decisionsTraced: 2, decisionsUnsampled: 50, controlEvents: 1, exported: 3, queueDropped: 0 });
  });

  it('telemetry export: a full queue drops spans and counts them; nothing is lost uncounted', async () => {
    answerDelayMs = 400;
    try {
      const w = await setup('1', ['--queue', '16']);
      for (let i = 0; i < 300; i++) decide(w, 43000 + i, [view(0, '10.200.1.101', 1)], 0, 'rr');
      const st = await until('all accounted for', () => lastStats !== null && lastStats.decisionsRead === 300 && lastStats.exported + lastStats.queueDropped === 300 && lastStats, 15_000);
      expect(st.queueDropped).toBeGreaterThan(0);
      expect(received.length).toBe(st.exported);
    } finally {
      answerDelayMs = 0;
    }
  });

  it('telemetry export: decisions written before the exporter attached are exported; a restarted exporter resumes where it stopped, none twice', async () => {
    const views = [view(0, '10.200.1.101', 1)];
    const w = await setup('1', [], (wr) => {
      for (let i = 0; i < 5; i++) decide(wr, 44001 + i, views, 0, 'rr');
    });
    const ports = (): number[] => received.filter((x) => x.name === 'lvs.schedule').map((x) => Number(x.attributes['client.port'])).sort((a, b) => a - b);
    await until('the 5 early decisions', () => ports().length >= 5);
    // Written while the exporter runs, then it is killed -9 (no flush, no goodbye) and decisions keep coming.
    decide(w, 44006, views, 0, 'rr');
    await until('the 6th', () => ports().length >= 6);
    const c = child!;
    const gone = new Promise((ok) => c.once('exit', ok));
    c.kill('SIGKILL');
    await gone;
    for (let i = 0; i < 3; i++) decide(w, 44007 + i, views, 0, 'rr');
    await startChild(join(dir, 'decisions-0'), '1');
    await until('the 3 written while no exporter ran', () => ports().length >= 9);
    await new Promise((r) => setTimeout(r, 300));
    expect(ports()).toEqual([44001, 44002, 44003, 44004, 44005, 44006, 44007, 44008, 44009]);
    await until('stats of the new child', () => lastStats !== null && lastStats.decisionsRead === 3 && lastStats);
    expect(lastStats).toMatchObject({ decisionsRead: 3, ringLost: 0 });
  });

  it('telemetry export: a bad --trace-ratio is refused with exit status 2', async () => {
    const c = fork(MAIN, ['--trace-ratio', '1.5'], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    let err = '';
    c.stderr!.on('data', (d: Buffer) => (err += String(d)));
    const code = await new Promise((ok) => c.once('exit', ok));
    expect(code).toBe(2);
    expect(err).toMatch(/--trace-ratio: '1.5' is not a ratio/);
  });
});
