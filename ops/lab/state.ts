// The lab's record of what it made (namespaces, processes, options): the only thing `down` trusts.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LabOptions } from './plan.ts';

/** Runtime directory: configs, logs, pid files, state.json. TSVS_LAB_DIR overrides /run/tsvs-lab. */
export function labDir(): string {
  return process.env.TSVS_LAB_DIR || '/run/tsvs-lab';
}

/** Path of the state file. */
export function statePath(): string {
  return join(labDir(), 'state.json');
}

/** A long-running process the lab started in a node. */
export interface LabProcess {
  node: string;
  /** Short name: nginx, dnsmasq, nats-server, tsvsd, rs-agent. */
  name: string;
  pid: number;
  /** Field 22 of /proc/<pid>/stat at start: tells our process from a later one that reused the pid. */
  starttime: string;
  argv: string[];
  log: string;
}

/** Contents of state.json. */
export interface LabState {
  version: 1;
  options: LabOptions;
  createdAt: string;
  /** False while `up` is still building (or if it died half-way: then `down` cleans up). */
  complete: boolean;
  /** Namespaces this lab created, in creation order. */
  namespaces: string[];
  processes: LabProcess[];
  /** Things `up` could not start, said again by `status`. */
  warnings: string[];
  /** Nodes failed with `fail` and not healed yet, by node name. */
  faults?: Record<string, LabFault>;
}

/** A fault `fail` injected into a node, with what `heal` needs to undo it. */
export interface LabFault {
  how: 'kill' | 'link' | 'freeze';
  /** When it was injected (epoch ms). */
  at: number;
  /** link: the veth ends in tsvs-lan that were set down. */
  peers?: string[];
  /** freeze: the pids that were stopped. */
  pids?: number[];
  /** kill: the names of the lab processes to start again (tsvsd, nats-server, nginx, ...). */
  restart?: string[];
}

/** Reads state.json; undefined when the lab is down. Throws if the file exists but is unreadable. */
export function readState(): LabState | undefined {
  const p = statePath();
  if (!existsSync(p)) return undefined;
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as LabState;
  } catch (e) {
    throw new Error(`lab: cannot read ${p}: ${(e as Error).message} (inspect it; remove it only if no lab namespaces remain)`);
  }
}

/** Writes state.json atomically (write + rename), creating the runtime dir. */
export function writeState(s: LabState): void {
  mkdirSync(labDir(), { recursive: true });
  const tmp = `${statePath()}.tmp`;
  writeFileSync(tmp, JSON.stringify(s, null, 2) + '\n');
  renameSync(tmp, statePath());
}

/** Start time of a process (see {@link LabProcess.starttime}), or undefined if it does not exist. */
export function procStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may hold spaces and parentheses: fields resume after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (rest[0] === 'Z') return undefined;
    return rest[19];
  } catch {
    return undefined;
  }
}

/** True when the recorded process is still the one we started and not a zombie. */
export function isAlive(p: Pick<LabProcess, 'pid' | 'starttime'>): boolean {
  return procStartTime(p.pid) === p.starttime;
}
