// telemetry trace: the real `tsvsadm trace` reading decision rings from shared-memory files (written here the way
// a worker writes them): --last answers where a client went, --json gives one object per line, the live tail
// prints new decisions as they are written, and mistakes exit 2 / nothing to read exits 1.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { mapShared, type SharedSegment } from '../../shared/sys/shm.ts';
import { DecisionWriter, Outcome, TemplateUse, decisionRingBytes, schedulerIndex } from '../../shared/telemetry/decision-ring.ts';

const TSVSADM = join(resolve(import.meta.dirname, '../..'), 'ops/bin/tsvsadm');
const ip = (s: string): number => s.split('.').reduce((a, b) => a * 256 + Number(b), 0);

let dir = '';
let segs: SharedSegment[] = [];
let writers: DecisionWriter[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tsvs-trace-'));
  segs = [0, 1].map((i) => mapShared(join(dir, `decisions-${i}`), decisionRingBytes(64), { create: true }));
  writers = segs.map((s, i) => new DecisionWriter(s.buffer, { init: true, worker: i, director: 'd1', epochMs: Date.now() }));
});
afterEach(() => {
  for (const s of segs) s.unmap();
  rmSync(dir, { recursive: true, force: true });
});

function decide(worker: number, cport: number, rs: string): void {
  const w = writers[worker];
  const views = ['10.200.1.101', '10.200.1.102'].map((a, i) => ({ index: i, addr: ip(a), port: 80, weight: 1, lastWeight: 1, overloaded: false, available: true, activeConns: 0, inactConns: 0 }));
  const pos = views.findIndex((v) => v.addr === ip(rs));
  w.begin(Date.now() % 1e6, 6, ip('10.200.0.100'), cport, ip('10.200.0.10'), 80, 0, 0);
  w.candidates(schedulerIndex('rr'), views, pos);
  w.commit(Outcome.scheduled, TemplateUse.none, pos, ip(rs), 80, 0);
}

function trace(...args: string[]): { status: number | null; out: string; err: string } {
  const r = spawnSync(TSVSADM, ['trace', '--shm-dir', dir, ...args], { encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

describe('telemetry trace (real tsvsadm, rings in files)', () => {
  it('telemetry trace: --client ADDR:PORT --last names the real server that connection reached, over every worker', () => {
    decide(0, 40001, '10.200.1.101');
    decide(1, 40002, '10.200.1.102');
    decide(0, 40003, '10.200.1.102');
    const r = trace('--client', '10.200.0.100:40002', '--last');
    expect(r.status).toBe(0);
    expect(r.out).toMatch(/^\d\d:\d\d:\d\d\.\d{3} d1\/w1 10\.200\.0\.100:40002 -> TCP 10\.200\.0\.10:80 rr => 10\.200\.1\.102:80 masq \[10\.200\.1\.101:80 w=1 a=0 i=0 o=0, 10\.200\.1\.102:80 w=1 a=0 i=0 o=0 \*\]\n$/);
    const j = trace('--dest', '10.200.1.102', '--last', '--count', '5', '--json');
    expect(j.out.trim().split('\n').map((l) => (JSON.parse(l) as { clientPort: number }).clientPort).sort()).toEqual([40002, 40003]);
  });

  it('telemetry trace: the live tail prints decisions written after it started, then stops at --count', async () => {
    const p = spawn(TSVSADM, ['trace', '--shm-dir', dir, '--service', 'TCP 10.200.0.10:80', '--count', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += String(d)));
    const exited = new Promise<number | null>((r) => p.once('exit', (c) => r(c)));
    decide(0, 41000, '10.200.1.101');
    await new Promise((r) => setTimeout(r, 1500));
    decide(0, 41001, '10.200.1.101');
    decide(1, 41002, '10.200.1.102');
    const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 10_000))]);
    if (code === 'timeout') p.kill('SIGKILL');
    expect(code).toBe(0);
    const ports = out.trim().split('\n').map((l) => / 10\.200\.0\.100:(\d+) /.exec(l)?.[1]);
    expect(ports.sort()).toEqual(['41001', '41002']);
  });

  it('telemetry trace: usage mistakes exit 2; no rings or no match with --last exit 1', () => {
    expect(trace('--client', 'nope').status).toBe(2);
    expect(trace('--bogus').status).toBe(2);
    expect(trace('--client', '10.200.0.100:1', '--last')).toMatchObject({ status: 1, err: expect.stringMatching(/no decision in the rings matches/) });
    const r = spawnSync(TSVSADM, ['trace', '--shm-dir', join(dir, 'none'), '--last'], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/no decision rings in .*is tsvsd running with tracing on/);
  });
});
