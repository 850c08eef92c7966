// npm run bench -- cps: TCP connections per second through the director (wrk, a new connection per request)
// for kernel iptables DNAT, HAProxy in tcp mode and tsvs NAT, side by side on the same lab.
// Ends with one line of JSON: cps_vs_kernel, cps_vs_haproxy.
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VIP, addrOf, cores, inNs, kernelDnat, lab, log, median, plan, rps, sleep, spawnInNs, table } from './_lib.ts';

interface Opts {
  seconds: number;
  runs: number;
  conns: number;
}

function parseOpts(args: string[]): Opts {
  const o: Opts = { seconds: 5, runs: 2, conns: 32 };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--seconds') o.seconds = Number(args[++i]);
    else if (a === '--runs') o.runs = Number(args[++i]);
    else if (a === '--conns') o.conns = Number(args[++i]);
    else throw new Error(`cps: unknown option ${a} (--seconds N --runs N --conns N)`);
  }
  return o;
}

interface WrkResult {
  rps: number;
  errors: number;
}

/** Parses wrk's summary: Requests/sec and every error counter (socket errors, non-2xx). */
export function parseWrk(out: string): WrkResult {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  let errors = 0;
  const se = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  if (se) errors += se.slice(1).reduce((s, x) => s + Number(x), 0);
  const n2 = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (n2) errors += Number(n2[1]);
  return { rps, errors };
}

function wrk(o: Opts): WrkResult {
  const out = inNs('client', ['taskset', '-c', String(cores() - 1), 'wrk', '-t1', `-c${o.conns}`, `-d${o.seconds}s`, '-H', 'Connection: close', `http://${VIP}/`], { timeoutMs: (o.seconds + 20) * 1000 });
  return parseWrk(out);
}

/**
 * A fresh lab for one director under test, with the client set up as load generators are: the whole port
 * range, and TIME_WAIT ports reused for new connections (else 5 s of Connection: close at thousands per second
 * exhausts the ephemeral ports, and every later figure measures that instead).
 */
function freshLab(): { rips: string[] } {
  lab('down');
  lab('up', '--mode', 'nat', '--servers', '2');
  inNs('client', ['sysctl', '-qw', 'net.ipv4.ip_local_port_range=1024 65535', 'net.ipv4.tcp_tw_reuse=1']);
  const p = plan();
  return { rips: ['rs1', 'rs2'].map((n) => addrOf(p, n, '10.200.1.')) };
}

export async function main(args: string[]): Promise<void> {
  const o = parseOpts(args);
  const rows: (string | number)[][] = [['director', 'conn/s (median)', 'runs', 'errors']];
  const got: Record<string, number> = {};
  const measure = (name: string): void => {
    const rs: WrkResult[] = [];
    for (let r = 0; r < o.runs; r++) rs.push(wrk(o));
    got[name] = median(rs.map((x) => x.rps));
    rows.push([name, Math.round(got[name]), rs.map((x) => Math.round(x.rps)).join(' '), rs.reduce((s, x) => s + x.errors, 0)]);
  };
  try {
    log('kernel DNAT');
    let { rips } = freshLab();
    const undo = kernelDnat(rips, 'tcp', 80);
    rps('d1', 'front', 0);
    measure('kernel DNAT');
    rps('d1', 'front', null);
    undo();

    log('HAProxy tcp mode');
    ({ rips } = freshLab());
    const dir = mkdtempSync(join(tmpdir(), 'tsvs-haproxy-'));
    const cfg = join(dir, 'haproxy.cfg');
    writeFileSync(cfg, [
      'global', '  nbthread 1', '  maxconn 8000',
      'defaults', '  mode tcp', '  timeout connect 5s', '  timeout client 30s', '  timeout server 30s',
      'frontend f', `  bind ${VIP}:80`, '  default_backend b',
      'backend b', '  balance roundrobin', ...rips.map((r, i) => `  server rs${i + 1} ${r}:80`), '',
    ].join('\n'));
    inNs('d1', ['ip', 'addr', 'replace', `${VIP}/32`, 'dev', 'front']);
    // HAProxy's own connections to the servers need ports too.
    inNs('d1', ['sysctl', '-qw', 'net.ipv4.ip_local_port_range=1024 65535', 'net.ipv4.tcp_tw_reuse=1']);
    const hap = spawnInNs('d1', ['taskset', '-c', '0', 'haproxy', '-db', '-f', cfg]);
    await sleep(700);
    try {
      measure('HAProxy tcp');
    } finally {
      hap.kill('SIGTERM');
      await sleep(300);
    }

    log('tsvs NAT');
    ({ rips } = freshLab());
    inNs('d1', ['tsvsadm', '-A', '-t', `${VIP}:80`, '-s', 'rr']);
    for (const r of rips) inNs('d1', ['tsvsadm', '-a', '-t', `${VIP}:80`, '-r', `${r}:80`, '-m']);
    await sleep(500);
    measure('tsvs NAT 1 worker');
  } finally {
    lab('down');
  }
  process.stdout.write(`\ncps: wrk -t1 -c${o.conns} -d${o.seconds}s -H 'Connection: close' http://${VIP}/ from the client pinned to CPU ${cores() - 1}; nginx on 2 real servers;\n`);
  process.stdout.write(`director work on CPU 0 (kernel: RPS; HAProxy: taskset, nbthread 1; tsvs: 1 worker). A fresh lab per director; the client\n`);
  process.stdout.write(`(and HAProxy) use ports 1024-65535 with tcp_tw_reuse=1. Median of ${o.runs} runs.\n\n`);
  table(rows);
  const t = got['tsvs NAT 1 worker'];
  process.stdout.write('\n' + JSON.stringify({
    bench: 'cps',
    cps_vs_kernel: Number((t / got['kernel DNAT']).toFixed(3)),
    cps_vs_haproxy: Number((t / got['HAProxy tcp']).toFixed(3)),
    tsvs_cps: Math.round(t), kernel_cps: Math.round(got['kernel DNAT']), haproxy_cps: Math.round(got['HAProxy tcp']),
    seconds: o.seconds, runs: o.runs, conns: o.conns,
  }) + '\n');
}
