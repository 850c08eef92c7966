// telemetry tsvsd: the real tsvsd started with --http (as root, without forwarding: no namespaces, no packets),
// its table changed with the real tsvsadm; /metrics passes promtool and names what `tsvsadm -L -n --stats --exact`
// lists, /api/stats is the same read model, the monitor page is served; bad --http/--otlp/--trace-ratio exit 2.
// With --keepalived, the real health checker's states reach /metrics (HAProxy-style families) and /api/stats: a real
// server whose TCP listener closes is down there, with its failures and a down transition counted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { TcpListeners } from '../support/tcp-listeners.ts';

const root = resolve(import.meta.dirname, '../..');
const TSVSD = join(root, 'ops/bin/tsvsd');
const TSVSADM = join(root, 'ops/bin/tsvsadm');
const PORT = 45040;
const URL_ = `http://127.0.0.1:${PORT}`;

let dir = '';
let sock = '';
let proc: ChildProcess | null = null;

function adm(...args: string[]): string {
  const r = spawnSync(TSVSADM, args, { encoding: 'utf8', env: { ...process.env, TSVS_ADMIN_SOCKET: sock }, timeout: 20_000 });
  if (r.status !== 0) throw new Error(`tsvsadm ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return r.stdout;
}

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('telemetry-tsvsd: needs root — tsvsd refuses to start without root (its admin socket is root-only); CI runs as root');
  dir = mkdtempSync(join(tmpdir(), 'tsvs-tel-'));
  sock = join(dir, 'tsvsd.sock');
  const p = spawn(TSVSD, ['--socket', sock, '--http', `127.0.0.1:${PORT}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  proc = p;
  let err = '';
  await new Promise<void>((ok, bad) => {
    p.stderr!.on('data', (d: Buffer) => {
      err += String(d);
      if (/\] ready /.test(err)) ok();
    });
    p.once('exit', (c) => bad(new Error(`tsvsd exited ${c}:\n${err}`)));
  });
  expect(err).toContain(`http: listening`);
  adm('-A', '-t', '10.200.0.10:80', '-s', 'wrr');
  adm('-a', '-t', '10.200.0.10:80', '-r', '10.200.1.101:80', '-m', '-w', '3');
  adm('-a', '-t', '10.200.0.10:80', '-r', '10.200.1.102:8080', '-m', '-w', '1');
  adm('-A', '-f', '7', '-s', 'rr');
  adm('-a', '-f', '7', '-r', '10.200.1.103', '-g', '-w', '0');
});

afterAll(async () => {
  if (proc && proc.exitCode === null) {
    const done = new Promise((r) => proc!.once('exit', r));
    proc.kill('SIGTERM');
    await done;
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('telemetry tsvsd --http (real daemon, real tsvsadm)', () => {
  it('telemetry tsvsd: /metrics passes promtool and carries every real server tsvsadm lists, with its weight', async () => {
    const text = await (await fetch(`${URL_}/metrics`)).text();
    const p = spawnSync('/usr/bin/promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 20_000 });
    if (p.error) throw new Error(`promtool did not run (${p.error.message}): needs Debian's prometheus package (bash ops/setup.sh)`);
    expect(`${p.stdout}${p.stderr}`).toBe('');
    const weights = text.split('\n').filter((l) => l.startsWith('node_ipvs_backend_weight{'));
    expect(weights).toEqual([
      'node_ipvs_backend_weight{local_address="10.200.0.10",local_port="80",remote_address="10.200.1.102",remote_port="8080",proto="TCP",local_mark=""} 1',
      'node_ipvs_backend_weight{local_address="10.200.0.10",local_port="80",remote_address="10.200.1.101",remote_port="80",proto="TCP",local_mark=""} 3',
      'node_ipvs_backend_weight{local_address="",local_port="0",remote_address="10.200.1.103",remote_port="0",proto="FWM",local_mark="00000007"} 0',
    ]);
    // The counters are the ones tsvsadm -L -n --stats --exact prints (no traffic without forwarding: zeros, but
    // the same rows).
    const listed = adm('-L', '-n', '--stats', '--exact').split('\n').filter((l) => l.includes('->') && !l.includes('RemoteAddress'));
    expect(listed).toHaveLength(3);
    for (const l of listed) {
      const [, addr, conns] = /-> (\S+)\s+(\d+)/.exec(l)!;
      const [a, port] = addr.split(':');
      const line = text.split('\n').find((x) => x.startsWith('tsvs_backend_connections_total{') && x.includes(`remote_address="${a}"`) && x.includes(`remote_port="${port}"`));
      expect(line?.endsWith(` ${conns}`), `${addr}: ${line}`).toBe(true);
    }
    expect(text).toContain('\ntsvs_dataplane_forwarding 0\n');
  });

  it('telemetry tsvsd: /api/stats is the read model; / is the monitor page', async () => {
    const v = (await (await fetch(`${URL_}/api/stats`)).json()) as { table: { services: Array<{ scheduler: string; dests: unknown[] }> }; dataplane: { forwarding: boolean } };
    expect(v.table.services.map((s: { scheduler: string; dests: unknown[] }) => [s.scheduler, s.dests.length])).toEqual([
      ['wrr', 2],
      ['rr', 1],
    ]);
    expect(v.dataplane.forwarding).toBe(false);
    const page = await fetch(`${URL_}/`);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await page.text()).toContain('<title>tsvs monitor</title>');
  });

  it('telemetry tsvsd: bad --http, --otlp and --trace-ratio are usage errors (exit 2) naming the flag', () => {
    for (const [args, msg] of [
      [['--http', '127.0.0.1:http'], /--http 127.0.0.1:http: 'http' is not a port/],
      [['--otlp', 'localhost:4318'], /--otlp: want an http\(s\) URL/],
      [['--trace-ratio', '5'], /--trace-ratio: '5' is not a ratio/],
    ] as const) {
      const r = spawnSync(TSVSD, [...args, '--socket', join(dir, 'x.sock')], { encoding: 'utf8', timeout: 20_000 });
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(msg);
    }
  });
});

describe('telemetry tsvsd --keepalived --http: health in /metrics and /api/stats (real checker, real TCP servers)', () => {
  const HPORT = 45042;
  const A = 45110;
  const B = 45111;
  let hd = '';
  let hp: ChildProcess | null = null;
  const tcp = new TcpListeners();
  const listen = (port: number): Promise<void> => tcp.listen(port);
  const unlisten = (port: number): Promise<void> => tcp.unlisten(port);
  const metrics = async (): Promise<string> => (await fetch(`http://127.0.0.1:${HPORT}/metrics`)).text();
  const sample = (text: string, name: string, port: number, extra = ''): number | undefined => {
    const l = text.split('\n').find((x) => x.startsWith(name + '{') && x.includes(`remote_port="${port}"`) && x.includes(extra));
    return l === undefined ? undefined : Number(l.slice(l.lastIndexOf(' ') + 1));
  };
  async function until<T>(what: string, f: () => Promise<T | undefined | false>, ms = 10_000): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = await f();
      if (v) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error('telemetry-tsvsd: needs root — tsvsd refuses to start without root (its admin socket is root-only); CI runs as root');
    hd = mkdtempSync(join(tmpdir(), 'tsvs-tel-health-'));
    await listen(A);
    await listen(B);
    const rs = (port: number): string => `  real_server 127.0.0.1 ${port} {\n    weight 1\n    TCP_CHECK {\n      connect_timeout 0.3\n      delay_before_retry 0.1\n    }\n  }\n`;
    const file = join(hd, 'k.conf');
    writeFileSync(file, `virtual_server 10.249.0.20 80 {\n  delay_loop 0.2\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n${rs(A)}${rs(B)}}\n`);
    const p = spawn(TSVSD, ['--socket', join(hd, 'tsvsd.sock'), '--keepalived', file, '--http', `127.0.0.1:${HPORT}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    hp = p;
    let err = '';
    await new Promise<void>((ok, bad) => {
      p.stderr!.on('data', (d: Buffer) => {
        err += String(d);
        if (/\] ready /.test(err)) ok();
      });
      p.once('exit', (c) => bad(new Error(`tsvsd exited ${c}:\n${err}`)));
    });
  });

  afterAll(async () => {
    if (hp && hp.exitCode === null) {
      const done = new Promise((r) => hp!.once('exit', r));
      hp.kill('SIGTERM');
      await done;
    }
    await tcp.closeAll();
    if (hd) rmSync(hd, { recursive: true, force: true });
  });

  it('telemetry tsvsd: a real server that stops listening is down in /metrics and /api/stats, with failures and a down transition; promtool passes', async () => {
    const both = await until('both real servers checked and up', async () => {
      const t = await metrics();
      return [A, B].every((port) => sample(t, 'tsvs_backend_check_status', port, 'state="up"') === 1 && (sample(t, 'tsvs_backend_checks_total', port) ?? 0) >= 2) && t;
    });
    expect(sample(both, 'tsvs_backend_check_down_transitions_total', B)).toBe(0);
    expect(sample(both, 'tsvs_backend_check_duration_seconds', A)).toBeGreaterThan(0);
    await unlisten(B);
    const t = await until('rs B down', async () => {
      const x = await metrics();
      return sample(x, 'tsvs_backend_check_status', B, 'state="down"') === 1 && x;
    });
    expect(sample(t, 'tsvs_backend_check_status', B, 'state="up"')).toBe(0);
    expect(sample(t, 'tsvs_backend_check_down_transitions_total', B)).toBe(1);
    expect(sample(t, 'tsvs_backend_check_failures_total', B)).toBeGreaterThanOrEqual(1);
    expect(sample(t, 'tsvs_backend_check_status', A, 'state="up"')).toBe(1);
    expect(sample(t, 'tsvs_backend_check_failures_total', A)).toBe(0);
    const p = spawnSync('/usr/bin/promtool', ['check', 'metrics'], { input: t, encoding: 'utf8', timeout: 20_000 });
    if (p.error) throw new Error(`promtool did not run (${p.error.message}): needs Debian's prometheus package (bash ops/setup.sh)`);
    expect(`${p.stdout}${p.stderr}`).toBe('');
    const v = (await (await fetch(`http://127.0.0.1:${HPORT}/api/stats`)).json()) as { health: Array<{ remotePort: number; state: string; downTransitions: number; check: string; lastError: string | null }>; cluster: unknown };
    const b = v.health.find((h) => h.remotePort === B)!;
    expect(b).toMatchObject({ state: 'down', downTransitions: 1, check: `TCP_CHECK 127.0.0.1:${B}` });
    expect(b.lastError).toMatch(/refused|ECONNREFUSED/i);
    expect(v.cluster).toBeNull();
  });
});
