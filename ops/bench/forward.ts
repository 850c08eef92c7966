// npm run bench -- forward: 60-byte UDP packets per second through one worker core (NAT, DR, TUN) side by side
// with the kernel's iptables DNAT on the same lab and load, then CPU µs per packet at a fixed offered rate.
// Ends with one line of JSON: nat_vs_kernel, dr_vs_kernel, tun_vs_kernel, us_per_pkt, kernel_us_per_pkt.
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HZ, VIP, addrOf, cores, cpuTimes, inNs, kernelDnat, lab, log, macOf, median, plan, rps, rxPackets, sleep, table } from './_lib.ts';

const PORT = 9000;
const FLOWS = 16;

interface Opts {
  seconds: number;
  runs: number;
  fixedPps: number;
  modes: ('nat' | 'dr' | 'tun')[];
}

function parseOpts(args: string[]): Opts {
  const o: Opts = { seconds: 5, runs: 2, fixedPps: 150_000, modes: ['nat', 'dr', 'tun'] };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--seconds') o.seconds = Number(args[++i]);
    else if (a === '--runs') o.runs = Number(args[++i]);
    else if (a === '--pps') o.fixedPps = Number(args[++i]);
    else if (a === '--modes') o.modes = args[++i].split(',') as Opts['modes'];
    else throw new Error(`forward: unknown option ${a} (--seconds N --runs N --pps N --modes nat,dr,tun)`);
  }
  return o;
}

/** A trafgen configuration: FLOWS packets (one per source port), 60-byte frames, round robin. */
function trafgenConfig(dstMac: string, srcMac: string, src: string): string {
  const pkts: string[] = [];
  for (let f = 0; f < FLOWS; f++) {
    pkts.push(`{ eth(da=${dstMac}, sa=${srcMac}), ipv4(saddr=${src}, daddr=${VIP}, ttl=64), udp(sp=${20000 + f}, dp=${PORT}), fill(0x41, 18) }`);
  }
  return pkts.join('\n') + '\n';
}

interface Sample {
  pps: number;
  /** All CPUs' busy time per delivered packet (sender, bridges, director, real servers' receive). */
  usPerPkt: number;
  /** CPU 0's busy time per delivered packet: the director's own work (the worker, or the kernel's RPS-steered forwarding). */
  dirUsPerPkt: number;
}

/** Offers load from the client (trafgen pinned to the last CPU) for `seconds`; returns delivered pps and CPU µs per delivered packet. */
async function blast(cfgFile: string, seconds: number, rate: number | null, rsNodes: string[]): Promise<Sample> {
  const senderCpu = cores() - 1;
  const rx0 = rsNodes.map((n) => rxPackets(n, 'eth0'));
  const c0 = cpuTimes();
  const t0 = process.hrtime.bigint();
  const args = ['taskset', '-c', String(senderCpu), 'timeout', '-s', 'INT', String(seconds), 'trafgen', '-o', 'eth0', '-i', cfgFile, '-P', '1', '-C'];
  if (rate) args.push('-b', `${rate}pps`);
  inNs('client', args, { allowFail: true, timeoutMs: (seconds + 10) * 1000 });
  await sleep(200);
  const t1 = process.hrtime.bigint();
  const c1 = cpuTimes();
  const rx1 = rsNodes.map((n) => rxPackets(n, 'eth0'));
  const delivered = rx1.reduce((s, v, i) => s + v - rx0[i], 0);
  const secs = Number(t1 - t0) / 1e9;
  const busyJiffies = c1.busy.reduce((s, v, i) => s + v - c0.busy[i], 0);
  const dirJiffies = c1.busy[0] - c0.busy[0];
  return {
    pps: delivered / Math.min(secs, seconds),
    usPerPkt: delivered > 0 ? (busyJiffies * (1e6 / HZ)) / delivered : NaN,
    dirUsPerPkt: delivered > 0 ? (dirJiffies * (1e6 / HZ)) / delivered : NaN,
  };
}

function tsvsadm(...args: string[]): void {
  inNs('d1', ['tsvsadm', ...args]);
}

export async function main(args: string[]): Promise<void> {
  const o = parseOpts(args);
  const dir = mkdtempSync(join(tmpdir(), 'tsvs-bench-'));
  const rows: (string | number)[][] = [['mode', 'director', 'pps (median)', 'runs', `µs/pkt all CPUs @${o.fixedPps / 1000}k`, 'µs/pkt CPU 0 (director)']];
  const result: Record<string, number> = {};
  const kernelPps: Record<string, number> = {};
  let kernelUs = NaN;
  let tsvsUs = NaN;
  let kernelDirUs = NaN;
  let tsvsDirUs = NaN;
  for (const mode of o.modes) {
    log(`lab up --mode ${mode}`);
    lab('down');
    lab('up', '--mode', mode, '--servers', '2');
    try {
      const p = plan();
      const rs = ['rs1', 'rs2'];
      const rips = rs.map((n) => addrOf(p, n, '10.200.1.'));
      for (const n of rs) {
        inNs(n, ['iptables', '-t', 'raw', '-I', 'PREROUTING', '-p', 'udp', '--dport', String(PORT), '-j', 'DROP']);
        inNs(n, ['iptables', '-t', 'raw', '-I', 'PREROUTING', '-p', '4', '-j', 'DROP']);
      }
      const client = addrOf(p, 'client', '10.200.0.');
      const cfg = join(dir, `${mode}.cfg`);
      writeFileSync(cfg, trafgenConfig(macOf('d1', 'front'), macOf('client', 'eth0'), client));

      // Kernel reference: iptables DNAT + conntrack, its receive work steered to CPU 0 (RPS) like a worker.
      const undo = kernelDnat(rips, 'udp', PORT);
      rps('d1', 'front', 0);
      inNs('client', ['ping', '-c', '1', '-W', '1', VIP], { allowFail: true });
      const k: number[] = [];
      for (let r = 0; r < o.runs; r++) k.push((await blast(cfg, o.seconds, null, rs)).pps);
      kernelPps[mode] = median(k);
      let kUs = NaN;
      let kDir = NaN;
      if (mode === 'nat') {
        const s = await blast(cfg, o.seconds, o.fixedPps, rs);
        kUs = s.usPerPkt;
        kDir = s.dirUsPerPkt;
        kernelDirUs = kDir;
      }
      rps('d1', 'front', null);
      undo();
      if (mode === 'nat') kernelUs = kUs;
      rows.push([mode, 'kernel DNAT', Math.round(kernelPps[mode]), k.map((x) => Math.round(x / 1000) + 'k').join(' '), mode === 'nat' ? kUs.toFixed(2) : '', mode === 'nat' ? kDir.toFixed(2) : '']);

      // tsvs: one worker on CPU 0; the sender and the veth receive softirq on the other CPU.
      const flag = mode === 'nat' ? '-m' : mode === 'dr' ? '-g' : '-i';
      tsvsadm('-A', '-u', `${VIP}:${PORT}`, '-s', 'rr');
      for (const rip of rips) tsvsadm('-a', '-u', `${VIP}:${PORT}`, '-r', `${rip}:${PORT}`, flag);
      await sleep(500);
      inNs('client', ['ping', '-c', '1', '-W', '1', VIP], { allowFail: true });
      const t: number[] = [];
      for (let r = 0; r < o.runs; r++) t.push((await blast(cfg, o.seconds, null, rs)).pps);
      let tUs = NaN;
      let tDir = NaN;
      if (mode === 'nat') {
        const s = await blast(cfg, o.seconds, o.fixedPps, rs);
        tsvsUs = tUs = s.usPerPkt;
        tsvsDirUs = tDir = s.dirUsPerPkt;
      }
      tsvsadm('-C');
      const tp = median(t);
      result[`${mode}_vs_kernel`] = Number((tp / kernelPps[mode]).toFixed(3));
      result[`${mode}_pps`] = Math.round(tp);
      result[`kernel_${mode}_pps`] = Math.round(kernelPps[mode]);
      rows.push([mode, 'tsvs 1 worker', Math.round(tp), t.map((x) => Math.round(x / 1000) + 'k').join(' '), mode === 'nat' ? tUs.toFixed(2) : '', mode === 'nat' ? tDir.toFixed(2) : '']);
    } finally {
      lab('down');
    }
  }
  process.stdout.write(`\nforward: 60-byte UDP frames, ${FLOWS} flows, trafgen (1 process, TX ring) pinned to CPU ${cores() - 1} in the client namespace;\n`);
  process.stdout.write(`tsvs: 1 worker pinned to CPU 0, AF_PACKET; kernel: iptables DNAT + conntrack in d1 with RPS on CPU 0.\n`);
  process.stdout.write(`Delivered pps = rx_packets on the real servers (which drop the load in raw PREROUTING) over ${o.seconds} s, median of ${o.runs} runs.\n`);
  process.stdout.write(`µs/pkt at a fixed ${o.fixedPps} pps offered: all CPUs' busy time (sender, bridges, director, real servers) / delivered\n`);
  process.stdout.write(`packets, and CPU 0's alone (the director: tsvs's worker and its transmit path, or the kernel's forwarding).\n\n`);
  table(rows);
  result.us_per_pkt = Number(tsvsUs.toFixed(3));
  result.kernel_us_per_pkt = Number(kernelUs.toFixed(3));
  result.director_us_per_pkt = Number(tsvsDirUs.toFixed(3));
  result.kernel_director_us_per_pkt = Number(kernelDirUs.toFixed(3));
  process.stdout.write('\n' + JSON.stringify({ bench: 'forward', ...result, seconds: o.seconds, runs: o.runs, flows: FLOWS, frame_bytes: 60 }) + '\n');
}
