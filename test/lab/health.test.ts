// health (lab): tsvsd --keepalived runs the health checker against the lab's real nginx servers: a failed real server
// stops getting new connections within delay_loop + retry × delay_before_retry (goal ≤ 1 s) and comes back as fast;
// all real servers of a virtual server down → its sorry server answers; SIGHUP with an edited file keeps an open
// connection and the unchanged servers' state. Needs root and the lab's host tools; without them every test fails
// saying why (never skipped). Run under `flock /tmp/tsvs-lab.lock` on a shared machine.
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, afterAll } from 'vitest';
import { REPO_ROOT, VIP, execCapture, fail, heal, labDir, realServerIp } from '../../ops/lab/index.ts';
import { labFor, tsvsadm, waitFor } from '../support/lab.ts';

const TOOLS = ['ip', 'nginx', 'dnsmasq', 'curl'];
const NODE = `${REPO_ROOT}/node_modules/.bin/node`;
const DIR = '/tmp/tsvs-health-lab';
const FILE = join(DIR, 'keepalived.conf');
/** The client's fixed source port for the held connection (the helper's range 49000-49199). */
const HOLD_SPORT = 49080;

function rs(i: number, weight: number, port = 80): string {
  return `  real_server ${realServerIp(i)} ${port} {\n    weight ${weight}\n    TCP_CHECK {\n      connect_timeout 0.3\n      delay_before_retry 0.1\n    }\n  }\n`;
}
/** VIP:80 over rs1..rs3; VIP:81 over rs2 alone with rs1 as its sorry server. */
function conf(w3: number): string {
  return `virtual_server ${VIP} 80 {\n  delay_loop 0.2\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n${rs(1, 1)}${rs(2, 1)}${rs(3, w3)}}\n` +
    `virtual_server ${VIP} 81 {\n  delay_loop 0.2\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n  sorry_server ${realServerIp(1)} 80\n${rs(2, 1)}}\n`;
}

/** One curl through the VIP from the client: the answering server's name, '' when none answered. */
function curl(port = 80): string {
  return execCapture('client', ['curl', '-s', '-m', '0.5', `http://${VIP}:${port}/`], { timeoutMs: 3000 }).stdout.trim();
}
/** The dest lines of VIP:port in d1's `tsvsadm -L -n`, as "addr:port weight", sorted. */
function dests(port: number): string[] {
  const lines = tsvsadm('-L', '-n').split('\n');
  const i = lines.findIndex((l) => l.startsWith(`TCP  ${VIP}:${port} `));
  const out: string[] = [];
  for (const l of i < 0 ? [] : lines.slice(i + 1)) {
    const m = /^ {2}-> (\S+)\s+\S+\s+(\d+)/.exec(l);
    if (!m) break;
    out.push(`${m[1]} ${m[2]}`);
  }
  return out.sort();
}
/** `n` curls in a row; the set of servers that answered ('' for none). */
function round(n: number, port = 80): string[] {
  return [...new Set(Array.from({ length: n }, () => curl(port)))].sort();
}

const HOLD = `
const net = require('node:net');
const s = net.connect({ host: ${JSON.stringify(VIP)}, port: 80, localPort: ${HOLD_SPORT} });
let phase = 0;
const req = 'GET / HTTP/1.1\\r\\nHost: lab\\r\\n\\r\\n';
s.on('connect', () => s.write(req));
s.on('data', (d) => {
  if (phase === 0) { phase = 1; process.stdout.write('ready ' + (/rs\\d+/.exec(String(d)) || ['?'])[0] + '\\n'); }
  else if (phase === 2) { console.log('answered ' + (/rs\\d+/.exec(String(d)) || ['?'])[0]); process.exit(0); }
});
s.on('error', (e) => { console.log('error ' + e.code); process.exit(0); });
s.on('close', () => { console.log('closed'); process.exit(0); });
process.stdin.on('data', () => { phase = 2; s.write(req); });
setTimeout(() => { console.log('timeout'); process.exit(0); }, 20000);
`;

describe('health checks in the lab (1 director, 3 servers, nat, tsvsd --keepalived)', () => {
  beforeAll(() => {
    mkdirSync(DIR, { recursive: true });
    writeFileSync(FILE, conf(1));
  });
  afterAll(() => rmSync(DIR, { recursive: true, force: true }));
  labFor({ mode: 'nat', servers: 3, tsvsdArgs: `--keepalived ${FILE}` }, TOOLS);

  it('health: nginx of rs2 killed → no new connection to it within 1 s; healed → back within 1 s; all down → sorry server', async () => {
    await waitFor('the three real servers in the table', () => dests(80).length === 3 || undefined, 10_000);
    await waitFor('every real server answering', () => round(9).join() === 'rs1,rs2,rs3' || undefined, 10_000, 100);
    expect(dests(81)).toEqual([`${realServerIp(2)}:80 1`]);
    const rs2 = `${realServerIp(2)}:80`;

    const t0 = performance.now();
    fail({ node: 'rs2', how: 'kill' });
    await waitFor('rs2 out of the table', () => !dests(80).some((d) => d.startsWith(rs2)) || undefined, 5000, 10);
    const detect = performance.now() - t0;
    expect(round(9)).toEqual(['rs1', 'rs3']);
    // VIP:81 had only rs2: quorum lost, the sorry server (rs1) answers.
    await waitFor('the sorry server in VIP:81', () => dests(81).join() === `${realServerIp(1)}:80 1` || undefined, 5000, 10);
    expect(round(3, 81)).toEqual(['rs1']);

    const h = await heal('rs2');
    const t1 = performance.now();
    await waitFor('rs2 back in the table', () => dests(80).some((d) => d.startsWith(rs2)) || undefined, 5000, 10);
    const recover = performance.now() - t1;
    await waitFor('rs2 answering again', () => round(6).includes('rs2') || undefined, 5000, 50);
    expect(dests(81)).toEqual([`${rs2} 1`]);
    expect(round(3, 81)).toEqual(['rs2']);
    console.log(`health figures: rs2 out of the table ${detect.toFixed(0)} ms after its processes were killed; back ${recover.toFixed(0)} ms after nginx was up again (heal took ${h.ms} ms); delay_loop 0.2 s, delay_before_retry 0.1 s, retry 1`);
    expect(detect).toBeLessThan(1000);
    expect(recover).toBeLessThan(1000);
  }, 60_000);

  it('health: SIGHUP with an edited weight keeps an open connection and the other servers in the table', async () => {
    await waitFor('the three real servers in the table', () => dests(80).length === 3 || undefined, 10_000);
    const p = spawn('ip', ['netns', 'exec', 'tsvs-client', NODE, '-e', HOLD], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    try {
      const who = await waitFor('the first answer on the held connection', () => /ready (\S+)/.exec(out)?.[1], 10_000);
      const before = dests(80);
      writeFileSync(FILE, conf(4));
      const pid = Number(readFileSync(join(labDir(), 'd1', 'tsvsd.pid'), 'utf8').trim());
      process.kill(pid, 'SIGHUP');
      await waitFor('rs3 at weight 4', () => dests(80).includes(`${realServerIp(3)}:80 4`) || undefined, 5000, 20);
      expect(dests(80).filter((d) => !d.startsWith(realServerIp(3)))).toEqual(before.filter((d) => !d.startsWith(realServerIp(3))));
      p.stdin.write('go\n');
      await exited;
      expect(out).toContain(`answered ${who}`);
      const log = readFileSync(join(labDir(), 'd1', 'tsvsd.log'), 'utf8');
      expect(log).toMatch(/reload: done/);
    } finally {
      if (p.exitCode === null) p.kill();
    }
  }, 60_000);
});
