// active-active in the lab: a router spreads flows over 3 directors with an ECMP route (resilient nexthop group,
// L4 hash), every ready director forwards (tsvsd --active-active over a real 3-node NATS cluster: VIPs on lo, quiet
// ARP, a UDP probe the router's nexthop watcher follows). Real curl from the client, real nginx on 3 real servers.
// Checks: each director forwards a share of 300 new connections and all succeed; d2 killed with -9 → the router
// drops it and every connection opened after the kill works, on d1 and d3 (those d2 had open are counted, not yet
// asserted: that takes connection sync in the workers); d2 back → it rejoins the route and takes a share again.
// Needs root and the lab's tools; run it under the lab lock: flock /tmp/tsvs-lab.lock vitest run test/lab/active-active.test.ts
import { rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VIP, execCapture, fail, heal, realServerIp, spawnIn } from '../../ops/lab/index.ts';
import type { ClusterStatus } from '../../shared/proto/cluster.ts';
import { labFor, sh, waitFor } from '../support/lab.ts';

const TOOLS = ['ip', 'nginx', 'dnsmasq', 'nats-server', 'curl', 'xargs'];
const DIRECTORS = ['d1', 'd2', 'd3'];
const RULES_DR = '/tmp/tsvs-aa-rules-dr.txt';

// Every tsvsd loads the same rules (cluster-wide configuration is not in NATS yet), so a restarted director has
// its table before it forwards. mh with mh-port: the same flow goes to the same real server on every director.
writeFileSync(RULES_DR, `-A -t ${VIP}:80 -s mh -b mh-port\n${[1, 2, 3].map((j) => `-a -t ${VIP}:80 -r ${realServerIp(j)}:80 -g -w 1\n`).join('')}`);

/** The directors (d1..) the router's VIP route sends to now. */
function routeHops(): string[] {
  const r = sh('router', ['ip', 'route', 'show', `${VIP}/32`]);
  return [...r.matchAll(/nexthop via 10\.200\.0\.1(\d) dev front/g)].map((m) => `d${m[1]}`);
}

function cluster(node: string): ClusterStatus {
  return JSON.parse(sh(node, ['tsvsadm', 'cluster', '--json'])) as ClusterStatus;
}

/** The service's Conns counter on a director (tsvsadm -L -n --stats), 0 when it has no such line. */
function conns(node: string): number {
  const line = sh(node, ['tsvsadm', '-L', '-n', '--stats']).split('\n').find((l) => l.startsWith(`TCP  ${VIP}:80`));
  return line ? Number(line.trim().split(/\s+/)[2]) : 0;
}

/** Outcome of a burst of new connections from the client. */
interface Burst {
  ok: number;
  failed: string[];
  /** Real server → answers. */
  byServer: Record<string, number>;
  /** Connections that took longer than 0.9 s (a SYN retransmitted once). */
  slow: number;
}

/** `n` GETs through the VIP, each a new connection from a new source port, 20 at a time; curl gives each 5 s. */
function burst(n: number): Burst {
  const cmd = `seq ${n} | xargs -P 20 -I{} sh -c 'o=$(curl -s -m 5 -w " %{time_total}" http://${VIP}/ 2>/dev/null) || o="fail $?"; echo $o'`;
  const r = execCapture('client', ['sh', '-c', cmd], { timeoutMs: 120_000 });
  const b: Burst = { ok: 0, failed: [], byServer: {}, slow: 0 };
  for (const line of r.stdout.split('\n').filter(Boolean)) {
    const [body, t] = line.split(' ');
    if (/^rs\d+$/.test(body)) {
      b.ok++;
      b.byServer[body] = (b.byServer[body] ?? 0) + 1;
      if (Number(t) > 0.9) b.slow++;
    } else {
      b.failed.push(line);
    }
  }
  return b;
}

function connsAll(): number[] {
  return DIRECTORS.map(conns);
}

describe('active-active: 3 directors, DR, a router with an ECMP route, a real NATS cluster', () => {
  labFor({ directors: 3, servers: 3, mode: 'dr', router: true, nats: true, workers: 1, tsvsdArgs: `--config ${RULES_DR}` }, TOOLS);
  beforeAll(async () => {
    // d1 (highest priority) leads once the start-up settles (a director ready first may lead until d1 preempts it).
    await waitFor('every director ready and in the route, d1 leading', () => DIRECTORS.every((d) => { const c = cluster(d); return c.ready && c.leader === 'd1'; }) && routeHops().length === 3, 30_000, 200);
  });
  afterAll(() => rmSync(RULES_DR, { force: true }));

  it('active-active: every ready director holds the VIP on lo (not on front, which answers no ARP for it) and the router routes to all three', () => {
    for (const d of DIRECTORS) {
      expect(sh(d, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'lo'])).toContain(`inet ${VIP}/32`);
      expect(sh(d, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'front'])).not.toContain(VIP);
      expect(sh(d, ['sysctl', '-n', 'net.ipv4.conf.front.arp_ignore', 'net.ipv4.conf.front.arp_announce'])).toBe('1\n2');
    }
    expect(routeHops()).toEqual(['d1', 'd2', 'd3']);
    expect(sh('router', ['ip', 'nexthop', 'show', 'id', '100'])).toMatch(/group 101\/102\/103 type resilient/);
    // One leader still coordinates.
    expect(DIRECTORS.map((d) => cluster(d).leader)).toEqual(['d1', 'd1', 'd1']);
  });

  it('active-active: 300 new connections from many source ports all succeed, every director forwards a share, every real server answers', () => {
    const before = connsAll();
    const b = burst(300);
    const share = connsAll().map((c, i) => c - before[i]);
    console.log(`active-active dr: 300 connections: per director ${share.join('/')}, per real server ${JSON.stringify(b.byServer)}, slow ${b.slow}`);
    expect(b.failed).toEqual([]);
    expect(b.ok).toBe(300);
    expect(share.reduce((a, x) => a + x, 0)).toBe(300);
    for (const s of share) expect(s).toBeGreaterThanOrEqual(40);
    expect(Object.keys(b.byServer).sort()).toEqual(['rs1', 'rs2', 'rs3']);
  });

  it('active-active: d2 killed (-9, every process): the router drops it within 1 s and every connection opened after the kill succeeds, on d1 and d3', async () => {
    // A client keeps opening connections through the failure. One whose SYN reached d2 after the kill is
    // retransmitted after 1 s, by then to a live director: it succeeds, late. One that d2 had forwarded before the
    // kill continues on d1 or d3 only from a synced entry (connection sync in the workers): counted and printed.
    const loop = `for i in $(seq 120); do s=$(date +%s%3N); o=$(curl -s -m 5 -w " %{time_total}" http://${VIP}/ 2>/dev/null) || o="fail $?"; echo $s $o; sleep 0.02; done`;
    const during = spawnIn('client', ['sh', '-c', loop], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    during.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const done = new Promise<void>((resolve) => during.on('exit', () => resolve()));
    await new Promise((r) => setTimeout(r, 500));
    const f = fail({ node: 'd2', how: 'kill' });
    await waitFor('the router to drop d2', () => routeHops().join() === 'd1,d3', 5000, 10);
    const detectMs = Date.now() - f.at;
    console.log(`active-active dr: d2 killed → route d1,d3 after ${detectMs} ms`);
    expect(detectMs).toBeLessThan(1000);
    await done;
    const lines = out.split('\n').filter(Boolean).map((l) => {
      const [start, body, t] = l.split(' ');
      return { start: Number(start), ok: /^rs\d+$/.test(body), secs: Number(t), line: l };
    });
    expect(lines).toHaveLength(120);
    const after = lines.filter((l) => l.start >= f.at);
    const before = lines.filter((l) => l.start < f.at);
    const lostOpen = before.filter((l) => !l.ok);
    console.log(`active-active dr: through the kill: ${lines.length} connections; opened after the kill ${after.length}, failed ${after.filter((l) => !l.ok).length}, ` +
      `delayed by a SYN retransmit ${after.filter((l) => l.ok && l.secs > 0.9).length}; open at the kill and lost ${lostOpen.length} (${lostOpen.map((l) => l.line).join('; ')})`);
    expect(after.filter((l) => !l.ok).map((l) => l.line)).toEqual([]);
    expect(after.length).toBeGreaterThan(50);
    const c0 = ['d1', 'd3'].map(conns);
    const b = burst(150);
    const c1 = ['d1', 'd3'].map(conns);
    expect(b.failed).toEqual([]);
    expect(b.ok).toBe(150);
    expect(c1[0] - c0[0] + c1[1] - c0[1]).toBe(150);
  });

  it('active-active: d2 back (restarted, snapshot first) rejoins the route and takes a share of new connections; none fail meanwhile', async () => {
    const t0 = Date.now();
    await heal('d2');
    await waitFor('d2 ready and back in the route', () => cluster('d2').ready && routeHops().join() === 'd1,d2,d3', 20_000, 50);
    console.log(`active-active dr: d2 healed → back in the route after ${Date.now() - t0} ms`);
    // Buckets idle for 2 s move to the returning nexthop (resilient group idle_timer 2).
    await new Promise((r) => setTimeout(r, 2500));
    const before = connsAll();
    const b = burst(300);
    const share = connsAll().map((c, i) => c - before[i]);
    console.log(`active-active dr: after heal, 300 connections: per director ${share.join('/')}`);
    expect(b.failed).toEqual([]);
    expect(share.reduce((a, x) => a + x, 0)).toBe(300);
    expect(share[1]).toBeGreaterThanOrEqual(30);
  });
});
