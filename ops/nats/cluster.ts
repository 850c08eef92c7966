// A 3-node nats-server cluster with JetStream on loopback for tests, benches and the lab: Debian's
// /usr/sbin/nats-server (installed with apt-get if missing), store dirs in a temp dir, every process killed by PID.
// CLI: node ops/nats/cluster.ts up [--base 44000] (prints the URLs, runs until Ctrl-C) — the tests import it.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const NATS_SERVER = '/usr/sbin/nats-server';

/** One server of the cluster. */
export interface NatsNode {
  name: string;
  /** Client port (127.0.0.1). */
  port: number;
  /** Cluster route port. */
  routePort: number;
  /** Monitoring HTTP port. */
  httpPort: number;
  url: string;
  proc: ChildProcess | null;
  paused: boolean;
}

/** A running cluster. Ports: client base+1..3, routes base+11..13, monitoring base+21..23. */
export interface NatsCluster {
  nodes: NatsNode[];
  /** Client URLs of every node. */
  urls: string[];
  dir: string;
  /** kill -9 one node. */
  kill(i: number): Promise<void>;
  /** Starts a killed node again (same store dir). */
  start(i: number): Promise<void>;
  /** SIGSTOP / SIGCONT one node. */
  pause(i: number): void;
  resume(i: number): void;
  /** The node name holding the JetStream meta leader (null while there is none). */
  metaLeader(): Promise<string | null>;
  /** The node name holding the raft leader of stream `stream` (null while none). */
  streamLeader(stream: string): Promise<string | null>;
  /**
   * True when stream `stream` has a raft leader and every other replica is current and online, as a running
   * node reports it: after a node was frozen or killed, the group is whole again (another failure keeps a quorum).
   */
  streamHealthy(stream: string, replicas: number): Promise<boolean>;
  /** Kills every node and removes the store dirs. */
  stop(): Promise<void>;
}

/** Installs Debian's nats-server if it is missing (needs root and the network); throws with the reason otherwise. */
export function ensureNatsServer(): string {
  if (existsSync(NATS_SERVER)) return NATS_SERVER;
  const r = spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=120', 'install', '-y', 'nats-server'], { stdio: 'inherit' });
  if (r.status !== 0 || !existsSync(NATS_SERVER)) throw new Error(`nats-server missing and apt-get install failed (exit ${r.status}); run as root: apt-get install nats-server`);
  return NATS_SERVER;
}

async function getJson(port: number, path: string): Promise<unknown> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(500) });
  return res.json();
}

/**
 * Starts the cluster and waits until JetStream has a meta leader (a bucket cannot be created before; this takes
 * a few seconds after start on 2.9). Rejects after `timeoutMs`.
 */
export async function startNatsCluster(opts: { base?: number; timeoutMs?: number } = {}): Promise<NatsCluster> {
  const bin = ensureNatsServer();
  const base = opts.base ?? 44000;
  const dir = mkdtempSync(join(tmpdir(), 'tsvs-nats-'));
  const nodes: NatsNode[] = [1, 2, 3].map((i) => ({
    name: `n${i}`, port: base + i, routePort: base + 10 + i, httpPort: base + 20 + i, url: `nats://127.0.0.1:${base + i}`, proc: null, paused: false,
  }));
  for (const n of nodes) {
    const routes = nodes.filter((m) => m !== n).map((m) => `nats-route://127.0.0.1:${m.routePort}`);
    writeFileSync(join(dir, `${n.name}.conf`), [
      `server_name: ${n.name}`,
      `listen: 127.0.0.1:${n.port}`,
      `http: 127.0.0.1:${n.httpPort}`,
      `jetstream { store_dir: "${join(dir, n.name)}", max_memory_store: 256MB, max_file_store: 1GB }`,
      `cluster { name: tsvs, listen: 127.0.0.1:${n.routePort}, routes: [${routes.join(', ')}] }`,
      '',
    ].join('\n'));
  }
  const launch = async (n: NatsNode): Promise<void> => {
    const p = spawn(bin, ['-c', join(dir, `${n.name}.conf`)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr?.on('data', (d: Buffer) => (err = (err + d).slice(-4000)));
    n.proc = p;
    n.paused = false;
    const t0 = Date.now();
    for (;;) {
      if (p.exitCode !== null) throw new Error(`nats-server ${n.name} exited ${p.exitCode}: ${err}`);
      try {
        await getJson(n.httpPort, '/healthz');
        return;
      } catch {
        if (Date.now() - t0 > 10_000) throw new Error(`nats-server ${n.name} does not answer on ${n.httpPort}: ${err}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };
  const killNode = async (n: NatsNode): Promise<void> => {
    const p = n.proc;
    if (!p || p.exitCode !== null) return;
    if (n.paused) p.kill('SIGCONT');
    const gone = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGKILL');
    await gone;
    n.proc = null;
  };
  const jsz = async (path: string): Promise<unknown[]> => {
    const out: unknown[] = [];
    for (const n of nodes) {
      if (!n.proc || n.paused) continue;
      try {
        out.push(await getJson(n.httpPort, path));
      } catch {
        // a node that does not answer has no opinion
      }
    }
    return out;
  };
  const cluster: NatsCluster = {
    nodes,
    urls: nodes.map((n) => n.url),
    dir,
    kill: (i) => killNode(nodes[i]),
    start: (i) => launch(nodes[i]),
    pause(i) {
      nodes[i].proc?.kill('SIGSTOP');
      nodes[i].paused = true;
    },
    resume(i) {
      nodes[i].proc?.kill('SIGCONT');
      nodes[i].paused = false;
    },
    async metaLeader() {
      for (const j of (await jsz('/jsz')) as { meta_cluster?: { leader?: string } }[]) if (j.meta_cluster?.leader) return j.meta_cluster.leader;
      return null;
    },
    async streamLeader(stream) {
      for (const j of (await jsz('/jsz?streams=true')) as { account_details?: { stream_detail?: { name: string; cluster?: { leader?: string } }[] }[] }[]) {
        for (const a of j.account_details ?? []) for (const s of a.stream_detail ?? []) if (s.name === stream && s.cluster?.leader) return s.cluster.leader;
      }
      return null;
    },
    async streamHealthy(stream, replicas) {
      // Only the leader's own report counts: it is the one that knows whether its followers are current.
      type Detail = { name: string; cluster?: { leader?: string; replicas?: { name: string; current: boolean; offline?: boolean }[] } };
      for (const n of nodes) {
        if (!n.proc || n.paused) continue;
        let j: { account_details?: { stream_detail?: Detail[] }[] };
        try {
          j = (await getJson(n.httpPort, '/jsz?streams=true')) as typeof j;
        } catch {
          continue;
        }
        for (const a of j.account_details ?? []) {
          for (const s of a.stream_detail ?? []) {
            if (s.name !== stream || s.cluster?.leader !== n.name) continue;
            const r = s.cluster.replicas ?? [];
            return r.length === replicas - 1 && r.every((x) => x.current && !x.offline);
          }
        }
      }
      return false;
    },
    async stop() {
      for (const n of nodes) await killNode(n);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    for (const n of nodes) await launch(n);
    const t0 = Date.now();
    while (!(await cluster.metaLeader())) {
      if (Date.now() - t0 > (opts.timeoutMs ?? 30_000)) throw new Error('nats cluster: no JetStream meta leader');
      await new Promise((r) => setTimeout(r, 200));
    }
  } catch (e) {
    await cluster.stop();
    throw e;
  }
  return cluster;
}

if (import.meta.main) {
  const [cmd, ...rest] = process.argv.slice(2);
  if (cmd !== 'up') {
    process.stderr.write('usage: node ops/nats/cluster.ts up [--base 44000]\n');
    process.exit(2);
  }
  const bi = rest.indexOf('--base');
  const c = await startNatsCluster({ base: bi >= 0 ? Number(rest[bi + 1]) : 44000 });
  process.stdout.write(`nats cluster up: ${c.urls.join(',')} (meta leader ${await c.metaLeader()}); Ctrl-C stops it\n`);
  const stop = (): void => void c.stop().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
