// npm run bench -- failover [--runs N] [--how kill|link] [--interval-ms N] [--conns N]: how long the VIP is dark when its owner
// fails. The reference is Debian's keepalived (VRRP only, no IPVS) in the same lab, with the same failure, at its
// defaults (VRRPv2, advert_int 1) and at the shortest advert_int it accepts (VRRPv3, 0.01 s). A UDP prober in the
// client sends a numbered datagram every 2 ms to the VIP; a responder in each director answers with its name; the
// outage is from the failure (`lab fail d1`) to the first answer from d2.
// The tsvs contender: tsvsd on both directors with its cluster agent over the lab's 3-node NATS (`up --nats`, d1
// priority 200, d2 190, default timers: 25 ms heartbeats, 7 missed = dead in 175 ms), the VIP in both tables (a UDP service on
// another port, loaded with --config), so the leader owns it; same probe, same failure. Through every tsvs run,
// --conns (default 1000) long-lived TCP connections (ops/lab/streams.ts: a message every 100 ms each, echoed by rs1
// through a DR service) stream from before the failure until d1 has taken leadership back after the heal;
// `conns_lost` counts the ones reset or stuck (an echo owed for over 1 s at the end), summed over the runs.
// keepalived's `conns_lost` is null: in this lab it moves the VIP only (no IPVS, no connection sync).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NODE, ROOT, VIP, inNs, lab, log, median, sleep, table } from './_lib.ts';
import type { ProbeResult } from './_probe.ts';
import { startEchoServer, startStreamClient } from '../lab/streams.ts';
import type { StreamSummary } from '../lab/streams.ts';
import { holdsAddr } from '../../shared/cluster/vip-holder.ts';
import { labDir } from '../lab/state.ts';

const PROBE = `${ROOT}ops/bench/_probe.ts`;
const PROBE_PORT = 9000;
/** The long-lived streams' TCP service (a DR service to rs1 in the tsvs runs). */
const STREAM_PORT = 42000;
/** Why keepalived's runs have no `conns_lost`. */
const KEEPALIVED_NO_CONNS = 'keepalived moves the VIP only in this lab (VRRP, no IPVS, no connection sync): there are no connections to keep';

/** One keepalived setting under test. */
interface VrrpSetting {
  name: string;
  version: 2 | 3;
  advertInt: number;
}

const SETTINGS: VrrpSetting[] = [
  { name: 'keepalived VRRPv2 advert_int 1 (default)', version: 2, advertInt: 1 },
  { name: 'keepalived VRRPv3 advert_int 0.01 (shortest)', version: 3, advertInt: 0.01 },
];

/** keepalived.conf for one director: VRRP only, the lab's VIP on `front`, d1 preferred (priority 150 vs 100). */
export function keepalivedConf(node: string, s: VrrpSetting): string {
  const prio = node === 'd1' ? 150 : 100;
  return `global_defs {
  router_id ${node}
  vrrp_version ${s.version}
  enable_script_security
}
vrrp_instance VI_1 {
  state BACKUP
  interface front
  virtual_router_id 51
  priority ${prio}
  advert_int ${s.advertInt}
  virtual_ipaddress {
    ${VIP}/32 dev front
  }
}
`;
}

/** Whether `node` holds the VIP for its front interface (keepalived: on it; tsvs: on its holding device tvip-front). */
function owns(node: string): boolean {
  return holdsAddr(inNs(node, ['ip', '-o', '-4', 'addr', 'show'], { allowFail: true }), VIP, 'front');
}

/** Starts keepalived (VRRP only, foreground) in a director; returns its pid. */
function startKeepalived(dir: string, node: string, s: VrrpSetting): number {
  const conf = join(dir, `${node}.conf`);
  writeFileSync(conf, keepalivedConf(node, s));
  // keepalived refuses to start (silently, exit 0) when its pid files name a live process: a killed instance's files
  // can name a pid the busy host has reused since. Start from none.
  const pid = join(dir, `${node}.pid`);
  const vrrpPid = join(dir, `${node}.vrrp.pid`);
  rmSync(pid, { force: true });
  rmSync(vrrpPid, { force: true });
  const p = spawn('ip', ['netns', 'exec', `tsvs-${node}`, 'keepalived', '--vrrp', '--dont-fork', '--log-console', '--use-file', conf,
    '--pid', pid, '--vrrp_pid', vrrpPid], { stdio: ['ignore', openSync(join(dir, `${node}.log`), 'a'), openSync(join(dir, `${node}.log`), 'a')] });
  return p.pid ?? 0;
}

function startResponder(node: string): number {
  const p = spawn('ip', ['netns', 'exec', `tsvs-${node}`, NODE, PROBE, 'answer', String(PROBE_PORT), node], { stdio: 'ignore' });
  return p.pid ?? 0;
}

async function waitFor(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`failover bench: timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

function killPid(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone
  }
}

/** Runs the prober in the client for `durationMs` and resolves with its result. */
function probe(durationMs: number, intervalMs: number): Promise<ProbeResult> {
  return new Promise((resolve, reject) => {
    const p = spawn('ip', ['netns', 'exec', 'tsvs-client', NODE, PROBE, 'send', VIP, String(PROBE_PORT), String(intervalMs), String(durationMs)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('exit', (code) => {
      try {
        resolve(JSON.parse(out.trim().split('\n').at(-1) ?? '') as ProbeResult);
      } catch {
        reject(new Error(`prober exited ${code}: ${err}${out}`));
      }
    });
  });
}

/** Outage as the prober saw it: failure → first answer from `to`; probes sent in between that got no answer. */
export function outageOf(r: ProbeResult, failedAt: number, to: string): { ms: number; lost: number } | undefined {
  const first = r.replies.filter((x) => x.from === to && x.at >= failedAt).sort((x, y) => x.at - y.at)[0];
  if (!first) return undefined;
  const lost = r.unanswered.filter(([, t]) => t >= failedAt - 50 && t <= first.at).length;
  return { ms: first.at - failedAt, lost };
}

/**
 * What a director's tsvsd logged about the cluster in [at − 50 ms, at + 3 s]: `+171 member d1: dead, +180 VIPs granted, …`
 * (ms after `at`), so that a slow run says why (a late detection, a release, a reconnect, a snapshot wait).
 */
function clusterTimeline(node: string, at: number, untilMs = 3000): string {
  let text = '';
  try {
    text = readFileSync(join(labDir(), node, 'tsvsd.log'), 'utf8');
  } catch {
    return '(no log)';
  }
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d{4}-\d\d-\d\dT[\d:.]+Z) \S+ (?:cluster: )?(?:cluster \w+: )?(.*)$/.exec(line);
    if (!m || !/dead|granted|released|reconnect|snapshot|no ready peer|own heartbeats|preempt|ready|vips:/.test(m[2])) continue;
    const t = Date.parse(m[1]) - at;
    if (t >= -50 && t <= untilMs) out.push(`+${t} ${m[2].slice(0, 80)}`);
  }
  return out.join('; ') || '(nothing)';
}

/** The epoch ms `lab fail` printed. */
function failedAt(out: string): number {
  const m = /\((\d+)\)\s*$/m.exec(out);
  if (!m) throw new Error(`lab fail printed no time: ${out}`);
  return Number(m[1]);
}

/** What the tsvs runs measured: the outages, and the long-lived connections lost over all runs. */
interface TsvsResult {
  ms: number[];
  connsLost: number | null;
  summaries: StreamSummary[];
}

/** The tsvs cluster: how long the VIP is dark when d1 (the leader) fails. The lab is up with --nats. */
async function measureTsvs(runs: number, how: 'kill' | 'link', intervalMs: number, conns: number): Promise<TsvsResult> {
  const pids: Record<string, number[]> = { d1: [], d2: [] };
  const out: number[] = [];
  const summaries: StreamSummary[] = [];
  pids.d1.push(startResponder('d1'));
  pids.d2.push(startResponder('d2'));
  const echo = conns > 0 ? await startEchoServer('rs1', STREAM_PORT) : null;
  try {
    for (let i = 0; i < runs; i++) {
      await waitFor('d1 to lead and own the VIP alone', () => owns('d1') && !owns('d2'), 30_000);
      const streams = conns > 0 ? startStreamClient('client', VIP, STREAM_PORT, { conns }) : null;
      try {
        if (streams) {
          const ready = await streams.ready;
          if (ready.opened !== conns) log(`tsvs run ${i + 1}: only ${ready.opened} of ${conns} connections opened`);
          // Let the new connections' sync reach d2 before the failure.
          await sleep(1000);
        }
        await sleep(300);
        const probing = probe(4000, intervalMs);
        await sleep(500);
        const failOut = lab('fail', 'd1', '--how', how);
        const t = failedAt(failOut);
        const cut = /ip -batch took (\d+) ms/.exec(failOut);
        streams?.mark('fail', t);
        const r = await probing;
        const o = outageOf(r, t, 'd2');
        if (!o) throw new Error(`tsvs run ${i + 1}: d2 never answered after the failure (${r.replies.length} replies of ${r.sent}); d2 owns the VIP: ${owns('d2')}`);
        out.push(o.ms);
        // heal: a killed d1 restarts tsvsd (which removes the VIP its predecessor left, pulls the state, preempts)
        const healAt = Date.now();
        lab('heal', 'd1');
        if (how === 'kill') {
          pids.d1 = [];
          pids.d1.push(startResponder('d1'));
        }
        let streamNote = '';
        if (streams) {
          await waitFor('d1 to take leadership back', () => owns('d1') && !owns('d2'), 30_000);
          streams.mark('handback');
          await sleep(1500);
          const s = await streams.stop();
          summaries.push(s);
          streamNote = `; ${s.opened} connections: ${s.lost} lost (${s.reset} reset, ${s.stalled_over_1s} stalled > 1 s, max stall ${s.max_stall_ms} ms), `
            + `traffic again ${s.marks[0]?.recovery_first_ms ?? '-'} ms after the failure, per connection p50 ${s.recovery_p50_ms ?? '-'} ms, max ${s.recovery_max_ms ?? '-'} ms`;
        }
        log(`tsvs cluster, ${how}: run ${i + 1}/${runs}: dark ${o.ms} ms, ${o.lost} probes lost${streamNote}${cut ? ` (the links went down within ${cut[1]} ms after the failure time: ip -batch)` : ''}`);
        log(`  d2's cluster log after the failure: ${clusterTimeline('d2', t)}`);
        const last = summaries.at(-1);
        if (streams && last && (last.lost > 0 || last.stalled_over_1s > 0)) {
          // Say when the stalls began (relative to the failure, the heal and the handback) and what both directors did.
          const hb = last.marks.find((m) => m.name === 'handback');
          const from = last.stalls.map((x) => x.from - t);
          log(`  stalls > 1 s began at +${Math.min(...from)}…+${Math.max(...from)} ms after the failure (heal at +${healAt - t}, handback at +${hb ? hb.at - t : '-'}); ` +
            `after the handback: first ${hb?.recovery_first_ms ?? '-'} ms, p50 ${hb?.recovery_p50_ms ?? '-'} ms, unrecovered ${hb?.unrecovered ?? '-'}`);
          log(`  d1's cluster log after the heal: ${clusterTimeline('d1', healAt, 8000)}`);
          log(`  d2's cluster log after the heal: ${clusterTimeline('d2', healAt, 8000)}`);
        }
      } finally {
        await streams?.stop(2000).catch(() => undefined);
      }
    }
  } finally {
    for (const pid of [...pids.d1, ...pids.d2]) killPid(pid);
    await echo?.stop();
  }
  return { ms: out, connsLost: conns > 0 ? summaries.reduce((a, s) => a + s.lost, 0) : null, summaries };
}

async function measure(s: VrrpSetting, runs: number, how: 'kill' | 'link', intervalMs: number, dir: string): Promise<number[]> {
  const pids: Record<string, number[]> = { d1: [], d2: [] };
  const start = (node: string): void => {
    pids[node].push(startKeepalived(dir, node, s), startResponder(node));
  };
  const stop = (node: string): void => {
    for (const pid of pids[node].splice(0)) killPid(pid);
    // keepalived runs its VRRP instance in a child process: the parent's pid is not all of it.
    for (const pid of spawnSync('ip', ['netns', 'pids', `tsvs-${node}`], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number)) {
      let comm = '';
      try {
        comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      } catch {
        continue;
      }
      if (comm === 'keepalived') killPid(pid);
    }
  };
  const masterDownMs = (3 * s.advertInt + (256 - 100) / 256 * (s.version === 2 ? 1 : s.advertInt)) * 1000;
  const out: number[] = [];
  try {
    start('d2');
    start('d1');
    for (let i = 0; i < runs; i++) {
      await waitFor('d1 to own the VIP alone', () => owns('d1') && !owns('d2'), 15_000);
      await sleep(300);
      // Long enough for the failure command itself (a node process: up to a few seconds on a busy host) and the takeover.
      const probing = probe(masterDownMs * 2 + 5000, intervalMs);
      await sleep(500);
      const t = failedAt(lab('fail', 'd1', '--how', how));
      const r = await probing;
      const o = outageOf(r, t, 'd2');
      if (!o) {
        const tail = (n: string): string => readFileSync(join(dir, `${n}.log`), 'utf8').split('\n').slice(-15).join('\n');
        throw new Error(`run ${i + 1}: d2 never answered after the failure (${r.replies.length} replies of ${r.sent}); d2 owns the VIP: ${owns('d2')}\nd2's keepalived log:\n${tail('d2')}`);
      }
      out.push(o.ms);
      log(`${s.name}, ${how}: run ${i + 1}/${runs}: dark ${o.ms} ms, ${o.lost} probes lost`);
      if (how === 'kill') {
        pids.d1 = [];
        lab('heal', 'd1');
        // What the killed keepalived left in the kernel goes; the next keepalived starts clean.
        inNs('d1', ['ip', 'addr', 'del', `${VIP}/32`, 'dev', 'front'], { allowFail: true });
        start('d1');
      } else {
        lab('heal', 'd1');
      }
    }
  } finally {
    stop('d1');
    stop('d2');
    inNs('d1', ['ip', 'addr', 'del', `${VIP}/32`, 'dev', 'front'], { allowFail: true });
    inNs('d2', ['ip', 'addr', 'del', `${VIP}/32`, 'dev', 'front'], { allowFail: true });
  }
  return out;
}

export async function main(args: string[]): Promise<void> {
  let runs = 20;
  let how: 'kill' | 'link' = 'kill';
  let intervalMs = 2;
  let only: string[] = ['v2', 'v3', 'tsvs'];
  let conns = 1000;
  for (let i = 0; i < args.length; i++) {
    const v = args[i + 1];
    if (args[i] === '--runs') (runs = Number(v)), i++;
    else if (args[i] === '--how' && (v === 'kill' || v === 'link')) (how = v), i++;
    else if (args[i] === '--interval-ms') (intervalMs = Number(v)), i++;
    else if (args[i] === '--settings') (only = (v ?? '').split(',')), i++;
    else if (args[i] === '--conns') (conns = Number(v)), i++;
    else throw new Error(`failover bench: unknown option ${args[i]} (use --runs N, --how kill|link, --interval-ms N, --settings v2,v3,tsvs, --conns N)`);
  }
  if (!Number.isInteger(runs) || runs < 1) throw new Error('failover bench: --runs must be a positive integer');
  if (!Number.isInteger(conns) || conns < 0 || conns > 5000) throw new Error('failover bench: --conns must be an integer 0..5000 (0: no long-lived connections)');
  const vrrp = SETTINGS.filter((x) => only.includes(`v${x.version}`));
  if (vrrp.length && spawnSync('keepalived', ['--version'], { stdio: 'ignore' }).status !== 0) throw new Error('failover bench needs Debian\'s keepalived (bash ops/setup.sh installs it)');
  log(`conditions: lab --directors 2 --servers 1 --mode dr; failure: lab fail d1 --how ${how}; UDP probe every ${intervalMs} ms from the client to ${VIP}:${PROBE_PORT}; ${runs} runs per setting; outage = failure → first answer from d2`);
  const dir = mkdtempSync(join(tmpdir(), 'tsvs-failover-'));
  const results: { name: string; key: string; ms: number[]; connsLost: number | null }[] = [];
  try {
    if (vrrp.length) {
      lab('up', '--directors', '2', '--servers', '1', '--mode', 'dr');
      try {
        for (const s of vrrp) results.push({ name: s.name, key: s.version === 2 ? 'keepalived_v2' : 'keepalived_v3_min_advert', ms: await measure(s, runs, how, intervalMs, dir), connsLost: null });
      } finally {
        lab('down');
      }
    }
    if (only.includes('tsvs')) {
      // The VIP must be in the table for the leader to own it: a UDP service on a port the probe does not use.
      const rules = join(dir, 'tsvs-rules.txt');
      writeFileSync(rules, `-A -u ${VIP}:${PROBE_PORT + 1} -s rr\n-A -t ${VIP}:${STREAM_PORT} -s rr\n-a -t ${VIP}:${STREAM_PORT} -r 10.200.1.101:${STREAM_PORT} -g -w 1\n`);
      lab('up', '--directors', '2', '--servers', '1', '--mode', 'dr', '--nats', '--workers', '1', '--tsvsd-args', `--config ${rules}`);
      try {
        const t = await measureTsvs(runs, how, intervalMs, conns);
        results.push({ name: 'tsvs cluster (25 ms heartbeats, 7 missed)', key: 'tsvs', ms: t.ms, connsLost: t.connsLost });
      } finally {
        lab('down');
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const rows: (string | number)[][] = [['setting', 'runs', 'p50 ms', 'max ms', 'min ms', 'conns lost']];
  for (const r of results) rows.push([r.name, r.ms.length, median(r.ms), Math.max(...r.ms), Math.min(...r.ms), r.connsLost === null ? 'n/a' : `${r.connsLost} of ${conns * r.ms.length}`]);
  table(rows);
  const json: Record<string, string | number | null> = { how, runs, conns_per_run: conns };
  for (const r of results) {
    json[`${r.key}_p50_ms`] = median(r.ms);
    json[`${r.key}_max_ms`] = Math.max(...r.ms);
    json[`${r.key}_conns_lost`] = r.connsLost;
    if (r.key !== 'tsvs') json[`${r.key}_conns_lost_reason`] = KEEPALIVED_NO_CONNS;
  }
  const t = results.find((r) => r.key === 'tsvs');
  if (t) {
    json.failover_p50_ms = median(t.ms);
    json.failover_max_ms = Math.max(...t.ms);
    json.conns_lost = t.connsLost;
    if (t.connsLost === null) json.conns_lost_reason = 'run with --conns 0: no long-lived connections';
  } else {
    json.conns_lost = null;
    json.conns_lost_reason = KEEPALIVED_NO_CONNS;
  }
  process.stdout.write(`${JSON.stringify(json)}\n`);
}
