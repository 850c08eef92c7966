// The lab's operations — up, down, status, exec — as functions that the CLI, tests and benchmarks share.
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { existsSync, readdirSync, rmSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_OPTIONS, LAN_NETNS, NETNS_PREFIX, formatOptions, netnsOf, plan, sameOptions } from './plan.ts';
import type { LabOptions, LabPlan } from './plan.ts';
import { addNetns, buildLan, buildNode, delNetns, listNetns, netnsPids } from './netns.ts';
import {
  adminSocketOf, haveService, labEnv, removeAdminDir, startDnsmasq, startNats, startNexthopWatch, startNginx, startRsAgent, startTsvsd, stopProcesses, tail, waitReady,
} from './services.ts';
import { haveCommand, run } from './sh.ts';
import type { RunResult } from './sh.ts';
import { isAlive, labDir, readState, statePath, writeState } from './state.ts';
import type { LabProcess, LabState } from './state.ts';

/** A refusal or a precondition that does not hold; the CLI prints `message` and exits `exitCode`. */
export class LabError extends Error {
  override name = 'LabError';
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

/** Progress sink: one line per call. Default writes to stderr. */
export type LabLog = (line: string) => void;
const stderrLog: LabLog = (l) => process.stderr.write(`${l}\n`);

/** What {@link up} did. */
export interface UpResult {
  /** False when the same lab was already up. */
  changed: boolean;
  state: LabState;
  plan: LabPlan;
  ms: number;
}

/** Host tools `up` needs for these options; throws {@link LabError} naming what is missing and how to get it. */
export function checkPrerequisites(o: LabOptions): void {
  if (process.getuid?.() !== 0) throw new LabError('lab: must run as root (it creates network namespaces); try sudo');
  const need = ['ip', 'nginx', 'dnsmasq', ...(o.nats ? ['nats-server'] : [])];
  const missing = need.filter((c) => !haveCommand(c));
  if (missing.length) throw new LabError(`lab: missing host tools: ${missing.join(', ')} (run: bash ops/setup.sh)`);
}

/** Names the lab gives namespaces (tsvs-lan, tsvs-client, tsvs-router, tsvs-d<i>, tsvs-rs<j>, tsvs-nats<k>). */
export const LAB_NETNS_NAME = /^tsvs-(lan|client\d*|router\d*|d\d+|rs\d+|nats\d+)$/;

/**
 * Lab-named namespaces (see {@link LAB_NETNS_NAME}) that exist but are not recorded in the state file: left by another
 * lab (another runtime dir, a lost state file) or made by hand. The lab never touches them and will not start beside
 * them. Other tsvs-* namespaces (e.g. a unit of work's own tsvs-io-*) cannot collide with the lab's and are ignored.
 */
export function foreignNamespaces(state = readState()): string[] {
  const ours = new Set(state?.namespaces ?? []);
  return listNetns().filter((n) => LAB_NETNS_NAME.test(n) && !ours.has(n));
}

/**
 * Builds the lab for `options` (defaults: 1 director, 2 servers, nat). Idempotent: with the same options as the lab
 * that is up it changes nothing (`changed: false`). Throws {@link LabError} when a different lab is up, when a previous
 * `up` did not finish, or when a tsvs-* namespace it did not create exists. If building fails half-way, everything
 * made so far is removed before the error is rethrown.
 */
export async function up(options: Partial<LabOptions> = {}, log: LabLog = stderrLog): Promise<UpResult> {
  const t0 = Date.now();
  const p = plan({ ...DEFAULT_OPTIONS, ...options });
  const o = p.options;
  const existing = readState();
  if (existing) {
    if (!existing.complete) throw new LabError('lab: a previous up did not finish; run down first');
    if (!sameOptions(existing.options, o)) {
      throw new LabError(`lab already up with different options; run down first (up: ${formatOptions(existing.options)}; asked: ${formatOptions(o)})`);
    }
    log(`lab: already up with the same options (${formatOptions(o)}); nothing changed`);
    return { changed: false, state: existing, plan: p, ms: Date.now() - t0 };
  }
  checkPrerequisites(o);
  const foreign = foreignNamespaces(existing);
  if (foreign.length) {
    throw new LabError(`lab: refusing to start: namespace(s) ${foreign.join(', ')} exist but this lab did not create them (not in ${statePath()}); remove them yourself if they are stale`);
  }

  const state: LabState = { version: 1, options: o, createdAt: new Date().toISOString(), complete: false, namespaces: [], processes: [], warnings: [] };
  writeState(state);
  try {
    await build(p, state, log);
  } catch (e) {
    log(`lab: up failed; removing what it made`);
    await down(() => {});
    throw e;
  }
  state.complete = true;
  writeState(state);
  const ms = Date.now() - t0;
  log(`lab: up (${formatOptions(o)}) in ${(ms / 1000).toFixed(1)} s`);
  return { changed: true, state, plan: p, ms };
}

async function build(p: LabPlan, state: LabState, log: LabLog): Promise<void> {
  const o = p.options;
  const track = (ns: string): void => {
    addNetns(ns);
    state.namespaces.push(ns);
    writeState(state);
  };
  log(`lab: creating ${LAN_NETNS} (${p.bridges.join(', ')}) ...`);
  track(LAN_NETNS);
  buildLan(p);
  for (const n of p.nodes) {
    log(`lab: creating ${n.netns} (${n.links.map((l) => `${l.name} ${l.addresses.join(' ')}`).join(', ')}) ...`);
    track(n.netns);
    buildNode(n);
  }

  const started = (proc: LabProcess): LabProcess => {
    state.processes.push(proc);
    writeState(state);
    return proc;
  };
  const ready: Promise<void>[] = [];
  const servers = p.nodes.filter((n) => n.role === 'server');
  log(`lab: starting nginx and dnsmasq on ${servers.map((n) => n.name).join(', ')} ...`);
  for (const n of servers) {
    ready.push(waitReady(started(startNginx(n)), ['tcp:80']));
    ready.push(waitReady(started(startDnsmasq(n)), ['udp:53']));
  }
  if (o.mode === 'tun') {
    if (haveService('rs-agent')) {
      log(`lab: starting rs-agent decap on ${servers.map((n) => n.name).join(', ')} ...`);
      for (const n of servers) {
        const a = started(startRsAgent(n));
        ready.push(sleep(500).then(() => {
          if (!isAlive(a)) throw new Error(`lab: rs-agent in ${n.netns} exited (log ${a.log}):\n${tail(a.log)}`);
        }));
      }
    } else {
      warn(state, log, 'tun mode: services/rs-agent/main.ts does not exist yet, so no real server decapsulates IPIP (this kernel has no ipip module); tunnelled traffic will not reach the real servers');
    }
  }
  if (o.nats) {
    const nats = p.nodes.filter((n) => n.role === 'nats');
    log(`lab: starting nats-server cluster on ${nats.map((n) => n.name).join(', ')} ...`);
    for (const n of nats) ready.push(waitReady(started(startNats(n)), ['tcp:4222', 'tcp:6222', 'tcp:8222']));
  }
  await Promise.all(ready);

  const directors = p.nodes.filter((n) => n.role === 'director');
  if (haveService('tsvsd')) {
    log(`lab: starting tsvsd on ${directors.map((n) => n.name).join(', ')} ...`);
    await Promise.all(directors.map(async (n) => {
      const d = started(startTsvsd(n, o.nats, o.workers, o.backend, o.cpus, o.tsvsdArgs, o.directors, o.router));
      const sock = adminSocketOf(n.name);
      try {
        await waitReady(d, [], 10_000, () => existsSync(sock));
      } catch (e) {
        // tsvsd is being written in parallel: a daemon that fails must not take the lab's network down with it.
        warn(state, log, `tsvsd on ${n.name} is not serving ${sock}: ${(e as Error).message}`);
      }
    }));
    const router = p.nodes.find((n) => n.role === 'router');
    if (router) {
      log(`lab: starting the nexthop watcher on ${router.name} (ECMP route follows the directors' probes) ...`);
      const w = started(startNexthopWatch(router, o));
      await sleep(300);
      if (!isAlive(w)) throw new Error(`lab: nexthop-watch in ${router.netns} exited (log ${w.log}):\n${tail(w.log)}`);
    }
  } else {
    warn(state, log, 'services/tsvsd/main.ts does not exist yet: directors run no daemon (the kernel forwards between LANs)');
  }
}

function warn(state: LabState, log: LabLog, msg: string): void {
  state.warnings.push(msg);
  writeState(state);
  log(`lab: warning: ${msg}`);
}

/**
 * Removes exactly what {@link up} made: stops recorded processes (pid + start time checked), kills anything left in the
 * recorded namespaces, deletes them by name, removes the runtime files. Safe to run twice; returns false if nothing was up.
 */
export async function down(log: LabLog = stderrLog): Promise<boolean> {
  const t0 = Date.now();
  const state = readState();
  if (!state) {
    log('lab: not up; nothing to do');
    return false;
  }
  if (state.processes.some(isAlive)) log(`lab: stopping ${state.processes.filter(isAlive).map((p) => `${p.name}@${p.node}`).join(', ')} ...`);
  await stopProcesses(state.processes);
  const present = new Set(listNetns());
  for (const ns of [...state.namespaces].reverse()) {
    if (!present.has(ns)) continue;
    // Children of recorded processes (nginx workers, tsvsd workers) or `lab exec` leftovers: they hold the namespace.
    const left = netnsPids(ns);
    for (const pid of left) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    if (left.length) log(`lab: killed leftover pid(s) ${left.join(', ')} in ${ns}`);
    log(`lab: deleting ${ns} ...`);
    removeAdminDir(ns);
    delNetns(ns);
  }
  removeRuntime(state);
  log(`lab: down in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return true;
}

/** Removes the files up wrote (node dirs and state.json), then the runtime dir if empty. Never a recursive delete of labDir itself. */
function removeRuntime(state: LabState): void {
  const dir = labDir();
  for (const ns of state.namespaces) rmSync(join(dir, ns.slice(NETNS_PREFIX.length)), { recursive: true, force: true });
  rmSync(statePath(), { force: true });
  rmSync(`${statePath()}.tmp`, { force: true });
  try {
    if (readdirSync(dir).length === 0) rmdirSync(dir);
  } catch {
    // not there, or someone else's files in it
  }
}

/** What {@link status} reports. */
export interface LabStatus {
  up: boolean;
  complete: boolean;
  options?: LabOptions;
  nodes: { name: string; netns: string; present: boolean; addresses: string[] }[];
  processes: (LabProcess & { alive: boolean })[];
  warnings: string[];
}

/** The lab as it is now: recorded nodes (namespace present?), their addresses, processes (alive?). */
export function status(): LabStatus {
  const state = readState();
  if (!state) return { up: false, complete: false, nodes: [], processes: [], warnings: [] };
  const present = new Set(listNetns());
  const p = plan(state.options);
  return {
    up: true,
    complete: state.complete,
    options: state.options,
    nodes: p.nodes.filter((n) => state.namespaces.includes(n.netns)).map((n) => ({
      name: n.name, netns: n.netns, present: present.has(n.netns), addresses: present.has(n.netns) ? addressesIn(n.netns) : [],
    })),
    processes: state.processes.map((x) => ({ ...x, alive: isAlive(x) })),
    warnings: state.warnings,
  };
}

/** IPv4 addresses configured in a namespace, except 127.0.0.0/8, as "addr/len dev". */
function addressesIn(netns: string): string[] {
  const r = run(['ip', '-n', netns, '-o', '-4', 'addr', 'show'], { allowFail: true });
  return r.stdout.split('\n').filter(Boolean).map((l) => l.split(/\s+/)).filter((f) => !f[3].startsWith('127.')).map((f) => `${f[3]} ${f[1]}`);
}

/** The plan of the lab that is up, or undefined when it is down. */
export function currentPlan(): LabPlan | undefined {
  const s = readState();
  return s ? plan(s.options) : undefined;
}

function nodeNetns(node: string): string {
  const s = readState();
  if (!s) throw new LabError('lab: not up (run: npm run lab -- up)');
  const ns = netnsOf(node);
  if (!s.namespaces.includes(ns) || ns === LAN_NETNS) {
    throw new LabError(`lab: no node "${node}" in the lab that is up (nodes: ${s.namespaces.filter((n) => n !== LAN_NETNS).map((n) => n.slice(NETNS_PREFIX.length)).join(', ')})`);
  }
  return ns;
}

/** Options of {@link execIn} and {@link execCapture}. */
export interface ExecOptions {
  /** Kill after this many ms (default: no limit for execIn, 30 s for execCapture). */
  timeoutMs?: number;
  input?: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * Runs `cmd` in the node's namespace with `<repo>/ops/bin` first on PATH, stdio passed through; returns its exit status
 * (128 + signal number if killed by a signal).
 */
export function execIn(node: string, cmd: string[], opts: ExecOptions = {}): number {
  const ns = nodeNetns(node);
  const r = spawnSync('ip', ['netns', 'exec', ns, ...cmd], { stdio: 'inherit', env: labEnv(opts.env), timeout: opts.timeoutMs });
  if (r.error) throw new LabError(`lab: cannot run ${cmd[0]} in ${ns}: ${r.error.message}`);
  if (r.status !== null) return r.status;
  return 128 + (r.signal ? (osSignals[r.signal] ?? 0) : 0);
}

const osSignals: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15 };

/** Runs `cmd` in the node's namespace and captures its output (never throws on a non-zero exit). */
export function execCapture(node: string, cmd: string[], opts: ExecOptions = {}): RunResult {
  return run(['ip', 'netns', 'exec', nodeNetns(node), ...cmd], { allowFail: true, timeoutMs: opts.timeoutMs ?? 30_000, input: opts.input, env: labEnv(opts.env) });
}

/** Starts `cmd` in the node's namespace without waiting (load generators, servers under test); the caller owns the child. */
export function spawnIn(node: string, cmd: string[], opts: SpawnOptions = {}): ChildProcess {
  return spawn('ip', ['netns', 'exec', nodeNetns(node), ...cmd], { stdio: 'inherit', ...opts, env: labEnv(opts.env) });
}
