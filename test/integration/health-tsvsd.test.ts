// health-tsvsd: the real tsvsd with --keepalived runs the real health checker child against real TCP servers on
// loopback and edits its table as keepalived does; read back with the real tsvsadm (needs root, like tsvsd).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { TcpListeners } from '../support/tcp-listeners.ts';

const root = resolve(import.meta.dirname, '../..');
const TSVSD = join(root, 'ops/bin/tsvsd');
const TSVSADM = join(root, 'ops/bin/tsvsadm');
const NOT_ROOT = 'health-tsvsd: these tests must run as root — tsvsd refuses to start without root (its admin socket is root-only).';
const isRoot = process.getuid?.() === 0;

/** Ports of this test (the helper's range 49000-49199). */
const A = 49010;
const B = 49011;
const SORRY = 49012;
const DEAD1 = 49013;
const DEAD2 = 49014;

let dir = '';

const tcp = new TcpListeners();
const listen = (port: number): Promise<void> => tcp.listen(port);
const unlisten = (port: number): Promise<void> => tcp.unlisten(port);

function conf(weightA: number, extra = ''): string {
  const rs = (port: number, w: number, more = '') => `  real_server 127.0.0.1 ${port} {\n    weight ${w}\n${more}    TCP_CHECK {\n      connect_timeout 0.3\n      delay_before_retry 0.1\n    }\n  }\n`;
  return `virtual_server 10.249.0.10 80 {\n  delay_loop 0.2\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n${rs(A, weightA)}${rs(B, 1)}}\n` +
    `virtual_server 10.249.0.11 80 {\n  delay_loop 0.2\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n${rs(B, 2, '    inhibit_on_failure\n')}}\n` +
    `virtual_server 10.249.0.12 80 {\n  delay_loop 0.2\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n  sorry_server 127.0.0.1 ${SORRY}\n${rs(DEAD1, 1)}${rs(DEAD2, 1)}}\n${extra}`;
}

interface Daemon {
  proc: ChildProcess;
  err: () => string;
  exited: Promise<number | null>;
}
let d: Daemon | null = null;

function startTsvsd(args: string[]): Promise<Daemon> {
  const proc = spawn(TSVSD, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return new Promise((ok, fail) => {
    proc.stderr?.on('data', (b: Buffer) => {
      err += b.toString();
      if (/\] ready /.test(err)) ok({ proc, err: () => err, exited });
    });
    void exited.then((code) => fail(new Error(`tsvsd exited ${code} before ready:\n${err}`)));
  });
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; out: string; err: string }> {
  const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env }, timeout: 20_000, killSignal: 'SIGKILL' });
  let out = '';
  let err = '';
  p.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  p.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  return new Promise((r) => p.once('exit', (code) => r({ code, out, err })));
}

const sock = () => join(dir, 'tsvsd.sock');
async function list(): Promise<string> {
  const r = await run(TSVSADM, ['-L', '-n'], { TSVS_ADMIN_SOCKET: sock() });
  expect(r.code, r.err).toBe(0);
  return r.out;
}
/** The dest lines of one service in `tsvsadm -L -n`, as "addr:port weight". */
function destsOf(listing: string, vip: string): string[] {
  const lines = listing.split('\n');
  const i = lines.findIndex((l) => l.startsWith(`TCP  ${vip}:80`));
  if (i < 0) return [];
  const out: string[] = [];
  for (const l of lines.slice(i + 1)) {
    const m = /^ {2}-> (\S+)\s+\S+\s+(\d+)/.exec(l);
    if (!m) break;
    out.push(`${m[1]} ${m[2]}`);
  }
  return out.sort();
}
/** Polls until `pred` holds for the listing; resolves with the ms it took. */
async function until(pred: (listing: string) => boolean, limitMs: number): Promise<number> {
  const t0 = performance.now();
  let last = '';
  while (performance.now() - t0 < limitMs) {
    last = await list();
    if (pred(last)) return performance.now() - t0;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`not reached within ${limitMs} ms; last listing:\n${last}\ntsvsd log:\n${d?.err() ?? ''}`);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'health-tsvsd-'));
});
afterEach(async () => {
  if (d) {
    d.proc.kill('SIGTERM');
    await d.exited;
    d = null;
  }
  await tcp.closeAll();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('health-tsvsd: --keepalived FILE --check; tsvsadm health without a checker', () => {
  it('health-tsvsd: --check prints every problem with file:line and exits 1 on error, 0 on a good file', async () => {
    const bad = join(dir, 'bad.conf');
    writeFileSync(bad, 'virtual_server 10.0.0.1 80 {\n  delay_loop bogus\n  real_server 10.0.0.2 80 {\n    weight x\n  }\n}\n');
    const r = await run(TSVSD, ['--keepalived', bad, '--check']);
    expect(r.code).toBe(1);
    expect(r.out).toContain(`${bad}:2: error: delay_loop`);
    expect(r.out).toContain(`${bad}:4: error: weight`);
    const good = join(dir, 'good.conf');
    writeFileSync(good, conf(1, 'vrrp_instance VI_1 {\n  state MASTER\n  interface eth0\n  virtual_router_id 51\n  virtual_ipaddress {\n    10.249.0.10\n  }\n}\n'));
    const g = await run(TSVSD, ['--keepalived', good, '--check']);
    expect(g.code, g.out + g.err).toBe(0);
    expect(g.out).toMatch(new RegExp(`${good}:\\d+: warning: vrrp_instance`));
  });

  it('health-tsvsd: tsvsadm health against a tsvsd without --keepalived says there is no checker, exit 1', async () => {
    if (!isRoot) throw new Error(NOT_ROOT);
    d = await startTsvsd(['--socket', sock()]);
    const r = await run(TSVSADM, ['health'], { TSVS_ADMIN_SOCKET: sock() });
    expect(r).toMatchObject({ code: 1, out: '' });
    expect(r.err).toContain('EOPNOTSUPP: tsvsd runs without --keepalived');
  });
});

describe('health-tsvsd: the checker edits the table', () => {
  beforeAll(() => {
    if (!isRoot) throw new Error(NOT_ROOT);
  });
  it('health-tsvsd: a stopped real server leaves the table (inhibit: weight 0) and comes back; all down → sorry server', async () => {
    await listen(A);
    await listen(B);
    await listen(SORRY);
    const file = join(dir, 'k.conf');
    writeFileSync(file, conf(1));
    d = await startTsvsd(['--socket', sock(), '--keepalived', file]);
    await until((l) => destsOf(l, '10.249.0.12').join() === `127.0.0.1:${SORRY} 1`, 3000);
    await until((l) => destsOf(l, '10.249.0.10').join() === `127.0.0.1:${A} 1,127.0.0.1:${B} 1`, 3000);
    expect(destsOf(await list(), '10.249.0.11')).toEqual([`127.0.0.1:${B} 2`]);

    await unlisten(B);
    const down = await until((l) => destsOf(l, '10.249.0.10').join() === `127.0.0.1:${A} 1` && destsOf(l, '10.249.0.11').join() === `127.0.0.1:${B} 0`, 3000);
    const hj = await run(TSVSADM, ['health', '--json'], { TSVS_ADMIN_SOCKET: sock() });
    expect(hj.code, hj.err).toBe(0);
    const vss = JSON.parse(hj.out) as { vs: string; sorryActive: boolean; realServers: { rs: string; alive: boolean; tableWeight: number | null; lastChange: number | null; checkers: { kind: string; state: string; failInRow: number; lastError: string | null }[] }[] }[];
    expect(vss).toHaveLength(3);
    const bs = vss.flatMap((v) => v.realServers).filter((r) => r.rs.includes(`:${B}`));
    expect(bs).toHaveLength(2);
    for (const r of bs) {
      expect(r.alive).toBe(false);
      expect(r.lastChange).not.toBeNull();
      expect(r.checkers[0]).toMatchObject({ kind: 'TCP_CHECK', state: 'down' });
      expect(r.checkers[0].failInRow).toBeGreaterThan(0);
      expect(r.checkers[0].lastError).toMatch(/refused|ECONNREFUSED/i);
    }
    expect(vss.find((v) => v.realServers.some((r) => r.rs.includes(`:${DEAD1}`)))?.sorryActive).toBe(true);
    const hp = await run(TSVSADM, ['health'], { TSVS_ADMIN_SOCKET: sock() });
    expect(hp.code, hp.err).toBe(0);
    expect(hp.out).toMatch(/DEAD\s+weight 0 \(configured 2\)/);
    expect(hp.out).toMatch(/sorry server in use/);
    await listen(B);
    const up = await until((l) => destsOf(l, '10.249.0.10').length === 2 && destsOf(l, '10.249.0.11').join() === `127.0.0.1:${B} 2`, 3000);
    process.stdout.write(`health-tsvsd: detection seen by tsvsadm in ${down.toFixed(0)} ms, recovery in ${up.toFixed(0)} ms (delay_loop 0.2 s, delay_before_retry 0.1 s, retry 1, refused connect)\n`);
    expect(down).toBeLessThan(1000);
    expect(up).toBeLessThan(1000);
    expect(d.err()).toMatch(/health: dest removed/);
  }, 20_000);

  it('health-tsvsd: SIGHUP with an edited weight edits the table in place and keeps a down server down; a killed checker is restarted', async () => {
    await listen(A);
    const file = join(dir, 'h.conf');
    writeFileSync(file, conf(1));
    d = await startTsvsd(['--socket', sock(), '--keepalived', file]);
    await until((l) => destsOf(l, '10.249.0.10').join() === `127.0.0.1:${A} 1` && destsOf(l, '10.249.0.11').join() === `127.0.0.1:${B} 0`, 3000);
    writeFileSync(file, conf(5, `virtual_server 10.249.0.13 80 {\n  delay_loop 0.2\n  lb_algo wrr\n  protocol TCP\n  real_server 127.0.0.1 ${A} {\n    weight 3\n    TCP_CHECK {\n      connect_timeout 0.3\n      delay_before_retry 0.1\n    }\n  }\n}\n`));
    d.proc.kill('SIGHUP');
    await until((l) => destsOf(l, '10.249.0.10').join() === `127.0.0.1:${A} 5` && destsOf(l, '10.249.0.13').join() === `127.0.0.1:${A} 3`, 3000);
    // B is still down: the reload did not bring it back as a fresh "alive" server, and nothing was flushed.
    const l = await list();
    expect(destsOf(l, '10.249.0.10')).toEqual([`127.0.0.1:${A} 5`]);
    expect(destsOf(l, '10.249.0.11')).toEqual([`127.0.0.1:${B} 0`]);
    expect(d.err()).toMatch(/reload: done/);
    const hj = JSON.parse((await run(TSVSADM, ['health', '--json'], { TSVS_ADMIN_SOCKET: sock() })).out) as { vs: string }[];
    expect(hj).toHaveLength(4);
    // The checker killed with -9 is restarted by tsvsd, gets the configuration again and the table follows it.
    const pids = (await run('pgrep', ['-P', String(d.proc.pid), '-f', 'services/health/main.ts'])).out.trim();
    // ops/bin/tsvsd execs node, so tsvsd is d.proc itself and the checker its direct child (only ours is killed).
    const child = Number(pids.split('\n')[0]);
    expect(child, `no checker child of tsvsd ${d.proc.pid}`).toBeGreaterThan(0);
    process.kill(child, 'SIGKILL');
    await listen(B);
    await until((l) => destsOf(l, '10.249.0.10').join() === `127.0.0.1:${A} 5,127.0.0.1:${B} 1` && destsOf(l, '10.249.0.11').join() === `127.0.0.1:${B} 2`, 5000);
    expect(d.err()).toMatch(/child: exited.*health|health: checker started[\s\S]*health: checker started/);
    await unlisten(B);
    await until((l) => destsOf(l, '10.249.0.10').join() === `127.0.0.1:${A} 5`, 3000);
    // A broken file is refused and the running configuration stays.
    writeFileSync(file, 'virtual_server 10.249.0.10 80 {\n  delay_loop nope\n}\n');
    d.proc.kill('SIGHUP');
    const t0 = performance.now();
    while (!/file not taken/.test(d.err()) && performance.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 20));
    expect(d.err()).toMatch(/reload: .*:2: error: delay_loop/);
    expect(destsOf(await list(), '10.249.0.10')).toEqual([`127.0.0.1:${A} 5`]);
  }, 20_000);
});
