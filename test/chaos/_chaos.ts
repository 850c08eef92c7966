// Helpers of the chaos tests: who owns the VIP (now, and as a timeline from `ip monitor address` in each director),
// `tsvsadm cluster --json`, the connection listing, rules files, waiting for the leader.
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { writeFileSync } from 'node:fs';
import { VIP, execCapture, realServerIp } from '../../ops/lab/index.ts';
import { sh, waitFor } from '../support/lab.ts';
import type { ClusterStatus } from '../../shared/proto/cluster.ts';
import { holdsAddr, vipHolderName } from '../../shared/cluster/vip-holder.ts';

/** Host tools the chaos labs need. */
export const CHAOS_TOOLS = ['ip', 'nginx', 'dnsmasq', 'nats-server', 'curl', 'tcpdump', 'arping'];

/** TCP port of the long-lived streams' service (this suite's range is 42000-42999). */
export const STREAM_PORT = 42000;


/** Whether `node` holds `addr`/32 for `dev` right now (on `dev`, or on the TUN device a cluster director holds its VIPs on). */
export function hasAddr(node: string, addr = VIP, dev = 'front'): boolean {
  return holdsAddr(execCapture(node, ['ip', '-4', '-o', 'addr', 'show'], { timeoutMs: 5000 }).stdout, addr, dev);
}

/** `tsvsadm cluster --json` in a director. */
export function cluster(node: string): ClusterStatus {
  return JSON.parse(sh(node, ['tsvsadm', 'cluster', '--json'])) as ClusterStatus;
}

/** Waits until `node` leads (as it says) and alone holds the VIP among `directors`; returns its status. */
export async function leaderIs(node: string, directors: string[], timeoutMs = 30_000): Promise<ClusterStatus> {
  return waitFor(`${node} to lead and alone own the VIP`, () => {
    const s = cluster(node);
    return s.leader === node && hasAddr(node) && directors.every((d) => d === node || !hasAddr(d)) && s;
  }, timeoutMs, 100);
}

/**
 * Writes a rules file (ipvsadm -R format) for the streams' service: VIP:STREAM_PORT rr over rs1..rsN with `method`
 * (-m NAT, -g DR), plus VIP:80 for curl. Returns the path.
 */
export function writeRules(path: string, method: '-m' | '-g', servers = 2): string {
  const lines = [`-A -t ${VIP}:${STREAM_PORT} -s rr`, `-A -t ${VIP}:80 -s rr`];
  for (let j = 1; j <= servers; j++) lines.push(`-a -t ${VIP}:${STREAM_PORT} -r ${realServerIp(j)}:${STREAM_PORT} ${method} -w 1`, `-a -t ${VIP}:80 -r ${realServerIp(j)}:80 ${method} -w 1`);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

/**
 * `tsvsadm -L -c -n` in a director as a sorted list of entries without their expire column (which ticks):
 * "pro state source virtual destination".
 */
export function connEntries(node: string): string[] {
  const out = sh(node, ['tsvsadm', '-L', '-c', '-n'], 20_000);
  return out.split('\n').slice(2).map((l) => l.trim().split(/\s+/)).filter((f) => f.length >= 6).map((f) => [f[0], f[2], f[3], f[4], f[5]].join(' ')).sort();
}

/** Entries of {@link connEntries} whose virtual address is VIP:port. */
export function connsTo(node: string, port = STREAM_PORT): string[] {
  return connEntries(node).filter((e) => e.split(' ')[3] === `${VIP}:${port}`);
}

/** A change of an address on a director, from `ip monitor address`. */
export interface AddrEvent {
  node: string;
  at: number;
  present: boolean;
}

/** A timeline of one address on several directors' `dev`, built from `ip -o monitor address` in each. */
export interface AddrWatch {
  events: AddrEvent[];
  /** Whether `node` holds the address now (as the last event says). */
  holds(node: string): boolean;
  /** First time (epoch ms) at or after `since` that `node` held the address, or null. */
  firstHeld(node: string, since: number): number | null;
  /** Intervals (ms) where none / more than one of the nodes held the address, between `from` and `to`. */
  gaps(from: number, to: number): { none: { from: number; ms: number }[]; both: { from: number; ms: number }[] };
  stop(): Promise<void>;
}

/**
 * Watches `addr`/32 on `dev` in every node of `nodes` with ONE `ip -ts -o monitor address all-nsid` in the root namespace
 * (exact events, no polling interval; outside the directors, so `fail --how kill` of a director does not kill it):
 * each director's namespace gets a netns id (`ip netns set NAME auto`) so that its events reach the root's monitor.
 * Then reads the current state. Kills the monitor by pid on stop().
 */
export async function watchAddr(nodes: string[], addr = VIP, dev = 'front'): Promise<AddrWatch> {
  const events: AddrEvent[] = [];
  const state = new Map<string, boolean>();
  for (const node of nodes) spawnSync('ip', ['netns', 'set', `tsvs-${node}`, 'auto'], { stdio: 'ignore' });
  const byId = new Map<string, string>();
  for (const line of spawnSync('ip', ['netns', 'list-id'], { encoding: 'utf8' }).stdout.split('\n')) {
    const m = /^nsid (\d+) \(iproute2 netns name: tsvs-(\S+)\)/.exec(line);
    if (m && nodes.includes(m[2])) byId.set(m[1], m[2]);
  }
  const missing = nodes.filter((n) => ![...byId.values()].includes(n));
  if (missing.length) throw new Error(`watchAddr: no netns id for ${missing.join(', ')} (ip netns set tsvs-NODE auto failed)`);
  const p = spawn('ip', ['-ts', '-o', 'monitor', 'address', 'all-nsid'], { stdio: ['ignore', 'pipe', 'ignore'] });
  createInterface({ input: p.stdout }).on('line', (line) => {
    // "[nsid 0]Deleted 2: ifb0    inet 10.200.0.10/32 scope global dynamic front\  valid_lft ...": the device name is
    // resolved in the root namespace (wrong); the label before the backslash is the namespace's own name.
    // -ts: the kernel event's time as ip saw it (local time, µs), not when this process got around to the line.
    const m = /^\[(\d{4}-\d\d-\d\dT[\d:.]+)\] \[nsid (\d+)\](Deleted )?\d+: \S+\s+inet (\S+) ([^\\]*)\\/.exec(line);
    if (!m || m[4] !== `${addr}/32` || ![dev, vipHolderName(dev)].includes(m[5].trim().split(/\s+/).at(-1) ?? '')) return;
    const node = byId.get(m[2]);
    if (!node) return;
    const present = m[3] === undefined;
    if (state.get(node) === present) return;
    state.set(node, present);
    const at = new Date(m[1]).getTime();
    events.push({ node, at: Number.isFinite(at) ? at : Date.now(), present });
  });
  const procs = [p];
  await new Promise((r) => setTimeout(r, 150));
  const t0 = Date.now();
  for (const node of nodes) {
    if (state.has(node)) continue;
    const present = hasAddr(node, addr, dev);
    state.set(node, present);
    events.push({ node, at: t0, present });
  }
  return {
    events,
    holds: (node) => state.get(node) === true,
    firstHeld(node, since) {
      let held = false;
      for (const e of events) {
        if (e.node !== node) continue;
        if (e.at >= since && e.present) return e.at;
        held = e.present;
      }
      return held ? since : null;
    },
    gaps(from, to) {
      const ev = [...events].sort((a, b) => a.at - b.at);
      const cur = new Map<string, boolean>();
      const none: { from: number; ms: number }[] = [];
      const both: { from: number; ms: number }[] = [];
      let t = from;
      const count = (): number => [...cur.values()].filter(Boolean).length;
      const close = (until: number): void => {
        if (until <= t) return;
        const c = count();
        if (c === 0) none.push({ from: t, ms: until - t });
        if (c > 1) both.push({ from: t, ms: until - t });
      };
      for (const e of ev) {
        if (e.at <= from) {
          cur.set(e.node, e.present);
          continue;
        }
        if (e.at >= to) break;
        close(e.at);
        cur.set(e.node, e.present);
        t = e.at;
      }
      close(to);
      return { none, both };
    },
    async stop() {
      await Promise.all(procs.map((p) => new Promise<void>((r) => {
        if (p.exitCode !== null || p.signalCode !== null) return r();
        p.once('exit', () => r());
        p.kill('SIGKILL');
      })));
    },
  };
}

/** Sleeps `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** One line on stderr, prefixed: what a chaos run measured. */
export function report(line: string): void {
  process.stderr.write(`chaos: ${line}\n`);
}
