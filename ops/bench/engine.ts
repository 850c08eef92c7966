// npm run bench -- engine: the forwarding engine alone, in process, on native buffers as a worker has them —
// established NAT traffic both ways through fake ports. Reports ns per packet and garbage collections per million
// packets (the hot path is meant to allocate nothing; a collection pauses the worker), alone and with connection
// sync on (a cluster), interleaved. Then replays the golden
// cases of test/fixtures/engine (every step checked; any mismatch fails the bench). Ends with one JSON line.
// Options: --packets N (default 1,000,000), --golden-rounds N (replays of every case, default 200).
import { PerformanceObserver } from 'node:perf_hooks';
import { ConnTable } from '../../shared/conntab/conn-table.ts';
import { Counters, countersBytes } from '../../shared/fwd/counters.ts';
import { FwdCode } from '../../shared/model/ipvs.ts';
import { SyncRing } from '../../shared/sync/ring.ts';
import { inetChecksum } from '../../shared/net/checksum.ts';
import { wr16, wr32 } from '../../shared/net/parse.ts';
import { Engine, type Hop, type TxPort } from '../../services/worker/engine.ts';
import { allocNative, view } from '../../shared/sys/libc.ts';
import { ipv4FromText } from '../../shared/net/addr.ts';
import { CaseRun, ENGINE_CASES_DIR, expectedOutcome, loadEngineCases } from './_engine-cases.ts';
import { isDeepStrictEqual } from 'node:util';

/** Native memory, as rings and TX slots are. */
function native(n: number): Uint8Array {
  return new Uint8Array(view(allocNative(n, 'bench'), n));
}

/** A TCP frame (Ethernet, IPv4, 20-byte TCP) with valid checksums, at 2 mod 4 as ring frames are. */
function frame(src: number, dst: number, sport: number, dport: number, flags: number): { buf: Uint8Array; off: number; len: number } {
  const buf = native(256);
  const o = 2;
  buf.set([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2], o);
  wr16(buf, o + 12, 0x0800);
  const ip = o + 14;
  buf[ip] = 0x45;
  wr16(buf, ip + 2, 40);
  buf[ip + 8] = 64;
  buf[ip + 9] = 6;
  wr32(buf, ip + 12, src);
  wr32(buf, ip + 16, dst);
  wr16(buf, ip + 10, inetChecksum(buf, ip, 20));
  wr16(buf, ip + 20, sport);
  wr16(buf, ip + 22, dport);
  buf[ip + 32] = 0x50;
  buf[ip + 33] = flags;
  wr16(buf, ip + 34, 0xffff);
  return { buf, off: o, len: 54 };
}

class Port implements TxPort {
  readonly txBuf = native(64 * 2048);
  readonly txFrameMax = 2030;
  readonly ifindex: number;
  private n = 0;
  constructor(ifindex: number) {
    this.ifindex = ifindex;
  }
  txReserve(): number {
    return (this.n % 64) * 2048 + 18;
  }
  txCommit(): void {
    this.n++;
  }
}

export async function main(args: string[]): Promise<void> {
  const pi = args.indexOf('--packets');
  const n = (pi >= 0 ? Number(args[pi + 1]) : 1_000_000) / 2;
  let gcs = 0;
  let gcMs = 0;
  new PerformanceObserver((l) => {
    for (const e of l.getEntries()) {
      gcs++;
      gcMs += e.duration;
    }
  }).observe({ entryTypes: ['gc'] });
  const vip = ipv4FromText('10.0.0.10')!;
  const client = ipv4FromText('10.0.0.100')!;
  const rs = ipv4FromText('10.1.0.101')!;
  const l2 = {
    resolve: (d: number, h: Hop): boolean => ((h.ifindex = ((d >>> 8) & 255) === 1 ? 2 : 1), (h.srcIp = 1), true),
    isLocal: (): boolean => false,
    sourceFor: (): number => 1,
    hold: (): null => null,
  };
  // One engine as a worker runs it, alone or in a cluster (sync rings: every entry change is written, peers' records
  // installed; nobody drains the outbound ring here, and an established flow writes only every eighth of its timeout).
  const measure = (sync: boolean): { ns: number; gcs: number; gcMs: number } => {
    const counters = new Counters(new ArrayBuffer(countersBytes(1)), 1, true);
    // As a worker runs it: on table time (ms since the table's epoch), which stays a small integer.
    const conns = ConnTable.create(1 << 16, { counters: counters.rows[0].conns, epochMs: Date.now(), tableTime: true });
    const epoch = conns.epochMs;
    const rings = sync ? { outbound: SyncRing.create(new ArrayBuffer(SyncRing.bytes(1 << 12)), 0, 1 << 12), inbound: SyncRing.create(new ArrayBuffer(SyncRing.bytes(1 << 12)), 0, 1 << 12), shard: 0 } : null;
    const engine = new Engine({ conns, counters, worker: 0, l2, ports: new Map<number, TxPort>([[1, new Port(1)], [2, new Port(2)]]), now: () => Date.now() - epoch, sync: rings });
    engine.setTable({
      epoch: 1, timeouts: { tcp: 900, tcpfin: 120, udp: 300 }, vips: [vip],
      services: [{ id: 0, protocol: 6, vaddr: vip, vport: 80, fwmark: 0, scheduler: 'rr', flags: 0, persistMs: 0, netmask: 0xffffffff,
        dests: [{ id: 0, addr: rs, addrText: '10.1.0.101', port: 80, method: FwdCode.masq, weight: 1, lastWeight: 1, uThreshold: 0, lThreshold: 0, tunType: 'ipip', tunPort: 0, tunCsum: '' }] }],
    });
    const syn = frame(client, vip, 40000, 80, 0x02);
    const ack = frame(client, vip, 40000, 80, 0x10);
    const rep = frame(rs, client, 80, 40000, 0x10);
    engine.frame(syn.buf, syn.off, syn.len, false);
    const run = (k: number): void => {
      for (let i = 0; i < k; i++) {
        engine.frame(ack.buf, ack.off, ack.len, false);
        engine.frame(rep.buf, rep.off, rep.len, false);
        if ((i & 255) === 0) engine.endBatch();
      }
    };
    run(200_000);
    gcs = 0;
    gcMs = 0;
    const t0 = performance.now();
    run(n);
    const t1 = performance.now();
    return { ns: Math.round(((t1 - t0) * 1e6) / (n * 2)), gcs, gcMs };
  };
  const plain = measure(false);
  const synced = measure(true);
  const again = measure(false);
  gcs = plain.gcs;
  gcMs = plain.gcMs;
  await new Promise((r) => setTimeout(r, 20));
  const pkts = n * 2;
  const gi = args.indexOf('--golden-rounds');
  const golden = replayGolden(gi >= 0 ? Number(args[gi + 1]) : 200);
  const res = {
    bench: 'engine', packets: pkts, ns_per_pkt: Math.round((plain.ns + again.ns) / 2), gcs_per_million: Number(((gcs * 1e6) / pkts).toFixed(1)), gc_ms_per_million: Number(((gcMs * 1e6) / pkts).toFixed(1)),
    ns_per_pkt_sync: synced.ns, gcs_per_million_sync: Number(((synced.gcs * 1e6) / pkts).toFixed(1)),
    golden_cases: golden.cases, golden_steps: golden.steps, golden_mismatches: golden.mismatches.length, golden_us_per_step: golden.usPerStep, node: process.version,
  };
  process.stdout.write(`engine: one established NAT connection, ${pkts} packets (client ACKs and server replies), native buffers, fake ports;\n`);
  process.stdout.write(`one core, after ${400_000} packets of warm-up.\n\n`);
  process.stdout.write(`  ns per packet            ${res.ns_per_pkt} (mean of two runs: ${plain.ns}, ${again.ns})\n  GCs per million packets  ${res.gcs_per_million} (${res.gc_ms_per_million} ms)\n`);
  process.stdout.write(`  in a cluster (sync rings on, between the two): ${synced.ns} ns per packet, ${res.gcs_per_million_sync} GCs per million\n\n`);
  process.stdout.write(`golden cases (${ENGINE_CASES_DIR}): ${golden.cases} cases, ${golden.steps} steps, each replayed on a fresh engine ${golden.rounds} times\n`);
  process.stdout.write(`  mismatches               ${golden.mismatches.length}${golden.mismatches.length ? `: ${golden.mismatches.join('; ')}` : ''}\n`);
  process.stdout.write(`  µs per step              ${golden.usPerStep} (engine set-up included; a correctness replay, not a throughput figure)\n\n`);
  process.stdout.write(JSON.stringify(res) + '\n');
  if (golden.mismatches.length > 0) process.exitCode = 1;
}

/** Replays every stored golden case: checks each step of the first round, times `rounds` rounds. */
function replayGolden(rounds: number): { cases: number; steps: number; rounds: number; mismatches: string[]; usPerStep: number } {
  const root = new URL('../..', import.meta.url).pathname;
  const cases = loadEngineCases(root + ENGINE_CASES_DIR);
  const mismatches: string[] = [];
  for (const c of cases) {
    const run = new CaseRun(c);
    c.steps.forEach((s, i) => {
      if (!isDeepStrictEqual(run.step(s), expectedOutcome(s))) mismatches.push(`${c.name} step ${i + 1} (${s.note})`);
    });
  }
  const steps = cases.reduce((a, c) => a + c.steps.length, 0);
  const t0 = performance.now();
  for (let r = 0; r < rounds; r++) {
    for (const c of cases) {
      const run = new CaseRun(c);
      for (const s of c.steps) run.step(s);
    }
  }
  const us = ((performance.now() - t0) * 1000) / Math.max(1, rounds * steps);
  return { cases: cases.length, steps, rounds, mismatches, usPerStep: Number(us.toFixed(1)) };
}
