// Failure injection for the lab: `fail <node> --how kill|link|freeze` and `heal <node>`, recorded in state.json so
// that `heal` undoes exactly what `fail` did and `down` still cleans up a failed lab.
import { setTimeout as sleep } from 'node:timers/promises';
import { LabError } from './lab.ts';
import { netnsPids } from './netns.ts';
import { LAN_NETNS, LabUsageError, LANS, netnsOf, plan } from './plan.ts';
import type { LabNode, LanName } from './plan.ts';
import { adminSocketOf, startDnsmasq, startNats, startNexthopWatch, startNginx, startRsAgent, startTsvsd, waitReady } from './services.ts';
import { run } from './sh.ts';
import { isAlive, readState, writeState } from './state.ts';
import type { LabFault, LabProcess, LabState } from './state.ts';
import { spawn } from 'node:child_process';
import { closeSync, constants as fsc, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** How a node fails: its processes killed with SIGKILL, its links cut (it keeps running), or all its processes stopped. */
export const FAULT_KINDS = ['kill', 'link', 'freeze'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** A parsed `fail` or `heal` command line. */
export interface FaultArgs {
  node: string;
  how: FaultKind;
  /** `link` only: the LANs to cut (default: every LAN the node is on). */
  lans?: LanName[];
}

/** Parses `<node> [--how kill|link|freeze] [--lan NAME[,NAME]]`; throws {@link LabUsageError}. */
export function parseFaultArgs(argv: string[], verb: 'fail' | 'heal'): FaultArgs {
  const [node, ...rest] = argv;
  if (!node || node.startsWith('-')) throw new LabUsageError(`${verb} needs a node name (d1, nats2, rs1, ...)`);
  if (verb === 'heal') {
    if (rest.length) throw new LabUsageError(`heal takes only a node name, got ${rest.join(' ')}`);
    return { node, how: 'kill' };
  }
  let how: FaultKind = 'kill';
  let lans: LanName[] | undefined;
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    const v = rest[i + 1];
    if (a === '--how') {
      if (!(FAULT_KINDS as readonly string[]).includes(v)) throw new LabUsageError(`--how must be one of ${FAULT_KINDS.join(', ')}, got ${v ?? 'nothing'}`);
      how = v as FaultKind;
      i++;
    } else if (a === '--lan') {
      const names = (v ?? '').split(',').filter(Boolean);
      const bad = names.filter((n) => !(n in LANS));
      if (!names.length || bad.length) throw new LabUsageError(`--lan takes LAN names (${Object.keys(LANS).join(', ')}), got ${v ?? 'nothing'}`);
      lans = names as LanName[];
      i++;
    } else {
      throw new LabUsageError(`fail: unknown option ${a}`);
    }
  }
  if (lans && how !== 'link') throw new LabUsageError('--lan goes with --how link');
  return { node, how, lans };
}

function labNode(state: LabState, name: string): LabNode {
  const n = plan(state.options).nodes.find((x) => x.name === name);
  if (!n || !state.namespaces.includes(netnsOf(name))) {
    throw new LabError(`lab: no node "${name}" in the lab that is up (nodes: ${plan(state.options).nodes.map((x) => x.name).join(', ')})`);
  }
  return n;
}

function signalAll(pids: number[], sig: NodeJS.Signals): number {
  let n = 0;
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
      n++;
    } catch {
      // exited meanwhile
    }
  }
  return n;
}

/** What {@link fail} did, with the moment it happened (epoch ms) for failover measurements. */
export interface FailResult {
  node: string;
  how: FaultKind;
  at: number;
  detail: string;
}

/**
 * Fails a node of the lab that is up. `kill`: SIGKILL every process in its namespace (tsvsd and its workers and
 * children, nats-server, nginx, ...) — what a power loss looks like to the rest; `link`: sets its veth peers in
 * tsvs-lan down (the node keeps running, cut off: a partition); `freeze`: SIGSTOP every process in its namespace (a
 * hung host). Refuses a node that has already failed.
 */
export function fail(args: FaultArgs): FailResult {
  const state = readState();
  if (!state?.complete) throw new LabError('lab: not up (run: npm run lab -- up)');
  const n = labNode(state, args.node);
  state.faults ??= {};
  if (state.faults[n.name]) throw new LabError(`lab: ${n.name} has failed already (${state.faults[n.name].how}); heal it first`);
  let detail: string;
  const fault: LabFault = { how: args.how, at: Date.now() };
  if (args.how === 'link') {
    const links = n.links.filter((l) => !args.lans || args.lans.includes(l.lan));
    if (!links.length) throw new LabError(`lab: ${n.name} has no link on ${args.lans!.join(', ')}`);
    // One `ip -batch` for every link: cut within a millisecond of each other, not one spawned `ip` apart (tens of ms
    // each on a loaded host — the NATS link went down up to 200 ms after the client one, and after `fault.at`).
    // ip is started first and reads its commands from a FIFO, so `at` is taken once it runs: starting ip took
    // 38-82 ms on a loaded host, which used to count as part of every link-cut outage.
    const c = cutLinks(links.map((l) => l.peer));
    fault.at = c.at;
    fault.peers = links.map((l) => l.peer);
    detail = `links cut: ${links.map((l) => `${l.name} (${l.lan})`).join(', ')}; ip -batch took ${c.ms} ms from the failure time`;
  } else {
    const pids = netnsPids(n.netns);
    const sig = args.how === 'kill' ? 'SIGKILL' : 'SIGSTOP';
    fault.at = Date.now();
    const hit = signalAll(pids, sig);
    if (args.how === 'kill') fault.restart = state.processes.filter((p) => p.node === n.name).map((p) => p.name);
    else fault.pids = pids;
    detail = `${sig} to ${hit} process(es)`;
  }
  state.faults[n.name] = fault;
  writeState(state);
  return { node: n.name, how: args.how, at: fault.at, detail };
}

/** Starts again a process the lab had started in `n` (after `fail --how kill`). */
function restart(state: LabState, n: LabNode, name: string): LabProcess {
  const o = state.options;
  switch (name) {
    case 'tsvsd': return startTsvsd(n, o.nats, o.workers, o.backend, o.cpus, o.tsvsdArgs, o.directors, o.router);
    case 'nexthop-watch': return startNexthopWatch(n, o);
    case 'nats-server': return startNats(n);
    case 'nginx': return startNginx(n);
    case 'dnsmasq': return startDnsmasq(n);
    case 'rs-agent': return startRsAgent(n);
    default: throw new LabError(`lab: do not know how to restart ${name} on ${n.name}`);
  }
}

const READY_PORTS: Record<string, string[]> = { 'nats-server': ['tcp:4222', 'tcp:6222', 'tcp:8222'], nginx: ['tcp:80'], dnsmasq: ['udp:53'] };

/**
 * Undoes {@link fail}: links up again, SIGCONT, or the killed processes started again (each waited for like `up`
 * does: listening ports, tsvsd's admin socket). Returns when the node is back; throws {@link LabError} if a process
 * does not come back.
 */
export async function heal(node: string): Promise<{ node: string; how: FaultKind; ms: number }> {
  const t0 = Date.now();
  const state = readState();
  if (!state?.complete) throw new LabError('lab: not up (run: npm run lab -- up)');
  const n = labNode(state, node);
  const fault = state.faults?.[n.name];
  if (!fault) throw new LabError(`lab: ${n.name} has not failed; nothing to heal`);
  if (fault.how === 'link') {
    if (fault.peers?.length) run(['ip', '-n', LAN_NETNS, '-batch', '-'], { input: fault.peers.map((p) => `link set ${p} up\n`).join('') });
    // Back when every port forwards again (carrier up, bridge port state forwarding), not when the command returned.
    for (const peer of fault.peers ?? []) {
      for (let i = 0; ; i++) {
        const st = run(['bridge', '-n', LAN_NETNS, 'link', 'show', 'dev', peer], { allowFail: true }).stdout;
        if (/\bLOWER_UP\b/.test(st) && /state forwarding/.test(st)) break;
        if (i >= 150) throw new LabError(`lab: ${peer} in ${LAN_NETNS} did not come back to forwarding: ${st.trim()}`);
        await sleep(20);
      }
    }
  } else if (fault.how === 'freeze') {
    signalAll(fault.pids ?? [], 'SIGCONT');
  } else {
    // Leftovers of the kill (a pid that was being created) must not hold ports the restart needs.
    signalAll(netnsPids(n.netns), 'SIGKILL');
    for (let i = 0; i < 50 && netnsPids(n.netns).length; i++) await sleep(20);
    const names = fault.restart ?? [];
    state.processes = state.processes.filter((p) => p.node !== n.name || isAlive(p));
    const ready: Promise<void>[] = [];
    for (const name of names) {
      const p = restart(state, n, name);
      state.processes.push(p);
      if (name === 'tsvsd') {
        const sock = adminSocketOf(n.name);
        ready.push(waitReady(p, [], 10_000, () => existsSync(sock)));
      } else if (READY_PORTS[name]) {
        ready.push(waitReady(p, READY_PORTS[name]));
      }
    }
    writeState(state);
    await Promise.all(ready);
  }
  delete state.faults![n.name];
  writeState(state);
  return { node: n.name, how: fault.how, ms: Date.now() - t0 };
}

/** Sleeps synchronously (the lab's fault commands are synchronous). */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Whether process `pid` has exited (gone, or a zombie not yet reaped). */
function exited(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').startsWith('Z');
  } catch {
    return true;
  }
}

/**
 * Sets the LAN bridge's ports `peers` down in one `ip -batch`, started before the failure time: ip is running and
 * blocked on a FIFO when `at` is taken, then reads the commands at once. Returns `at` and how long ip took from then
 * until it exited (the links are down within that). Throws if ip does not start, or a port is still up afterwards.
 */
function cutLinks(peers: readonly string[]): { at: number; ms: number } {
  const dir = mkdtempSync(join(tmpdir(), 'tsvs-lab-cut-'));
  const fifo = join(dir, 'cmds');
  try {
    run(['mkfifo', '-m', '600', fifo]);
    const ip = spawn('ip', ['-n', LAN_NETNS, '-batch', fifo], { stdio: 'ignore' });
    ip.on('error', () => {}); // reported below: the FIFO never gets a reader
    // Opening the FIFO for writing without blocking fails (ENXIO) until ip has opened it to read.
    let fd = -1;
    for (const until = Date.now() + 10_000; fd < 0; sleepSync(1)) {
      try {
        fd = openSync(fifo, fsc.O_WRONLY | fsc.O_NONBLOCK);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENXIO' || Date.now() > until) {
          ip.kill('SIGKILL');
          throw new LabError(`lab: ip -batch did not start to cut the links (${(e as Error).message})`);
        }
      }
    }
    const at = Date.now();
    writeSync(fd, peers.map((p) => `link set ${p} down\n`).join(''));
    closeSync(fd);
    for (const until = Date.now() + 10_000; !exited(ip.pid!); sleepSync(1)) {
      if (Date.now() > until) {
        ip.kill('SIGKILL');
        throw new LabError('lab: ip -batch did not finish cutting the links in 10 s');
      }
    }
    const ms = Date.now() - at;
    const up = peers.filter((p) => /[<,]UP[,>]/.test(run(['ip', '-n', LAN_NETNS, '-o', 'link', 'show', 'dev', p]).stdout));
    if (up.length) throw new LabError(`lab: links still up after ip -batch: ${up.join(', ')}`);
    return { at, ms };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
