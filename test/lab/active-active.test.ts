// active-active in the lab: a router spreads flows over 3 directors with an ECMP route (resilient nexthop group,
// L4 hash), every ready director forwards (tsvsd --active-active over a real 3-node NATS cluster: VIPs on lo, quiet
// ARP, a UDP probe the router's nexthop watcher follows). Real curl from the client, real nginx on 3 real servers.
// DR and NAT (NAT: the real servers' default route is a multipath group over the directors' DIPs). Checks: each
// director forwards a share of 300 new connections and all succeed; d2 killed with -9 → the router drops it, 60
// long-lived connections (some through d2) continue on d1/d3 from the synced entries (0 lost) and every connection
// opened after the kill works; d2 back → it pulls the state, rejoins the route, takes a share again, 0 lost.
// Needs root and the lab's tools; run it under the lab lock: flock /tmp/tsvs-lab.lock vitest run test/lab/active-active.test.ts
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, VIP, execCapture, fail, heal, labDir, realServerIp, spawnIn } from '../../ops/lab/index.ts';
import type { ClusterStatus } from '../../shared/proto/cluster.ts';
import { labFor, sh, waitFor } from '../support/lab.ts';

const TOOLS = ['ip', 'nginx', 'dnsmasq', 'nats-server', 'curl', 'xargs'];
const DIRECTORS = ['d1', 'd2', 'd3'];

/**
 * The rules every tsvsd loads (cluster-wide configuration is not in NATS yet), so a restarted director has its
 * table before it forwards. mh with mh-port: the same flow goes to the same real server on every director.
 */
function rulesFile(mode: 'dr' | 'nat'): string {
  const file = `/tmp/tsvs-aa-rules-${mode}.txt`;
  writeFileSync(file, `-A -t ${VIP}:80 -s mh -b mh-port\n${[1, 2, 3].map((j) => `-a -t ${VIP}:80 -r ${realServerIp(j)}:80 ${mode === 'dr' ? '-g' : '-m'} -w 1\n`).join('')}`);
  return file;
}

/** What the long-lived client saw. */
interface LongLived {
  conns: number;
  opened: number;
  /** Connections reset, closed by the far end, refused or stalled 5 s before the end. */
  lost: number;
  requests: number;
  /** Longest wait for an answer on any connection, ms (a stall while a flow moves). */
  maxGapMs: number;
  errs: string[];
}

/** A long-lived client running: `opened` resolves once all its connections are open, `result` when it ends. */
interface LongLivedRun {
  opened: Promise<void>;
  result: Promise<LongLived>;
  /** Ends the client early (a set-up to redo). */
  stop(): void;
}

/**
 * A real client in the client namespace: `n` TCP connections to VIP:80 kept open for `ms`, each sending a
 * keep-alive GET every 50 ms after the previous answer (nginx keeps them open). It prints `opened` once every
 * connection is open (a loaded host may take seconds to start node), and what it saw at the end.
 */
function longLived(n: number, ms: number): LongLivedRun {
  const code = `
const net = require('node:net');
const [vip, n, ms] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const until = Date.now() + ms;
const out = { conns: n, opened: 0, lost: 0, requests: 0, maxGapMs: 0, errs: [] };
function one(i) {
  return new Promise((resolve) => {
    const s = net.connect({ host: vip, port: 80 });
    let buf = '', last = Date.now(), done = false;
    const finish = (err) => {
      if (done) return;
      done = true;
      if (err) { out.lost++; out.errs.push(i + ': ' + err); }
      s.destroy();
      resolve();
    };
    const send = () => (Date.now() >= until ? finish() : s.write('GET / HTTP/1.1\\r\\nHost: vip\\r\\n\\r\\n'));
    s.setNoDelay(true);
    s.setTimeout(5000, () => finish('stalled 5 s'));
    s.on('connect', () => { if (++out.opened === n) console.log('opened'); send(); });
    s.on('data', (d) => {
      buf += d;
      for (;;) {
        const h = buf.indexOf('\\r\\n\\r\\n');
        if (h < 0) return;
        const m = /content-length: *(\\d+)/i.exec(buf.slice(0, h));
        const len = m ? Number(m[1]) : 0;
        if (buf.length < h + 4 + len) return;
        buf = buf.slice(h + 4 + len);
        out.requests++;
        const now = Date.now();
        out.maxGapMs = Math.max(out.maxGapMs, now - last);
        last = now;
        setTimeout(send, 50);
      }
    });
    s.on('error', (e) => finish(e.code || e.message));
    s.on('close', () => finish(Date.now() < until ? 'closed early' : undefined));
  });
}
Promise.all(Array.from({ length: n }, (_, i) => one(i))).then(() => console.log(JSON.stringify(out)));
`;
  const child = spawnIn('client', [`${REPO_ROOT}/node_modules/.bin/node`, '-e', code, VIP, String(n), String(ms)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let markOpened: () => void = () => {};
  const opened = new Promise<void>((resolve) => (markOpened = resolve));
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (stdout.includes('opened\n')) markOpened();
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const result = new Promise<LongLived>((resolve, reject) => child.on('exit', (code) => {
    markOpened(); // a client that never opened them all says so in its result
    try {
      resolve(JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as LongLived);
    } catch {
      reject(new Error(`long-lived client exited ${code}: ${stdout} ${stderr}`));
    }
  }));
  result.catch(() => {}); // a stopped run's result is not awaited
  return { opened, result, stop: () => child.kill('SIGKILL') };
}

/** The router's nexthop watcher's route changes ("dN down (…)", "dN up (…)") logged at or after `since` (ms). */
function routeChanges(since: number): string[] {
  let text = '';
  try {
    text = readFileSync(join(labDir(), 'router', 'nexthop-watch.log'), 'utf8');
  } catch {
    return [];
  }
  return text.split('\n').filter((l) => / nexthop-watch: d\d+ (up|down) /.test(l) && Date.parse(l.slice(0, 24)) >= since);
}

/**
 * Waits until the route has held all three directors, unchanged, for 2.5 s: the resilient group moves a bucket back
 * to a returning director only once it has been idle 2 s, so flows opened right after a route flap (a director's
 * probe answered late on a loaded host) all stay on the other two.
 */
async function routeSettled(): Promise<void> {
  await waitFor('the route on d1,d2,d3, unchanged for 2.5 s', () => routeHops().length === 3 && routeChanges(Date.now() - 2500).length === 0, 30_000, 100);
}

/** Each director's tsvsd log lines about forwarding the VIPs and snapshots since `since` (printed when the route moved). */
function servingLog(since: number): string[] {
  const out: string[] = [];
  for (const d of DIRECTORS) {
    let text = '';
    try {
      text = readFileSync(join(labDir(), d, 'tsvsd.log'), 'utf8');
    } catch {
      continue;
    }
    for (const l of text.split('\n')) if (/active-active:|snapshot|agent/.test(l) && Date.parse(l.slice(0, 24)) >= since - 1000) out.push(`${d}: ${l}`);
  }
  return out;
}

/** `route changes during the burst [...]` since `since`, with the directors' serving logs when the route moved. */
function movedDuring(since: number): string {
  const moved = routeChanges(since);
  return `route changes during the burst ${JSON.stringify(moved)}${moved.length ? ` ${JSON.stringify(servingLog(since))}` : ''}`;
}

/** InPkts of the service on a director (tsvsadm -L -n --stats). */
function inPkts(node: string): number {
  const line = sh(node, ['tsvsadm', '-L', '-n', '--stats']).split('\n').find((l) => l.startsWith(`TCP  ${VIP}:80`));
  return line ? Number(line.trim().split(/\s+/)[3]) : 0;
}

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

/**
 * The new connections the directors counted for a burst of `n`: all of them, or up to 5 fewer. The client reuses
 * source ports over the test's ~1000 connections; a SYN on a port whose old entry a director still holds in a
 * closing state other than TIME_WAIT/CLOSE (DR: it sees only the client's half) is, as in IPVS (conn_reuse_mode 1),
 * forwarded on that entry — to the same real server — rather than counted as a new connection.
 * At most `resent` more: a connection whose SYN was sent again (it took over 0.9 s) may be scheduled twice when the
 * route moved its flow to another director between the two SYNs (CI once counted 301 of 300; a director's probe
 * answered late on a loaded host flaps the route). A retransmitted SYN that meets the same director meets its entry.
 */
function expectCounted(counted: number, n: number, resent: number): void {
  expect(counted).toBeLessThanOrEqual(n + resent);
  expect(counted).toBeGreaterThanOrEqual(n - 5);
}

function connsAll(): number[] {
  return DIRECTORS.map(conns);
}

for (const mode of ['dr', 'nat'] as const) {
  describe(`active-active: 3 directors, ${mode}, a router with an ECMP route, a real NATS cluster`, () => {
    const rules = rulesFile(mode);
    labFor({ directors: 3, servers: 3, mode, router: true, nats: true, workers: 1, tsvsdArgs: `--config ${rules}` }, TOOLS);
    beforeAll(async () => {
      // d1 (highest priority) leads once the start-up settles (a director ready first may lead until d1 preempts it).
      await waitFor('every director ready and in the route, d1 leading', () => DIRECTORS.every((d) => {
        const c = cluster(d);
        return c.ready && c.leader === 'd1';
      }) && routeHops().length === 3, 30_000, 200);
    });
    afterAll(() => rmSync(rules, { force: true }));

    it(`active-active ${mode}: every ready director holds the VIP on lo (not on front, which answers no ARP for it) and the router routes to all three`, () => {
      for (const d of DIRECTORS) {
        expect(sh(d, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'lo'])).toContain(`inet ${VIP}/32`);
        expect(sh(d, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'front'])).not.toContain(VIP);
        expect(sh(d, ['sysctl', '-n', 'net.ipv4.conf.front.arp_ignore', 'net.ipv4.conf.front.arp_announce'])).toBe('1\n2');
      }
      expect(routeHops()).toEqual(['d1', 'd2', 'd3']);
      expect(sh('router', ['ip', 'nexthop', 'show', 'id', '100'])).toMatch(/group 101\/102\/103 type resilient/);
      // NAT: the real servers' replies go back over every director.
      if (mode === 'nat') expect(sh('rs1', ['ip', 'nexthop', 'show', 'id', '200'])).toMatch(/group 201\/202\/203 type resilient/);
      // One leader still coordinates.
      expect(DIRECTORS.map((d) => cluster(d).leader)).toEqual(['d1', 'd1', 'd1']);
      // tsvsadm cluster says what each director forwards (the VIPs it holds on lo), leader or not.
      for (const d of DIRECTORS) {
        const c = cluster(d);
        expect(c.mode).toBe('active-active');
        expect(c.vips).toEqual([VIP]);
        const text = sh(d, ['tsvsadm', 'cluster']);
        expect(text).toContain('mode: active-active');
        expect(text).toContain(`VIPs forwarded here: ${VIP}\n`);
      }
    });

    it(`active-active ${mode}: 300 new connections from many source ports all succeed, every director forwards a share, every real server answers`, async () => {
      await routeSettled();
      const tStart = Date.now();
      const before = connsAll();
      const b = burst(300);
      await new Promise((r) => setTimeout(r, 500)); // the workers' counters reach tsvsadm within a batch or an idle tick
      const share = connsAll().map((c, i) => c - before[i]);
      console.log(`active-active ${mode}: 300 connections: per director ${share.join('/')}, per real server ${JSON.stringify(b.byServer)}, slower than 0.9 s ${b.slow}, ${movedDuring(tStart)}`);
      expect(b.failed).toEqual([]);
      expect(b.ok).toBe(300);
      expectCounted(share.reduce((a, x) => a + x, 0), 300, b.slow);
      for (const x of share) expect(x).toBeGreaterThanOrEqual(40);
      expect(Object.keys(b.byServer).sort()).toEqual(['rs1', 'rs2', 'rs3']);
    }, 120_000);

    it(`active-active ${mode}: d2 killed (-9, every process): the router drops it within 1 s, 0 long-lived connections lost, every connection opened after the kill succeeds`, async () => {
      // 60 long-lived connections streaming requests (some through d2: they continue on d1/d3 from synced entries),
      // and a client opening new connections through the failure (a SYN sent to d2 after the kill is retransmitted
      // after 1 s, by then to a live director).
      // The streams must be flowing, some through d2, before the kill. The route must have settled first, and the
      // client must have opened all 60 (node may take a while to start on a loaded host). If d2 still carries none
      // of them — CI once saw that, most likely a route flap as they opened — the set-up is redone, at most twice.
      let streams: LongLivedRun | undefined;
      let openMs = 0;
      let d2Pkts = 0;
      for (let attempt = 1; ; attempt++) {
        await routeSettled();
        const tStart = Date.now();
        streams = longLived(60, 9000);
        await streams.opened;
        openMs = Date.now() - tStart;
        await new Promise((r) => setTimeout(r, 500));
        const p0 = inPkts('d2');
        await new Promise((r) => setTimeout(r, 500));
        d2Pkts = inPkts('d2') - p0;
        if (d2Pkts > 0 || attempt === 3) break;
        console.log(`active-active ${mode}: set-up ${attempt}: d2 forwarded none of the 60 streams; route changes since they started: ${JSON.stringify(routeChanges(tStart))}; setting up again`);
        streams.stop();
        await streams.result.catch(() => undefined);
      }
      const loop = `for i in $(seq 100); do s=$(date +%s%3N); o=$(curl -s -m 5 -w " %{time_total}" http://${VIP}/ 2>/dev/null) || o="fail $?"; echo $s $o; sleep 0.02; done`;
      const during = spawnIn('client', ['sh', '-c', loop], { stdio: ['ignore', 'pipe', 'ignore'] });
      let out = '';
      during.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      const done = new Promise<void>((resolve) => during.on('exit', () => resolve()));
      await new Promise((r) => setTimeout(r, 500)); // some new connections before the kill
      const f = fail({ node: 'd2', how: 'kill' });
      await waitFor('the router to drop d2', () => routeHops().join() === 'd1,d3', 5000, 10);
      const detectMs = Date.now() - f.at;
      await done;
      const ll = await streams!.result;
      const lines = out.split('\n').filter(Boolean).map((l) => {
        const [start, body, t] = l.split(' ');
        return { start: Number(start), ok: /^rs\d+$/.test(body), secs: Number(t), line: l };
      });
      const after = lines.filter((l) => l.start >= f.at);
      console.log(`active-active ${mode}: streams open after ${openMs} ms; d2 killed → route d1,d3 after ${detectMs} ms; d2 forwarded ${d2Pkts} packets of the streams in the 0.5 s before; ` +
        `long-lived: ${ll.opened}/${ll.conns} open, ${ll.requests} requests, lost ${ll.lost}, longest wait ${ll.maxGapMs} ms ${JSON.stringify(ll.errs)}; ` +
        `new connections: ${lines.length}, opened after the kill ${after.length}, failed ${lines.filter((l) => !l.ok).length}, delayed by a SYN retransmit ${after.filter((l) => l.ok && l.secs > 0.9).length}`);
      expect(detectMs).toBeLessThan(1000);
      expect(d2Pkts).toBeGreaterThan(0);
      expect(ll.opened).toBe(60);
      expect(ll.errs).toEqual([]);
      expect(ll.lost).toBe(0);
      expect(lines).toHaveLength(100);
      expect(lines.filter((l) => !l.ok).map((l) => l.line)).toEqual([]);
      const c0 = ['d1', 'd3'].map(conns);
      const b = burst(150);
      await new Promise((r) => setTimeout(r, 500));
      const c1 = ['d1', 'd3'].map(conns);
      expect(b.failed).toEqual([]);
      expect(b.ok).toBe(150);
      expectCounted(c1[0] - c0[0] + c1[1] - c0[1], 150, b.slow);
    }, 120_000);

    it(`active-active ${mode}: d2 back (restarted, snapshot first) rejoins the route and takes a share of new connections; 0 long-lived connections lost`, async () => {
      const streams = longLived(60, 12_000);
      await streams.opened;
      await new Promise((r) => setTimeout(r, 500));
      const t0 = Date.now();
      await heal('d2');
      await waitFor('d2 ready and back in the route', () => cluster('d2').ready && routeHops().join() === 'd1,d2,d3', 20_000, 50);
      const backMs = Date.now() - t0;
      // Buckets idle for 2 s move to the returning nexthop (resilient group idle_timer 2); busy ones stay.
      await new Promise((r) => setTimeout(r, 2500));
      const tBurst = Date.now();
      const before = connsAll();
      const b = burst(300);
      await new Promise((r) => setTimeout(r, 500)); // the workers' counters reach tsvsadm within a batch or an idle tick
      const share = connsAll().map((c, i) => c - before[i]);
      const ll = await streams.result;
      console.log(`active-active ${mode}: d2 healed → back in the route after ${backMs} ms; then 300 connections: per director ${share.join('/')}, slower than 0.9 s ${b.slow}, ${movedDuring(tBurst)}; ` +
        `long-lived: ${ll.opened}/${ll.conns} open, ${ll.requests} requests, lost ${ll.lost}, longest wait ${ll.maxGapMs} ms ${JSON.stringify(ll.errs)}`);
      expect(b.failed).toEqual([]);
      expectCounted(share.reduce((a, x) => a + x, 0), 300, b.slow);
      expect(share[1]).toBeGreaterThanOrEqual(30);
      expect(ll.opened).toBe(60);
      expect(ll.errs).toEqual([]);
      expect(ll.lost).toBe(0);
    }, 120_000);
  });
}
