// npm run bench -- latency: round-trip latency percentiles at low load (sockperf ping-pong, UDP, 1000 msg/s)
// through kernel iptables DNAT and through tsvs NAT on the same lab. Ends with one line of JSON: p99_added_us (tsvs
// default against the kernel as it runs in the lab), and the same against the kernel on a CPU of its own and for --busy-poll.
import { VIP, addrOf, cores, inNs, kernelDnat, lab, log, median, plan, rps, sleep, spawnInNs, table } from './_lib.ts';
import type { ChildProcess } from 'node:child_process';

const PORT = 11111;

interface Pct {
  p50: number;
  p99: number;
}

/** Parses sockperf's "---> percentile 99.000 =   12.345" lines (µs). */
export function parseSockperf(out: string): Pct {
  const get = (p: string): number => Number(new RegExp(`percentile ${p}\\s*=\\s*([\\d.]+)`).exec(out)?.[1] ?? NaN);
  return { p50: get('50.000'), p99: get('99.000') };
}

export async function main(args: string[]): Promise<void> {
  let seconds = 5;
  let mps = 1000;
  let runs = 3;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--seconds') seconds = Number(args[++i]);
    else if (args[i] === '--mps') mps = Number(args[++i]);
    else if (args[i] === '--runs') runs = Number(args[++i]);
    else throw new Error(`latency: unknown option ${args[i]} (--seconds N --mps N --runs N)`);
  }
  const res: Record<string, Pct> = {};
  // Both sockperf ends on the last CPU: CPU 0 is the director's, kernel and tsvs alike.
  const cpu = String(cores() - 1);
  /** Brings up a one-server NAT lab (tsvsd with `tsvsdArgs`), starts the sockperf server, runs `body`, tears down. */
  const withLab = async (tsvsdArgs: string | null, body: (rip: string, ping: () => Pct) => Promise<void>): Promise<void> => {
    lab('down');
    lab('up', '--mode', 'nat', '--servers', '1', ...(tsvsdArgs ? ['--tsvsd-args', tsvsdArgs] : []));
    let server: ChildProcess | null = null;
    try {
      const rip = addrOf(plan(), 'rs1', '10.200.1.');
      server = spawnInNs('rs1', ['taskset', '-c', cpu, 'sockperf', 'sr', '-i', '0.0.0.0', '-p', String(PORT)]);
      await sleep(500);
      const run = (secs: number): string => inNs('client', ['taskset', '-c', cpu, 'sockperf', 'pp', '-i', VIP, '-p', String(PORT), '-t', String(secs), '--mps', String(mps), '--full-rtt'], { timeoutMs: (secs + 20) * 1000 });
      // One second first, unmeasured: neighbours resolved, code warm, as on a director that has been serving. Then
      // `runs` measurements; p50 and p99 are each the median over the runs (this VM's tail varies from run to run).
      await body(rip, () => {
        run(1);
        const r = Array.from({ length: runs }, () => parseSockperf(run(seconds)));
        log(`  runs: ${r.map((x) => `p50 ${x.p50} p99 ${x.p99}`).join(' | ')}`);
        return { p50: median(r.map((x) => x.p50)), p99: median(r.map((x) => x.p99)) };
      });
    } finally {
      server?.kill('SIGTERM');
      lab('down');
    }
  };
  const tsvsNat = async (rip: string, ping: () => Pct): Promise<Pct> => {
    inNs('d1', ['tsvsadm', '-A', '-u', `${VIP}:${PORT}`, '-s', 'rr']);
    inNs('d1', ['tsvsadm', '-a', '-u', `${VIP}:${PORT}`, '-r', `${rip}:${PORT}`, '-m']);
    await sleep(500);
    const r = ping();
    inNs('d1', ['tsvsadm', '-C']);
    return r;
  };

  await withLab(null, async (rip, ping) => {
    log('kernel DNAT');
    const undo = kernelDnat([rip], 'udp', PORT);
    try {
      res.kernel = ping();
      log('kernel DNAT, receive steered to CPU 0 (RPS)');
      rps('d1', 'front', 0);
      rps('d1', 'back', 0);
      res.kernelRps = ping();
    } finally {
      rps('d1', 'front', null);
      rps('d1', 'back', null);
      undo();
    }
    log('tsvs NAT');
    res.tsvs = await tsvsNat(rip, ping);
  });
  await withLab('--busy-poll', async (rip, ping) => {
    log('tsvs NAT, tsvsd --busy-poll');
    res.busy = await tsvsNat(rip, ping);
  });
  const added = (a: Pct, b: Pct, k: 'p50' | 'p99'): number => Number((a[k] - b[k]).toFixed(1));
  process.stdout.write(`\nlatency: sockperf ping-pong, UDP 14-byte messages, ${mps} msg/s, ${runs} runs of ${seconds} s after 1 s of warm-up (medians of the\n`);
  process.stdout.write(`runs' p50 and p99), round-trip time in µs\n`);
  process.stdout.write(`(--full-rtt); client → VIP → 1 real server; both sockperf ends pinned to CPU ${cpu}. Kernel: iptables DNAT in d1, first as it\n`);
  process.stdout.write(`runs here (forwarded inside the sender's own softirq on CPU ${cpu}: no CPU crossing at all), then with d1's receive steered to\n`);
  process.stdout.write(`CPU 0 (RPS) so that, like tsvs, it forwards on a CPU of its own and pays the crossings. tsvs: NAT, 1 worker on CPU 0,\n`);
  process.stdout.write(`default (adaptive rings, 100 µs post-batch polling), then tsvsd --busy-poll (the worker never sleeps).\n\n`);
  table([
    ['director', 'p50 µs', 'p99 µs'],
    ['kernel DNAT', res.kernel.p50, res.kernel.p99],
    ['kernel DNAT, RPS to CPU 0', res.kernelRps.p50, res.kernelRps.p99],
    ['tsvs NAT', res.tsvs.p50, res.tsvs.p99],
    ['tsvs NAT --busy-poll', res.busy.p50, res.busy.p99],
  ]);
  process.stdout.write('\n' + JSON.stringify({
    bench: 'latency',
    p50_added_us: added(res.tsvs, res.kernel, 'p50'),
    p99_added_us: added(res.tsvs, res.kernel, 'p99'),
    p99_added_us_busy_poll: added(res.busy, res.kernel, 'p99'),
    p99_added_us_vs_kernel_rps: added(res.tsvs, res.kernelRps, 'p99'),
    p99_added_us_busy_poll_vs_kernel_rps: added(res.busy, res.kernelRps, 'p99'),
    kernel: res.kernel, kernel_rps: res.kernelRps, tsvs: res.tsvs, tsvs_busy_poll: res.busy, seconds, mps, runs,
  }) + '\n');
}
