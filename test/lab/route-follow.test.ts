// route-follow: the forwarding worker follows the director's routes and addresses over rtnetlink, with no table
// change: a NAT real server reachable only through a route added in d1 afterwards is served within a second; a
// route moved to another gateway moves the traffic, a deleted one stops it; an address added to d1 turns a real
// server into a local one. The kernel's fallback (NAT packets the worker cannot route, handed to the stack through
// the local TUN device) is closed by a FORWARD DROP, so only the worker's own lookup can reach the real server.
// Needs root: fails (never skips) without, like every lab test.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { VIP, execCapture, realServerIp } from '../../ops/lab/index.ts';
import { dataplaneStatus as status, labFor, settle, sh, tsvsadm } from '../support/lab.ts';

const TOOLS = ['ip', 'nginx', 'dnsmasq', 'curl', 'dig', 'iptables', 'ping', 'python3'];
/** The real server's address: on lo of both rs1 and rs2, reachable from d1 only through the route under test. */
const MOVED = '10.200.5.2';
const MOVED_NET = '10.200.5.0/24';
/** An address d1 does not have yet: a (DR) real server that becomes local when it is added. */
const LATE_LOCAL = '10.200.1.50';
const FOLLOW_MS = 1000;

/** One short curl from the client: the body, or '' when it failed (connect timeout 0.2 s). */
function curl(url: string): string {
  const r = execCapture('client', ['curl', '-s', '--connect-timeout', '0.2', '-m', '1', url], { timeoutMs: 5000 });
  return r.status === 0 ? r.stdout.trim() : '';
}

/**
 * Curls `url` until `want(body)` holds; returns when the attempt that saw it began (ms after the call): an
 * attempt that straddles the change (its SYN forwarded by the old table, its request dropped by the new one)
 * only ends at curl's timeout, which is not the worker's delay. Throws when no attempt begun within FOLLOW_MS
 * saw it, with the last body.
 */
function within(url: string, want: (body: string) => boolean, what: string): number {
  const t0 = Date.now();
  const seen: string[] = [];
  for (;;) {
    const dt = Date.now() - t0;
    const body = curl(url);
    seen.push(`${dt}:${body}`);
    if (want(body)) {
      process.stdout.write(`route-follow: ${what} after ${dt} ms ${seen.join(' ')}\n`);
      return dt;
    }
    if (dt > FOLLOW_MS) throw new Error(`${what}: not seen within ${FOLLOW_MS} ms (last answer: ${JSON.stringify(body)})`);
  }
}

describe('route follow: the worker learns routes and addresses from rtnetlink (NAT, 1 director, 2 real servers)', () => {
  labFor({ mode: 'nat', servers: 2 }, TOOLS);
  let server: ChildProcess | undefined;
  let epoch = -1;

  beforeAll(async () => {
    for (const rs of ['rs1', 'rs2']) sh(rs, ['ip', 'addr', 'add', `${MOVED}/32`, 'dev', 'lo']);
    sh('d1', ['iptables', '-w', '-I', 'FORWARD', '-i', 'tsvs-local0', '-j', 'DROP']);
    // Neighbours known beforehand: what is measured is the route, not ARP.
    for (const n of [1, 2]) sh('d1', ['ping', '-c', '1', '-W', '1', realServerIp(n)]);
    const dir = sh('d1', ['mktemp', '-d']);
    sh('d1', ['sh', '-c', `echo d1 > ${dir}/index.html`]);
    server = spawn('ip', ['netns', 'exec', 'tsvs-d1', 'python3', '-m', 'http.server', '8081', '--bind', '0.0.0.0', '--directory', dir], { stdio: 'ignore' });
    for (let i = 0; i < 50 && execCapture('d1', ['curl', '-s', '-m', '1', 'http://127.0.0.1:8081/']).status !== 0; i++) await sleep(100);
    tsvsadm('-A', '-t', `${VIP}:80`, '-s', 'rr');
    tsvsadm('-a', '-t', `${VIP}:80`, '-r', `${MOVED}:80`, '-m');
    tsvsadm('-A', '-t', `${VIP}:8081`, '-s', 'rr');
    tsvsadm('-a', '-t', `${VIP}:8081`, '-r', `${LATE_LOCAL}:8081`, '-g');
    await settle();
    epoch = status().epoch;
  }, 30_000);

  afterAll(() => {
    if (server?.pid && server.exitCode === null) server.kill('SIGKILL');
  });

  /**
   * Puts d1's route to the moved real server in state `via` (a real server's number, or null: no route) and waits
   * until the worker forwards accordingly: each case starts from the state it needs, whatever ran before it.
   */
  function routeState(via: 1 | 2 | null): void {
    execCapture('d1', ['ip', 'route', 'del', MOVED_NET], { timeoutMs: 5000 });
    if (via !== null) sh('d1', ['ip', 'route', 'add', MOVED_NET, 'via', realServerIp(via)]);
    within(`http://${VIP}/`, (b) => b === (via === null ? '' : `rs${via}`), `precondition: route via ${via ?? 'none'}`);
  }

  /** Removes LATE_LOCAL from d1 if present and waits until it is no longer served locally. */
  function notLocal(): void {
    execCapture('d1', ['ip', 'addr', 'del', `${LATE_LOCAL}/32`, 'dev', 'back'], { timeoutMs: 5000 });
    within(`http://${VIP}:8081/`, (b) => b === '', 'precondition: not local');
  }

  it('route-follow: without a route to the real server, no answer (control)', () => {
    routeState(null);
    notLocal();
    expect(curl(`http://${VIP}/`)).toBe('');
    expect(curl(`http://${VIP}:8081/`)).toBe('');
  });

  it('route-follow: a route added in d1 is followed within a second (NAT reaches rs1)', () => {
    routeState(null);
    sh('d1', ['ip', 'route', 'add', MOVED_NET, 'via', realServerIp(1)]);
    expect(within(`http://${VIP}/`, (b) => b === 'rs1', 'route via rs1 added')).toBeLessThanOrEqual(FOLLOW_MS);
  });

  it('route-follow: the route moved to rs2 is followed within a second, and stays', () => {
    routeState(1);
    sh('d1', ['ip', 'route', 'replace', MOVED_NET, 'via', realServerIp(2)]);
    expect(within(`http://${VIP}/`, (b) => b === 'rs2', 'route moved to rs2')).toBeLessThanOrEqual(FOLLOW_MS);
    expect([curl(`http://${VIP}/`), curl(`http://${VIP}/`)]).toEqual(['rs2', 'rs2']);
  });

  it('route-follow: the route deleted is followed within a second (no answer)', () => {
    routeState(2);
    sh('d1', ['ip', 'route', 'del', MOVED_NET]);
    expect(within(`http://${VIP}/`, (b) => b === '', 'route deleted')).toBeLessThanOrEqual(FOLLOW_MS);
  });

  it('route-follow: an address added to d1 makes its real server local within a second (local delivery)', () => {
    notLocal();
    const before = status().events.local_delivered ?? 0;
    sh('d1', ['ip', 'addr', 'add', `${LATE_LOCAL}/32`, 'dev', 'back']);
    expect(within(`http://${VIP}:8081/`, (b) => b === 'd1', 'address added')).toBeLessThanOrEqual(FOLLOW_MS);
    expect((status().events.local_delivered ?? 0) - before).toBeGreaterThan(0);
  });

  it('route-follow: following routes and addresses applies no table and restarts no worker', () => {
    const restarts = status().workers.map((w) => w.restarts);
    routeState(1);
    routeState(2);
    routeState(null);
    const s = status();
    expect(s.epoch).toBe(epoch);
    expect(s.workers.every((w) => w.alive)).toBe(true);
    expect(s.workers.map((w) => w.restarts)).toEqual(restarts);
  });
});
