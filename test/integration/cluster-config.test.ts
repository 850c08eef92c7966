// cluster-config: cluster-wide configuration in NATS KV, end to end: three real tsvsd processes (no data plane, each
// running its cluster agent) over a real 3-node nats-server cluster on loopback, driven by the real tsvsadm. The first
// director seeds the empty bucket with its --config; the others take the cluster's table over their own files; edits
// on any director reach every director; concurrent edits from two directors all land; an edit invalid on the latest
// table gets ipvsadm's error; with every nats-server down an edit fails (EAGAIN, "cluster config store unreachable")
// and the table in force stays. Needs root (tsvsd's admin socket is root-only) and /usr/sbin/nats-server (installed
// by ops/nats if missing); run it under the lab lock: flock /tmp/tsvs-lab.lock vitest run test/integration/cluster-config.test.ts
// (ports 43001-43023).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNatsCluster, type NatsCluster } from '../../ops/nats/cluster.ts';
import type { ConfigDoc } from '../../shared/proto/cluster.ts';
import { AgentParent } from '../support/agent-parent.ts';

const root = resolve(import.meta.dirname, '../..');
const TSVSD = join(root, 'ops/bin/tsvsd');
const TSVSADM = join(root, 'ops/bin/tsvsadm');
const CLUSTER = 'kvcfg';
const VIP = '10.77.0.10';

if (process.getuid?.() !== 0) throw new Error('cluster-config: must run as root — tsvsd refuses to start without root (its admin socket is root-only). CI runs the suite as root.');

interface Director {
  name: string;
  socket: string;
  proc: ChildProcess;
  log: () => string;
  exited: Promise<number | null>;
}

let nats: NatsCluster;
let dir: string;
const directors: Director[] = [];

function startDirector(name: string, priority: number, extra: string[]): Promise<Director> {
  const socket = join(dir, `${name}.sock`);
  const proc = spawn(TSVSD, ['--socket', socket, '--nats', nats.urls.join(','), '--node', name, '--cluster', CLUSTER, '--priority', String(priority), ...extra], {
    stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, TSVS_DIRECTOR: name },
  });
  let err = '';
  proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const d: Director = { name, socket, proc, log: () => err, exited };
  directors.push(d);
  return new Promise((res, rej) => {
    const t = setInterval(() => {
      if (/config: cluster revision applied rev=\d+/.test(err)) {
        clearInterval(t);
        res(d);
      }
    }, 20);
    void exited.then((code) => {
      clearInterval(t);
      rej(new Error(`tsvsd ${name} exited ${code}:\n${err}`));
    });
    setTimeout(() => {
      clearInterval(t);
      rej(new Error(`tsvsd ${name} took no cluster revision in 30 s:\n${err}`));
    }, 30_000);
  });
}

/** Runs tsvsadm against a director (synchronously). */
function adm(d: Director, ...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(TSVSADM, args, { env: { ...process.env, TSVS_ADMIN_SOCKET: d.socket }, encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** The same, without blocking the event loop: two directors can be edited at the same moment. */
function admAsync(d: Director, ...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const p = spawn(TSVSADM, args, { env: { ...process.env, TSVS_ADMIN_SOCKET: d.socket }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.on('data', (b: Buffer) => (out += b.toString()));
  p.stderr.on('data', (b: Buffer) => (err += b.toString()));
  return new Promise((r) => p.once('exit', (code) => r({ code, out, err })));
}

const save = (d: Director): string => {
  const r = adm(d, '-S', '-n');
  expect(r.code, r.err).toBe(0);
  return r.out;
};

async function converged(what: string, ms = 10_000): Promise<string> {
  const t0 = Date.now();
  for (;;) {
    const all = directors.map(save);
    if (all.every((s) => s === all[0])) return all[0];
    if (Date.now() - t0 > ms) throw new Error(`${what}: -S differs between directors after ${ms} ms:\n${all.join('\n---\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tsvs-kvcfg-'));
  nats = await startNatsCluster({ base: 43000 });
  writeFileSync(join(dir, 'd1.rules'), `-A -t ${VIP}:80 -s wrr\n-a -t ${VIP}:80 -r 10.77.1.1:80 -g -w 3\n-a -t ${VIP}:80 -r 10.77.1.2:80 -g -w 1\n`);
  writeFileSync(join(dir, 'd2.rules'), '-A -u 10.77.0.99:53 -s rr\n-a -u 10.77.0.99:53 -r 10.77.1.9:53 -m\n');
  // d1 seeds the empty bucket; d2 (another file) and d3 (none) join a cluster that has a table and take it
  await startDirector('d1', 200, ['--config', join(dir, 'd1.rules')]);
  await Promise.all([startDirector('d2', 190, ['--config', join(dir, 'd2.rules')]), startDirector('d3', 180, [])]);
}, 90_000);

afterAll(async () => {
  for (const d of directors) if (d.proc.exitCode === null) d.proc.kill('SIGTERM');
  await Promise.all(directors.map((d) => Promise.race([d.exited, new Promise((r) => setTimeout(r, 5000))])));
  for (const d of directors) if (d.proc.exitCode === null) d.proc.kill('SIGKILL');
  await nats?.stop();
  rmSync(dir, { recursive: true, force: true });
}, 30_000);

describe('cluster-config: three directors, one table in NATS KV', () => {
  it('cluster-config: the first director seeds the empty bucket with its --config; the others take the cluster\'s table over their own files', async () => {
    const s = await converged('start-up');
    expect(s).toBe(`-A -t ${VIP}:80 -s wrr\n-a -t ${VIP}:80 -r 10.77.1.1:80 -g -w 3\n-a -t ${VIP}:80 -r 10.77.1.2:80 -g -w 1\n`);
    expect(directors[0].log()).toMatch(/the cluster has no table: seeding it/);
    expect(directors[1].log()).not.toMatch(/seeding it/);
    expect(s).not.toContain('10.77.0.99');
  });

  it('cluster-config: an edit on any director is in force there when tsvsadm returns and reaches every director', async () => {
    const [d1, d2, d3] = directors;
    expect(adm(d3, '-a', '-t', `${VIP}:80`, '-r', '10.77.1.3:80', '-g', '-w', '2').code).toBe(0);
    expect(save(d3)).toContain('-a -t 10.77.0.10:80 -r 10.77.1.3:80 -g -w 2');
    expect(adm(d2, '-e', '-t', `${VIP}:80`, '-r', '10.77.1.1:80', '-g', '-w', '5').code).toBe(0);
    expect(save(d2)).toContain('-r 10.77.1.1:80 -g -w 5');
    expect(adm(d1, '--set', '100', '20', '30').code).toBe(0);
    const s = await converged('edits from d3, d2, d1');
    expect(s).toContain('-r 10.77.1.3:80 -g -w 2');
    expect(s).toContain('-r 10.77.1.1:80 -g -w 5');
    for (const d of directors) expect(adm(d, '-L', '--timeout').out).toBe('Timeout (tcp tcpfin udp): 100 20 30\n');
  });

  it('cluster-config: concurrent edits from two directors all land (40 adds, 20 on each side at once), -S identical everywhere', async () => {
    const [d1, d2] = directors;
    expect(adm(d1, '-A', '-t', `${VIP}:443`, '-s', 'rr').code).toBe(0);
    const t0 = Date.now();
    // all 20 of a side at once: each tsvsd takes them one after the other, so both directors edit back to back
    const run = (d: Director, base: number) => Promise.all(Array.from({ length: 20 }, (_, i) => admAsync(d, '-a', '-t', `${VIP}:443`, '-r', `10.77.${base}.${i + 1}:443`, '-m')
      .then((r) => ({ on: d.name, rs: `10.77.${base}.${i + 1}`, ...r }))));
    const results = (await Promise.all([run(d1, 2), run(d2, 3)])).flat();
    const ms = Date.now() - t0;
    expect(results.filter((r) => r.code !== 0).map((r) => `${r.on} -a ${r.rs}: exit ${r.code}: ${r.err.trim()}`)).toEqual([]);
    const s = await converged('concurrent edits');
    const dests = s.split('\n').filter((l) => l.startsWith(`-a -t ${VIP}:443 `));
    expect(dests).toHaveLength(40);
    const conflicts = directors.map((d) => (d.log().match(/after \d+ conflicting write/g) ?? []).length).reduce((a, b) => a + b, 0);
    process.stderr.write(`cluster-config: 40 concurrent edits from 2 directors in ${ms} ms (20 tsvsadm processes per director at once), all landed; edits that retried after a conflict: ${conflicts}\n`);
  });

  it('cluster-config: the same real server added on two directors at once: one lands, the other gets ipvsadm\'s "Destination already exists"', async () => {
    const [d1, d2] = directors;
    const rs = await Promise.all([d1, d2].map((d) => admAsync(d, '-a', '-t', `${VIP}:80`, '-r', '10.77.1.50:80', '-g')));
    expect(rs.map((r) => r.code).sort()).toEqual([0, 255]); // ipvsadm's exit status for a refused kernel call
    expect(rs.find((r) => r.code !== 0)!.err).toBe('Destination already exists\n');
    const s = await converged('same dest twice');
    expect(s.split('\n').filter((l) => l.includes('10.77.1.50:80'))).toHaveLength(1);
    expect(adm(d2, '-d', '-t', `${VIP}:80`, '-r', '10.77.1.99:80').err).toBe('No such destination\n');
  });

  it('cluster-config: every nats-server down → an edit fails with EAGAIN naming the unreachable store, the table in force stays; NATS back → edits work again', async () => {
    const [d1] = directors;
    const before = save(d1);
    for (let i = 0; i < 3; i++) await nats.kill(i);
    const t0 = Date.now();
    const r = adm(d1, '-A', '-t', '10.77.0.11:80', '-s', 'rr');
    const ms = Date.now() - t0;
    expect(r.code).toBe(255);
    expect(r.err).toMatch(/^Resource temporarily unavailable\nipvsadm: cluster config store unreachable/);
    process.stderr.write(`cluster-config: edit with NATS down refused after ${ms} ms: ${r.err.split('\n')[1]}\n`);
    expect(ms).toBeLessThan(8000);
    expect(save(d1)).toBe(before);
    // still cut off a second later: the agent fails the edit at once instead of waiting for the deadline
    const t2 = Date.now();
    const again = adm(d1, '-a', '-t', `${VIP}:80`, '-r', '10.77.1.60:80');
    expect(again.code).toBe(255);
    expect(again.err).toMatch(/cluster config store unreachable: no NATS connection for \d+ ms/);
    process.stderr.write(`cluster-config: next edit with NATS down refused after ${Date.now() - t2} ms\n`);
    expect(Date.now() - t2).toBeLessThan(2000);
    // -Z is per director: it still works
    expect(adm(d1, '-Z').code).toBe(0);
    for (let i = 0; i < 3; i++) await nats.start(i);
    const t1 = Date.now();
    let ok = adm(d1, '-A', '-t', '10.77.0.11:80', '-s', 'rr');
    while (ok.code !== 0 && Date.now() - t1 < 40_000) {
      await new Promise((res) => setTimeout(res, 500));
      ok = adm(d1, '-A', '-t', '10.77.0.11:80', '-s', 'rr');
    }
    expect(ok.code, ok.err).toBe(0);
    process.stderr.write(`cluster-config: first edit accepted ${Date.now() - t1} ms after the nats-servers restarted\n`);
    const s = await converged('after NATS came back', 15_000);
    expect(s).toContain('-A -t 10.77.0.11:80 -s rr');
  }, 90_000);
});

describe('cluster-config: compare-and-set under contention (two agents, this test as their tsvsd)', () => {
  it('cluster-config: 2 agents × 100 edits sent at once (each agent runs its edits in order; the two contend on the same revisions): every edit lands exactly once (conflicts retried, none lost)', async () => {
    const a = new AgentParent(nats.urls, 'a1', 'kvcas');
    const b = new AgentParent(nats.urls, 'a2', 'kvcas');
    try {
      const svc = { af: 4 as const, protocol: 'udp' as const, addr: '10.78.0.1', port: 53, fwmark: 0, scheduler: 'rr', flags: 0, timeout: 0, netmask: '255.255.255.255', pe: '' };
      const key = { af: 4 as const, protocol: 'udp' as const, addr: '10.78.0.1', port: 53, fwmark: 0 };
      // the agent answers EAGAIN until it is connected and its bucket is open
      let first = await a.edit({ op: 'add-service', svc });
      for (let t0 = Date.now(); !first.ok && Date.now() - t0 < 20_000; first = await a.edit({ op: 'add-service', svc })) await new Promise((r) => setTimeout(r, 200));
      expect(first).toMatchObject({ ok: true });
      const dest = (i: number, side: number) => ({ af: 4 as const, addr: `10.78.${side}.${i}`, port: 53, method: 'masq' as const, weight: 1, uThreshold: 0, lThreshold: 0, tunType: 'ipip' as const, tunPort: 0, tunCsum: '' as const });
      const t0 = Date.now();
      const all = await Promise.all([
        ...Array.from({ length: 100 }, (_, i) => a.edit({ op: 'add-dest', key, dest: dest(i + 1, 1) })),
        ...Array.from({ length: 100 }, (_, i) => b.edit({ op: 'add-dest', key, dest: dest(i + 1, 2) })),
      ]);
      const ms = Date.now() - t0;
      expect(all.filter((r) => !r.ok)).toEqual([]);
      const revs = all.map((r) => (r.ok ? r.rev : 0));
      expect(new Set(revs).size).toBe(200); // every edit made its own revision
      const final = await new Promise<ConfigDoc>((res) => {
        const t = setInterval(() => {
          if (a.latest && b.latest && a.latest.rev === Math.max(...revs) && b.latest.rev === a.latest.rev) {
            clearInterval(t);
            res(a.latest.doc);
          }
        }, 20);
      });
      expect(final.services[0].dests).toHaveLength(200);
      expect(new Set(final.services[0].dests.map((d) => d.addr)).size).toBe(200);
      const retried = [...a.logs, ...b.logs].filter((l) => /after \d+ conflicting write/.test(l)).length;
      process.stderr.write(`cluster-config: 200 edits (2 agents contending, 100 queued on each) in ${ms} ms, ${retried} of them retried after a conflict, 0 lost\n`);
      expect(retried).toBeGreaterThan(0);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  }, 60_000);
});
