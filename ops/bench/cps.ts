// npm run bench -- cps: TCP connections per second through the director (wrk, a new connection per request)
// for kernel iptables DNAT, HAProxy in tcp mode and tsvs NAT, side by side on the same lab; then tsvs NAT with
// decision tracing at 1 % and 100 % (one decision per connection, spans to an OTLP sink in the director's namespace),
// interleaved over rounds, with each process's CPU. Ends with one line of JSON: cps_vs_kernel, cps_vs_haproxy,
// trace_cost_pct_1, trace_cost_pct_100 (medians of per-round paired costs), and the figures behind them.
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HZ, NODE, VIP, addrOf, cores, cpuTimes, inNs, kernelDnat, lab, log, median, plan, rps, sleep, spawnInNs, table } from './_lib.ts';
import { cpuByRole, cpuSnapshot } from './_proc-cpu.ts';

/** Ports in d1 for the tsvs runs: the OTLP sink and tsvsd's HTTP listener (readiness, the telemetry counters). */
const OTLP_SINK_PORT = 46062;
const HTTP_PORT = 46063;

/** The tsvs configurations, by name: tracing off, or the sampling ratio. */
const TSVS_CONFIGS = [['tsvs NAT 1 worker', null], ['tsvs NAT traced 1 %', '0.01'], ['tsvs NAT traced 100 %', '1']] as const;
/** Lab nodes whose processes' CPU is counted in the tsvs runs. */
const LAB_NODES = ['d1', 'client', 'rs1', 'rs2'] as const;
/**
 * Roles shown in the CPU table, in this order (others are summed as "other"). wrk is not among them: it runs and
 * exits between the two readings. The first four are the director's own processes (tsvs's CPU per connection).
 */
const CPU_ROLES = ['worker', 'tsvsd', 'telemetry', 'otlp-sink', 'nginx'] as const;
const TSVS_ROLES = ['worker', 'tsvsd', 'telemetry', 'otlp-sink'] as const;

interface Opts {
  seconds: number;
  runs: number;
  conns: number;
  /** Only the three tsvs configurations (no kernel DNAT, no HAProxy: their JSON figures are null). */
  tsvsOnly: boolean;
  /** Rounds of the three interleaved tsvs configurations (default: --runs, at least 5). */
  rounds: number | null;
  /**
   * Seconds of wrk before each measured tsvs run, the same for every configuration (not counted). Default 10: the
   * exporter child, fresh in every traced lab, compiles its span path for its first ~1 000 spans (at 1 %, ~10 s of
   * this load); measured earlier, its CPU would be its start-up, not what tracing costs a running director.
   */
  warmup: number;
}

function parseOpts(args: string[]): Opts {
  const o: Opts = { seconds: 5, runs: 2, conns: 32, tsvsOnly: false, rounds: null, warmup: 10 };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--seconds') o.seconds = Number(args[++i]);
    else if (a === '--runs') o.runs = Number(args[++i]);
    else if (a === '--conns') o.conns = Number(args[++i]);
    else if (a === '--tsvs-only') o.tsvsOnly = true;
    else if (a === '--rounds') o.rounds = Number(args[++i]);
    else if (a === '--warmup') o.warmup = Number(args[++i]);
    else throw new Error(`cps: unknown option ${a} (--seconds N --runs N --conns N --tsvs-only --rounds N --warmup S)`);
  }
  return o;
}

interface WrkResult {
  rps: number;
  errors: number;
}

/** One tsvs run: wrk's figures, and the CPU seconds each role used while wrk ran (over `secs` s of wall time). */
interface TsvsRun extends WrkResult {
  cpu: Record<string, number>;
  secs: number;
}

/**
 * The cost of a traced configuration per round, paired with the untraced run of the same round:
 * 100 × (off − traced) / off, percent, one per round.
 */
export function pairedCosts(off: readonly number[], traced: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < Math.min(off.length, traced.length); i++) out.push(100 * (1 - traced[i] / off[i]));
  return out;
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

function wrk(o: Opts, seconds = o.seconds): WrkResult {
  const out = inNs('client', ['taskset', '-c', String(cores() - 1), 'wrk', '-t1', `-c${o.conns}`, `-d${seconds}s`, '-H', 'Connection: close', `http://${VIP}/`], { timeoutMs: (seconds + 20) * 1000 });
  return parseWrk(out);
}

/** tsvsd's /metrics in d1 (every tsvs configuration runs --http), '' when it does not answer. */
function metrics(): string {
  return inNs('d1', ['curl', '-s', '-m', '3', `http://127.0.0.1:${HTTP_PORT}/metrics`], { allowFail: true });
}

/**
 * Waits until tsvsd answers /metrics and, when tracing, reports the telemetry child's counters (the child has
 * started, attached the rings and sent its first stats), so that no start-up is measured. Throws after 20 s.
 */
async function ready(tracing: boolean): Promise<void> {
  for (let t = 0; t < 200; t++) {
    const m = metrics();
    if (tracing ? /^tsvs_decisions_read_total \d+$/m.test(m) : m.includes('tsvs_workers')) return;
    await sleep(100);
  }
  throw new Error(`cps: tsvsd's /metrics did not show ${tracing ? 'the telemetry counters (tsvs_decisions_read_total)' : 'tsvs_workers'} within 20 s`);
}

/**
 * A fresh lab for one director under test, with the client set up as load generators are: the whole port
 * range, and TIME_WAIT ports reused for new connections (else 5 s of Connection: close at thousands per second
 * exhausts the ephemeral ports, and every later figure measures that instead).
 */
function freshLab(tsvsdArgs?: string): { rips: string[] } {
  lab('down');
  lab('up', '--mode', 'nat', '--servers', '2', ...(tsvsdArgs ? ['--tsvsd-args', tsvsdArgs] : []));
  inNs('client', ['sysctl', '-qw', 'net.ipv4.ip_local_port_range=1024 65535', 'net.ipv4.tcp_tw_reuse=1']);
  const p = plan();
  return { rips: ['rs1', 'rs2'].map((n) => addrOf(p, n, '10.200.1.')) };
}

export async function main(args: string[]): Promise<void> {
  const o = parseOpts(args);
  const rows: (string | number)[][] = [['director', 'conn/s (median)', 'runs', 'errors']];
  const got: Record<string, number> = {};
  const traced: Record<string, string> = {};
  const runsOf: Record<string, TsvsRun[]> = {};
  const rounds = o.rounds ?? Math.max(o.runs, 5);
  const measure = (name: string): void => {
    const rs: WrkResult[] = [];
    for (let r = 0; r < o.runs; r++) rs.push(wrk(o));
    got[name] = median(rs.map((x) => x.rps));
    rows.push([name, Math.round(got[name]), rs.map((x) => Math.round(x.rps)).join(' '), rs.reduce((s, x) => s + x.errors, 0)]);
  };
  try {
    let rips: string[] = [];
    if (!o.tsvsOnly) {
      log('kernel DNAT');
      ({ rips } = freshLab());
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
    }

    // tsvs NAT without tracing, with tracing at 1 % and at 100 %, interleaved (one run of each per round, a fresh
    // lab each, the order rotated every round), so that a machine that slows down or speeds up during the bench
    // moves all three alike. Every new connection is one scheduling decision: with tracing on every connection writes
    // a record; the telemetry child exports the sampled ones to a sink that reads and discards OTLP requests (in d1,
    // where tsvsd runs). The CPU each process used during the run is read from /proc (utime + stime).
    const sink = `require('node:http').createServer((q, s) => { q.resume(); q.on('end', () => s.writeHead(200).end()); }).listen(${OTLP_SINK_PORT}, '127.0.0.1');`;
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < TSVS_CONFIGS.length; k++) {
        const [name, ratio] = TSVS_CONFIGS[(k + r) % TSVS_CONFIGS.length];
        log(`${name} (round ${r + 1} of ${rounds})`);
        // Every configuration serves /metrics (--http), so that the comparison isolates tracing: the records, the
        // telemetry child and its sink.
        const http = `--http 127.0.0.1:${HTTP_PORT}`;
        ({ rips } = freshLab(ratio === null ? http : `${http} --otlp http://127.0.0.1:${OTLP_SINK_PORT} --trace-ratio ${ratio}`));
        const s = ratio === null ? null : spawnInNs('d1', [NODE, '-e', sink]);
        try {
          inNs('d1', ['tsvsadm', '-A', '-t', `${VIP}:80`, '-s', 'rr']);
          for (const rip of rips) inNs('d1', ['tsvsadm', '-a', '-t', `${VIP}:80`, '-r', `${rip}:80`, '-m']);
          await ready(ratio !== null);
          await sleep(500);
          // The same warm-up for every configuration: the worker's (and the exporter's) code paths compiled, the
          // connection table and the servers in their steady state.
          if (o.warmup > 0) wrk(o, o.warmup);
          const c0 = cpuSnapshot(LAB_NODES);
          const m0 = cpuTimes().busy.reduce((n, x) => n + x, 0);
          const t0 = process.hrtime.bigint();
          const res = wrk(o);
          const secs = Number(process.hrtime.bigint() - t0) / 1e9;
          const cpu = cpuByRole(c0, cpuSnapshot(LAB_NODES));
          cpu.machine = (cpuTimes().busy.reduce((n, x) => n + x, 0) - m0) / HZ;
          (runsOf[name] ??= []).push({ ...res, cpu, secs });
          if (ratio !== null) {
            await sleep(1500);
            const m = metrics();
            const v = (key: string): number => Number(new RegExp(`^${key} (\\d+)$`, 'm').exec(m)?.[1] ?? NaN);
            const dropped = [...m.matchAll(/^tsvs_decisions_dropped_total\{reason="(\w+)"\} (\d+)$/gm)].map(([, key, n]) => `${key} ${n}`).join(', ');
            traced[`${name}, round ${r + 1}`] = `read ${v('tsvs_decisions_read_total')}, traced ${v('tsvs_decisions_traced_total')}, exported ${v('tsvs_trace_spans_exported_total')}; dropped: ${dropped}`;
          }
        } finally {
          s?.kill('SIGTERM');
        }
      }
    }
    for (const [name] of TSVS_CONFIGS) {
      const rs = runsOf[name];
      got[name] = median(rs.map((x) => x.rps));
      rows.push([name, Math.round(got[name]), rs.map((x) => Math.round(x.rps)).join(' '), rs.reduce((n, x) => n + x.errors, 0)]);
    }
  } finally {
    lab('down');
  }
  process.stdout.write(`\ncps: wrk -t1 -c${o.conns} -d${o.seconds}s -H 'Connection: close' http://${VIP}/ from the client pinned to CPU ${cores() - 1}; nginx on 2 real servers;\n`);
  process.stdout.write(`director work on CPU 0 (kernel: RPS; HAProxy: taskset, nbthread 1; tsvs: 1 worker). A fresh lab per director; the client\n`);
  process.stdout.write(`(and HAProxy) use ports 1024-65535 with tcp_tw_reuse=1. Kernel and HAProxy: median of ${o.runs} runs. tsvs: ${rounds} rounds of the three\n`);
  process.stdout.write(`configurations interleaved (a fresh lab each, the order rotated every round, a ${o.warmup} s wrk warm-up before each measured run,\n`);
  process.stdout.write(`the traced ones once the telemetry child reports; tsvsd serves /metrics in all three); the tracing cost is the median over\n`);
  process.stdout.write(`rounds of each round's paired cost.\n\n`);
  table(rows);
  for (const [k, v] of Object.entries(traced)) process.stdout.write(`${k}: ${v}\n`);
  const cpuRows: (string | number)[][] = [['tsvs NAT', ...CPU_ROLES, 'other', 'processes', 'machine (softirq incl.)', 'director µs/conn']];
  const usPerConn: Record<string, number> = {};
  for (const [name] of TSVS_CONFIGS) {
    // CPU seconds per second of wrk, summed over the runs: the share of a CPU each role used.
    const secs = runsOf[name].reduce((n, x) => n + x.secs, 0);
    const conns = runsOf[name].reduce((n, x) => n + x.rps * x.secs, 0);
    const sum: Record<string, number> = {};
    for (const x of runsOf[name]) for (const [role, c] of Object.entries(x.cpu)) sum[role] = (sum[role] ?? 0) + c;
    const procs = Object.entries(sum).filter(([role]) => role !== 'machine');
    const other = procs.filter(([role]) => !(CPU_ROLES as readonly string[]).includes(role)).reduce((n, [, c]) => n + c, 0);
    const all = procs.reduce((n, [, c]) => n + c, 0);
    const pct = (c: number): string => ((100 * c) / secs).toFixed(1);
    usPerConn[name] = (1e6 * TSVS_ROLES.reduce((n, role) => n + (sum[role] ?? 0), 0)) / conns;
    cpuRows.push([name, ...CPU_ROLES.map((role) => pct(sum[role] ?? 0)), pct(other), pct(all), pct(sum.machine ?? 0), usPerConn[name].toFixed(1)]);
  }
  process.stdout.write('\nCPU % while wrk ran (processes: utime + stime from /proc/PID/stat; machine: busy time of every CPU from /proc/stat,\n');
  process.stdout.write('other sessions\' jobs included; 100 = one CPU); director µs/conn: worker + tsvsd + telemetry + OTLP sink CPU per connection:\n');
  table(cpuRows);
  const t = got['tsvs NAT 1 worker'];
  const off = runsOf['tsvs NAT 1 worker'].map((x) => x.rps);
  const paired = (k: string): number[] => pairedCosts(off, runsOf[k].map((x) => x.rps));
  const p1 = paired('tsvs NAT traced 1 %');
  const p100 = paired('tsvs NAT traced 100 %');
  const fmt = (xs: number[]): string => `${xs.map((x) => x.toFixed(1)).join(' ')} (median ${median(xs).toFixed(1)}, range ${Math.min(...xs).toFixed(1)} to ${Math.max(...xs).toFixed(1)})`;
  process.stdout.write(`\nTracing cost per round, 100 × (off − traced) / off of the same round, %:\n  1 %:   ${fmt(p1)}\n  100 %: ${fmt(p100)}\n`);
  const round1 = (x: number): number => Number(x.toFixed(1));
  const cost = (k: string): number => round1(100 * (1 - got[k] / t));
  process.stdout.write('\n' + JSON.stringify({
    bench: 'cps',
    cps_vs_kernel: Number((t / got['kernel DNAT']).toFixed(3)),
    cps_vs_haproxy: Number((t / got['HAProxy tcp']).toFixed(3)),
    // The median of the per-round paired costs: each round's traced run against the untraced run of that round.
    trace_cost_pct_1: round1(median(p1)),
    trace_cost_pct_100: round1(median(p100)),
    trace_cost_pct_1_rounds: p1.map(round1),
    trace_cost_pct_100_rounds: p100.map(round1),
    trace_cost_pct_1_of_medians: cost('tsvs NAT traced 1 %'),
    trace_cost_pct_100_of_medians: cost('tsvs NAT traced 100 %'),
    tsvs_cps: Math.round(t), kernel_cps: Math.round(got['kernel DNAT']), haproxy_cps: Math.round(got['HAProxy tcp']),
    tsvs_traced_1_cps: Math.round(got['tsvs NAT traced 1 %']), tsvs_traced_100_cps: Math.round(got['tsvs NAT traced 100 %']),
    // The director's processes' CPU per connection (µs): what tracing adds there, less sensitive to the machine's load.
    director_us_per_conn: round1(usPerConn['tsvs NAT 1 worker']),
    director_us_per_conn_traced_1: round1(usPerConn['tsvs NAT traced 1 %']),
    director_us_per_conn_traced_100: round1(usPerConn['tsvs NAT traced 100 %']),
    seconds: o.seconds, runs: o.runs, conns: o.conns, tsvs_rounds: rounds, warmup: o.warmup,
  }) + '\n');
}
