// npm run bench -- latency: round-trip latency percentiles at low load (sockperf ping-pong, UDP, 1000 msg/s)
// through kernel iptables DNAT and through tsvs NAT on the same lab. Ends with one line of JSON: p99_added_us.
import { VIP, addrOf, cores, inNs, kernelDnat, lab, log, plan, rps, sleep, spawnInNs, table } from './_lib.ts';
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
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--seconds') seconds = Number(args[++i]);
    else if (args[i] === '--mps') mps = Number(args[++i]);
    else throw new Error(`latency: unknown option ${args[i]} (--seconds N --mps N)`);
  }
  lab('down');
  lab('up', '--mode', 'nat', '--servers', '1');
  const servers: ChildProcess[] = [];
  const res: Record<string, Pct> = {};
  try {
    const p = plan();
    const rip = addrOf(p, 'rs1', '10.200.1.');
    // Both sockperf ends on the last CPU: the director's CPU 0 is left to the director, kernel and tsvs alike.
    const cpu = String(cores() - 1);
    servers.push(spawnInNs('rs1', ['taskset', '-c', cpu, 'sockperf', 'sr', '-i', '0.0.0.0', '-p', String(PORT)]));
    await sleep(500);
    const run = (secs: number): string => inNs('client', ['taskset', '-c', cpu, 'sockperf', 'pp', '-i', VIP, '-p', String(PORT), '-t', String(secs), '--mps', String(mps), '--full-rtt'], { timeoutMs: (secs + 20) * 1000 });
    // One second first, unmeasured: neighbours resolved, code warm, as on a director that has been serving.
    const ping = (): Pct => (run(1), parseSockperf(run(seconds)));

    log('kernel DNAT');
    const undo = kernelDnat([rip], 'udp', PORT);
    res.kernel = ping();
    rps('d1', 'front', 0);
    rps('d1', 'back', 0);
    res.kernelCpu0 = ping();
    rps('d1', 'front', null);
    rps('d1', 'back', null);
    undo();

    log('tsvs NAT');
    inNs('d1', ['tsvsadm', '-A', '-u', `${VIP}:${PORT}`, '-s', 'rr']);
    inNs('d1', ['tsvsadm', '-a', '-u', `${VIP}:${PORT}`, '-r', `${rip}:${PORT}`, '-m']);
    await sleep(500);
    res.tsvs = ping();
    inNs('d1', ['tsvsadm', '-C']);
  } finally {
    for (const s of servers) s.kill('SIGTERM');
    lab('down');
  }
  process.stdout.write(`\nlatency: sockperf ping-pong, UDP 14-byte messages, ${mps} msg/s for ${seconds} s after 1 s of warm-up, round-trip time in µs\n`);
  process.stdout.write(`(--full-rtt); client → VIP → 1 real server; both sockperf ends pinned to CPU ${cores() - 1}; kernel: iptables DNAT in d1;\n`);
  process.stdout.write(`tsvs: NAT, 1 worker on CPU 0 (adaptive rings, 100 µs post-batch polling).\n\n`);
  table([
    ['director', 'p50 µs', 'p99 µs'],
    ['kernel DNAT', res.kernel.p50, res.kernel.p99],
    ['kernel DNAT, RPS CPU 0', res.kernelCpu0.p50, res.kernelCpu0.p99],
    ['tsvs NAT', res.tsvs.p50, res.tsvs.p99],
  ]);
  process.stdout.write('\n' + JSON.stringify({
    bench: 'latency',
    p50_added_us: Number((res.tsvs.p50 - res.kernel.p50).toFixed(1)),
    p99_added_us: Number((res.tsvs.p99 - res.kernel.p99).toFixed(1)),
    kernel: res.kernel, tsvs: res.tsvs, seconds, mps,
  }) + '\n');
}
