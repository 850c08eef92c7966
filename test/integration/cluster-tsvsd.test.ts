// tsvsd in a cluster, in the lab: 2 directors (each tsvsd running its cluster agent as a child) over a real 3-node
// nats-server cluster, DR to real nginx servers, real curl from the client. d1 (priority 200) leads and alone owns
// the VIP; kill -9 of every process of d1 → d2 owns it and new connections work; heal d1 → the new tsvsd removes the
// VIP the killed one recorded (the kernel expired it already: VIPs carry a renewed lifetime), pulls the state and takes leadership back; d1 cut off from NATS (mgmt link
// down) → it releases the VIP and d2 takes over; SIGTERM to d1's tsvsd → it hands over (agent `stop` first). Needs root and the lab's tools; run it under the lab lock:
// flock /tmp/tsvs-lab.lock vitest run test/integration/cluster-tsvsd.test.ts
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VIP, execCapture, fail, heal, realServerIp } from '../../ops/lab/index.ts';
import { GATEWAY_VIP } from '../../ops/lab/plan.ts';
import { labFor, sh, waitFor } from '../support/lab.ts';
import type { ClusterStatus } from '../../shared/proto/cluster.ts';
import { holdsAddr } from '../../shared/cluster/vip-holder.ts';

const TOOLS = ['ip', 'nginx', 'dnsmasq', 'nats-server', 'curl'];
const RULES = '/tmp/tsvs-wire-cluster-rules.txt';

/** Whether a director holds the VIP for its client interface (on its holding device, tvip-front). */
function hasVip(node: string): boolean {
  return holdsAddr(execCapture(node, ['ip', '-4', '-o', 'addr', 'show'], { timeoutMs: 5000 }).stdout, VIP, 'front');
}

/** Whether a director holds the real servers' gateway address for `back`. */
function hasGateway(node: string): boolean {
  return holdsAddr(execCapture(node, ['ip', '-4', '-o', 'addr', 'show'], { timeoutMs: 5000 }).stdout, GATEWAY_VIP, 'back');
}

function cluster(node: string): ClusterStatus {
  return JSON.parse(sh(node, ['tsvsadm', 'cluster', '--json'])) as ClusterStatus;
}

/** One GET through the VIP from the client: the real server's body ('rs1', 'rs2'), or '' when it failed. */
function curl(): string {
  const r = execCapture('client', ['curl', '-s', '-m', '2', `http://${VIP}/`], { timeoutMs: 5000 });
  return r.status === 0 ? r.stdout.trim() : '';
}

async function leaderIs(node: string, other: string): Promise<void> {
  await waitFor(`${node} to lead and own the VIP`, () => {
    const s = cluster(node);
    return s.leader === node && hasVip(node) && !hasVip(other) && s;
  }, 20_000, 100);
}

const RULES_NAT = '/tmp/tsvs-wire-cluster-rules-nat.txt';
writeFileSync(RULES_NAT, `-A -t ${VIP}:80 -s rr\n-a -t ${VIP}:80 -r ${realServerIp(1)}:80 -m -w 1\n-a -t ${VIP}:80 -r ${realServerIp(2)}:80 -m -w 1\n`);

// Every tsvsd loads the same rules at start: the first seeds the cluster's table in NATS KV, the others take it
// (a restarted director has its table before it may lead).
writeFileSync(RULES, `-A -t ${VIP}:80 -s rr\n-a -t ${VIP}:80 -r ${realServerIp(1)}:80 -g -w 1\n-a -t ${VIP}:80 -r ${realServerIp(2)}:80 -g -w 1\n`);

describe('cluster-tsvsd: two directors, DR, a real NATS cluster', () => {
  labFor({ directors: 2, servers: 2, mode: 'dr', nats: true, workers: 1, tsvsdArgs: `--config ${RULES}` }, TOOLS);
  beforeAll(async () => {
    await waitFor('d1 to lead', () => hasVip('d1') && cluster('d1').leader === 'd1', 30_000, 200);
  });
  afterAll(() => rmSync(RULES, { force: true }));

  it('cluster-tsvsd: d1 (highest priority) leads and alone owns the VIP; tsvsadm cluster on either director agrees; curl through the VIP works', async () => {
    await leaderIs('d1', 'd2');
    const s1 = cluster('d1');
    const s2 = cluster('d2');
    for (const k of ['self', 'leader', 'term', 'members', 'vips', 'sync']) expect(s1).toHaveProperty(k);
    expect(s1).toMatchObject({ self: 'd1', leader: 'd1', nats: 'up', ready: true });
    expect(s2).toMatchObject({ self: 'd2', leader: 'd1', term: s1.term });
    expect(s1.members).toEqual(expect.arrayContaining([{ name: 'd1', state: 'leader', priority: 200 }, { name: 'd2', state: 'backup', priority: 190 }]));
    expect(hasVip('d2')).toBe(false);
    // `vips`: what each director holds now (not the agent's --vip list, empty under tsvsd).
    expect([s1.vips, s2.vips]).toEqual([[VIP], []]);
    const got = new Set(Array.from({ length: 4 }, () => curl()));
    expect(got).toEqual(new Set(['rs1', 'rs2']));
  });

  it('cluster-tsvsd: kill -9 of d1 → d2 owns the VIP and new connections work; the dead d1\'s VIP expires; heal d1 → recorded VIP removed, d1 leads again', async () => {
    const f = fail({ node: 'd1', how: 'kill' });
    await waitFor('d2 to own the VIP', () => hasVip('d2'), 10_000, 10);
    const tookMs = Date.now() - f.at;
    const s2 = cluster('d2');
    expect(s2.leader).toBe('d2');
    // dead (heartbeats stopped), or left: SIGKILL reaches the processes one by one, and an agent that outlives its
    // tsvsd by a moment sees the IPC channel close and says bye
    expect(['dead', 'left']).toContain(s2.members.find((m) => m.name === 'd1')?.state);
    await waitFor('a connection through d2', () => curl() !== '' || undefined, 10_000, 100);
    expect(['rs1', 'rs2']).toContain(curl());
    process.stderr.write(`cluster-tsvsd: VIP on d2 ${tookMs} ms after kill -9 of d1 (detection + CAS + ip addr, polled every 10 ms)\n`);
    expect(tookMs).toBeLessThan(3000);
    // nothing runs on d1 to remove the killed tsvsd's VIP: its lifetime (2 s, renewed while tsvsd ran) ends it
    await waitFor('the dead d1 to stop holding the VIP', () => !hasVip('d1'), 5000, 50);
    process.stderr.write(`cluster-tsvsd: the dead d1's VIP expired ${Date.now() - f.at} ms after the kill\n`);

    await heal('d1');
    // the restarted tsvsd removed the address its killed predecessor left; it pulls the state, then preempts
    await leaderIs('d1', 'd2');
    const s1 = cluster('d1');
    expect(s1.term).toBeGreaterThan(s2.term);
    expect(s1.ready).toBe(true);
    expect(['rs1', 'rs2']).toContain(curl());
    const log = sh('d1', ['cat', '/run/tsvs-lab/d1/tsvsd.log']);
    expect(log).toContain('vips: removed a VIP a previous tsvsd recorded');
  });

  it('cluster-tsvsd: d1 cut off from NATS releases the VIP, d2 takes it; heal → d1 leads again', async () => {
    await leaderIs('d1', 'd2');
    const f = fail({ node: 'd1', how: 'link', lans: ['mgmt'] });
    await waitFor('d1 to release the VIP', () => !hasVip('d1'), 10_000, 10);
    const releasedMs = Date.now() - f.at;
    await waitFor('d2 to own the VIP', () => hasVip('d2'), 10_000, 10);
    const tookMs = Date.now() - f.at;
    process.stderr.write(`cluster-tsvsd: d1 cut off NATS: released after ${releasedMs} ms, d2 owns the VIP after ${tookMs} ms\n`);
    expect(cluster('d2').leader).toBe('d2');
    expect(['rs1', 'rs2']).toContain(await waitFor('a connection through d2', () => curl() || undefined, 10_000, 100));
    await heal('d1');
    await leaderIs('d1', 'd2');
    expect(['rs1', 'rs2']).toContain(curl());
  });

  it('cluster-tsvsd: SIGTERM to the leader\'s tsvsd hands leadership over at once and removes its VIP', async () => {
    await leaderIs('d1', 'd2');
    const pid = Number(readFileSync('/run/tsvs-lab/d1/tsvsd.pid', 'utf8').trim());
    const t0 = Date.now();
    process.kill(pid, 'SIGTERM');
    await waitFor('d2 to own the VIP', () => hasVip('d2'), 10_000, 10);
    const tookMs = Date.now() - t0;
    await waitFor('d1 to remove the VIP', () => !hasVip('d1'), 10_000, 10);
    process.stderr.write(`cluster-tsvsd: graceful stop of d1: d2 owns the VIP after ${tookMs} ms\n`);
    expect(tookMs).toBeLessThan(1000);
    await waitFor('d1 tsvsd to exit', () => !alive(pid), 10_000, 20);
    expect(readFileSync('/run/tsvs-lab/d1/tsvsd.log', 'utf8')).toMatch(/cluster: handed over ms=\d+/);
    // bring d1's tsvsd back through the lab (kill what is left, then heal restarts it) and let it lead again
    fail({ node: 'd1', how: 'kill' });
    await heal('d1');
    await leaderIs('d1', 'd2');
  });
});

describe('cluster-tsvsd: two directors, NAT: the real servers\' gateway follows the leader', () => {
  labFor({ directors: 2, servers: 2, mode: 'nat', nats: true, workers: 1, tsvsdArgs: `--config ${RULES_NAT}` }, TOOLS);
  afterAll(() => rmSync(RULES_NAT, { force: true }));

  it('cluster-tsvsd: the leader owns the VIP and the gateway address; kill -9 → d2 owns both and NAT works through it; heal → back on d1', async () => {
    await waitFor('d1 to lead with VIP and gateway', () => hasVip('d1') && hasGateway('d1') && !hasVip('d2') && !hasGateway('d2'), 30_000, 100);
    expect(new Set(Array.from({ length: 4 }, () => curl()))).toEqual(new Set(['rs1', 'rs2']));
    const f = fail({ node: 'd1', how: 'kill' });
    await waitFor('d2 to own the VIP and the gateway', () => hasVip('d2') && hasGateway('d2'), 10_000, 10);
    process.stderr.write(`cluster-tsvsd (nat): VIP and gateway on d2 ${Date.now() - f.at} ms after kill -9 of d1\n`);
    const after = await waitFor('a NAT connection through d2', () => curl() || undefined, 10_000, 100);
    expect(['rs1', 'rs2']).toContain(after);
    await waitFor('the dead d1 to stop holding the gateway', () => !hasGateway('d1'), 5000, 50);
    await heal('d1');
    await waitFor('d1 to lead again with VIP and gateway', () => hasVip('d1') && hasGateway('d1') && !hasVip('d2') && !hasGateway('d2'), 20_000, 100);
    expect(['rs1', 'rs2']).toContain(await waitFor('a NAT connection through d1', () => curl() || undefined, 10_000, 100));
  });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
