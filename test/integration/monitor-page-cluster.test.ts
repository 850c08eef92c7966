// monitor page, cluster: two directors (tsvsd --keepalived, TCP checks of the real nginx servers) over a real 3-node
// nats-server cluster in the lab, DR, real curl traffic from the client. Debian's chromium (playwright-core) opens
// d2's monitor page: before the failover it shows d1 leading with the VIP, d2 backup, the term, sync figures and the
// real servers up; after `lab fail d1 --how kill` it shows d2 leading and holding the VIP, d1 dead, a higher term, and
// the traffic now counted on d2. An OTLP receiver in d2 gets the control-event spans (failover, vip-grant with term,
// and the health transition of a real server that is then killed), at a decision ratio of 0. Screenshots are saved
// (paths printed). Needs root and the lab's tools; run under the lab lock:
// flock /tmp/tsvs-lab.lock vitest run test/integration/monitor-page-cluster.test.ts
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { REPO_ROOT, VIP, execCapture, fail, heal, realServerIp } from '../../ops/lab/index.ts';
import { GATEWAY_VIP } from '../../ops/lab/plan.ts';
import { labFor, sh, waitFor } from '../support/lab.ts';
import type { ClusterStatus } from '../../shared/proto/cluster.ts';
import { decodeTraces, type DecodedSpan } from './telemetry-otlp.ts';
import { holdsAddr } from '../../shared/cluster/vip-holder.ts';

const TOOLS = ['ip', 'nginx', 'dnsmasq', 'nats-server', 'curl', '/usr/bin/chromium', '/usr/bin/promtool'];
const NODE = `${REPO_ROOT}/node_modules/.bin/node`;
const OTLP_PORT = 45060;
const HTTP_PORT = 45061;
const DIR = mkdtempSync(join(tmpdir(), 'tsvs-monitor-cluster-'));
const FILE = join(DIR, 'keepalived.conf');
const SHOT_BEFORE = '/tmp/tsvs-monitor-cluster-before.png';
const SHOT_AFTER = '/tmp/tsvs-monitor-cluster-after.png';
const SHOT_HEALTH = '/tmp/tsvs-monitor-cluster-health.png';

const rs = (i: number): string => `  real_server ${realServerIp(i)} 80 {\n    weight 1\n    TCP_CHECK {\n      connect_timeout 0.3\n      delay_before_retry 0.1\n    }\n  }\n`;
writeFileSync(FILE, `virtual_server ${VIP} 80 {\n  delay_loop 0.2\n  lb_algo rr\n  lb_kind DR\n  protocol TCP\n${rs(1)}${rs(2)}}\n`);

/** An OTLP receiver inside d2's namespace (where d2's exporter child sends): one base64 request body per line. */
const RECEIVER = `
const http = require('node:http');
http.createServer((q, s) => {
  const c = [];
  q.on('data', (d) => c.push(d));
  q.on('end', () => { if (q.url === '/v1/traces') process.stdout.write(Buffer.concat(c).toString('base64') + '\\n'); s.writeHead(200).end(); });
}).listen(${OTLP_PORT}, '127.0.0.1', () => process.stdout.write('listening\\n'));
`;

function startReceiver(node: string, spans: DecodedSpan[]): Promise<ChildProcess> {
  const p = spawn('ip', ['netns', 'exec', `tsvs-${node}`, NODE, '-e', RECEIVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  let buf = '';
  return new Promise((ok, bad) => {
    p.stdout!.on('data', (d: Buffer) => {
      buf += String(d);
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line === 'listening') ok(p);
        else spans.push(...decodeTraces(new Uint8Array(Buffer.from(line, 'base64'))));
      }
    });
    p.once('exit', (c) => bad(new Error(`OTLP receiver exited ${c}`)));
  });
}

function stop(p: ChildProcess | null, group = false): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  const done = new Promise<void>((r) => p.once('exit', () => r()));
  if (group) process.kill(-p.pid!, 'SIGTERM');
  else p.kill('SIGTERM');
  return done;
}

function cluster(node: string): ClusterStatus {
  return JSON.parse(sh(node, ['tsvsadm', 'cluster', '--json'])) as ClusterStatus;
}

function hasVip(node: string): boolean {
  return holdsAddr(execCapture(node, ['ip', '-4', '-o', 'addr', 'show'], { timeoutMs: 5000 }).stdout, VIP, 'front');
}

/** Chromium in a director's namespace (its listener is on that namespace's loopback), driven over a pipe. */
async function browserIn(node: string): Promise<Browser> {
  const wrapper = join(DIR, `chromium-in-${node}`);
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec tsvs-${node} /usr/bin/chromium "$@"\n`);
  chmodSync(wrapper, 0o755);
  return chromium.launch({ executablePath: wrapper, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
}

async function openPage(b: Browser): Promise<Page> {
  const page = await b.newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto(`http://127.0.0.1:${HTTP_PORT}/`);
  await page.waitForSelector('#status.live', { timeout: 10_000 });
  return page;
}

/** [node, state, VIPs held] per row of the page's directors table. */
function members(page: Page): Promise<string[][]> {
  return page.locator('#directors-body tr.member').evaluateAll((rows) => rows.map((r) => [r.getAttribute('data-node') ?? '', r.getAttribute('data-state') ?? '', r.querySelector('td.vips')?.textContent ?? '']));
}

/** The real server's state in the page's health panel (it stays listed when the checker takes it out of the table). */
function healthOf(page: Page, n: number): Promise<string | null> {
  return page.locator(`#health-body tr.hc[data-addr="${realServerIp(n)}:80"]`).getAttribute('data-state', { timeout: 2000 }).catch(() => null);
}

async function totalConns(page: Page): Promise<number> {
  const cells = await page.locator('.svc tr.dest td.conns').allTextContents();
  return cells.reduce((s, c) => s + Number(c.replace(/,/g, '')), 0);
}

describe('monitor page: two directors, failover, health (lab, real chromium)', () => {
  labFor({ directors: 2, servers: 2, mode: 'dr', nats: true, workers: 1, tsvsdArgs: `--keepalived ${FILE} --http 127.0.0.1:${HTTP_PORT} --otlp http://127.0.0.1:${OTLP_PORT} --trace-ratio 0` }, TOOLS.filter((t) => !t.startsWith('/')));
  const spans: DecodedSpan[] = [];
  let receiver: ChildProcess | null = null;
  let load: ChildProcess | null = null;

  beforeAll(async () => {
    for (const f of TOOLS.filter((t) => t.startsWith('/'))) if (!existsSync(f)) throw new Error(`${f} is missing: this test needs Debian's chromium and prometheus packages (bash ops/setup.sh installs them)`);
    await waitFor('d1 to lead and own the VIP', () => hasVip('d1') && cluster('d1').leader === 'd1', 40_000, 200);
    receiver = await startReceiver('d2', spans);
    // Traffic for the whole test: a new connection every ~50 ms from the client.
    load = spawn('ip', ['netns', 'exec', 'tsvs-client', 'sh', '-c', `while true; do curl -s -m 1 -o /dev/null http://${VIP}/; sleep 0.05; done`], { stdio: 'ignore', detached: true });
  }, 60_000);
  afterAll(async () => {
    await stop(load, true);
    await stop(receiver);
    rmSync(DIR, { recursive: true, force: true });
  });

  it('monitor page cluster: d1 leads with the VIP, d2 is backup; after kill -9 of d1, d2 leads, holds the VIP, d1 is dead, the term grew and traffic is counted on d2', async () => {
    // d1's own page, under traffic: it leads and holds the VIP, the real servers are up and counting connections.
    const b1 = await browserIn('d1');
    try {
      const p1 = await openPage(b1);
      await expect.poll(() => members(p1), { timeout: 10_000 }).toEqual([['d1', 'leader', `${VIP} ${GATEWAY_VIP}`], ['d2', 'backup', '']]);
      await expect.poll(() => p1.locator('#role').textContent(), { timeout: 5000 }).toBe('leader');
      await expect.poll(() => totalConns(p1), { timeout: 10_000 }).toBeGreaterThan(10);
      await expect.poll(() => healthOf(p1, 2), { timeout: 10_000 }).toBe('up');
      await p1.waitForTimeout(2000);
      await p1.screenshot({ path: '/tmp/tsvs-monitor-cluster-d1.png', fullPage: true });
      console.log('monitor-page-cluster: screenshot of d1 (leader) under traffic: /tmp/tsvs-monitor-cluster-d1.png');
    } finally {
      await b1.close();
    }

    const b2 = await browserIn('d2');
    try {
      const page = await openPage(b2);
      await expect.poll(() => members(page), { timeout: 10_000 }).toEqual([['d1', 'leader', `${VIP} ${GATEWAY_VIP}`], ['d2', 'backup', '']]);
      expect(await page.locator('#leader').textContent()).toBe('d1');
      // The page's term is the agent's, as tsvsadm cluster prints it.
      await expect.poll(async () => Number(await page.locator('#term').textContent()) === cluster('d2').term, { timeout: 5000 }).toBe(true);
      const term0 = Number(await page.locator('#term').textContent());
      await expect.poll(() => page.locator('#role').textContent(), { timeout: 5000 }).toBe('backup');
      expect(await page.locator('#vip-owners .vip').allTextContents()).toEqual([`VIP ${VIP} → d1`, `VIP ${GATEWAY_VIP} → d1`]);
      expect(await page.locator('#sync').textContent()).toMatch(/^sync: [\d,]+ records out, [\d,]+ in, \d+ gaps, \d+ resyncs, \d+ lost, lag p50 /);
      for (const n of [1, 2]) await expect.poll(() => healthOf(page, n), { timeout: 10_000 }).toBe('up');
      expect(await page.locator('#health-summary').textContent()).toBe('health: 2 checked, 2 up, 0 down');
      await page.screenshot({ path: SHOT_BEFORE, fullPage: true });
      console.log(`monitor-page-cluster: screenshot of d2 (backup) before the failover: ${SHOT_BEFORE}`);
      const conns0 = await totalConns(page);

      const f = fail({ node: 'd1', how: 'kill' });
      await waitFor('d2 to hold the VIP', () => hasVip('d2'), 10_000, 10);
      console.log(`monitor-page-cluster: VIP on d2 ${Date.now() - f.at} ms after kill -9 of d1`);
      await expect.poll(() => members(page), { timeout: 10_000 }).toEqual([['d1', expect.stringMatching(/^(dead|left)$/), ''], ['d2', 'leader', `${VIP} ${GATEWAY_VIP}`]]);
      expect(await page.locator('#leader').textContent()).toBe('d2');
      const term1 = Number(await page.locator('#term').textContent());
      expect(term1).toBeGreaterThan(term0);
      await expect.poll(async () => Number(await page.locator('#term').textContent()) === cluster('d2').term, { timeout: 5000 }).toBe(true);
      await expect.poll(() => page.locator('#role').textContent(), { timeout: 5000 }).toBe('leader');
      expect(await page.locator('#vip-owners .vip').allTextContents()).toEqual([`VIP ${VIP} → d2`, `VIP ${GATEWAY_VIP} → d2`]);
      // The client's traffic now goes through d2 and is counted there.
      await expect.poll(() => totalConns(page), { timeout: 15_000 }).toBeGreaterThan(conns0 + 10);
      // The director's name in decision records is its cluster node name (--node): d2's ring says d2.
      expect(await page.locator('#director').textContent()).toBe('d2');
      const d = JSON.parse(sh('d2', ['curl', '-s', '-m', '3', `http://127.0.0.1:${HTTP_PORT}/api/decisions?limit=1`])) as Array<{ director: string }>;
      expect(d.map((x) => x.director)).toEqual(['d2']);
      await page.waitForTimeout(3000);
      await page.screenshot({ path: SHOT_AFTER, fullPage: true });
      console.log(`monitor-page-cluster: screenshot of d2 (leader) after the failover: ${SHOT_AFTER}`);

      // The control events d2 exported (always kept: the decision ratio is 0).
      // (d2 may have led for a moment at start-up, before d1 preempted it: the takeover is the span of the new term.)
      const failover = await waitFor('a failover span from d2', () => spans.find((s) => s.name === 'lvs.control failover' && s.attributes['lvs.cluster.role.to'] === 'leader' && s.attributes['lvs.cluster.term'] === term1), 10_000);
      expect(failover.attributes).toMatchObject({ 'lvs.event': 'failover', 'lvs.node': 'd2', 'lvs.cluster.role.from': 'backup', 'lvs.cluster.term': term1, 'lvs.cluster.leader': 'd2' });
      const grant = await waitFor('a vip-grant span from d2', () => spans.find((s) => s.name === 'lvs.control vip-grant' && s.attributes['lvs.cluster.term'] === term1), 10_000);
      expect(grant.attributes).toMatchObject({ 'lvs.node': 'd2', 'lvs.cluster.term': term1 });
      expect(spans.filter((s) => s.name === 'lvs.schedule' && s.attributes['lvs.outcome'] === 'scheduled')).toEqual([]);

      // A real server dies: d2's page shows it down, and its health transition is a span naming server, from, to, check.
      fail({ node: 'rs2', how: 'kill' });
      try {
        await expect.poll(() => healthOf(page, 2), { timeout: 10_000 }).toBe('down');
        expect(await page.locator('#health-summary').textContent()).toBe('health: 2 checked, 1 up, 1 down');
        const t = await waitFor('a health-transition span', () => spans.find((s) => s.name === 'lvs.control health-transition' && s.attributes['lvs.dest.address'] === realServerIp(2)), 10_000);
        expect(t.attributes).toMatchObject({ 'lvs.health.from': 'up', 'lvs.health.to': 'down', 'lvs.health.check': `TCP_CHECK ${realServerIp(2)}:80`, 'lvs.dest.port': 80 });
        expect(t.statusCode).toBe(2);
        await page.waitForTimeout(1500);
        await page.screenshot({ path: SHOT_HEALTH, fullPage: true });
        console.log(`monitor-page-cluster: screenshot of d2 with rs2 down: ${SHOT_HEALTH}`);
        // /metrics on d2 says the same, and still passes promtool.
        const metrics = sh('d2', ['curl', '-s', '-m', '3', `http://127.0.0.1:${HTTP_PORT}/metrics`]);
        expect(metrics).toMatch(/^tsvs_cluster_leader\{node="d2"\} 1$/m);
        expect(metrics).toMatch(/^tsvs_cluster_leader\{node="d1"\} 0$/m);
        expect(metrics).toMatch(new RegExp(`^tsvs_vip_owned\\{vip="${VIP.replace(/\./g, '\\.')}"\\} 1$`, 'm'));
        // (The term may have moved on since the takeover: it never goes back.)
        expect(Number(/^tsvs_cluster_term (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(term1);
        expect(metrics).toMatch(new RegExp(`^tsvs_backend_check_status\\{[^}]*remote_address="${realServerIp(2).replace(/\./g, '\\.')}"[^}]*state="down"\\} 1$`, 'm'));
        expect(metrics).toMatch(new RegExp(`^tsvs_backend_check_down_transitions_total\\{[^}]*remote_address="${realServerIp(2).replace(/\./g, '\\.')}"[^}]*\\} 1$`, 'm'));
        // (sh() trims the output: the exposition's final newline goes back.)
        const p = spawnSync('/usr/bin/promtool', ['check', 'metrics'], { input: metrics + '\n', encoding: 'utf8', timeout: 20_000 });
        expect(`${p.stdout}${p.stderr}`).toBe('');
      } finally {
        await heal('rs2');
      }
    } finally {
      await b2.close();
      await heal('d1').catch(() => {});
    }
  }, 150_000);
});
