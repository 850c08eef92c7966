// Per-process CPU time (utime + stime from /proc/PID/stat) of the processes in the lab's namespaces, grouped by
// role (tsvsd, worker, telemetry, OTLP sink, nginx, wrk, ...), so a bench can say where the CPU went during a run.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/PID/stat's utime and stime (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

/** CPU ticks by PID, with each process's role, at one moment. */
export type CpuSnapshot = Map<number, { role: string; ticks: number }>;

/** PIDs of the processes in lab node `node` (namespace tsvs-<node>); empty when it does not exist. */
function nsPids(node: string): number[] {
  const r = spawnSync('ip', ['netns', 'pids', `tsvs-${node}`], { encoding: 'utf8' });
  if (r.status !== 0) return [];
  return r.stdout.split('\n').filter((x) => /^\d+$/.test(x)).map(Number);
}

/** What a process is, from its command line: the tsvs component, or the program's name. */
export function roleOf(argv: string[]): string {
  const all = argv.join(' ');
  if (all.includes('services/telemetry/main.ts')) return 'telemetry';
  if (all.includes('services/worker/main.ts')) return 'worker';
  if (all.includes('services/tsvsd/main.ts')) return 'tsvsd';
  if (all.includes('createServer')) return 'otlp-sink';
  const prog = (argv[0] ?? '').split('/').pop() ?? '';
  if (prog.startsWith('nginx')) return 'nginx';
  return prog === '' ? 'other' : prog;
}

/** utime + stime in ticks from the text of /proc/PID/stat (the command name may hold spaces and parentheses). */
export function statTicks(stat: string): number {
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // f[0] is field 3 (state): utime is field 14, stime field 15.
  return Number(f[11]) + Number(f[12]);
}

/** CPU ticks of every process in the given lab nodes now (processes that vanish meanwhile are left out). */
export function cpuSnapshot(nodes: readonly string[]): CpuSnapshot {
  const out: CpuSnapshot = new Map();
  for (const node of nodes) {
    for (const pid of nsPids(node)) {
      try {
        const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((x) => x !== '');
        // `ip netns exec` itself, before it execs: not a process of the lab yet.
        if (argv[0] === 'ip') continue;
        out.set(pid, { role: roleOf(argv), ticks: statTicks(readFileSync(`/proc/${pid}/stat`, 'utf8')) });
      } catch {
        // Exited between the listing and the read.
      }
    }
  }
  return out;
}

/**
 * CPU seconds each role used between two snapshots (processes in `after` only count from 0: they started during
 * the run; processes gone by `after` are not counted, their last ticks are unknown).
 */
export function cpuByRole(before: CpuSnapshot, after: CpuSnapshot): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [pid, a] of after) {
    const d = a.ticks - (before.get(pid)?.ticks ?? 0);
    out[a.role] = (out[a.role] ?? 0) + d / USER_HZ;
  }
  return out;
}
