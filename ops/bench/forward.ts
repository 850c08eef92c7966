// npm run bench -- forward: 60-byte UDP packets per second through one worker core (NAT, DR, TUN) side by side
// with the kernel's iptables DNAT on the same lab and load, then CPU µs per packet at a fixed offered rate.
// Ends with one line of JSON: nat_vs_kernel, dr_vs_kernel, tun_vs_kernel, us_per_pkt, kernel_us_per_pkt.
// --backend nfqueue measures the safe mode (NFQUEUE verdicts) instead of AF_PACKET. In NAT mode tsvs is also
// measured as a pair, tracing off and at 1 % (--otlp to a sink in d1, --trace-ratio 0.01), interleaved in fresh labs,
// to show forwarding does not move with tracing on (--no-trace-pair leaves it out).
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuByRole, cpuSnapshot } from './_proc-cpu.ts';
import { HZ, NODE, ROOT, VIP, addrOf, cores, cpuTimes, inNs, kernelDnat, lab, log, macOf, median, plan, raiseSocketBuffers, rps, rxPackets, sinkIpv4, sleep, spawnInNs, table } from './_lib.ts';

const PORT = 9000;
/** The director's CPU (tsvs's worker, the kernel's RPS target): the last one; trafgen keeps to CPU 0. */
const DIR_CPU = cores() - 1;
const FLOWS = 16;

interface Opts {
  seconds: number;
  runs: number;
  fixedPps: number;
  modes: ('nat' | 'dr' | 'tun')[];
  /** Extra tsvsd options for the lab (lab up --tsvsd-args), e.g. "--rt-priority 1". */
  tsvsdArgs: string | null;
  /** The workers' packet I/O (lab up --backend). */
  backend: 'afpacket' | 'nfqueue';
  /** NAT: also measure tsvs with tracing on at 1 % (a second lab). */
  tracePair: boolean;
}

/** Ports in d1 for the traced NAT runs: the OTLP sink and tsvsd's HTTP listener. */
const OTLP_SINK_PORT = 46064;
const HTTP_PORT = 46065;
const SINK = `require('node:http').createServer((q, s) => { q.resume(); q.on('end', () => s.writeHead(200).end()); }).listen(${OTLP_SINK_PORT}, '127.0.0.1');`;

/**
 * Waits until tsvsd in d1 answers /metrics and, with `tracing`, reports the telemetry child's counters; returns the
 * text. Throws after 20 s.
 */
async function metricsReady(tracing: boolean): Promise<string> {
  for (let t = 0; t < 200; t++) {
    const m = inNs('d1', ['curl', '-s', '-m', '3', `http://127.0.0.1:${HTTP_PORT}/metrics`], { allowFail: true });
    if (tracing ? /^tsvs_decisions_read_total \d+$/m.test(m) : m.includes('tsvs_workers')) return m;
    await sleep(100);
  }
  throw new Error(`forward: tsvsd's /metrics did not show ${tracing ? 'the telemetry counters' : 'tsvs_workers'} within 20 s`);
}

function parseOpts(args: string[]): Opts {
  const o: Opts = { seconds: 5, runs: 2, fixedPps: 150_000, modes: ['nat', 'dr', 'tun'], tsvsdArgs: null, backend: 'afpacket', tracePair: true };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--seconds') o.seconds = Number(args[++i]);
    else if (a === '--runs') o.runs = Number(args[++i]);
    else if (a === '--pps') o.fixedPps = Number(args[++i]);
    else if (a === '--modes') o.modes = args[++i].split(',') as Opts['modes'];
    else if (a === '--tsvsd-args') o.tsvsdArgs = args[++i];
    else if (a === '--backend' && (args[i + 1] === 'afpacket' || args[i + 1] === 'nfqueue')) o.backend = args[++i] as Opts['backend'];
    else if (a === '--no-trace-pair') o.tracePair = false;
    else throw new Error(`forward: unknown option ${a} (--seconds N --runs N --pps N --modes nat,dr,tun --tsvsd-args STR --backend afpacket|nfqueue --no-trace-pair)`);
  }
  return o;
}

/**
 * A trafgen configuration: one 60-byte frame whose UDP source port steps through FLOWS values (dinc). trafgen binds
 * its fork i to CPU i whatever taskset says, and runs a single fork when rate-limited (-b): with -P 1 it is on CPU 0.
 */
function trafgenConfig(dstMac: string, srcMac: string, src: string): string {
  return `{ eth(da=${dstMac}, sa=${srcMac}), ipv4(saddr=${src}, daddr=${VIP}, ttl=64), udp(sp=dinc(20000, ${20000 + FLOWS - 1}, 1), dp=${PORT}), fill(0x41, 18) }\n`;
}

/** What the generators need: trafgen's configuration file, and the frame's addresses for udpgen. */
interface Gen {
  cfg: string;
  dmac: string;
  smac: string;
  src: string;
}

interface Sample {
  pps: number;
  /** All CPUs' busy time per delivered packet (sender, bridges, director, real servers' receive). */
  usPerPkt: number;
  /** The director CPU's busy time per delivered packet (tsvs's worker, or the kernel's RPS-steered forwarding). */
  dirUsPerPkt: number;
  /** Busy share of each CPU over the run, percent. */
  busyPct: number[];
}

/**
 * Offers load for `seconds`: trafgen on CPU 0 injects the client's frames (client MAC and address) straight
 * into the director's front link (the veth end in tsvs-lan), so that the generator's own cost is one veth transmit
 * and the director, not the generator, is what saturates. Returns delivered pps and CPU use.
 */
async function blast(gen: Gen, seconds: number, rate: number | null, rsNodes: string[]): Promise<Sample> {
  const rx0 = rsNodes.map((n) => rxPackets(n, 'eth0'));
  const c0 = cpuTimes();
  const t0 = process.hrtime.bigint();
  const args = rate
    ? ['taskset', '-c', '0', NODE, `${ROOT}ops/bench/_udpgen.ts`, '--if', 'd1-front', '--dmac', gen.dmac, '--smac', gen.smac, '--src', gen.src, '--dst', VIP, '--dport', String(PORT), '--flows', String(FLOWS), '--rate', String(rate), '--seconds', String(seconds)]
    : ['timeout', '-s', 'INT', String(seconds), 'trafgen', '-o', 'd1-front', '-i', gen.cfg, '-P', '1', '-C'];
  const out = inNs('lan', ['sh', '-c', '"$@" 2>&1', 'sh', ...args], { allowFail: true, timeoutMs: (seconds + 10) * 1000 });
  await sleep(200);
  const t1 = process.hrtime.bigint();
  const c1 = cpuTimes();
  const rx1 = rsNodes.map((n) => rxPackets(n, 'eth0'));
  const delivered = rx1.reduce((s, v, i) => s + v - rx0[i], 0);
  if (delivered === 0) throw new Error(`forward: nothing reached the real servers; the generator said: ${out.trim().slice(-400)}`);
  const secs = Number(t1 - t0) / 1e9;
  const busyJiffies = c1.busy.reduce((s, v, i) => s + v - c0.busy[i], 0);
  const dirJiffies = c1.busy[DIR_CPU] - c0.busy[DIR_CPU];
  return {
    pps: delivered / Math.min(secs, seconds),
    usPerPkt: (busyJiffies * (1e6 / HZ)) / delivered,
    dirUsPerPkt: (dirJiffies * (1e6 / HZ)) / delivered,
    busyPct: c1.busy.map((v, i) => Math.min(100, Math.round(((v - c0.busy[i]) * 100) / (secs * HZ)))),
  };
}

function tsvsadm(...args: string[]): void {
  inNs('d1', ['tsvsadm', ...args]);
}

/**
 * A fresh lab for one forwarding mode (1 worker pinned to DIR_CPU, 2 real servers that sink IPv4 at tc ingress and
 * still answer ARP), and the trafgen configuration for the client written to `cfg`. Returns the real servers'
 * addresses and the generator's settings.
 */
function freshLab(mode: string, backend: string, tsvsdArgs: string | null, cfg: string): { rs: string[]; rips: string[]; gen: Gen } {
  lab('down');
  lab('up', '--mode', mode, '--servers', '2', '--workers', '1', '--cpus', String(DIR_CPU), '--backend', backend, ...(tsvsdArgs ? ['--tsvsd-args', tsvsdArgs] : []));
  const p = plan();
  const rs = ['rs1', 'rs2'];
  const rips = rs.map((n) => addrOf(p, n, '10.200.1.'));
  for (const n of rs) sinkIpv4(n, 'eth0');
  const client = addrOf(p, 'client', '10.200.0.');
  const gen: Gen = { cfg, dmac: macOf('d1', 'front'), smac: macOf('client', 'eth0'), src: client };
  writeFileSync(gen.cfg, trafgenConfig(gen.dmac, gen.smac, client));
  return { rs, rips, gen };
}

export async function main(args: string[]): Promise<void> {
  const o = parseOpts(args);
  const dir = mkdtempSync(join(tmpdir(), 'tsvs-bench-'));
  const rows: (string | number)[][] = [['mode', 'director', 'pps (median)', 'runs', 'busy CPU0 / CPU1', `µs/pkt all CPUs @${o.fixedPps / 1000}k`, `µs/pkt CPU ${DIR_CPU} (director)`]];
  const result: Record<string, number> = {};
  const kernelPps: Record<string, number> = {};
  let kernelUs = NaN;
  let tsvsUs = NaN;
  let kernelDirUs = NaN;
  let tsvsDirUs = NaN;
  const traced: string[] = [];
  let pairNote = '';
  const busy = (s: Sample[]): string => s.map((x) => x.busyPct.join('/')).join(' ');
  // trafgen sizes its socket buffer from net.core.wmem_default, which only the initial namespace may set; when the
  // kernel reference queues frames for another CPU (RPS) a small buffer fills and trafgen stops with EAGAIN.
  const wmem = raiseSocketBuffers(8 << 20);
  try {
    for (const mode of o.modes) {
      log(`lab up --mode ${mode}`);
      const { rs, rips, gen } = freshLab(mode, o.backend, o.tsvsdArgs, join(dir, `${mode}.cfg`));
      try {

        // Kernel reference: iptables DNAT + conntrack, its receive work steered to the director's CPU (RPS): the
        // forwarding runs there, the generator's CPU only queues the frames.
        const undo = kernelDnat(rips, 'udp', PORT);
        rps('d1', 'front', DIR_CPU);
        inNs('client', ['ping', '-c', '1', '-W', '1', VIP], { allowFail: true });
        const k: Sample[] = [];
        for (let r = 0; r < o.runs; r++) k.push(await blast(gen, o.seconds, null, rs));
        kernelPps[mode] = median(k.map((x) => x.pps));
        let kUs = NaN;
        let kDir = NaN;
        if (mode === 'nat') {
          const s = await blast(gen, o.seconds, o.fixedPps, rs);
        log(`fixed ${o.fixedPps} pps offered: ${Math.round(s.pps)} delivered, busy ${s.busyPct.join('/')}`);
          kUs = s.usPerPkt;
          kDir = s.dirUsPerPkt;
          kernelDirUs = kDir;
        }
        rps('d1', 'front', null);
        undo();
        if (mode === 'nat') kernelUs = kUs;
        rows.push([mode, 'kernel DNAT', Math.round(kernelPps[mode]), k.map((x) => Math.round(x.pps / 1000) + 'k').join(' '), busy(k), mode === 'nat' ? kUs.toFixed(2) : '', mode === 'nat' ? kDir.toFixed(2) : '']);

        // tsvs: one worker on the director's CPU; the frames' receive softirq (AF_PACKET copy into the ring) stays on
        // the CPU they arrive on, the generator's.
        const flag = mode === 'nat' ? '-m' : mode === 'dr' ? '-g' : '-i';
        tsvsadm('-A', '-u', `${VIP}:${PORT}`, '-s', 'rr');
        for (const rip of rips) tsvsadm('-a', '-u', `${VIP}:${PORT}`, '-r', `${rip}:${PORT}`, flag);
        await sleep(500);
        inNs('client', ['ping', '-c', '1', '-W', '1', VIP], { allowFail: true });
        const t: Sample[] = [];
        for (let r = 0; r < o.runs; r++) t.push(await blast(gen, o.seconds, null, rs));
        let tUs = NaN;
        let tDir = NaN;
        if (mode === 'nat') {
          const s = await blast(gen, o.seconds, o.fixedPps, rs);
        log(`fixed ${o.fixedPps} pps offered: ${Math.round(s.pps)} delivered, busy ${s.busyPct.join('/')}`);
          tsvsUs = tUs = s.usPerPkt;
          tsvsDirUs = tDir = s.dirUsPerPkt;
        }
        tsvsadm('-C');
        const tp = median(t.map((x) => x.pps));
        result[`${mode}_vs_kernel`] = Number((tp / kernelPps[mode]).toFixed(3));
        result[`${mode}_pps`] = Math.round(tp);
        result[`kernel_${mode}_pps`] = Math.round(kernelPps[mode]);
        rows.push([mode, 'tsvs 1 worker', Math.round(tp), t.map((x) => Math.round(x.pps / 1000) + 'k').join(' '), busy(t), mode === 'nat' ? tUs.toFixed(2) : '', mode === 'nat' ? tDir.toFixed(2) : '']);
      } finally {
        lab('down');
      }
      if (mode === 'nat' && o.tracePair) {
        // tsvs NAT with tracing off and at 1 %, interleaved (a fresh lab each, both serving /metrics, the order swapped
        // every round): the telemetry child tails the ring and exports to a sink in d1. Established flows make no
        // decisions (16 flows: 16 records), so only the child's and its sink's presence could move the figures.
        const pair: Record<'off' | 'on', Sample[]> = { off: [], on: [] };
        const fixed: Record<'off' | 'on', Sample[]> = { off: [], on: [] };
        const procUs: Record<'off' | 'on', number[]> = { off: [], on: [] };
        const roleUs: Record<'off' | 'on', string[]> = { off: [], on: [] };
        for (let r = 0; r < o.runs; r++) {
          for (const on of r % 2 === 0 ? [false, true] : [true, false]) {
            log(`tracing pair, round ${r + 1} of ${o.runs}: tracing ${on ? 'at 1 %' : 'off'}`);
            const http = `--http 127.0.0.1:${HTTP_PORT}`;
            const extra = on ? `${http} --otlp http://127.0.0.1:${OTLP_SINK_PORT} --trace-ratio 0.01` : http;
            const { rs, rips, gen } = freshLab(mode, o.backend, o.tsvsdArgs ? `${o.tsvsdArgs} ${extra}` : extra, join(dir, `${mode}-pair.cfg`));
            const sink = on ? spawnInNs('d1', [NODE, '-e', SINK]) : null;
            try {
              tsvsadm('-A', '-u', `${VIP}:${PORT}`, '-s', 'rr');
              for (const rip of rips) tsvsadm('-a', '-u', `${VIP}:${PORT}`, '-r', `${rip}:${PORT}`, '-m');
              await metricsReady(on);
              await sleep(500);
              inNs('client', ['ping', '-c', '1', '-W', '1', VIP], { allowFail: true });
              pair[on ? 'on' : 'off'].push(await blast(gen, o.seconds, null, rs));
              // At the fixed rate, also the director's own processes' CPU (worker, tsvsd, telemetry child, sink) per
              // delivered packet, from /proc/PID/stat: what tracing adds there, whatever else the machine runs.
              const c0 = cpuSnapshot(['d1']);
              const f = await blast(gen, o.seconds, o.fixedPps, rs);
              const cpu = cpuByRole(c0, cpuSnapshot(['d1']));
              const delivered = f.pps * o.seconds;
              procUs[on ? 'on' : 'off'].push((1e6 * Object.values(cpu).reduce((n, c) => n + c, 0)) / delivered);
              roleUs[on ? 'on' : 'off'].push(Object.entries(cpu).map(([role, c]) => `${role} ${((1e6 * c) / delivered).toFixed(2)}`).join(', '));
              fixed[on ? 'on' : 'off'].push(f);
              log(`tracing ${on ? 'at 1 %' : 'off'}, fixed ${o.fixedPps} pps offered: ${Math.round(f.pps)} delivered, busy ${f.busyPct.join('/')}`);
              if (on) {
                const m = await metricsReady(true);
                const v = (k: string): number => Number(new RegExp(`^${k} (\\d+)$`, 'm').exec(m)?.[1] ?? NaN);
                traced.push(`read ${v('tsvs_decisions_read_total')}, traced ${v('tsvs_decisions_traced_total')}, exported ${v('tsvs_trace_spans_exported_total')}`);
              }
            } finally {
              sink?.kill('SIGTERM');
              lab('down');
            }
          }
        }
        const pps = (xs: Sample[]): number => median(xs.map((x) => x.pps));
        const us = (xs: Sample[], k: 'usPerPkt' | 'dirUsPerPkt'): number => median(xs.map((x) => x[k]));
        for (const k of ['off', 'on'] as const) {
          rows.push([mode, k === 'off' ? 'tsvs, pair: tracing off' : 'tsvs, pair: traced 1 %', Math.round(pps(pair[k])), pair[k].map((x) => Math.round(x.pps / 1000) + 'k').join(' '), busy(pair[k]), us(fixed[k], 'usPerPkt').toFixed(2), us(fixed[k], 'dirUsPerPkt').toFixed(2)]);
        }
        result.nat_pps_pair_untraced = Math.round(pps(pair.off));
        result.nat_pps_traced_1 = Math.round(pps(pair.on));
        result.nat_traced_1_vs_untraced = Number((pps(pair.on) / pps(pair.off)).toFixed(3));
        result.us_per_pkt_pair_untraced = Number(us(fixed.off, 'usPerPkt').toFixed(3));
        result.us_per_pkt_traced_1 = Number(us(fixed.on, 'usPerPkt').toFixed(3));
        result.director_us_per_pkt_pair_untraced = Number(us(fixed.off, 'dirUsPerPkt').toFixed(3));
        result.director_us_per_pkt_traced_1 = Number(us(fixed.on, 'dirUsPerPkt').toFixed(3));
        result.director_procs_us_per_pkt_pair_untraced = Number(median(procUs.off).toFixed(3));
        result.director_procs_us_per_pkt_traced_1 = Number(median(procUs.on).toFixed(3));
        pairNote = `director's processes (worker, tsvsd, telemetry, sink) CPU per packet at ${o.fixedPps / 1000}k pps: tracing off ${procUs.off.map((x) => x.toFixed(2)).join(' ')} µs, at 1 % ${procUs.on.map((x) => x.toFixed(2)).join(' ')} µs\n  by process, µs/pkt: tracing off: ${roleUs.off.join('; ')}\n  at 1 %: ${roleUs.on.join('; ')}`;
      }
    }
  } finally {
    wmem();
  }
  process.stdout.write(`\nforward: 60-byte UDP frames, ${FLOWS} flows (source ports), trafgen (TX ring, one fork, on CPU 0) injecting the client's\n`);
  process.stdout.write(`frames into the director's front link (the veth end in tsvs-lan); the real servers discard IPv4 at tc ingress.\n`);
  process.stdout.write(`tsvs: 1 worker pinned to CPU ${DIR_CPU}, ${o.backend === 'nfqueue' ? 'NFQUEUE (safe mode)' : 'AF_PACKET'}${o.tsvsdArgs ? `, tsvsd ${o.tsvsdArgs}` : ''} (the frames' receive softirq stays on CPU 0, where they arrive);\n`);
  process.stdout.write(`kernel: iptables DNAT + conntrack in d1, its receive steered to CPU ${DIR_CPU} with RPS (all its forwarding there).\n`);
  process.stdout.write(`Delivered pps = rx_packets on the real servers over ${o.seconds} s, median of ${o.runs} runs; busy % of each CPU per run.\n`);
  process.stdout.write(`µs/pkt at a fixed ${o.fixedPps} pps offered (ops/bench/_udpgen.ts on CPU 0: sendmmsg bursts every ms): all CPUs' busy time (generator, bridges, director, real servers) / delivered\n`);
  process.stdout.write(`packets, and the director CPU's alone.\n\n`);
  table(rows);
  if (traced.length > 0) process.stdout.write(`tsvs NAT pair (fresh labs, tracing off and at 1 % interleaved, medians; 16 flows make 16 decisions): traced runs ${traced.join('; ')}\n${pairNote}\n`);
  result.us_per_pkt = Number(tsvsUs.toFixed(3));
  result.kernel_us_per_pkt = Number(kernelUs.toFixed(3));
  result.director_us_per_pkt = Number(tsvsDirUs.toFixed(3));
  result.kernel_director_us_per_pkt = Number(kernelDirUs.toFixed(3));
  process.stdout.write('\n' + JSON.stringify({ bench: 'forward', backend: o.backend, ...result, seconds: o.seconds, runs: o.runs, flows: FLOWS, frame_bytes: 60 }) + '\n');
}
