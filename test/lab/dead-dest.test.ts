// dead-dest: connections of a real server removed with `tsvsadm -d` are not blackholed until their timeout
// (expire_nodest_conn, tsvsd's default): the same UDP flow (same source port) is answered by a live server within
// 1 s; an established TCP connection gets a reset from the director on its next segment.
// Needs root and the lab's host tools; without them every test fails saying why (never skipped).
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { REPO_ROOT, VIP, execCapture, realServerIp } from '../../ops/lab/index.ts';
import { dataplaneStatus, labFor, settle, tsvsadm, waitFor } from '../support/lab.ts';

const TOOLS = ['ip', 'nginx', 'dnsmasq', 'curl', 'dig'];
const NODE = `${REPO_ROOT}/node_modules/.bin/node`;
/** The client's fixed source ports (the helper's range 48000-48199). */
const UDP_SPORT = 48053;
const TCP_SPORT = 48080;

/** dig from the client's fixed source port; the answering server's name, '' on no answer; and how long it took. */
function digFrom(sport: number): { who: string; ms: number } {
  const t0 = Date.now();
  const r = execCapture('client', ['dig', '+short', '+time=1', '+tries=1', '-b', `0.0.0.0#${sport}`, 'TXT', 'whoami.lab', `@${VIP}`], { timeoutMs: 5000 });
  return { who: r.stdout.trim().replace(/"/g, ''), ms: Date.now() - t0 };
}

/**
 * One keep-alive HTTP connection from the client's port TCP_SPORT: the first request's answer is printed as
 * `ready <server>`; a line on stdin sends the second request, and the outcome is printed as `answered <ms>`,
 * `error <code> <ms>` or `closed <ms>` (ms since the second request), or `timeout`.
 */
const HOLD = `
const net = require('node:net');
const s = net.connect({ host: ${JSON.stringify(VIP)}, port: 80, localPort: ${TCP_SPORT} });
let phase = 0, t0 = 0;
const req = 'GET / HTTP/1.1\\r\\nHost: lab\\r\\n\\r\\n';
s.on('connect', () => s.write(req));
s.on('data', (d) => {
  if (phase === 0) { phase = 1; process.stdout.write('ready ' + (/rs\\d+/.exec(String(d)) || ['?'])[0] + '\\n'); }
  else if (phase === 2) { console.log('answered ' + (Date.now() - t0)); process.exit(0); }
});
s.on('error', (e) => { console.log('error ' + e.code + ' ' + (Date.now() - t0)); process.exit(0); });
s.on('close', () => { console.log('closed ' + (Date.now() - t0)); process.exit(0); });
process.stdin.on('data', () => { phase = 2; t0 = Date.now(); s.write(req); });
setTimeout(() => { console.log('timeout'); process.exit(0); }, 15000);
`;

describe('dead destinations (1 director, 2 servers, nat)', () => {
  labFor({ mode: 'nat', servers: 2 }, TOOLS);

  it('dead-dest: a UDP flow whose real server is removed (tsvsadm -d) is answered by the live one within 1 s, same source port', async () => {
    tsvsadm('-C');
    tsvsadm('-A', '-u', `${VIP}:53`, '-s', 'rr');
    tsvsadm('-a', '-u', `${VIP}:53`, '-r', `${realServerIp(1)}:53`, '-m');
    tsvsadm('-a', '-u', `${VIP}:53`, '-r', `${realServerIp(2)}:53`, '-m');
    await settle();
    const first = await waitFor('a DNS answer through the VIP', () => digFrom(UDP_SPORT).who || undefined);
    expect(['rs1', 'rs2']).toContain(first);
    // The flow sticks to its server while that server is in the table.
    expect(digFrom(UDP_SPORT).who).toBe(first);
    const gone = first === 'rs1' ? realServerIp(1) : realServerIp(2);
    tsvsadm('-d', '-u', `${VIP}:53`, '-r', `${gone}:53`);
    await settle();
    const after = digFrom(UDP_SPORT);
    console.log(`dead-dest figures: UDP flow moved from ${first} to ${after.who}, answered in ${after.ms} ms`);
    expect(after.who).toBe(first === 'rs1' ? 'rs2' : 'rs1');
    expect(after.ms).toBeLessThan(1000);
    const ev = dataplaneStatus().events;
    expect(ev.nodest_expired).toBeGreaterThanOrEqual(1);
    expect(ev.nodest_rescheduled).toBeGreaterThanOrEqual(1);
  });

  it('dead-dest: an established TCP connection of a removed real server is reset by the director on its next segment', async () => {
    tsvsadm('-C');
    tsvsadm('-A', '-t', `${VIP}:80`, '-s', 'rr');
    tsvsadm('-a', '-t', `${VIP}:80`, '-r', `${realServerIp(1)}:80`, '-m');
    tsvsadm('-a', '-t', `${VIP}:80`, '-r', `${realServerIp(2)}:80`, '-m');
    await settle();
    const p = spawn('ip', ['netns', 'exec', 'tsvs-client', NODE, '-e', HOLD], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    try {
      const who = await waitFor('the first answer on the held connection', () => /ready (\S+)/.exec(out)?.[1], 10_000);
      expect(['rs1', 'rs2']).toContain(who);
      const before = dataplaneStatus().events.nodest_rst_sent ?? 0;
      tsvsadm('-d', '-t', `${VIP}:80`, '-r', `${who === 'rs1' ? realServerIp(1) : realServerIp(2)}:80`);
      await settle();
      p.stdin.write('go\n');
      await exited;
      const m = /error ECONNRESET (\d+)/.exec(out);
      expect(m, `client said: ${out}`).not.toBeNull();
      console.log(`dead-dest figures: TCP connection to ${who} reset ${m![1]} ms after its next segment`);
      expect(Number(m![1])).toBeLessThan(1000);
      expect(dataplaneStatus().events.nodest_rst_sent).toBe(before + 1);
      // The client reconnects (a new port) and the live server answers.
      const r = execCapture('client', ['curl', '-s', '-m', '3', `http://${VIP}/`], { timeoutMs: 10_000 });
      expect(r.stdout.trim()).toBe(who === 'rs1' ? 'rs2' : 'rs1');
    } finally {
      if (p.exitCode === null) p.kill();
    }
  });
});
