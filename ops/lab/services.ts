// The programs the lab runs inside its namespaces (nginx, dnsmasq, nats-server, tsvsd, rs-agent): configs,
// detached start with pid tracking, readiness by listening sockets, and stop by recorded pid.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { defaultAdminSocketPath } from '../../shared/proto/admin.ts';
import { GATEWAY_VIP, VIP, natsIp, netnsOf } from './plan.ts';
import type { LabNode, LabOptions } from './plan.ts';
import { DEFAULT_PROBE_PORT } from '../../shared/proto/nexthop-probe.ts';
import { isAlive, labDir, procStartTime } from './state.ts';
import type { LabProcess } from './state.ts';
import { shmDir } from '../../shared/proto/worker.ts';

/** The repository root (where ops/, services/ and node_modules/ are). */
export const REPO_ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');

/** Environment for commands run in the lab: `<repo>/ops/bin` first on PATH, so tsvsadm/tsvsd/rs-agent resolve. */
export function labEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, PATH: `${REPO_ROOT}/ops/bin:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`, ...extra };
}

/** True when the service `name` (services/<name>/main.ts) exists in this checkout. */
export function haveService(name: string): boolean {
  return existsSync(join(REPO_ROOT, 'services', name, 'main.ts'));
}

/** The per-node runtime directory (configs, logs, pid files), created on demand. */
export function nodeDir(node: string): string {
  const d = join(labDir(), node);
  mkdirSync(d, { recursive: true });
  return d;
}

/** Starts argv detached inside the node's namespace, output to `<labdir>/<node>/<name>.log`. */
export function startProcess(node: string, name: string, argv: string[], env: NodeJS.ProcessEnv = labEnv()): LabProcess {
  const log = join(nodeDir(node), `${name}.log`);
  const fd = openSync(log, 'a');
  try {
    // `ip netns exec` execs the command in place: the pid we get is the program's own pid.
    const child = spawn('ip', ['netns', 'exec', netnsOf(node), ...argv], { detached: true, stdio: ['ignore', fd, fd], env });
    child.unref();
    if (child.pid === undefined) throw new Error(`lab: could not start ${name} in ${netnsOf(node)} (see ${log})`);
    const starttime = procStartTime(child.pid);
    if (starttime === undefined) throw new Error(`lab: ${name} in ${netnsOf(node)} exited at once (see ${log}):\n${tail(log)}`);
    return { node, name, pid: child.pid, starttime, argv, log };
  } finally {
    closeSync(fd);
  }
}

/** The last lines of a log file, for error messages. */
export function tail(file: string, lines = 8): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).map((l) => `    ${l}`).join('\n');
  } catch {
    return '    (no log)';
  }
}

/** Listening sockets of a process's network namespace, from /proc/<pid>/net/{tcp,udp}: "tcp:80", "udp:53". */
export function listeningPorts(pid: number): Set<string> {
  const out = new Set<string>();
  for (const proto of ['tcp', 'udp'] as const) {
    let text = '';
    try {
      text = readFileSync(`/proc/${pid}/net/${proto}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4) continue;
      // tcp: st 0A = LISTEN; udp: st 07 = unconnected (bound).
      if ((proto === 'tcp' && f[3] === '0A') || (proto === 'udp' && f[3] === '07')) out.add(`${proto}:${parseInt(f[1].split(':')[1], 16)}`);
    }
  }
  return out;
}

/**
 * Waits until the process listens on every port in `ports` ("tcp:80", "udp:53"), or `check` returns true.
 * Throws, with the log's tail, if the process dies or the time runs out.
 */
export async function waitReady(p: LabProcess, ports: string[], timeoutMs = 10_000, check?: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!isAlive(p)) throw new Error(`lab: ${p.name} in ${netnsOf(p.node)} died during start-up (log ${p.log}):\n${tail(p.log)}`);
    const have = listeningPorts(p.pid);
    if (ports.every((x) => have.has(x)) && (!check || check())) return;
    if (Date.now() > deadline) throw new Error(`lab: ${p.name} in ${netnsOf(p.node)} not ready after ${timeoutMs} ms (waiting for ${ports.join(', ') || 'its check'}; log ${p.log}):\n${tail(p.log)}`);
    await sleep(50);
  }
}

/** Stops processes: SIGTERM, then SIGKILL after `graceMs` for those still alive. Only recorded pids whose start time matches. */
export async function stopProcesses(procs: LabProcess[], graceMs = 3000): Promise<void> {
  const live = procs.filter(isAlive);
  for (const p of live) signal(p.pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (live.some(isAlive) && Date.now() < deadline) await sleep(50);
  for (const p of live.filter(isAlive)) signal(p.pid, 'SIGKILL');
  const killDeadline = Date.now() + 2000;
  while (live.some(isAlive) && Date.now() < killDeadline) await sleep(20);
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** nginx.conf for real server `node`: `daemon off`, keepalive, enough connections for wrk -c 256, body = node name. */
export function nginxConfig(node: string, dir: string): string {
  return `# tsvs lab: real server ${node} (generated by ops/lab)
daemon off;
master_process on;
user root;
worker_processes 1;
worker_rlimit_nofile 16384;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx.log warn;
events { worker_connections 8192; multi_accept on; }
http {
  access_log off;
  client_body_temp_path ${dir}/nginx-tmp/body;
  proxy_temp_path ${dir}/nginx-tmp/proxy;
  fastcgi_temp_path ${dir}/nginx-tmp/fastcgi;
  uwsgi_temp_path ${dir}/nginx-tmp/uwsgi;
  scgi_temp_path ${dir}/nginx-tmp/scgi;
  keepalive_timeout 65;
  keepalive_requests 1000000;
  server {
    listen 80 default_server backlog=4096;
    # A second port, for services that span ports (fwmark, port 0), like the seeds' HTTP+HTTPS pair.
    listen 8443 backlog=4096;
    location / { default_type text/plain; return 200 "${node}\\n"; }
  }
}
`;
}

/** Starts nginx on ports 80 and 8443 in a real server's namespace. */
export function startNginx(node: LabNode): LabProcess {
  const dir = nodeDir(node.name);
  mkdirSync(join(dir, 'nginx-tmp'), { recursive: true });
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, nginxConfig(node.name, dir));
  return startProcess(node.name, 'nginx', ['nginx', '-e', join(dir, 'nginx.log'), '-p', dir, '-c', conf]);
}

/**
 * Starts dnsmasq as an authoritative-only DNS server on UDP/TCP 53 answering TXT whoami.lab = node name.
 * It binds the wildcard address and answers from the address it was asked on (IP_PKTINFO), the VIP included.
 */
export function startDnsmasq(node: LabNode): LabProcess {
  const dir = nodeDir(node.name);
  return startProcess(node.name, 'dnsmasq', [
    'dnsmasq', '--keep-in-foreground', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', '--no-poll',
    '--user=root', '--group=root', `--pid-file=${join(dir, 'dnsmasq.pid')}`, '--port=53', '--cache-size=0',
    '--log-facility=-', `--txt-record=whoami.lab,${node.name}`, `--host-record=${node.name}.lab,${node.links[0].addresses[0].split('/')[0]}`,
  ]);
}

/**
 * nats-server settings for a director cluster (the lab's, and docs/cluster.md's advice for production): the server
 * pings its clients every 250 ms and drops one after 2 unanswered, and gives up a write after 1 s. A director whose
 * links are cut leaves a half-open connection behind; with the defaults (2 min pings, 10 s write deadline) the
 * server keeps queueing every heartbeat and sync batch to it, and once its socket buffer is full a write to it can
 * hold up delivery to the others (nats-server#2679): the new leader's own heartbeats stopped coming back ~1.8 s
 * after a link cut and it released the VIP (failover bench, 2026-12-06).
 */
export const NATS_DIRECTOR_CONF = 'ping_interval: "250ms"\nping_max: 2\nwrite_deadline: "1s"\n';

/** Starts nats_k: client 4222, cluster 6222 with routes to the other two, monitoring 8222, cluster name tsvs, JetStream on. */
export function startNats(node: LabNode): LabProcess {
  const dir = nodeDir(node.name);
  const k = node.index;
  const conf = join(dir, 'nats-server.conf');
  writeFileSync(conf, NATS_DIRECTOR_CONF);
  const routes = [1, 2, 3].filter((x) => x !== k).map((x) => `nats://${natsIp(x)}:6222`).join(',');
  return startProcess(node.name, 'nats-server', [
    'nats-server', '-c', conf, '-n', node.name, '-a', natsIp(k), '-p', '4222', '-m', '8222',
    '--cluster', `nats://${natsIp(k)}:6222`, '--cluster_name', 'tsvs', '--routes', routes, '-P', join(dir, 'nats-server.pid'),
    // JetStream: the cluster's leadership term lives in a replicated (R3) KV bucket.
    '-js', '-sd', join(dir, 'jetstream'),
  ]);
}

/** NATS URLs of the lab's cluster, for tsvsd (env TSVS_NATS_URL). */
export function natsUrls(): string {
  return [1, 2, 3].map((k) => `nats://${natsIp(k)}:4222`).join(',');
}

/** Inode of a namespace's nsfs file: tsvsd's admin socket path is keyed on it. */
export function netnsInode(netns: string): number {
  return statSync(`/run/netns/${netns}`).ino;
}

/** Where tsvsd in the node's namespace listens (shared/proto/admin.ts). */
export function adminSocketOf(node: string): string {
  return defaultAdminSocketPath(netnsInode(netnsOf(node)));
}

/**
 * Removes tsvsd's per-namespace state of a namespace about to be deleted: its runtime dir (/run/tsvs/ns-<inode>)
 * and its shared memory (/dev/shm/tsvs-ns-<inode>: connection-table shards and counters). tsvsd removes both on a
 * clean exit; this covers a daemon that was killed.
 */
export function removeAdminDir(netns: string): void {
  try {
    const ino = netnsInode(netns);
    rmSync(dirname(defaultAdminSocketPath(ino)), { recursive: true, force: true });
    rmSync(shmDir(ino), { recursive: true, force: true });
  } catch {
    // namespace already gone
  }
}

/** Cluster priority of director d<i> in the lab: 200 for d1, 190 for d2, ... (higher leads). */
export function labPriority(i: number): number {
  return Math.max(1, 210 - 10 * i);
}

/**
 * Starts ops/bin/tsvsd in a director's namespace with `--pidfile`, forwarding between `front` (clients, VIP) and
 * `back` (real servers); env TSVS_LAB_NODE (and TSVS_NATS_URL and `--priority` {@link labPriority} with --nats).
 * With a router: `--active-active` (every ready director forwards; the nexthop watcher probes it); without one and
 * several directors: `--gateway-vip`.
 */
export function startTsvsd(node: LabNode, nats: boolean, workers?: number, backend?: string, cpus?: string, extra?: string, directors = 1, router = false): LabProcess {
  const dir = nodeDir(node.name);
  // The namespace is new, so nothing in it serves this path: a socket there is left from an earlier namespace with
  // the same inode, and would both fool the readiness check and make the daemon's bind fail.
  rmSync(adminSocketOf(node.name), { force: true });
  const env = labEnv({ TSVS_LAB_NODE: node.name, ...(nats ? { TSVS_NATS_URL: natsUrls() } : {}) });
  // In a cluster d1 has the highest priority (then d2, ...); --tsvsd-args may override it (the last one counts).
  const priority = nats ? ['--priority', String(labPriority(node.index))] : [];
  // More than one director: the real servers' gateway is a floating address the VIP's owner holds on `back`.
  if (router) priority.push('--active-active', '--probe-port', String(DEFAULT_PROBE_PORT));
  else if (directors > 1) priority.push('--gateway-vip', GATEWAY_VIP);
  return startProcess(node.name, 'tsvsd', [join(REPO_ROOT, 'ops/bin/tsvsd'), '--pidfile', join(dir, 'tsvsd.pid'), '--client-if', 'front', '--server-if', 'back', ...priority, ...(workers !== undefined ? ['--workers', String(workers)] : []), ...(backend !== undefined ? ['--backend', backend] : []), ...(cpus !== undefined ? ['--cpus', cpus] : []), ...(extra ?? '').split(' ').filter((x) => x !== '')], env);
}

/**
 * Starts the router's nexthop watcher (ops/lab/nexthop-watch.ts) in tsvs-router: it probes every director's tsvsd and
 * keeps the VIP's ECMP route (and NAT real servers' default routes) on those that answer up.
 */
export function startNexthopWatch(router: LabNode, o: LabOptions): LabProcess {
  return startProcess(router.name, 'nexthop-watch', [join(REPO_ROOT, 'node_modules/.bin/node'), join(REPO_ROOT, 'ops/lab/nexthop-watch.ts'),
    '--directors', String(o.directors), '--servers', String(o.servers), '--mode', o.mode, '--probe-port', String(DEFAULT_PROBE_PORT)]);
}

/**
 * Starts `rs-agent decap --vip <VIP> --gue-port 6080` in a real server's namespace (tun mode: this kernel has no
 * ipip module); it takes IPIP and GUE apart.
 */
export function startRsAgent(node: LabNode): LabProcess {
  return startProcess(node.name, 'rs-agent', [join(REPO_ROOT, 'ops/bin/rs-agent'), 'decap', '--vip', VIP, '--gue-port', String(LAB_GUE_PORT)]);
}

/** The UDP port on which the lab's real servers accept GUE-encapsulated traffic in tun mode (`--tun-port`). */
export const LAB_GUE_PORT = 6080;
