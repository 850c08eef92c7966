// A keepalived MASTER/BACKUP pair moved to tsvs with its own files unchanged: two real tsvsd processes, each in its
// own network namespace with the pair's interfaces (eth0, eth1), each started with its director's keepalived.conf
// (test/fixtures/keepalived/vrrp-pair) and --nats to a real 3-node nats-server cluster (ops/nats/cluster.ts; the
// namespaces reach the host's loopback through unix-socket bridges). The MASTER's director (priority 150) leads and
// owns every virtual_ipaddress (two on eth0, one on eth1); kill -9 of all its processes → the BACKUP's director owns
// them; the MASTER's director started again → it preempts (keepalived's default) and owns them again.
// Needs root, ip and nats-server; run it under the lab lock: flock /tmp/tsvs-lab.lock vitest run test/integration/cluster-vrrp.test.ts
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNatsCluster, type NatsCluster } from '../../ops/nats/cluster.ts';
import type { ClusterStatus } from '../../shared/proto/cluster.ts';
import { addrsHeld } from '../../shared/cluster/vip-holder.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const NODE = process.execPath;
const TSVSD = join(ROOT, 'services/tsvsd/main.ts');
const TSVSADM = join(ROOT, 'services/tsvsadm/main.ts');
const BRIDGE = join(ROOT, 'test/support/tcp-unix-bridge.ts');
const PAIR = join(ROOT, 'test/fixtures/keepalived/vrrp-pair');
/** This test's ports: nats-server clients 44101-44103, routes 44111-44113, monitoring 44121-44123. */
const NATS_BASE = 44100;
const NS = { a: 'tsvs-vr-a', b: 'tsvs-vr-b' } as const;
type Dir = keyof typeof NS;
const FILE: Record<Dir, string> = { a: join(PAIR, 'master.conf'), b: join(PAIR, 'backup.conf') };
/** The pair's virtual_ipaddress, by interface (as in both files). */
const VIPS = { eth0: ['192.168.200.16', '192.168.200.17'], eth1: ['192.168.201.1'] } as const;

const isRoot = process.getuid?.() === 0;
const NOT_ROOT = 'cluster-vrrp needs root (network namespaces, addresses, AF_PACKET workers) and nats-server; run as root under flock /tmp/tsvs-lab.lock';

let dir = '';
let nats: NatsCluster | null = null;
const bridges: ChildProcess[] = [];
const tsvsd: Partial<Record<Dir, ChildProcess>> = {};
const logs: Record<Dir, string> = { a: '', b: '' };

function ip(args: string[]): string {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return r.stdout;
}

function removeNamespaces(): void {
  for (const n of Object.values(NS)) spawnSync('ip', ['netns', 'del', n], { timeout: 10_000 });
}

/** The addresses /32 for `dev` (on it or on its holding device tvip-DEV) in director `d`'s namespace. */
function held(d: Dir, dev: 'eth0' | 'eth1'): string[] {
  const r = spawnSync('ip', ['-n', NS[d], '-4', '-o', 'addr', 'show'], { encoding: 'utf8', timeout: 5000 });
  return addrsHeld(r.stdout, dev);
}

/** Whether `d` holds every VIP of the pair, and nothing of them when `all` is false. */
function ownsAll(d: Dir): boolean {
  return held(d, 'eth0').join() === VIPS.eth0.join() && held(d, 'eth1').join() === VIPS.eth1.join();
}
function ownsNone(d: Dir): boolean {
  return held(d, 'eth0').length === 0 && held(d, 'eth1').length === 0;
}

/** Each director's admin socket in a directory of its own (tsvsd records its held VIPs beside it). */
function sock(d: Dir): string {
  return join(dir, d, 'tsvsd.sock');
}

function cluster(d: Dir): ClusterStatus | undefined {
  const r = spawnSync(NODE, [TSVSADM, 'cluster', '--json'], { encoding: 'utf8', timeout: 5000, env: { ...process.env, TSVS_ADMIN_SOCKET: sock(d) } });
  return r.status === 0 ? (JSON.parse(r.stdout) as ClusterStatus) : undefined;
}

async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs: number, everyMs = 20): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() >= until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n--- a's log:\n${logs.a.slice(-3000)}\n--- b's log:\n${logs.b.slice(-3000)}`);
    await sleep(everyMs);
  }
}

/** Starts director `d`'s tsvsd in its namespace with its own keepalived.conf, unchanged. */
function startTsvsd(d: Dir): ChildProcess {
  const urls = [1, 2, 3].map((i) => `nats://127.0.0.1:${NATS_BASE + i}`).join(',');
  const p = spawn('ip', ['netns', 'exec', NS[d], NODE, TSVSD, '--socket', sock(d), '--pidfile', join(dir, d, 'tsvsd.pid'), '--keepalived', FILE[d], '--client-if', 'eth0', '--workers', '1', '--nats', urls, '--node', d], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  p.stderr?.on('data', (b: Buffer) => (logs[d] = (logs[d] + b.toString()).slice(-200_000)));
  tsvsd[d] = p;
  return p;
}

/** kill -9 of every process in `d`'s namespace but the test's bridges: tsvsd, its agent, workers and checker. */
function killDirector(d: Dir): number {
  const keep = new Set(bridges.map((b) => b.pid));
  const pids = spawnSync('ip', ['netns', 'pids', NS[d]], { encoding: 'utf8' }).stdout.split('\n').map(Number).filter((p) => p > 0 && !keep.has(p));
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  return pids.length;
}

async function stopTsvsd(d: Dir): Promise<void> {
  const p = tsvsd[d];
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGTERM');
  await Promise.race([gone, sleep(10_000)]);
  killDirector(d);
}

describe('cluster-vrrp: a keepalived MASTER/BACKUP pair, each director with its own file', () => {
  it('cluster-vrrp: --check with --nats prints the cluster each file maps to (same cluster, MASTER priority above BACKUP)', () => {
    const out = (d: Dir): string => spawnSync(NODE, [TSVSD, '--keepalived', FILE[d], '--check', '--nats', 'nats://127.0.0.1:4222', '--node', d], { encoding: 'utf8', timeout: 20_000 }).stdout;
    const a = out('a');
    const b = out('b');
    expect(a).toMatch(/^ {2}cluster {4}vrrp-51 +virtual_router_id 51$/m);
    expect(b).toMatch(/^ {2}cluster {4}vrrp-51 +virtual_router_id 51$/m);
    expect(a).toMatch(/^ {2}priority {3}150 +priority 150 \(state MASTER: a hint only, priority decides\)$/m);
    expect(b).toMatch(/^ {2}priority {3}100 +priority 100 \(state BACKUP: a hint only, priority decides\)$/m);
    expect(a).toContain('owned by the leader: 192.168.200.16 (eth0), 192.168.200.17 (eth0), 192.168.201.1 (eth1)');
    expect(a).toMatch(/master\.conf:\d+: warning: vrrp_instance VI_1: advert_int 1 is not mapped/);
    expect(a).toMatch(/master\.conf: 0 error\(s\), \d+ warning\(s\)\n$/);
    expect(readFileSync(FILE.a, 'utf8')).toContain('state MASTER');
  });

  describe('cluster-vrrp: two tsvsd, real NATS', () => {
    beforeAll(async () => {
      if (!isRoot) throw new Error(NOT_ROOT);
      if (spawnSync('sh', ['-c', 'command -v nats-server || test -x /usr/sbin/nats-server']).status !== 0) throw new Error(NOT_ROOT);
      dir = mkdtempSync(join(tmpdir(), 'tsvs-vrrp-'));
      for (const d of ['a', 'b'] as const) mkdirSync(join(dir, d));
      removeNamespaces();
      // two directors on two LANs, as the files expect: eth0 (clients, the VIPs) and eth1 (the real servers' side)
      for (const d of ['a', 'b'] as const) {
        ip(['netns', 'add', NS[d]]);
        ip(['-n', NS[d], 'link', 'set', 'lo', 'up']);
      }
      for (const [i, dev] of (['eth0', 'eth1'] as const).entries()) {
        ip(['link', 'add', `vr-a-${dev}`, 'netns', NS.a, 'type', 'veth', 'peer', 'name', `vr-b-${dev}`, 'netns', NS.b]);
        for (const [d, host] of [['a', 2], ['b', 3]] as const) {
          ip(['-n', NS[d], 'link', 'set', `vr-${d}-${dev}`, 'name', dev]);
          ip(['-n', NS[d], 'addr', 'add', `192.168.${200 + i}.${host}/24`, 'dev', dev]);
          ip(['-n', NS[d], 'link', 'set', dev, 'up']);
        }
      }
      nats = await startNatsCluster({ base: NATS_BASE });
      const pairs = nats.nodes.map((n) => `${n.port}=${join(dir, `nats-${n.port}.sock`)}`);
      for (const argv of [[NODE, BRIDGE, 'serve', ...pairs], ...(['a', 'b'] as const).map((d) => ['ip', 'netns', 'exec', NS[d], NODE, BRIDGE, 'listen', ...pairs])]) {
        const b = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
        bridges.push(b);
        await new Promise<void>((res, rej) => {
          b.stdout?.once('data', () => res());
          b.once('exit', (c) => rej(new Error(`bridge ${argv.join(' ')} exited ${c}`)));
        });
      }
      startTsvsd('a');
      startTsvsd('b');
    }, 120_000);

    afterAll(async () => {
      await stopTsvsd('a');
      await stopTsvsd('b');
      for (const b of bridges) b.kill('SIGKILL');
      await nats?.stop();
      removeNamespaces();
      if (dir) rmSync(dir, { recursive: true, force: true });
    }, 60_000);

    it('cluster-vrrp: the MASTER\'s director leads (cluster vrrp-51, priorities 150/100 from the files) and alone owns every virtual_ipaddress', async () => {
      await waitFor('a to lead and own the VIPs, b none', () => cluster('a')?.leader === 'a' && ownsAll('a') && ownsNone('b'), 60_000, 100);
      // both agree on the leader and its term (a start-up may take a term or two before a settles)
      const [sa, sb] = await waitFor('a and b to agree that a leads', () => {
        const x = cluster('a');
        const y = cluster('b');
        return x?.leader === 'a' && y?.leader === 'a' && x.term === y.term && ([x, y] as const);
      }, 10_000, 100);
      expect(sa).toMatchObject({ self: 'a', cluster: 'vrrp-51', leader: 'a', nats: 'up' });
      expect(sb).toMatchObject({ self: 'b', cluster: 'vrrp-51', leader: 'a' });
      expect(sa.members).toEqual(expect.arrayContaining([{ name: 'a', state: 'leader', priority: 150 }, { name: 'b', state: 'backup', priority: 100 }]));
      // the table's VIP (the virtual_server on 192.168.200.16) and the file's other addresses, once each
      expect(held('a', 'eth0')).toEqual([...VIPS.eth0]);
      expect(logs.a).toMatch(/keepalived: .*master\.conf:\d+: warning: vrrp_instance VI_1: advert_int 1 is not mapped/);
    }, 90_000);

    it('cluster-vrrp: kill -9 of the MASTER\'s director → the BACKUP\'s owns every VIP; the MASTER\'s back → it preempts and owns them again', async () => {
      await waitFor('a to lead', () => ownsAll('a') && ownsNone('b') && cluster('b')?.leader === 'a', 30_000, 50);
      const t0 = Date.now();
      expect(killDirector('a')).toBeGreaterThan(0);
      await waitFor('b to own every VIP', () => ownsAll('b'), 15_000, 5);
      const tookMs = Date.now() - t0;
      expect(cluster('b')).toMatchObject({ leader: 'b', self: 'b' });
      process.stderr.write(`cluster-vrrp: all VIPs on the BACKUP's director ${tookMs} ms after kill -9 of the MASTER's (keepalived, advert_int 1: ~3.6 s)\n`);
      expect(tookMs).toBeLessThan(3000);
      // nothing of the killed director removes its addresses: their lifetime does
      await waitFor('the dead a to stop holding the VIPs', () => ownsNone('a'), 6000, 50);

      startTsvsd('a');
      const t1 = Date.now();
      await waitFor('a to preempt and own every VIP, b none', () => ownsAll('a') && ownsNone('b') && cluster('a')?.leader === 'a', 60_000, 20);
      process.stderr.write(`cluster-vrrp: the MASTER's director restarted and owned the VIPs again after ${Date.now() - t1} ms (start-up included)\n`);
      expect(cluster('b')?.leader).toBe('a');
    }, 120_000);
  });
});
