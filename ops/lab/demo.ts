// The lab demo: builds labs (1 director, 3 real servers) in NAT, DR and TUN, drives real clients through tsvs, removes them;
// then a cluster (2 directors over a 3-node NATS cluster): long-lived connections survive a kill -9 of the leader and
// its return.
import type { ClusterStatus } from '../../shared/proto/cluster.ts';
import { fail, heal } from './faults.ts';
import { down, execCapture, LAB_NETNS_NAME, LabError, up } from './lab.ts';
import { listNetns } from './netns.ts';
import type { LabLog } from './lab.ts';
import { VIP, realServerIp } from './plan.ts';
import type { LabMode } from './plan.ts';
import { readState } from './state.ts';
import { haveService } from './services.ts';
import type { RunResult } from './sh.ts';
import { startEchoServer, startStreamClient } from './streams.ts';
import type { EchoServer, StreamClient, StreamSummary } from './streams.ts';

const SERVERS = 3;
/** Requests per forwarding round: two whole wrr cycles of 3+1+1, so the answer counts are exactly 6/2/2. */
const REQUESTS = 10;
const DIG_QUERIES = 3;
/** Weight of rs<j> is WEIGHTS[j-1]. */
const WEIGHTS = [3, 1, 1] as const;
/** Order of the `-a` commands: rs3, rs2, then rs1 (weight 3) last, so it is first in the scheduling list. */
const ADD_ORDER = [3, 2, 1] as const;
/** The TUN device rs-agent decap writes inner packets to (its default --tun-dev). */
const TUN_DEV = 'tsvs-tun0';

/** A forwarding method as the demo shows it. */
interface Round {
  mode: LabMode;
  /** The ipvsadm forwarding flag: -m masq (NAT), -g route (DR), -i tunnel (TUN). */
  flag: '-m' | '-g' | '-i';
  title: string;
  /** One line saying how replies travel. */
  how: string;
}

const ROUNDS: readonly Round[] = [
  { mode: 'nat', flag: '-m', title: 'NAT (-m, masquerading)', how: 'd1 rewrites the destination to the real server and the replies back to the VIP: both directions cross d1' },
  { mode: 'dr', flag: '-g', title: 'DR (-g, direct routing)', how: 'd1 only changes the MAC; the real servers hold the VIP on lo (arp_ignore) and answer the client directly' },
  { mode: 'tun', flag: '-i', title: 'TUN (-i, IPIP tunnelling)', how: 'd1 wraps each packet in IPIP to the real server, whose rs-agent decapsulates it; replies go to the client directly' },
];

/** Thrown when the demo is interrupted (SIGINT/SIGTERM) between two steps; the lab is still torn down. */
class DemoInterrupted extends Error {
  override name = 'DemoInterrupted';
}

/**
 * Runs the demo, writing a narrated transcript to `out`: for NAT, DR and TUN in turn it brings a lab up (1 director,
 * 3 real servers), creates the services with tsvsadm, sends real requests (curl, dig) from the client, shows what
 * tsvsadm reports, and takes the lab down. Returns 0 when every check passed, 1 otherwise (the last line says which
 * failed). Refuses (LabError) if a lab is already up: the demo builds and removes its own. Always tears down what it
 * built, also when a step throws or the process gets SIGINT/SIGTERM.
 */
export async function runDemo(out: LabLog = (l) => process.stdout.write(`${l}\n`)): Promise<number> {
  if (readState()) throw new LabError('lab: demo builds and removes its own lab, and one is up already; run down first');
  const failed: string[] = [];
  let interrupted = false;
  const onSignal = (): void => {
    interrupted = true;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const t0 = Date.now();
  out('tsvs demo: the client (10.200.0.100) talks to the VIP 10.200.0.10, which tsvsd on the director d1 owns;');
  out('the real servers rs1..rs3 (10.200.1.101-103) run nginx (body "rs<j>") and dnsmasq (TXT whoami.lab = "rs<j>").');
  out('"d1 $ cmd" runs cmd in d1\'s namespace, as `npm run lab -- exec d1 -- cmd` does; "$ cmd" runs on the host.');

  const ctx: Ctx = {
    out,
    check: (ok, what) => {
      out(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
      if (!ok) failed.push(what);
    },
    step: () => {
      if (interrupted) throw new DemoInterrupted('demo: interrupted');
    },
  };

  try {
    for (const round of ROUNDS) {
      if (round.mode === 'tun' && !haveService('rs-agent')) {
        out(`\n== ${round.title}`);
        out('# services/rs-agent/main.ts is not in this checkout: TUN is demonstrated in the lab tests once available.');
        continue;
      }
      await runRound(ctx, round);
    }
    await runClusterRound(ctx);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    failed.push(msg);
    out(`FAIL ${msg}`);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }

  if (readState()) {
    // Only reached after a throw in a round: a round takes its own lab down when it ends normally.
    out('\n$ npm run lab -- down');
    await down(out);
  }
  const left = listNetns().filter((n) => LAB_NETNS_NAME.test(n));
  if (left.length) {
    failed.push(`namespaces left behind: ${left.join(', ')}`);
    out(`FAIL namespaces left behind: ${left.join(', ')}`);
  }
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  if (failed.length === 0) {
    out(`\ndemo: all checks passed in ${secs} s (NAT, DR${haveService('rs-agent') ? ', TUN' : ''}, cluster failover); no lab left behind`);
    return 0;
  }
  out(`\ndemo: FAILED after ${secs} s: ${failed.length} check(s) failed:`);
  for (const f of failed) out(`  - ${f}`);
  return 1;
}

interface Ctx {
  out: LabLog;
  /** Prints an ok/FAIL line and records a failure. */
  check: (ok: boolean, what: string) => void;
  /** Called before each step: throws {@link DemoInterrupted} after a signal. */
  step: () => void;
}

/** Runs `argv` in `node`, showing it as `node $ shown` followed by its output as printed. */
function showRun(ctx: Ctx, node: string, argv: string[], shown = argv.join(' ')): RunResult {
  ctx.step();
  ctx.out(`${node} $ ${shown}`);
  const r = execCapture(node, argv, { timeoutMs: 20_000 });
  // Output as printed (ipvsadm's lines keep their trailing blanks); only the final newline goes.
  if (r.stdout.trim()) ctx.out(r.stdout.replace(/\n$/, ''));
  if (r.stderr.trim()) ctx.out(r.stderr.replace(/\n$/, ''));
  return r;
}

/** {@link showRun}, and a failed check (`<what>: \`argv\` on node exited N`) when the command fails. */
function mustRun(ctx: Ctx, what: string, node: string, argv: string[]): RunResult {
  const r = showRun(ctx, node, argv);
  if (r.status !== 0) ctx.check(false, `${what}: \`${argv.join(' ')}\` on ${node} exited ${r.status}`);
  return r;
}

/** One mode: up, a wrr HTTP service (and in NAT a rr DNS service), requests, listings, down (always). */
async function runRound(ctx: Ctx, round: Round): Promise<void> {
  const { out, check } = ctx;
  out(`\n== ${round.title}: ${round.how}`);
  ctx.step();
  out(`$ npm run lab -- up --servers ${SERVERS} --mode ${round.mode}`);
  // The lab's progress lines are noise here; keep its summary and any warning.
  await up({ directors: 1, servers: SERVERS, mode: round.mode }, (l) => {
    if (/^lab: (up |warning)/.test(l)) out(l);
  });
  try {
    const tcp = `${VIP}:80`;
    const sh = (node: string, argv: string[], shown = argv.join(' ')): RunResult => showRun(ctx, node, argv, shown);
    const must = (node: string, argv: string[]): RunResult => mustRun(ctx, round.mode, node, argv);

    must('d1', ['tsvsadm', '-A', '-t', tcp, '-s', 'wrr']);
    for (const j of ADD_ORDER) must('d1', ['tsvsadm', '-a', '-t', tcp, '-r', `${realServerIp(j)}:80`, round.flag, '-w', String(WEIGHTS[j - 1])]);
    if (round.mode === 'nat') {
      out('# wrr walks the real servers newest first, as the kernel does: rs1 (weight 3) was added last, so every round of');
      out('# five requests goes rs1 rs1 rs1 rs2 rs3 (the listing below is sorted by address, as ipvsadm sorts it)');
    }
    must('d1', ['tsvsadm', '-L', '-n']);

    const loop = `for i in $(seq ${REQUESTS}); do curl -s -m 2 http://${VIP}/ || echo "no answer (curl exit $?)"; done`;
    const answers = sh('client', ['sh', '-c', loop], loop).stdout.split('\n').map((l) => l.trim()).filter(Boolean);
    const counts = tally(answers);
    const want = Object.fromEntries(WEIGHTS.map((w, k) => [`rs${k + 1}`, (w * REQUESTS) / (WEIGHTS[0] + WEIGHTS[1] + WEIGHTS[2])]));
    check(sameCounts(counts, want), `${round.mode}: wrr 3:1:1 over ${REQUESTS} requests: ${fmtCounts(counts)} (want ${fmtCounts(want)})`);

    if (round.mode === 'nat') {
      const udp = `${VIP}:53`;
      must('d1', ['tsvsadm', '-A', '-u', udp, '-s', 'rr']);
      for (let j = 1; j <= SERVERS; j++) must('d1', ['tsvsadm', '-a', '-u', udp, '-r', `${realServerIp(j)}:53`, round.flag]);
      out('# rr takes them newest first too: rs3, rs2, rs1');
      const who: string[] = [];
      for (let k = 0; k < DIG_QUERIES; k++) {
        const r = sh('client', ['dig', '+short', '+tries=1', '+time=2', 'TXT', 'whoami.lab', `@${VIP}`]);
        who.push(r.stdout.trim().replace(/"/g, '') || `no answer (dig exit ${r.status})`);
      }
      check([...who].sort().join(' ') === 'rs1 rs2 rs3', `${round.mode}: dig answered by ${who.join(', ')} (want each of rs1, rs2, rs3 once)`);
    }

    const stats = must('d1', ['tsvsadm', '-L', '-n', '--stats']).stdout;
    const conns = statsConns(stats, 'TCP', tcp);
    check(conns === REQUESTS, `${round.mode}: --stats counts ${conns ?? 'no'} connections on TCP ${tcp} (want ${REQUESTS})`);
    if (round.mode === 'nat') {
      const udpConns = statsConns(stats, 'UDP', `${VIP}:53`);
      check(udpConns === DIG_QUERIES, `${round.mode}: --stats counts ${udpConns ?? 'no'} connections on UDP ${VIP}:53 (want ${DIG_QUERIES})`);
      const entries = must('d1', ['tsvsadm', '-L', '-n', '-c']).stdout.split('\n').filter((l) => /^(TCP|UDP) /.test(l)).length;
      check(entries === REQUESTS + DIG_QUERIES, `${round.mode}: -c lists ${entries} connection entries (want ${REQUESTS + DIG_QUERIES})`);
    } else {
      out(`# OutPkts stay 0: in ${round.mode.toUpperCase()} the replies go from the real servers straight to the client`);
    }
    if (round.mode === 'tun') {
      out(`# each real server's rs-agent writes the inner packets it decapsulated to ${TUN_DEV}: its rx_packets count them`);
      const inPkts = statsField(stats, 'TCP', tcp, 3);
      let sum = 0;
      for (let j = 1; j <= SERVERS; j++) {
        const n = Number(sh(`rs${j}`, ['cat', `/sys/class/net/${TUN_DEV}/statistics/rx_packets`]).stdout.trim());
        check(n > 0, `tun: rs${j} decapsulated ${Number.isFinite(n) ? n : 'no'} IPIP packets (want > 0)`);
        sum += Number.isFinite(n) ? n : 0;
      }
      out(`# together ${sum} packets; d1 counted ${inPkts ?? '?'} InPkts${sum === inPkts ? ': every packet went through a tunnel' : ''}`);
    }
  } finally {
    out('$ npm run lab -- down');
    await down((l) => {
      if (/^lab: down /.test(l)) out(l);
    });
  }
}

/** How many times each answer occurs. */
function tally(answers: readonly string[]): Record<string, number> {
  const c: Record<string, number> = {};
  for (const a of answers) c[a] = (c[a] ?? 0) + 1;
  return c;
}

function sameCounts(a: Record<string, number>, b: Record<string, number>): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}

function fmtCounts(c: Record<string, number>): string {
  return Object.keys(c).sort().map((k) => `${k} ${c[k]}`).join(', ') || 'no answers';
}

/** The Conns column of a virtual service's line in `tsvsadm -L -n --stats` output, or undefined if absent. */
export function statsConns(stats: string, proto: 'TCP' | 'UDP', service: string): number | undefined {
  return statsField(stats, proto, service, 2);
}

/** Field `k` (0 = protocol, 2 = Conns, 3 = InPkts, ...) of a virtual service's line in `-L -n --stats` output. */
function statsField(stats: string, proto: 'TCP' | 'UDP', service: string, k: number): number | undefined {
  for (const line of stats.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[0] === proto && f[1] === service) return Number(f[k]);
  }
  return undefined;
}

/** The long-lived connections' port in the cluster round (an echo server on every real server). */
const STREAM_PORT = 42000;
const STREAM_CONNS = 100;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` every 50 ms until it returns a truthy value; undefined after `ms`. */
async function poll<T>(fn: () => T | false | undefined, ms: number): Promise<T | undefined> {
  for (const until = Date.now() + ms; Date.now() < until; await sleep(50)) {
    try {
      const v = fn();
      if (v) return v;
    } catch {
      // not there yet (tsvsd starting, agent not connected)
    }
  }
  return undefined;
}

function clusterOf(node: string): ClusterStatus {
  return JSON.parse(execCapture(node, ['tsvsadm', 'cluster', '--json'], { timeoutMs: 10_000 }).stdout) as ClusterStatus;
}

/**
 * The cluster: d1 and d2 (DR) over a 3-node NATS cluster, d1 leading. Services made on d1 reach d2 through the
 * cluster's table; 100 long-lived connections stream through d1 and are synced to d2; d1 is killed (-9, every
 * process) and d2 takes the VIP and carries them on; d1 comes back, pulls the state from d2 and takes over again.
 */
async function runClusterRound(ctx: Ctx): Promise<void> {
  const { out, check } = ctx;
  out('\n== Cluster (2 directors, DR, a 3-node NATS cluster): d1 leads and owns the VIP, its connections are synced to d2; d1 is killed and d2 carries them on; d1 comes back, pulls the state and leads again');
  ctx.step();
  out(`$ npm run lab -- up --directors 2 --servers ${SERVERS} --mode dr --nats`);
  await up({ directors: 2, servers: SERVERS, mode: 'dr', nats: true }, (l) => {
    if (/^lab: (up |warning)/.test(l)) out(l);
  });
  const echoes: EchoServer[] = [];
  let streams: StreamClient | undefined;
  try {
    const sh = (node: string, argv: string[]): RunResult => mustRun(ctx, 'cluster', node, argv);
    const led = await poll(() => {
      const c = clusterOf('d1');
      return c.leader === 'd1' && c.members.length === 2 && c.members.every((m) => m.state !== 'dead') && c;
    }, 30_000);
    check(led !== undefined, 'cluster: d1 (priority 200) leads, d2 is a member');

    out('# a table edit on any director changes the cluster\'s table (NATS KV), which every director applies');
    sh('d1', ['tsvsadm', '-A', '-t', `${VIP}:${STREAM_PORT}`, '-s', 'rr']);
    for (let j = 1; j <= SERVERS; j++) sh('d1', ['tsvsadm', '-a', '-t', `${VIP}:${STREAM_PORT}`, '-r', `${realServerIp(j)}:${STREAM_PORT}`, '-g']);
    const d1Table = execCapture('d1', ['tsvsadm', '-S', '-n'], { timeoutMs: 10_000 }).stdout;
    const same = await poll(() => execCapture('d2', ['tsvsadm', '-S', '-n'], { timeoutMs: 10_000 }).stdout === d1Table, 10_000);
    sh('d2', ['tsvsadm', '-S', '-n']);
    check(same === true, 'cluster: d2 has the table made on d1 (tsvsadm -S -n identical)');

    for (let j = 1; j <= SERVERS; j++) echoes.push(await startEchoServer(`rs${j}`, STREAM_PORT));
    out(`# ${STREAM_CONNS} long-lived TCP connections from the client, each sending a message every 100 ms and waiting for its echo`);
    streams = startStreamClient('client', VIP, STREAM_PORT, { conns: STREAM_CONNS });
    const ready = await streams.ready;
    check(ready.opened === STREAM_CONNS, `cluster: ${ready.opened} of ${STREAM_CONNS} connections open through d1`);
    const synced = await poll(() => {
      const n = execCapture('d2', ['tsvsadm', '-L', '-n', '-c'], { timeoutMs: 10_000 }).stdout.split('\n').filter((l) => l.includes(`${VIP}:${STREAM_PORT}`)).length;
      return n >= STREAM_CONNS && n;
    }, 5000);
    out(synced !== undefined ? `# d2 (backup) already lists ${synced} entries for them in tsvsadm -L -n -c: synced from d1` : `# d2 (backup) lists fewer than ${STREAM_CONNS} of them after 5 s`);
    check(synced !== undefined, `cluster: d2 holds the synced entries of all ${STREAM_CONNS} connections before the failure`);
    sh('d1', ['tsvsadm', 'cluster']);

    ctx.step();
    out('$ npm run lab -- fail d1 --how kill');
    const f = fail({ node: 'd1', how: 'kill' });
    out(`lab: d1 failed (kill: ${f.detail})`);
    streams.mark('fail', f.at);
    const took = await poll(() => {
      const c = clusterOf('d2');
      return c.leader === 'd2' && c.vips.includes(VIP) && Date.now() - f.at;
    }, 10_000);
    out(took !== undefined ? `# tsvsadm cluster on d2 (polled) says it leads and holds the VIP ${took} ms after the kill; the connections below say when traffic flowed again` : '# d2 does not hold the VIP 10 s after the kill');
    check(took !== undefined, 'cluster: d2 takes over the VIP after d1 is killed');
    await sleep(1500);
    sh('d2', ['tsvsadm', 'cluster']);

    ctx.step();
    out('$ npm run lab -- heal d1');
    const h = await heal('d1');
    out(`lab: d1 healed in ${h.ms} ms (tsvsd started again: it pulls the state from d2, then takes leadership back)`);
    const back = await poll(() => {
      const c = clusterOf('d1');
      return c.leader === 'd1' && c.vips.includes(VIP) && c;
    }, 30_000);
    check(back !== undefined, 'cluster: d1 leads and holds the VIP again after the heal');
    streams.mark('handback');
    await sleep(1500);
    const s: StreamSummary = await streams.stop();
    streams = undefined;
    sh('d1', ['tsvsadm', 'cluster']);
    const [atFail, atBack] = s.marks;
    out(`# the ${s.opened} connections: ${s.reset} reset, ${s.stalled_over_1s} stalled over 1 s (longest wait ${s.max_stall_ms} ms), ${s.sent} messages sent, ${s.echoed} echoed;`);
    out(`# flowing again ${atFail?.recovery_first_ms ?? '-'} ms after the kill (each connection: p50 ${atFail?.recovery_p50_ms ?? '-'} ms, max ${atFail?.recovery_max_ms ?? '-'} ms, TCP retransmissions included),`);
    out(`# and after the handback p50 ${atBack?.recovery_p50_ms ?? '-'} ms; d1 pulled ${back?.sync.snapshot_entries ?? '-'} entries from d2 in ${back?.sync.snapshot_ms ?? '-'} ms before leading`);
    check(s.opened === STREAM_CONNS && s.lost === 0 && s.reset === 0 && s.corrupt === 0, `cluster: 0 of ${s.opened} long-lived connections lost over the kill and the handback (reset ${s.reset}, stuck ${s.lost - s.reset})`);
  } finally {
    if (streams) await streams.stop(2000).catch(() => undefined);
    for (const e of echoes) await e.stop().catch(() => undefined);
    out('$ npm run lab -- down');
    await down((l) => {
      if (/^lab: down /.test(l)) out(l);
    });
  }
}
