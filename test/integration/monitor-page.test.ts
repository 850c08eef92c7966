// monitor page: Debian's chromium, headless, driven by playwright-core, opens the page served by tsvsd's HTTP
// listener on loopback while the read model moves (rates, connections) and decisions land in a real ring; the test
// asserts what the page shows and saves a screenshot to /tmp/tsvs-monitor.png.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { startHttp, type RunningHttp } from '../../services/tsvsd/http/server.ts';
import { DecisionReader, DecisionWriter, Outcome, TemplateUse, decisionRingBytes, noneReason, schedulerIndex } from '../../shared/telemetry/decision-ring.ts';
import type { MetricsInput } from '../../shared/telemetry/prometheus.ts';
import type { DestView } from '../../shared/sched/types.ts';
import { sampleCluster, sampleHealth, sampleMetricsInput } from '../unit/telemetry-sample.ts';

const PORT = 45030;
const CHROMIUM = '/usr/bin/chromium';
const SHOT = '/tmp/tsvs-monitor.png';

let http: RunningHttp;
let browser: Browser;
let tick = 0;
const buf = new ArrayBuffer(decisionRingBytes(256));
const writer = new DecisionWriter(buf, { init: true, worker: 0, director: 'd1', epochMs: 0 });
const reader = new DecisionReader(buf);
const ip = (s: string): number => s.split('.').reduce((a, b) => a * 256 + Number(b), 0);

/** The sample read model, moving with every read: rs1 ramps up, rs2 stays flat, drops grow. */
function model(): MetricsInput {
  tick++;
  const m = sampleMetricsInput();
  const [a, b] = m.table.services[0].dests;
  a.rate.cps = 20 + (tick % 15) * 4;
  a.activeConns = 10 + (tick % 10);
  b.rate.cps = 12;
  b.activeConns = 4;
  m.table.services[0].rate.cps = a.rate.cps + b.rate.cps;
  m.dataplane.events.drop_no_dest = 2 + tick;
  m.health = [...sampleHealth().map((h) => ({ ...h, state: 'up' as const, lastError: null })), ...sampleHealth().map((h) => ({ ...h, rs: `${h.vs} -> 10.200.1.102:8080`, remoteAddress: '10.200.1.102', remotePort: 8080, check: 'TCP_CHECK 10.200.1.102:8080' }))];
  m.cluster = sampleCluster();
  m.vipsHeld = ['10.200.0.10'];
  return m;
}

function decide(cport: number, views: DestView[], chosen: number): void {
  writer.begin(Date.now(), 6, ip('10.200.0.100'), cport, ip('10.200.0.10'), 80, 0, 0);
  writer.candidates(schedulerIndex('wrr'), views, chosen);
  if (chosen >= 0) writer.commit(Outcome.scheduled, TemplateUse.none, chosen, views[chosen].addr, views[chosen].port, 0);
  else writer.commit(noneReason(views), TemplateUse.none, -1, 0, 0, 255);
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: this test needs Debian's chromium package (bash ops/setup.sh installs it)`);
  http = await startHttp(`127.0.0.1:${PORT}`, { director: 'd1', read: model, decisions: (max, f) => reader.recent(f, max) }, { tickMs: 200 });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
});
afterAll(async () => {
  await browser?.close();
  await http?.close();
});

describe('monitor page (real chromium, real listener)', () => {
  it('monitor page: shows services, real servers with weights and counts, live charts, decisions, drops; no external requests', async () => {
    const views: DestView[] = [
      { index: 0, addr: ip('10.200.1.101'), port: 80, weight: 3, lastWeight: 3, overloaded: false, available: true, activeConns: 10, inactConns: 5 },
      { index: 1, addr: ip('10.200.1.102'), port: 8080, weight: 1, lastWeight: 1, overloaded: false, available: true, activeConns: 4, inactConns: 0 },
    ];
    decide(40001, views, 0);
    decide(40002, views, 1);
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const foreign: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(http.url)) foreign.push(r.url());
    });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(http.url + '/');
    await page.waitForSelector('#status.live', { timeout: 10_000 });
    await expect.poll(() => page.locator('.svc h3').allTextContents(), { timeout: 10_000 }).toEqual([expect.stringMatching(/^TCP 10\.200\.0\.10:80wrr/), expect.stringMatching(/^FWM 42rr/)]);
    const row = page.locator('.svc').first().locator('tr.dest[data-addr="10.200.1.102:8080"]');
    await expect.poll(() => row.locator('td.weight').textContent()).toBe('1');
    await expect.poll(() => row.locator('td.active').textContent()).toBe('4');
    expect(await page.locator('.svc').first().locator('tr.dest[data-addr="10.200.1.101:80"] td.weight').textContent()).toBe('3');
    expect(await page.locator('.svc').first().locator('tr.dest[data-addr="10.200.1.101:80"] td.health').textContent()).toBe('up');
    expect(await page.locator('.svc').first().locator('tr.dest[data-addr="10.200.1.102:8080"] td.health.bad').textContent()).toBe('down');
    // The charts fill as frames arrive: lines for both real servers with several points.
    decide(40003, views, 0);
    decide(40004, [{ ...views[0], weight: 0 }, { ...views[1], weight: 0 }], -1);
    await page.waitForFunction(`Array.from(document.querySelectorAll('.svc:first-child svg.chart[data-title="connections/s"] polyline')).every((p) => Number(p.getAttribute('data-points')) >= 8)`, undefined, { timeout: 15_000 });
    expect(await page.locator('.svc').first().locator('svg.chart[data-title="connections/s"] polyline').count()).toBe(2);
    expect(await page.locator('.svc').first().locator('svg.chart[data-title="active connections"] polyline').count()).toBe(2);
    // Latest decisions, newest first: the quiescent failure, then the chosen real servers.
    await expect.poll(() => page.locator('tr.decision td.outcome').allTextContents()).toEqual(['quiescent', '→ 10.200.1.101:80', '→ 10.200.1.102:8080', '→ 10.200.1.101:80']);
    expect(await page.locator('tr.decision td.client .addr').first().textContent()).toBe('10.200.0.100:40004');
    await expect.poll(async () => Number((await page.locator('#drops div').filter({ hasText: 'no_dest' }).textContent())?.split(' ')[0].replace(/,/g, ''))).toBeGreaterThan(5);
    // The cluster: both directors with their state and priority, the leader, the term, who holds the VIP, sync health.
    expect(await page.locator('#directors-body tr.member').evaluateAll((rows) => rows.map((r) => [r.getAttribute('data-node'), r.getAttribute('data-state'), r.querySelector('td.vips')?.textContent]))).toEqual([['d1', 'leader', '10.200.0.10'], ['d2', 'backup', '']]);
    expect(await page.locator('#leader').textContent()).toBe('d1');
    expect(await page.locator('#term').textContent()).toBe('4');
    expect(await page.locator('#vip-owners').textContent()).toBe('VIP 10.200.0.10 → d1');
    expect(await page.locator('#sync').textContent()).toMatch(/^sync: 10 records out, 9 in, 1 gaps, 0 resyncs, 0 lost, lag p50 3 ms \/ p99 12\.5 ms, snapshot 42 entries/);
    expect(await page.locator('#health-summary').textContent()).toBe('health: 2 checked, 1 up, 1 down');
    expect(await page.locator('#health-body tr.hc').evaluateAll((rows) => rows.map((r) => [r.getAttribute('data-addr'), r.getAttribute('data-state'), r.querySelector('td.check')?.textContent]))).toEqual([
      ['10.200.1.101:80', 'up', 'TCP_CHECK 10.200.1.101:80'],
      ['10.200.1.102:8080', 'down', 'TCP_CHECK 10.200.1.102:8080connection refused'],
    ]);
    expect(await page.locator('.svc').first().locator('tr.dest[data-addr="10.200.1.102:8080"] td.health').getAttribute('title')).toMatch(/^TCP_CHECK 10\.200\.1\.102:8080: connection refused, 3 of 40 failed/);
    expect(await page.locator('#workers').textContent()).toContain('worker 1 cpu 1 down (2 restarts)');
    await page.screenshot({ path: SHOT, fullPage: true });
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('monitor page: says so when the listener goes away', async () => {
    const page = await browser.newPage();
    await page.goto(http.url + '/');
    await page.waitForSelector('#status.live', { timeout: 10_000 });
    await http.close();
    await page.waitForSelector('#status.down', { timeout: 10_000 });
    expect(await page.locator('#status').textContent()).toBe('reconnecting');
    await page.close();
  });
});
