// telemetry lab: real traffic through tsvsd in the lab (NAT, 1 director, 3 nginx real servers) with tracing on; an
// OTLP receiver started by the test inside the director's namespace decodes the exported spans. Each connection's
// span names the scheduler, the candidates and the real server that answered it; /api/decisions answers "where did
// this client port go"; /metrics equals tsvsadm -L -n --stats --exact; at ratio 0 only the forced failure is exported.
// Needs root and the lab's tools; run under the lab lock: flock /tmp/tsvs-lab.lock vitest run <this file>.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { REPO_ROOT, VIP, execCapture, realServerIp } from '../../ops/lab/index.ts';
import { labFor, settle, sh, tsvsadm, waitFor } from '../support/lab.ts';
import { decodeTraces, type DecodedSpan } from './telemetry-otlp.ts';

const TOOLS = ['ip', 'nginx', 'dnsmasq', 'curl'];
const NODE = `${REPO_ROOT}/node_modules/.bin/node`;
const OTLP_PORT = 46060;
const HTTP_PORT = 46061;
const CLIENT = '10.200.0.100';

/** An OTLP receiver inside d1's namespace (where tsvsd's exporter child sends): one base64 request body per line. */
const RECEIVER = `
const http = require('node:http');
http.createServer((q, s) => {
  const c = [];
  q.on('data', (d) => c.push(d));
  q.on('end', () => { if (q.url === '/v1/traces') process.stdout.write(Buffer.concat(c).toString('base64') + '\\n'); s.writeHead(200).end(); });
}).listen(${OTLP_PORT}, '127.0.0.1', () => process.stdout.write('listening\\n'));
`;

function startReceiver(spans: DecodedSpan[]): Promise<ChildProcess> {
  const p = spawn('ip', ['netns', 'exec', 'tsvs-d1', NODE, '-e', RECEIVER], { stdio: ['ignore', 'pipe', 'inherit'] });
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

function stopReceiver(p: ChildProcess | null): Promise<void> {
  if (!p || p.exitCode !== null) return Promise.resolve();
  const done = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGTERM');
  return done;
}

/** One curl from the client from a fixed source port; the body ('rs1'...), or '' when it failed. */
function curlFrom(port: number): string {
  const r = execCapture('client', ['curl', '-s', '-m', '3', '--local-port', String(port), `http://${VIP}/`], { timeoutMs: 10_000 });
  return r.status === 0 ? r.stdout.trim() : '';
}

/** GET on tsvsd's HTTP listener inside d1. */
function d1Http(path: string): string {
  return sh('d1', ['curl', '-s', '-m', '3', `http://127.0.0.1:${HTTP_PORT}${path}`]);
}

const byPort = (spans: DecodedSpan[], port: number): DecodedSpan | undefined => spans.find((s) => s.name === 'lvs.schedule' && s.attributes['client.port'] === port);

describe('telemetry lab: NAT wrr, tracing at ratio 1', () => {
  labFor({ mode: 'nat', servers: 3, workers: 1, tsvsdArgs: `--otlp http://127.0.0.1:${OTLP_PORT} --trace-ratio 1 --http 127.0.0.1:${HTTP_PORT}` }, TOOLS);
  const spans: DecodedSpan[] = [];
  let receiver: ChildProcess | null = null;

  beforeAll(async () => {
    receiver = await startReceiver(spans);
    tsvsadm('-A', '-t', `${VIP}:80`, '-s', 'wrr');
    for (const [n, w] of [[3, 1], [2, 1], [1, 3]] as const) tsvsadm('-a', '-t', `${VIP}:80`, '-r', `${realServerIp(n)}:80`, '-m', '-w', String(w));
    await settle();
    // Warm up (other client ports) until a first decision span arrives: the exporter is up and exporting. (It reads
    // each ring from the oldest record it still holds, so earlier traffic would be exported too.)
    let warm = 0;
    await waitFor('the exporter attached (a first decision span)', () => {
      curlFrom(41100 + (warm++ % 100));
      return spans.some((x) => x.name === 'lvs.schedule');
    }, 20_000);
  });
  afterAll(async () => {
    await stopReceiver(receiver);
  });

  it('telemetry lab: every connection has a span naming wrr, the three candidates and the real server that answered', async () => {
    const answered = new Map<number, string>();
    for (let port = 41001; port <= 41010; port++) answered.set(port, curlFrom(port));
    expect([...answered.values()].filter((b) => /^rs\d$/.test(b))).toHaveLength(10);
    await waitFor('a span per connection', () => [...answered.keys()].every((p) => byPort(spans, p) !== undefined), 15_000);
    for (const [port, body] of answered) {
      const s = byPort(spans, port)!;
      const n = Number(body.slice(2));
      expect(s.attributes, `client port ${port} answered by ${body}`).toMatchObject({
        'client.address': CLIENT,
        'server.address': VIP,
        'server.port': 80,
        'network.transport': 'tcp',
        'lvs.scheduler': 'wrr',
        'lvs.outcome': 'scheduled',
        'lvs.method': 'masq',
        'lvs.dest.address': realServerIp(n),
        'lvs.dest.port': 80,
        'lvs.candidates.count': 3,
      });
      expect((s.attributes['lvs.candidates'] as string[]).map((c) => c.split(' ')[0]).sort()).toEqual([1, 2, 3].map((k) => `${realServerIp(k)}:80`).sort());
    }
    // wrr 3:1:1 over 10 connections, as the kernel does it.
    const counts = [...answered.values()].reduce((m, b) => m.set(b, (m.get(b) ?? 0) + 1), new Map<string, number>());
    expect(Object.fromEntries(counts)).toEqual({ rs1: 6, rs2: 2, rs3: 2 });
  });

  it('telemetry lab: /api/decisions?client=ADDR:PORT and tsvsadm trace --client --last name the real server that connection reached', async () => {
    const body = curlFrom(41050);
    const n = Number(body.slice(2));
    const got = await waitFor('the decision in the ring', () => {
      const d = JSON.parse(d1Http(`/api/decisions?client=${CLIENT}:41050`)) as Array<{ dest: { address: string } | null }>;
      return d.length > 0 ? d : undefined;
    });
    expect(got[0].dest?.address).toBe(realServerIp(n));
    // The same question from the command line, read straight from the workers' rings.
    const line = tsvsadm('trace', '--client', `${CLIENT}:41050`, '--last');
    expect(line).toMatch(new RegExp(` ${CLIENT.replace(/\./g, '\\.')}:41050 -> TCP ${VIP.replace(/\./g, '\\.')}:80 wrr => ${realServerIp(n).replace(/\./g, '\\.')}:80 masq \\[`));
  });

  it('telemetry lab: /metrics counters equal tsvsadm -L -n --stats --exact taken at the same moment', () => {
    const listed = tsvsadm('-L', '-n', '--stats', '--exact');
    const metrics = d1Http('/metrics');
    const svc = new RegExp(`TCP  ${VIP.replace(/\./g, '\\.')}:80\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)`).exec(listed)!;
    const metric = (name: string): number => Number(new RegExp(`^${name}\\{[^}]*local_address="${VIP.replace(/\./g, '\\.')}",local_port="80"[^}]*\\} (\\d+)$`, 'm').exec(metrics)?.[1] ?? -1);
    expect([1, 2, 3, 4, 5].map((i) => Number(svc[i]))).toEqual(['connections', 'incoming_packets', 'outgoing_packets', 'incoming_bytes', 'outgoing_bytes'].map((k) => metric(`tsvs_service_${k}_total`)));
    expect(Number(svc[1])).toBeGreaterThanOrEqual(11);
    expect(metrics).toMatch(/^tsvs_decisions_traced_total \d+$/m);
  });

  it('telemetry lab: the monitor page under traffic shows the real servers with their connections, rates and decisions', async () => {
    // Chromium runs in d1's namespace (where the listener is, on loopback) through a wrapper; playwright talks to
    // it over a pipe, so the namespace does not matter to the driver.
    const dir = mkdtempSync(join(tmpdir(), 'tsvs-chromium-'));
    const wrapper = join(dir, 'chromium-in-d1');
    writeFileSync(wrapper, '#!/bin/sh\nexec ip netns exec tsvs-d1 /usr/bin/chromium "$@"\n');
    chmodSync(wrapper, 0o755);
    // Traffic for the charts: a curl loop in the client for ~12 s (new connection each time).
    const load = spawn('ip', ['netns', 'exec', 'tsvs-client', 'sh', '-c', `end=$(($(date +%s)+12)); while [ $(date +%s) -lt $end ]; do curl -s -m 2 -o /dev/null http://${VIP}/; sleep 0.02; done`], { stdio: 'ignore' });
    const browser = await chromium.launch({ executablePath: wrapper, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 860 } });
      await page.goto(`http://127.0.0.1:${HTTP_PORT}/`);
      await page.waitForSelector('#status.live', { timeout: 10_000 });
      await expect.poll(() => page.locator('.svc h3').first().textContent(), { timeout: 10_000 }).toMatch(/^TCP 10\.200\.0\.10:80wrr/);
      for (const n of [1, 2, 3]) await page.locator(`tr.dest[data-addr="${realServerIp(n)}:80"]`).waitFor({ timeout: 10_000 });
      expect(await page.locator(`tr.dest[data-addr="${realServerIp(1)}:80"] td.weight`).textContent()).toBe('3');
      // Connections grow while the load runs, and the rates are plotted.
      const conns = async (): Promise<number> => Number(((await page.locator(`tr.dest[data-addr="${realServerIp(1)}:80"] td.conns`).textContent()) ?? '0').replace(/,/g, ''));
      const c0 = await conns();
      await expect.poll(conns, { timeout: 10_000 }).toBeGreaterThan(c0 + 10);
      await expect.poll(async () => Number((await page.locator(`tr.dest[data-addr="${realServerIp(1)}:80"] td.cps`).textContent()) ?? '0'), { timeout: 10_000 }).toBeGreaterThan(0);
      await expect.poll(() => page.locator('tr.decision td.client .addr').first().textContent(), { timeout: 10_000 }).toMatch(/^10\.200\.0\.100:\d+$/);
      await page.waitForTimeout(4000);
      await page.screenshot({ path: '/tmp/tsvs-monitor-lab.png', fullPage: true });
    } finally {
      await browser.close();
      load.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('telemetry lab: tracing at ratio 0 exports only failures', () => {
  labFor({ mode: 'nat', servers: 1, workers: 1, tsvsdArgs: `--otlp http://127.0.0.1:${OTLP_PORT} --trace-ratio 0` }, TOOLS);
  const spans: DecisionSpans = [];
  let receiver: ChildProcess | null = null;

  beforeAll(async () => {
    receiver = await startReceiver(spans);
    tsvsadm('-A', '-t', `${VIP}:80`, '-s', 'rr');
    tsvsadm('-a', '-t', `${VIP}:80`, '-r', `${realServerIp(1)}:80`, '-m', '-w', '1');
    await settle();
  });
  afterAll(async () => {
    await stopReceiver(receiver);
  });

  it('telemetry lab: successful connections are not exported; a forced no-dest (all quiesced) is, with error.type', async () => {
    for (let port = 42001; port <= 42005; port++) expect(curlFrom(port)).toBe('rs1');
    tsvsadm('-e', '-t', `${VIP}:80`, '-r', `${realServerIp(1)}:80`, '-m', '-w', '0');
    await settle();
    expect(curlFrom(42100)).toBe('');
    const failed = await waitFor('the failure span', () => byPort(spans, 42100), 15_000);
    expect(failed.attributes).toMatchObject({ 'lvs.outcome': 'quiescent', 'error.type': 'quiescent', 'client.port': 42100, 'lvs.scheduler': 'rr' });
    expect(failed.statusCode).toBe(2);
    expect(spans.filter((s) => s.name === 'lvs.schedule' && s.attributes['lvs.outcome'] === 'scheduled')).toEqual([]);
    // The table change itself is an always-kept control event.
    expect(spans.some((s) => s.name === 'lvs.control config-applied')).toBe(true);
  });
});

type DecisionSpans = DecodedSpan[];
