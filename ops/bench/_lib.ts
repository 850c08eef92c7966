// Shared pieces of the forwarding benchmarks: drive the lab through its CLI contract, run commands in lab
// nodes, read CPU time and interface counters, and set up the references (kernel iptables DNAT, HAProxy).
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

export const ROOT = new URL('../..', import.meta.url).pathname;
export const NODE = `${ROOT}node_modules/.bin/node`;
export const VIP = '10.200.0.10';

/** The lab plan as `lab plan --json` prints it. */
export interface Plan {
  nodes: Record<string, { netns: string; addresses: string[] }>;
  vips: string[];
}

export function log(line: string): void {
  process.stderr.write(`bench: ${line}\n`);
}

/** Runs the lab CLI with `args`; throws with its output when it fails. */
export function lab(...args: string[]): string {
  const r = spawnSync(NODE, [`${ROOT}ops/lab/main.ts`, ...args], { encoding: 'utf8', cwd: ROOT });
  if (r.status !== 0) throw new Error(`lab ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

export function plan(): Plan {
  return JSON.parse(lab('plan', '--json')) as Plan;
}

/** First IPv4 address (without prefix) of a lab node on the given /24 (e.g. '10.200.1.'). */
export function addrOf(p: Plan, node: string, prefix: string): string {
  const a = p.nodes[node]?.addresses.find((x) => x.startsWith(prefix));
  if (!a) throw new Error(`lab plan: ${node} has no address in ${prefix}0/24`);
  return a.split('/')[0];
}

/** Runs a command inside lab node `node` (namespace tsvs-<node>) and returns stdout; throws on failure. */
export function inNs(node: string, cmd: string[], opts: { allowFail?: boolean; timeoutMs?: number } = {}): string {
  const r = spawnSync('ip', ['netns', 'exec', `tsvs-${node}`, ...cmd], { encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000, env: { ...process.env, PATH: `${ROOT}ops/bin:${process.env.PATH}` } });
  if (r.status !== 0 && !opts.allowFail) throw new Error(`${node}: ${cmd.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr}`);
  return r.stdout ?? '';
}

/** Starts a long-running command inside a lab node; the caller kills it by PID. */
export function spawnInNs(node: string, cmd: string[]): ChildProcess {
  return spawn('ip', ['netns', 'exec', `tsvs-${node}`, ...cmd], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PATH: `${ROOT}ops/bin:${process.env.PATH}` } });
}

export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8' });
}

/** Busy jiffies per CPU (user+nice+system+irq+softirq+steal) and softirq alone, from /proc/stat. */
export function cpuTimes(): { busy: number[]; softirq: number[]; user: number[]; system: number[] } {
  const busy: number[] = [];
  const softirq: number[] = [];
  const user: number[] = [];
  const system: number[] = [];
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const f = m[2].trim().split(/\s+/).map(Number);
    // user nice system idle iowait irq softirq steal
    busy.push(f[0] + f[1] + f[2] + f[5] + f[6] + f[7]);
    softirq.push(f[6]);
    user.push(f[0] + f[1]);
    system.push(f[2]);
  }
  return { busy, softirq, user, system };
}

export const HZ = 100;

/** An interface's rx_packets inside a lab node. */
export function rxPackets(node: string, dev: string): number {
  return Number(inNs(node, ['cat', `/sys/class/net/${dev}/statistics/rx_packets`]).trim());
}

export function cores(): number {
  return availableParallelism();
}

/** MAC address of `dev` in lab node `node`. */
export function macOf(node: string, dev: string): string {
  return inNs(node, ['cat', `/sys/class/net/${dev}/address`]).trim();
}

/** Sleeps `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Median of a list of numbers. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * The kernel reference: iptables DNAT with conntrack in d1, spreading new flows over the real servers
 * round robin (statistic nth), for `proto`/`port`. Adds the VIP on d1's front interface so the client's ARP
 * resolves. Returns a function that removes everything it added.
 */
export function kernelDnat(rips: string[], proto: 'udp' | 'tcp', port: number): () => void {
  inNs('d1', ['ip', 'addr', 'replace', `${VIP}/32`, 'dev', 'front']);
  const rules: string[][] = [];
  for (let i = 0; i < rips.length; i++) {
    const left = rips.length - i;
    const rule = ['PREROUTING', '-d', VIP, '-p', proto, '--dport', String(port)];
    if (left > 1) rule.push('-m', 'statistic', '--mode', 'nth', '--every', String(left), '--packet', '0');
    rule.push('-j', 'DNAT', '--to-destination', `${rips[i]}:${port}`);
    rules.push(rule);
    inNs('d1', ['iptables', '-t', 'nat', '-A', ...rule]);
  }
  return () => {
    for (const r of rules) inNs('d1', ['iptables', '-t', 'nat', '-D', ...r], { allowFail: true });
    inNs('d1', ['ip', 'addr', 'del', `${VIP}/32`, 'dev', 'front'], { allowFail: true });
    inNs('d1', ['conntrack', '-F'], { allowFail: true });
  };
}

/** Steers d1's front-interface receive processing to `cpu` with RPS (the kernel reference's pinning). */
export function rps(node: string, dev: string, cpu: number | null): void {
  const mask = cpu === null ? '0' : (1 << cpu).toString(16);
  inNs(node, ['sh', '-c', `for q in /sys/class/net/${dev}/queues/rx-*/rps_cpus; do echo ${mask} > $q; done`]);
}

/**
 * Makes `dev` in lab node `node` a sink: every IPv4 frame is discarded at tc ingress (a classic BPF program in
 * direct-action mode returning TC_ACT_SHOT; rx_packets still counts it), ARP and the rest go on to the stack.
 */
export function sinkIpv4(node: string, dev: string): void {
  inNs(node, ['tc', 'qdisc', 'replace', 'dev', dev, 'clsact']);
  // ldh [12]; jeq #0x800 jt 0 jf 1; ret #2 (TC_ACT_SHOT); ret #-1 (TC_ACT_UNSPEC: carry on)
  inNs(node, ['tc', 'filter', 'replace', 'dev', dev, 'ingress', 'pref', '1', 'bpf', 'da', 'bytecode', '4,40 0 0 12,21 0 1 2048,6 0 0 2,6 0 0 4294967295']);
}

/**
 * Raises net.core.wmem_default and wmem_max (initial namespace only, so host-wide) to at least `bytes` for a
 * load generator's socket; returns the function that puts the old values back.
 */
export function raiseSocketBuffers(bytes: number): () => void {
  const keys = ['/proc/sys/net/core/wmem_max', '/proc/sys/net/core/wmem_default'];
  const old = keys.map((k) => readFileSync(k, 'utf8').trim());
  for (let i = 0; i < keys.length; i++) if (Number(old[i]) < bytes) writeFileSync(keys[i], String(bytes));
  return () => {
    for (let i = 0; i < keys.length; i++) writeFileSync(keys[i], old[i]);
  };
}

/** Prints the people's table: rows of cells, first row is the header. */
export function table(rows: (string | number)[][]): void {
  const w = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c]).length)));
  for (const r of rows) process.stdout.write(r.map((x, c) => (typeof x === 'number' ? String(x).padStart(w[c]) : String(x).padEnd(w[c]))).join('  ') + '\n');
}
