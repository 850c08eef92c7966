// tsvsd-admin: the real tsvsd as a child process, driven over its unix socket (needs root, like tsvsd itself; an integration test: it starts processes).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { AdminReply } from '../../shared/proto/admin.ts';
import type { DestConfig, ServiceConfig, ServiceKey } from '../../shared/model/ipvs.ts';
import { mulberry32 } from '../../shared/util/rng.ts';

const root = resolve(import.meta.dirname, '../..');
const TSVSD = join(root, 'ops/bin/tsvsd');
const NODE = join(root, 'node_modules/.bin/node');
const MIB = 1 << 20;

const NOT_ROOT =
  'tsvsd-admin: these tests must run as root — tsvsd refuses to start without root because its admin socket is root-only. ' +
  'Run the suite as root (CI does).';

interface Daemon {
  proc: ChildProcess;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Starts tsvsd and waits for its "ready" line, or rejects with its stderr if it exits first. */
function startTsvsd(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Daemon> {
  const proc = spawn(TSVSD, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let err = '';
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return new Promise((resolveP, reject) => {
    proc.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      if (/\] ready /.test(err)) resolveP({ proc, stderr: () => err, exited });
    });
    void exited.then((code) => reject(new Error(`tsvsd exited ${code} before listening:\n${err}`)));
  });
}

/** Runs tsvsd expecting it to exit; returns its status and output. */
function runTsvsd(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; out: string; err: string }> {
  const proc = spawn(TSVSD, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env }, timeout: 20_000, killSignal: 'SIGKILL' });
  let out = '';
  let err = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((r) => proc.once('exit', (code) => r({ code, out, err })));
}

/** A line-oriented admin client: every `send` is answered by the next reply line, in order. */
class Client {
  readonly #s: Socket;
  #buf = '';
  readonly #waiting: ((line: string) => void)[] = [];
  readonly #lines: string[] = [];

  private constructor(s: Socket) {
    this.#s = s;
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      this.#buf += d;
      let nl;
      while ((nl = this.#buf.indexOf('\n')) >= 0) {
        const line = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 1);
        const w = this.#waiting.shift();
        if (w) w(line);
        else this.#lines.push(line);
      }
    });
  }

  static open(path: string): Promise<Client> {
    return new Promise((r, j) => {
      const s = connect(path);
      s.once('connect', () => r(new Client(s)));
      s.once('error', j);
    });
  }

  write(raw: string | Buffer): void {
    this.#s.write(raw);
  }

  next(): Promise<AdminReply> {
    const l = this.#lines.shift();
    if (l !== undefined) return Promise.resolve(JSON.parse(l) as AdminReply);
    return new Promise((r) => this.#waiting.push((line) => r(JSON.parse(line) as AdminReply)));
  }

  async send(req: object): Promise<AdminReply> {
    this.write(JSON.stringify(req) + '\n');
    return this.next();
  }

  close(): void {
    this.#s.destroy();
  }
}

function svc(port: number, over: Partial<ServiceConfig> = {}): ServiceConfig {
  return { af: 4, protocol: 'tcp', addr: '10.1.0.1', port, fwmark: 0, scheduler: 'wlc', flags: 0, timeout: 0, netmask: '255.255.255.255', pe: '', ...over };
}
function key(port: number): ServiceKey {
  return { af: 4, protocol: 'tcp', addr: '10.1.0.1', port, fwmark: 0 };
}
function dest(addr: string, over: Partial<DestConfig> = {}): DestConfig {
  return { af: 4, addr, port: 80, method: 'masq', weight: 1, uThreshold: 0, lThreshold: 0, tunType: 'ipip', tunPort: 0, tunCsum: '', ...over };
}
function errnoOf(r: AdminReply): string {
  return r.ok ? 'OK' : r.errno;
}


let dir = '';
beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error(NOT_ROOT);
  dir = mkdtempSync(join(tmpdir(), 'tsvsd-admin-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('tsvsd-admin: one shared daemon', () => {
  let d: Daemon;
  let sock = '';
  beforeAll(async () => {
    sock = join(dir, 'shared', 'run', 'tsvsd.sock');
    d = await startTsvsd(['--socket', sock, '--pidfile', join(dir, 'shared.pid')]);
  });
  afterAll(async () => {
    d?.proc.kill('SIGTERM');
    await d?.exited;
  });

  it('tsvsd-admin: runs as root (the admin socket is root-only)', () => {
    expect(process.getuid?.(), NOT_ROOT).toBe(0);
  });

  it('tsvsd-admin: the socket is 0600 in a 0700 directory it created, owned by root; the pidfile holds the pid', () => {
    const st = statSync(sock);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    expect(st.uid).toBe(0);
    expect(statSync(join(dir, 'shared', 'run')).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'shared')).mode & 0o777).toBe(0o700);
    expect(readFileSync(join(dir, 'shared.pid'), 'utf8')).toBe(`${d.proc.pid}\n`);
  });

  it('tsvsd-admin: table requests get the kernel answers and the snapshot shows the result', async () => {
    const c = await Client.open(sock);
    expect(await c.send({ v: 1, id: 1, op: 'add-service', svc: svc(80, { scheduler: 'rr' }) })).toEqual({ id: 1, ok: true });
    expect(errnoOf(await c.send({ v: 1, id: 2, op: 'add-service', svc: svc(80) }))).toBe('EEXIST');
    expect(errnoOf(await c.send({ v: 1, id: 3, op: 'add-service', svc: svc(81, { scheduler: 'bogus' }) }))).toBe('ENOENT');
    expect(errnoOf(await c.send({ v: 1, id: 4, op: 'add-dest', key: key(99), dest: dest('192.168.1.1') }))).toBe('ESRCH');
    expect(errnoOf(await c.send({ v: 1, id: 5, op: 'add-dest', key: key(80), dest: dest('192.168.1.1') }))).toBe('OK');
    expect(errnoOf(await c.send({ v: 1, id: 6, op: 'add-dest', key: key(80), dest: dest('192.168.1.2', { weight: 3 }) }))).toBe('OK');
    expect(errnoOf(await c.send({ v: 1, id: 7, op: 'add-dest', key: key(80), dest: dest('192.168.1.3', { weight: -1 }) }))).toBe('ERANGE');
    expect(errnoOf(await c.send({ v: 1, id: 8, op: 'edit-dest', key: key(80), dest: dest('192.168.1.9') }))).toBe('ENOENT');
    expect(errnoOf(await c.send({ v: 1, id: 9, op: 'edit-dest', key: key(80), dest: dest('192.168.1.1', { weight: 5 }) }))).toBe('OK');
    expect(errnoOf(await c.send({ v: 1, id: 10, op: 'stop-daemon', state: 'master' }))).toBe('ESRCH');
    expect(errnoOf(await c.send({ v: 1, id: 11, op: 'set-timeout', tcp: 60, tcpfin: 0, udp: 0 }))).toBe('OK');
    const snap = await c.send({ v: 1, id: 12, op: 'snapshot' });
    expect(snap.id).toBe(12);
    if (!snap.ok || !snap.snapshot) throw new Error(`no snapshot: ${JSON.stringify(snap)}`);
    const s = snap.snapshot.services.find((x) => x.port === 80);
    expect(s?.scheduler).toBe('rr');
    expect(s?.dests.map((x) => [x.addr, x.weight])).toEqual([['192.168.1.2', 3], ['192.168.1.1', 5]]);
    expect(snap.snapshot.timeouts).toEqual({ tcp: 60, tcpfin: 120, udp: 300 });
    expect(await c.send({ v: 1, id: 13, op: 'conns' })).toEqual({ id: 13, ok: true, conns: [] });
    expect(errnoOf(await c.send({ v: 1, id: 14, op: 'del-service', key: key(80) }))).toBe('OK');
    c.close();
  });

  it('tsvsd-admin: malformed lines get error replies on the same connection, which keeps working', async () => {
    const c = await Client.open(sock);
    const cases: [string, string, number][] = [
      ['garbage', 'EINVAL', 0],
      ['{', 'EINVAL', 0],
      ['[]', 'EINVAL', 0],
      ['null', 'EINVAL', 0],
      ['42', 'EINVAL', 0],
      ['{"v":2,"id":5,"op":"flush"}', 'EPROTO', 5],
      ['{"id":6,"op":"flush"}', 'EPROTO', 6],
      ['{"v":1,"id":7,"op":"frobnicate"}', 'EINVAL', 7],
      ['{"v":1,"id":8}', 'EINVAL', 8],
      ['{"v":1,"id":"x","op":"flush"}', 'EINVAL', 0],
      ['{"v":1,"id":9,"op":"add-service","svc":{"af":4}}', 'EINVAL', 9],
      ['{"v":1,"id":10,"op":"add-dest","key":{"af":4,"protocol":"tcp","addr":"10.1.0.1","port":80,"fwmark":0},"dest":null}', 'EINVAL', 10],
      ['{"v":1,"id":11,"op":"add-service","svc":{"af":4,"protocol":"tcp","addr":"999.1.1.1","port":80,"fwmark":0,"scheduler":"rr","flags":0,"timeout":0,"netmask":"","pe":""}}', 'EINVAL', 11],
      ['{"v":1,"id":12,"op":"set-timeout","tcp":1.5,"tcpfin":0,"udp":0}', 'EINVAL', 12],
    ];
    for (const [line, errno, id] of cases) {
      c.write(line + '\n');
      const r = await c.next();
      expect(r, line).toMatchObject({ id, ok: false, errno });
    }
    c.write(Buffer.alloc(MIB + 10, 0x61));
    c.write('\n');
    expect(await c.next()).toMatchObject({ ok: false, errno: 'EINVAL', detail: expect.stringContaining('longer than') });
    // A line of exactly the limit is read (and refused as JSON), not cut.
    c.write(Buffer.alloc(MIB, 0x62));
    c.write('\n');
    expect(await c.next()).toMatchObject({ ok: false, errno: 'EINVAL', detail: 'request is not JSON' });
    expect(await c.send({ v: 1, id: 99, op: 'snapshot' })).toMatchObject({ id: 99, ok: true });
    c.close();
    expect(d.proc.exitCode).toBe(null);
  });

  it('tsvsd-admin: seeded fuzz of garbage and mutated requests never crashes it; one reply per line', async () => {
    const rand = mulberry32(20240611);
    const pick = <T,>(a: readonly T[]): T => a[Math.floor(rand() * a.length)];
    const valid: object[] = [
      { v: 1, id: 1, op: 'add-service', svc: svc(1000) },
      { v: 1, id: 2, op: 'add-dest', key: key(1000), dest: dest('192.168.9.1') },
      { v: 1, id: 3, op: 'zero' },
      { v: 1, id: 4, op: 'start-daemon', daemon: { state: 'backup', mcastIfn: 'eth0', syncid: 1, maxlen: 0, group: '', port: 0, ttl: 0 } },
    ];
    const weird: unknown[] = [null, true, -1, 1e300, 2 ** 53, '', 'x'.repeat(300), [], {}, { op: 'flush' }, '__proto__', NaN];
    function mutate(o: unknown, depth: number): unknown {
      if (o === null || typeof o !== 'object' || depth > 3) return rand() < 0.3 ? pick(weird) : o;
      const copy: Record<string, unknown> = Array.isArray(o) ? ([...o] as unknown as Record<string, unknown>) : { ...(o as Record<string, unknown>) };
      for (const k of Object.keys(copy)) {
        const p = rand();
        if (p < 0.1) delete copy[k];
        else if (p < 0.25) copy[k] = pick(weird);
        else copy[k] = mutate(copy[k], depth + 1);
      }
      if (rand() < 0.1) copy[pick(['extra', '__proto__', 'constructor'])] = pick(weird);
      return copy;
    }
    const lines: Buffer[] = [];
    for (let i = 0; i < 400; i++) {
      const kind = rand();
      if (kind < 0.35) {
        const n = 1 + Math.floor(rand() * 200);
        lines.push(Buffer.from(Array.from({ length: n }, () => 0x21 + Math.floor(rand() * (0xff - 0x21)))));
      } else if (kind < 0.9) {
        lines.push(Buffer.from(JSON.stringify(mutate(pick(valid), 0))));
      } else {
        const s = JSON.stringify(pick(valid));
        lines.push(Buffer.from(s.slice(0, Math.floor(rand() * s.length)) + '}'));
      }
    }
    const c = await Client.open(sock);
    c.write(Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')])));
    const replies: AdminReply[] = [];
    for (let i = 0; i < lines.length; i++) replies.push(await c.next());
    expect(replies.every((r) => typeof r.id === 'number' && typeof r.ok === 'boolean')).toBe(true);
    expect(await c.send({ v: 1, id: 777, op: 'snapshot' })).toMatchObject({ id: 777, ok: true });
    c.close();
    const fresh = await Client.open(sock);
    expect(await fresh.send({ v: 1, id: 1, op: 'flush' })).toEqual({ id: 1, ok: true });
    fresh.close();
    expect(d.proc.exitCode).toBe(null);
  });

  it('tsvsd-admin: many connections at once, each answered in order even when pipelined', async () => {
    const clients = await Promise.all(Array.from({ length: 20 }, () => Client.open(sock)));
    await Promise.all(
      clients.map(async (c, i) => {
        const reqs = Array.from({ length: 25 }, (_, j) => ({ v: 1, id: i * 100 + j, op: j === 0 ? 'add-service' : 'snapshot', svc: svc(2000 + i) }));
        c.write(reqs.map((r) => JSON.stringify(r) + '\n').join(''));
        for (const r of reqs) expect((await c.next()).id).toBe(r.id);
      }),
    );
    const snap = await clients[0].send({ v: 1, id: 1, op: 'snapshot' });
    expect(snap.ok && snap.snapshot?.services.filter((s) => s.port >= 2000 && s.port < 2020)).toHaveLength(20);
    for (const c of clients) c.close();
  });

  it('tsvsd-admin: a client that pipelines thousands of requests before reading gets every reply, in order', async () => {
    const c = await Client.open(sock);
    const n = 3000;
    c.write(Array.from({ length: n }, (_, i) => `{"v":1,"id":${i + 1},"op":"snapshot"}\n`).join(''));
    for (let i = 1; i <= n; i++) expect((await c.next()).id).toBe(i);
    // Blank lines are not requests: after a burst of them the connection still answers.
    c.write('\n'.repeat(500) + '\r\n  \n{"v":1,"id":9,"op":"conns"}\n');
    expect(await c.next()).toEqual({ id: 9, ok: true, conns: [] });
    c.close();
  });

  it('tsvsd-admin: a client that half-closes still gets every reply', async () => {
    const out = await new Promise<string>((r, j) => {
      const s = connect(sock);
      let got = '';
      s.on('data', (b) => (got += b.toString()));
      s.on('end', () => r(got));
      s.on('error', j);
      s.end('{"v":1,"id":1,"op":"conns"}\n{"v":1,"id":2,"op":"conns"}\n');
    });
    expect(out.trim().split('\n').map((l) => (JSON.parse(l) as AdminReply).id)).toEqual([1, 2]);
  });
});

describe('tsvsd-admin: lifecycle', () => {
  it('tsvsd-admin: SIGTERM and SIGINT remove the socket and the pidfile and exit 0', async () => {
    for (const sig of ['SIGTERM', 'SIGINT'] as const) {
      const sock = join(dir, `sig-${sig}`, 'tsvsd.sock');
      const pid = join(dir, `sig-${sig}.pid`);
      const d = await startTsvsd(['--socket', sock, '--pidfile', pid]);
      expect(existsSync(sock) && existsSync(pid)).toBe(true);
      d.proc.kill(sig);
      expect(await d.exited).toBe(0);
      expect(existsSync(sock)).toBe(false);
      expect(existsSync(pid)).toBe(false);
      expect(d.stderr()).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z tsvsd\\[\\d+\\] stopping reason=${sig}$`, 'm'));
    }
  });

  it('tsvsd-admin: a stale socket left by a killed process is removed at start', async () => {
    const sock = join(dir, 'stale.sock');
    const holder = spawn(NODE, ['-e', `require('net').createServer().listen(${JSON.stringify(sock)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((r) => holder.stdout?.once('data', r));
    holder.kill('SIGKILL');
    await new Promise((r) => holder.once('exit', r));
    expect(statSync(sock).isSocket()).toBe(true);
    const d = await startTsvsd(['--socket', sock]);
    expect(d.stderr()).toContain('admin: removed stale socket');
    const c = await Client.open(sock);
    expect(await c.send({ v: 1, id: 1, op: 'conns' })).toEqual({ id: 1, ok: true, conns: [] });
    c.close();
    d.proc.kill('SIGTERM');
    expect(await d.exited).toBe(0);
  });

  it('tsvsd-admin: a second daemon on a live socket exits 1 and leaves the first one working', async () => {
    const sock = join(dir, 'live.sock');
    const d = await startTsvsd(['--socket', sock]);
    const second = await runTsvsd(['--socket', sock]);
    expect(second.code).toBe(1);
    expect(second.err).toContain('another daemon is listening');
    const c = await Client.open(sock);
    expect((await c.send({ v: 1, id: 1, op: 'snapshot' })).ok).toBe(true);
    c.close();
    d.proc.kill('SIGTERM');
    expect(await d.exited).toBe(0);
  });

  it('tsvsd-admin: a non-socket file at the socket path is left alone and start fails', async () => {
    const path = join(dir, 'plain-file');
    writeFileSync(path, 'keep me');
    const r = await runTsvsd(['--socket', path]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('is not a socket');
    expect(readFileSync(path, 'utf8')).toBe('keep me');
  });

  it('tsvsd-admin: TSVS_ADMIN_SOCKET is used when --socket is absent', async () => {
    const sock = join(dir, 'env', 'tsvsd.sock');
    const d = await startTsvsd([], { TSVS_ADMIN_SOCKET: sock });
    expect(statSync(sock).isSocket()).toBe(true);
    d.proc.kill('SIGTERM');
    expect(await d.exited).toBe(0);
  });

  it('tsvsd-admin: -h prints usage and exits 0; a bad flag exits 2; a bad rules file exits 1 naming file:line', async () => {
    const h = await runTsvsd(['-h']);
    expect(h.code).toBe(0);
    expect(h.out).toContain('Usage: tsvsd');
    const bad = await runTsvsd(['--frob']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--frob');
    const w = await runTsvsd(['--workers', '0']);
    expect(w.code).toBe(2);
    const rules = join(dir, 'bad.rules');
    writeFileSync(rules, '# a comment\n-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 70000\n');
    const cfg = await runTsvsd(['--socket', join(dir, 'cfg.sock'), '--config', rules]);
    expect(cfg.code).toBe(1);
    expect(cfg.err).toContain(`${rules}:3: `);
    expect(cfg.err).toContain('illegal weight specified');
    expect(existsSync(join(dir, 'cfg.sock'))).toBe(false);
  });

  it('tsvsd-admin: --config loads an ipvsadm-save file (comments allowed) before the socket opens', async () => {
    const rules = join(dir, 'good.rules');
    writeFileSync(rules, '# saved by tsvsadm -S -n\n-A -t 207.175.44.110:80 -s rr\n-a -t 207.175.44.110:80 -r 192.168.10.1:80 -m -w 1\nipvsadm -a -t 207.175.44.110:80 -r 192.168.10.2:80 -m -w 2\n');
    const sock = join(dir, 'good.sock');
    const d = await startTsvsd(['--socket', sock, '--config', rules]);
    try {
      const c = await Client.open(sock);
      const r = await c.send({ v: 1, id: 1, op: 'snapshot' });
      c.close();
      expect(r.ok).toBe(true);
      const snap = (r as { snapshot: { services: { addr: string; scheduler: string; dests: { addr: string; weight: number; method: string }[] }[] } }).snapshot;
      expect(snap.services.map((x) => [x.addr, x.scheduler])).toEqual([['207.175.44.110', 'rr']]);
      expect(snap.services[0].dests.map((x) => [x.addr, x.weight, x.method])).toEqual([['192.168.10.2', 2, 'masq'], ['192.168.10.1', 1, 'masq']]);
      expect(d.stderr()).toContain('config: loaded');
    } finally {
      d.proc.kill('SIGTERM');
      await d.exited;
    }
  });
});
