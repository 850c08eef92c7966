// forward: tsvsd's workers move real packets between real clients and real servers in network namespaces —
// NAT (with port mapping), DR and TUN, TCP and UDP; wrr as the client sees it; 256 concurrent connections with
// zero errors; a long connection that survives rule edits and a worker kill -9; malformed frames dropped and
// counted by reason; two workers that each see both directions of their flows.
import { afterAll, describe, expect, it, beforeAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { LAB_GUE_PORT, REPO_ROOT, VIP, directorDip, execCapture, realServerIp } from '../../ops/lab/index.ts';
import { parseWrk } from '../../ops/bench/cps.ts';
import { dataplaneStatus as status, labFor, settle, sh, tsvsadm, waitFor } from '../support/lab.ts';
import { createScheduler } from '../../shared/sched/index.ts';
import type { DestView } from '../../shared/sched/types.ts';

const TOOLS = ['ip', 'nginx', 'dnsmasq', 'curl', 'dig', 'wrk', 'hping3'];
const NODE = `${REPO_ROOT}/node_modules/.bin/node`;

/** One curl from the client; the body, or '' when it failed. */
function curl(url: string, extra: string[] = []): string {
  const r = execCapture('client', ['curl', '-s', '-m', '3', ...extra, url], { timeoutMs: 10_000 });
  return r.status === 0 ? r.stdout.trim() : '';
}

function dig(): string {
  const r = execCapture('client', ['dig', '+short', '+time=2', '+tries=1', 'TXT', 'whoami.lab', `@${VIP}`], { timeoutMs: 10_000 });
  return r.stdout.trim().replace(/"/g, '');
}

/** wrk from the client with `conns` connections for `secs` seconds; requests and errors. */
function wrk(conns: number, secs: number): { rps: number; errors: number; requests: number } {
  const r = execCapture('client', ['wrk', '-t2', `-c${conns}`, `-d${secs}s`, `http://${VIP}/`], { timeoutMs: (secs + 30) * 1000 });
  if (r.status !== 0) throw new Error(`wrk failed: ${r.stderr}`);
  const w = parseWrk(r.stdout);
  const req = Number(/(\d+) requests in/.exec(r.stdout)?.[1] ?? 0);
  return { ...w, requests: req };
}

function rs(n: number): string {
  return realServerIp(n);
}

/** Whether `tsvsadm -L -n -c` lists an ESTABLISHED connection to VIP:`port`. */
function established(port: number): boolean {
  return new RegExp(`ESTABLISHED\\s+\\S+\\s+${VIP.replace(/\./g, '\\.')}:${port}\\s`).test(tsvsadm('-L', '-n', '-c'));
}

/** InPkts of service VIP:`port` (TCP) from `tsvsadm -L -n --stats`. */
function inPkts(port: number): number {
  const m = new RegExp(`TCP  ${VIP.replace(/\./g, '\\.')}:${port}\\s+\\d+\\s+(\\d+)`).exec(tsvsadm('-L', '-n', '--stats', '-t', `${VIP}:${port}`));
  return Number(m?.[1] ?? -1);
}

/** Starts test/support/keepalive-client.ts in the client: one connection to VIP:port; resolves with its exit and JSON. */
function keepalive(port: number, durationMs: number, intervalMs: number, timeoutMs: number): { result: Promise<{ code: number | null; out: string }> } {
  const p = spawn('ip', ['netns', 'exec', 'tsvs-client', NODE, `${REPO_ROOT}/test/support/keepalive-client.ts`, VIP, String(port), String(durationMs), String(intervalMs), String(timeoutMs)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return { result: new Promise((r) => p.once('exit', (code) => r({ code, out }))) };
}

describe('forward NAT (1 director, 3 real servers)', () => {
  labFor({ mode: 'nat', servers: 3 }, TOOLS);

  /** Each case starts from an empty table and adds what it uses. */
  function fresh(): void {
    tsvsadm('-C');
  }
  /** wrr 3:1 on VIP:80 — rs2 (weight 1) first, rs1 (weight 3) last: the kernel schedules newest first. */
  function wrrHttp(): void {
    tsvsadm('-A', '-t', `${VIP}:80`, '-s', 'wrr');
    tsvsadm('-a', '-t', `${VIP}:80`, '-r', `${rs(2)}:80`, '-m', '-w', '1');
    tsvsadm('-a', '-t', `${VIP}:80`, '-r', `${rs(1)}:80`, '-m', '-w', '3');
  }
  /** Port mapping: the VIP's 8080 is rs3's 80. */
  function mapped8080(): void {
    tsvsadm('-A', '-t', `${VIP}:8080`, '-s', 'rr');
    tsvsadm('-a', '-t', `${VIP}:8080`, '-r', `${rs(3)}:80`, '-m');
  }

  it('forward: curl through NAT sees wrr 3:1 exactly as the kernel schedules it', async () => {
    fresh();
    wrrHttp();
    await settle();
    const got = Array.from({ length: 12 }, () => curl(`http://${VIP}/`));
    // The kernel's wrr, fed the same changes (rs2 added, then rs1 at the head), picks:
    const views: DestView[] = [];
    const w = createScheduler('wrr', { flags: 0 })!;
    w.update(views, { kind: 'init' });
    for (const [name, weight] of [['rs2', 1], ['rs1', 3]] as const) {
      views.unshift({ index: 0, addr: Number(name.slice(2)), port: 80, weight, lastWeight: weight, overloaded: false, available: true, activeConns: 0, inactConns: 0 });
      views.forEach((v, i) => (v.index = i));
      w.update(views, { kind: 'add', at: 0 });
    }
    const want = Array.from({ length: 12 }, () => `rs${views[w.schedule(views, { saddr: 0, sport: 0, daddr: 0, dport: 0 }, 0)].addr}`);
    expect(got).toEqual(want);
    // Three to one, cycle after cycle.
    expect(got.slice(-8).filter((x) => x === 'rs1')).toHaveLength(6);
    const list = tsvsadm('-L', '-n');
    expect(list).toContain(`TCP  ${VIP}:80 wrr`);
    expect(list).toMatch(new RegExp(`-> ${rs(1).replace(/\./g, '\\.')}:80\\s+Masq\\s+3`));
  }, 30_000);

  it('forward: dig through a NAT UDP service is answered by each real server in turn', async () => {
    fresh();
    tsvsadm('-A', '-u', `${VIP}:53`, '-s', 'rr');
    tsvsadm('-a', '-u', `${VIP}:53`, '-r', `${rs(1)}:53`, '-m');
    tsvsadm('-a', '-u', `${VIP}:53`, '-r', `${rs(2)}:53`, '-m');
    await settle();
    const answers = [dig(), dig(), dig(), dig()];
    expect(answers.sort()).toEqual(['rs1', 'rs1', 'rs2', 'rs2']);
  }, 30_000);

  it('forward: NAT port mapping sends VIP:8080 to rs3:80 and the reply comes from VIP:8080', async () => {
    fresh();
    mapped8080();
    await settle();
    expect(curl(`http://${VIP}:8080/`)).toBe('rs3');
    const stats = tsvsadm('-L', '-n', '--stats', '-t', `${VIP}:8080`);
    expect(stats).toMatch(new RegExp(`-> ${rs(3).replace(/\./g, '\\.')}:80\\s+1\\s`));
  }, 30_000);

  it('forward: wrk with 256 concurrent connections for 10 s through NAT has zero errors', async () => {
    fresh();
    wrrHttp();
    await settle();
    const w = wrk(256, 10);
    expect(w.errors).toBe(0);
    expect(w.requests).toBeGreaterThan(1000);
  }, 60_000);

  it('forward: a long-lived connection survives rule edits and a worker kill -9', async () => {
    fresh();
    wrrHttp();
    await settle();
    const ka = keepalive(80, 9000, 100, 10000);
    await waitFor('the keepalive connection to be ESTABLISHED', () => established(80));
    tsvsadm('-e', '-t', `${VIP}:80`, '-r', `${rs(2)}:80`, '-m', '-w', '2');
    tsvsadm('-E', '-t', `${VIP}:80`, '-s', 'rr');
    tsvsadm('-a', '-t', `${VIP}:80`, '-r', `${rs(3)}:80`, '-m');
    await settle();
    // The connection keeps carrying requests under the edited table (a request every 100 ms, 2 packets each).
    const edited = inPkts(80);
    await waitFor('requests on the connection after the edits', () => inPkts(80) >= edited + 6, 5_000);
    const before = status();
    const victim = before.workers[0];
    process.kill(victim.pid, 'SIGKILL');
    const after = await waitFor('worker 0 to be restarted', () => {
      const s = status();
      return s.workers[0].alive && s.workers[0].pid !== victim.pid ? s : undefined;
    });
    expect(after.workers[0].restarts).toBe(victim.restarts + 1);
    const { code, out } = await ka.result;
    const res = JSON.parse(out) as { requests: number; ok: number; failed: number; bodies: Record<string, number>; closed: boolean };
    expect(res.failed).toBe(0);
    expect(res.closed).toBe(false);
    expect(res.ok).toBeGreaterThan(40);
    // One connection, one real server, all along.
    expect(Object.keys(res.bodies)).toHaveLength(1);
    expect(code).toBe(0);
  }, 60_000);

  it('forward: a connection never meets a half-written kernel rule set: 20 rule rewrites under a live connection, no reset', async () => {
    fresh();
    mapped8080();
    await settle();
    const ka = keepalive(8080, 5000, 20, 5000);
    await waitFor('the keepalive connection to be ESTABLISHED', () => established(8080));
    // Each change adds or removes a NAT real server, so tsvsd rewrites its raw rules every time.
    for (let i = 0; i < 10; i++) {
      tsvsadm('-A', '-t', `${VIP}:${9100 + i}`, '-s', 'rr');
      tsvsadm('-a', '-t', `${VIP}:${9100 + i}`, '-r', `${rs(1)}:${9100 + i}`, '-m');
    }
    for (let i = 0; i < 10; i++) tsvsadm('-D', '-t', `${VIP}:${9100 + i}`);
    const { code, out } = await ka.result;
    expect(code).toBe(0);
    const res = JSON.parse(out) as { ok: number; failed: number; closed: boolean };
    expect(res.closed).toBe(false);
    expect(res.failed).toBe(0);
    expect(res.ok).toBeGreaterThan(50);
  }, 30_000);

  it('forward: crafted and random malformed frames are dropped, counted by reason, and the workers live on', async () => {
    fresh();
    // A service on VIP:80 makes a FIN without a connection a drop_no_conn (without one it is the kernel's).
    wrrHttp();
    mapped8080();
    await settle();
    const before = status();
    const mac = sh('d1', ['cat', '/sys/class/net/front/address']);
    const fz = execCapture('client', [NODE, `${REPO_ROOT}/test/support/frame-fuzzer.ts`, 'eth0', mac, '10.200.0.100', VIP, '20', '7'], { timeoutMs: 30_000 });
    expect(fz.status, fz.stderr).toBe(0);
    // hping3: fragments, FIN without a connection, and a protocol tsvs does not carry, each bounded.
    for (const args of [['-c', '20', '-i', 'u2000', '-2', '-p', '53', '-d', '3000', VIP], ['-c', '20', '-i', 'u2000', '-F', '-p', '80', VIP], ['-c', '10', '-i', 'u2000', '-0', '-H', '47', VIP]]) {
      execCapture('client', ['timeout', '10', 'hping3', '-q', ...args], { timeoutMs: 20_000 });
    }
    const reasons = ['net_drop_truncated_ip', 'net_drop_bad_ip_version', 'net_drop_bad_ihl', 'net_drop_bad_total_len', 'net_drop_bad_ip_csum', 'net_drop_fragment', 'net_drop_truncated_l4', 'net_drop_bad_tcp_doff', 'net_drop_bad_udp_len', 'net_drop_unsupported_proto'];
    const counted = (s: ReturnType<typeof status>): boolean => [...reasons, 'drop_no_conn'].every((k) => (s.events[k] ?? 0) - (before.events[k] ?? 0) >= 20);
    // The workers publish their counters per batch; wait until every reason is counted, then check each.
    const after = await waitFor('the workers to count every malformed frame', () => {
      const s = status();
      return counted(s) ? s : undefined;
    }, 5_000).catch(() => status());
    const delta = (k: string): number => (after.events[k] ?? 0) - (before.events[k] ?? 0);
    for (const reason of reasons) expect(delta(reason), reason).toBeGreaterThanOrEqual(20);
    expect(delta('drop_no_conn')).toBeGreaterThanOrEqual(20);
    expect(after.workers.every((w) => w.alive)).toBe(true);
    expect(after.workers.map((w) => w.restarts)).toEqual(before.workers.map((w) => w.restarts));
    expect(curl(`http://${VIP}:8080/`)).toBe('rs3');
  }, 60_000);

  it('forward: a persistent fwmark service spans ports: a client\'s 80 and 8443 go to one real server (the seeds\' HTTP+HTTPS case)', async () => {
    await fwmarkSpansPorts('-m');
  }, 30_000);
});

/**
 * The seeds' HTTP+HTTPS case: mark rules put VIP:80 and VIP:8443 in fwmark service 1 (persistent, 3 real
 * servers or as many as the lab has, forwarded with `flag`); a client's requests to both ports reach one server.
 */
async function fwmarkSpansPorts(flag: string, servers = 3): Promise<void> {
  tsvsadm('-C');
  const rules = `-A PREROUTING -t mangle -p tcp -d ${VIP} -m multiport --dports 80,8443 -j MARK --set-mark 1\n`;
  const set = execCapture('d1', ['tsvsadm', 'marks', '-'], { input: rules });
  expect(set.status, set.stderr).toBe(0);
  expect(tsvsadm('marks')).toContain('--set-mark 1');
  tsvsadm('-A', '-f', '1', '-s', 'rr', '-p', '600');
  for (let n = 1; n <= servers; n++) tsvsadm('-a', '-f', '1', '-r', `${rs(n)}:0`, flag);
  await settle();
  const first = curl(`http://${VIP}/`);
  expect(first).toMatch(/^rs\d$/);
  for (let i = 0; i < 3; i++) {
    expect(curl(`http://${VIP}:8443/`)).toBe(first);
    expect(curl(`http://${VIP}/`)).toBe(first);
  }
  expect(tsvsadm('-L', '-n')).toContain('FWM  1 rr persistent 600');
  // One template for the client (protocol IP, client port 0), beside its connections.
  const conns = tsvsadm('-L', '-n', '-c');
  expect(conns).toMatch(/\n\S+\s+\S+\s+NONE|ASSURED/);
  // Leave no mark rules behind: the next case builds its own table.
  const cleared = execCapture('d1', ['tsvsadm', 'marks', '-'], { input: '' });
  expect(cleared.status, cleared.stderr).toBe(0);
  tsvsadm('-C');
}

for (const mode of ['dr', 'tun'] as const) {
  describe(`forward ${mode.toUpperCase()} (1 director, 2 real servers)`, () => {
    labFor({ mode, servers: 2 }, TOOLS);
    const flag = mode === 'dr' ? '-g' : '-i';

    /** Each case starts from an empty table: rr over both real servers on VIP:80 and VIP:53. */
    async function httpAndDns(): Promise<void> {
      tsvsadm('-C');
      tsvsadm('-A', '-t', `${VIP}:80`, '-s', 'rr');
      tsvsadm('-a', '-t', `${VIP}:80`, '-r', rs(1), flag);
      tsvsadm('-a', '-t', `${VIP}:80`, '-r', rs(2), flag);
      tsvsadm('-A', '-u', `${VIP}:53`, '-s', 'rr');
      tsvsadm('-a', '-u', `${VIP}:53`, '-r', rs(1), flag);
      tsvsadm('-a', '-u', `${VIP}:53`, '-r', rs(2), flag);
      await settle();
    }

    it(`forward: curl and dig through ${mode.toUpperCase()} reach both real servers; replies go straight to the client`, async () => {
      await httpAndDns();
      const bodies = Array.from({ length: 4 }, () => curl(`http://${VIP}/`));
      expect(bodies.sort()).toEqual(['rs1', 'rs1', 'rs2', 'rs2']);
      expect([dig(), dig()].sort()).toEqual(['rs1', 'rs2']);
      const st = tsvsadm('-L', '-n', '--stats', '-t', `${VIP}:80`);
      // The director sees only the client's half: no packets out.
      expect(st).toMatch(new RegExp(`TCP  ${VIP.replace(/\./g, '\\.')}:80\\s+\\d+\\s+\\d+\\s+0\\s`));
      expect(tsvsadm('-L', '-n')).toContain(mode === 'dr' ? 'Route' : 'Tunnel');
    });

    if (mode === 'tun') {
      it('forward: TUN over GUE (--tun-type gue --tun-port) reaches the real server, which answers the client directly', async () => {
        tsvsadm('-C');
        tsvsadm('-A', '-t', `${VIP}:8443`, '-s', 'rr');
        tsvsadm('-a', '-t', `${VIP}:8443`, '-r', rs(2), '-i', '--tun-type', 'gue', '--tun-port', String(LAB_GUE_PORT));
        await settle();
        expect(curl(`http://${VIP}:8443/`)).toBe('rs2');
        expect(tsvsadm('-S', '-n')).toContain(`-a -t ${VIP}:8443 -r ${rs(2)}:8443 -i -w 1 --tun-type gue --tun-port ${LAB_GUE_PORT}`);
      });
    }

    it(`forward: wrk with 256 concurrent connections for 10 s through ${mode.toUpperCase()} has zero errors`, async () => {
      await httpAndDns();
      const w = wrk(256, 10);
      expect(w.errors).toBe(0);
      expect(w.requests).toBeGreaterThan(1000);
    }, 60_000);
  });
}

describe('forward with 2 workers (NAT)', () => {
  labFor({ mode: 'nat', servers: 2, workers: 2 }, TOOLS);
  const clients = Array.from({ length: 40 }, (_, i) => `10.200.0.${120 + i}`);

  beforeAll(async () => {
    for (const a of clients) sh('client', ['ip', 'addr', 'add', `${a}/24`, 'dev', 'eth0']);
    tsvsadm('-A', '-t', `${VIP}:80`, '-s', 'rr');
    tsvsadm('-a', '-t', `${VIP}:80`, '-r', `${rs(1)}:80`, '-m');
    tsvsadm('-a', '-t', `${VIP}:80`, '-r', `${rs(2)}:80`, '-m');
    await settle();
  }, 30_000);

  it('forward: flows from 40 client addresses spread over both workers, and no reply reaches the wrong one', () => {
    for (const a of clients) expect(curl(`http://${VIP}/`, ['--interface', a]), a).toMatch(/^rs[12]$/);
    const s = status();
    expect(s.workers).toHaveLength(2);
    expect(s.forwardedByWorker.every((n) => n > 0)).toBe(true);
    expect(s.orphansByWorker).toEqual([0, 0]);
    expect(s.events.forwarded_out ?? 0).toBeGreaterThan(0);
  });
});

for (const mode of ['nat', 'dr', 'tun'] as const) {
  describe(`forward ${mode.toUpperCase()} in safe mode (NFQUEUE backend)`, () => {
    labFor({ mode, servers: 2, backend: 'nfqueue' }, TOOLS);
    const flag = mode === 'nat' ? '-m' : mode === 'dr' ? '-g' : '-i';

    it(`forward: safe mode carries curl and dig through ${mode.toUpperCase()} to both real servers`, async () => {
      tsvsadm('-C');
      tsvsadm('-A', '-t', `${VIP}:80`, '-s', 'rr');
      tsvsadm('-a', '-t', `${VIP}:80`, '-r', `${rs(1)}:80`, flag);
      tsvsadm('-a', '-t', `${VIP}:80`, '-r', `${rs(2)}:80`, flag);
      tsvsadm('-A', '-u', `${VIP}:53`, '-s', 'rr');
      tsvsadm('-a', '-u', `${VIP}:53`, '-r', `${rs(1)}:53`, flag);
      tsvsadm('-a', '-u', `${VIP}:53`, '-r', `${rs(2)}:53`, flag);
      await settle();
      const bodies = Array.from({ length: 4 }, () => curl(`http://${VIP}/`));
      expect(bodies.sort()).toEqual(['rs1', 'rs1', 'rs2', 'rs2']);
      expect([dig(), dig()].sort()).toEqual(['rs1', 'rs2']);
      const s = status();
      expect(s.orphansByWorker.every((n) => n === 0)).toBe(true);
      expect(s.events.forwarded_in ?? 0).toBeGreaterThan(0);
      if (mode === 'nat') expect(s.events.forwarded_out ?? 0).toBeGreaterThan(0);
    });

    if (mode !== 'tun') {
      it(`forward: safe mode queues a fwmark service by its mark rules and the worker classifies it (${mode.toUpperCase()}, 80 and 8443 as one)`, async () => {
        await fwmarkSpansPorts(flag, 2);
      }, 30_000);
    }
  });
}

describe('forward to a real server on the director itself (local node)', () => {
  labFor({ mode: 'nat', servers: 1 }, TOOLS);
  let server: ChildProcess | undefined;

  beforeAll(async () => {
    // A web server in d1, on every address: packets for a local real server arrive unchanged (VIP:port).
    const dir = sh('d1', ['mktemp', '-d']);
    sh('d1', ['sh', '-c', `echo d1 > ${dir}/index.html`]);
    server = spawn('ip', ['netns', 'exec', 'tsvs-d1', 'python3', '-m', 'http.server', '8081', '--bind', '0.0.0.0', '--directory', dir], { stdio: 'ignore' });
    await waitFor('the web server in d1', () => execCapture('d1', ['curl', '-s', '-m', '1', 'http://127.0.0.1:8081/']).status === 0, 5_000, 100);
  }, 30_000);

  afterAll(() => {
    if (server?.pid && server.exitCode === null) server.kill('SIGKILL');
  });

  it('forward: a local real server (the director\'s own address) answers the client through the VIP', async () => {
    tsvsadm('-C');
    tsvsadm('-A', '-t', `${VIP}:8081`, '-s', 'rr');
    tsvsadm('-a', '-t', `${VIP}:8081`, '-r', `${directorDip(1)}:8081`, '-g');
    await settle();
    expect(curl(`http://${VIP}:8081/`)).toBe('d1');
    expect(curl(`http://${VIP}:8081/`)).toBe('d1');
    expect(status().events.local_delivered ?? 0).toBeGreaterThan(0);
  });

  it('forward: NAT to the local real server on another port (VIP:8090 → DIP:8081): DNAT on the TUN device, replies mapped back', async () => {
    tsvsadm('-C');
    tsvsadm('-A', '-t', `${VIP}:8090`, '-s', 'rr');
    tsvsadm('-a', '-t', `${VIP}:8090`, '-r', `${directorDip(1)}:8081`, '-m');
    await settle();
    expect(sh('d1', ['iptables', '-t', 'nat', '-S', 'TSVS-RAW-LOCAL'])).toContain(`-A TSVS-RAW-LOCAL -d ${VIP}/32 -i tsvs-local0 -p tcp -m tcp --dport 8090 -j DNAT --to-destination ${directorDip(1)}:8081`);
    expect(curl(`http://${VIP}:8090/`)).toBe('d1');
    expect(curl(`http://${VIP}:8090/`)).toBe('d1');
    tsvsadm('-D', '-t', `${VIP}:8090`);
    await settle();
    await waitFor('the TSVS-RAW-LOCAL chain to go', () => execCapture('d1', ['iptables', '-t', 'nat', '-S', 'TSVS-RAW-LOCAL']).status !== 0, 2_000, 100).catch(() => undefined);
    expect(execCapture('d1', ['iptables', '-t', 'nat', '-S', 'TSVS-RAW-LOCAL']).status).not.toBe(0);
    expect(sh('d1', ['iptables', '-t', 'nat', '-S', 'PREROUTING'])).not.toContain('TSVS-RAW-LOCAL');
  });
});
