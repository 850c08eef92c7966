// Helpers for lab tests that build their own small namespace topologies: run commands (in a namespace), start
// background processes and stop them, remove namespaces by name, read a namespace's SNMP counters.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';

/** Runs argv (optionally with stdin) and returns stdout; throws on a non-zero exit or after `timeoutMs`. */
export function sh(argv: readonly string[], input?: string, timeoutMs = 60_000): string {
  return execFileSync(argv[0], argv.slice(1), { encoding: 'utf8', input, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], timeout: timeoutMs });
}

/** Runs argv inside network namespace `ns`. */
export function inNs(ns: string, argv: readonly string[], input?: string): string {
  return sh(['ip', 'netns', 'exec', ns, ...argv], input);
}

/** Deletes the named namespaces; absent ones are fine. */
export function removeNamespaces(names: readonly string[]): void {
  for (const n of names) {
    try {
      sh(['ip', 'netns', 'del', n]);
    } catch {
      // absent: nothing to remove
    }
  }
}

/** Background processes a test started, to be killed (by PID) in afterAll. */
export class Background {
  readonly started: ChildProcess[] = [];

  /** Starts argv inside `ns` with piped output. */
  run(ns: string, argv: readonly string[]): ChildProcess {
    const p = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.started.push(p);
    return p;
  }

  /** SIGKILLs every process still running. */
  killAll(): void {
    for (const p of this.started) if (p.exitCode === null && p.pid) p.kill('SIGKILL');
  }
}

/** One counter of /proc/net/snmp inside `ns` (e.g. Udp InCsumErrors). */
export function snmp(ns: string, proto: 'Tcp' | 'Udp', field: string): number {
  const lines = inNs(ns, ['cat', '/proc/net/snmp']).split('\n').filter((l) => l.startsWith(`${proto}:`));
  return Number(lines[1].split(/\s+/)[lines[0].split(/\s+/).indexOf(field)]);
}

/** Waits (up to ~10 s) until `curl url` inside `ns` returns a body containing `expect`; throws `what` otherwise. */
export function waitForHttp(ns: string, url: string, expect: string, what: string): void {
  for (let i = 0; i < 100; i++) {
    try {
      if (inNs(ns, ['curl', '-s', '-m', '1', url]).includes(expect)) return;
    } catch {
      // server not up yet
    }
    execFileSync('sleep', ['0.1']);
  }
  throw new Error(what);
}
