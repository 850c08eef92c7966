// Helpers for lab tests that build their own small namespace topologies: run commands (in a namespace), start
// background processes and stop them, remove namespaces by name, read a namespace's SNMP counters, blast UDP.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

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

  /**
   * A UDP echo server in `ns` on each of `addrs` at `port` (one socket per address, so that a reply leaves from
   * the address it was sent to, e.g. a VIP), answering `prefix` + the datagram.
   */
  udpEcho(ns: string, addrs: readonly string[], port: number, prefix = ''): ChildProcess {
    return this.run(ns, ['python3', '-c', `
import select, socket
socks = []
for addr in (${addrs.map((a) => `'${a}'`).join(', ')},):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, ${port}))
    socks.append(s)
while True:
    for s in select.select(socks, [], [])[0]:
        d, a = s.recvfrom(2048)
        s.sendto(b'${prefix}' + d, a)
`]);
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

/** The MAC address of `dev` in namespace `ns`. */
export function linkMac(ns: string, dev: string): string {
  return (JSON.parse(inNs(ns, ['ip', '-j', 'link', 'show', dev])) as { address: string }[])[0].address;
}

/**
 * Sends 60-byte UDP frames as fast as trafgen can for `seconds` from `dev` in `ns` (16 flows: source ports
 * 20000-20015), on the last CPU. trafgen binds its fork i to CPU i whatever taskset says, so the frame is
 * restricted to that CPU's fork (`cpu(N):`) and one fork per CPU is started. Returns the frames trafgen sent.
 */
export function trafgenBlast(o: { ns: string; dev: string; dstMac: string; srcMac: string; src: string; dst: string; dport: number; seconds: number; dir: string }): number {
  const cpus = availableParallelism();
  const cfg = join(o.dir, 'blast.cfg');
  writeFileSync(cfg, `cpu(${cpus - 1}): {
  eth(da=${o.dstMac}, sa=${o.srcMac}),
  ipv4(saddr=${o.src}, daddr=${o.dst}, ttl=64),
  udp(sport=dinc(20000, 20015), dport=${o.dport}),
  fill(0x41, 18)
}
`);
  let out: string;
  try {
    out = inNs(o.ns, ['timeout', '-s', 'INT', String(o.seconds), 'trafgen', '--dev', o.dev, '--conf', cfg, '--cpus', String(cpus), '-q']);
  } catch (e) {
    out = String((e as { stdout?: string }).stdout ?? '');
  }
  return Number(/(\d+) packets outgoing/.exec(out)?.[1] ?? 0);
}
