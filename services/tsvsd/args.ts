// tsvsd command line: `tsvsd [--socket PATH] [--config FILE] [--keepalived FILE [--check]] [--pidfile FILE] [--workers N] [--client-if IF
// [--server-if IF] [--cpus LIST] [--ring MODE] [--mark-rules FILE] [--backend B] [--spin-us US | --busy-poll]
// [--capacity N] [guard flags] [--gateway-vip ADDR]] [--http ADDR:PORT] [--otlp URL] [--trace-ratio R]
// [--nats URLS [cluster options]] [--active-active [--probe-port N]] [-h]`.
import { availableParallelism, hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { parseListen } from './http/server.ts';
import { parseRatio } from '../../shared/telemetry/attributes.ts';
import { GUARD_ARG_SPECS, GUARD_USAGE, parseGuardFlags, type GuardOptions } from '../../shared/fwd/guard.ts';
import { clusterAgentArgs, CLUSTER_FLAGS, type ClusterCli } from './cluster.ts';
import { DEFAULT_PROBE_PORT } from '../../shared/proto/nexthop-probe.ts';

/** What the command line asks for. Absent paths are undefined; the daemon resolves defaults. */
export interface CliOptions {
  /** Admin socket path; overrides TSVS_ADMIN_SOCKET and the per-netns default. */
  socket?: string;
  /** Rules file in ipvsadm-save format, loaded before the socket opens. */
  config?: string;
  /** keepalived.conf: virtual servers loaded into the table, real servers run by the health checker child. */
  keepalived?: string;
  /** With `keepalived`: validate the file, print its problems and exit (keepalived -t). */
  check?: boolean;
  pidfile?: string;
  /** Forwarding workers to run (1..16; default one per core less one, at least one). */
  workers: number;
  /** Interface where clients' packets (and the VIPs) arrive; without it tsvsd keeps the table but forwards nothing. */
  clientIf?: string;
  /** Interface toward the real servers (default: the client interface). */
  serverIf?: string;
  /** CPU per worker. */
  cpus?: number[];
  /** Receive ring mode. */
  ring?: 'adaptive' | 'v2' | 'v3';
  /** Mark rules (iptables MARK syntax) for fwmark services. */
  markRules?: string;
  /** Packet I/O backend: afpacket (default) or nfqueue (safe mode). */
  backend?: 'afpacket' | 'nfqueue';
  /** AF_PACKET: microseconds a worker keeps polling its rings after a batch (0 = sleep at once). */
  spinUs?: number;
  /** AF_PACKET: workers never sleep, they poll their rings continuously (dedicated cores). */
  busyPoll?: boolean;
  /** HTTP listener for /metrics, /api/* and the monitor page: ADDR:PORT, [V6]:PORT or PORT (loopback). */
  http?: string;
  /** OTLP base URL for decision spans (URL/v1/traces); turns tracing on. */
  otlp?: string;
  /** Share of successful decisions exported as spans, 0..1 (failures always); turns tracing on. */
  traceRatio?: string;
  /** Connection-table capacity per worker (entries): the table's bound. */
  capacity?: number;
  /** Dead destinations and flood defence (shared/fwd/guard.ts): the flags given. */
  guard?: Partial<GuardOptions>;
  /** A floating inside address owned with the VIPs on the server interface (the real servers' gateway). */
  gatewayVip?: string;
  /** Cluster membership (NATS configured): the agent child's options; absent = this director runs alone. */
  cluster?: ClusterCli;
  /**
   * Active-active behind an ECMP router (services/tsvsd/active-active.ts): every ready director forwards, the VIPs
   * go on lo, a UDP probe on `probePort` answers whether this director (`node`) forwards now.
   */
  activeActive?: { probePort: number; node: string };
}

/** One worker per core, less one core left to the kernel's receive work; at least one. */
export function defaultWorkers(cores = availableParallelism()): number {
  return Math.max(1, Math.min(16, cores - 1));
}

/** The -h text (also printed after a usage error). */
export const USAGE = `Usage: tsvsd [--socket PATH] [--config FILE] [--keepalived FILE [--check]] [--pidfile FILE] [--workers N]
             [--client-if IF [--server-if IF] [--cpus LIST] [--ring adaptive|v2|v3] [--mark-rules FILE]
             [--backend afpacket|nfqueue] [--spin-us US | --busy-poll] [--capacity N] [GUARD...]
             [--gateway-vip ADDR]] [--http ADDR:PORT] [--otlp URL] [--trace-ratio R]
             [--nats URLS [--nats-creds FILE] [--node NAME] [--cluster NAME] [--priority N] [--nopreempt]
             [--preempt-delay MS] [--heartbeat MS] [--miss-beats N] [--startup-wait MS] [--kv-replicas N]]
             [--active-active [--probe-port N]] [-h]

Runs the tsvs director's control process in the foreground and logs to stderr.
  --socket PATH   admin socket (default: $TSVS_ADMIN_SOCKET, else /run/tsvs/ns-<netns inode>/tsvsd.sock)
  --config FILE   load rules in ipvsadm-save format (-A/-a lines) at start
  --keepalived FILE  load the virtual_server(_group) blocks of a keepalived.conf and run their real servers'
                  checkers (TCP_CHECK, HTTP_GET, ...) in a health child that edits the table as keepalived
                  does: a failed server removed (weight 0 with inhibit_on_failure), the sorry server when quorum
                  is lost; unsupported keywords are warnings with file:line in the log (docs/health.md).
                  SIGHUP reads the file again: unchanged real servers keep their state, nothing is flushed.
                  Its vrrp_instance configures the cluster (docs/keepalived.md): virtual_router_id → --cluster
                  vrrp-ID, priority → --priority (state MASTER is a hint only), nopreempt, preempt_delay (s) →
                  --preempt-delay (ms); advert_int is not mapped (tsvs's heartbeat detects); the leader (or a
                  director alone) owns the virtual_ipaddress addresses beside the table's VIPs. Cluster options
                  given on this command line win over the file. Without --nats a vrrp_instance is a warning:
                  the director runs alone and owns those VIPs itself. Read at start only (SIGHUP keeps them)
  --check         with --keepalived: validate the file, print every problem as file:line (errors, then
                  warnings) and the cluster settings its vrrp_instance maps to (with the command line's cluster
                  options applied), and exit 1 on any error, 0 otherwise, starting nothing (as keepalived -t)
  --pidfile FILE  write the process id here; removed on exit
  --workers N     forwarding workers, 1..16 (default: one per core less one, at least one)
  --client-if IF  forward: clients' packets arrive on IF and the VIPs are added there; without it,
                  tsvsd keeps the table for tsvsadm but forwards nothing
  --server-if IF  the interface toward the real servers, where NAT replies arrive (default: IF)
  --cpus LIST     pin worker i to the i-th CPU of LIST, e.g. 0,1 (default: worker i on CPU i)
  --ring MODE     receive rings: adaptive (default), v2 (low latency), v3 (throughput)
  --mark-rules FILE  classify packets for fwmark services (-f) with iptables MARK rules (docs/fwmark.md)
  --backend B     packet I/O: afpacket (default: workers read rings and own L2) or nfqueue (safe mode: the
                  kernel queues service traffic and keeps routing, ARP and checksums; DR by policy routing)
  --spin-us US    after a batch, keep polling for US microseconds before sleeping (default 100): a reply in
                  flight is forwarded without a wake-up; 0 saves CPU at low load, more lowers latency further
  --busy-poll     workers never sleep: each polls its rings without pause (100 % of its CPU, idle or not),
                  for cores given to the director alone; no wake-up on any packet
  --capacity N    connection-table entries per worker, the table's bound (default 1048576): when full, the
                  oldest half-open TCP entry is evicted for a new connection, else it is refused (counted)
Dead real servers and SYN floods (IPVS's sysctls; docs/dataplane.md), every drop counted in tsvsadm status:
${GUARD_USAGE}  --http ADDR:PORT  serve /metrics (Prometheus), /api/* (JSON) and the monitor page at / (PORT alone: loopback)
  --otlp URL      trace scheduling decisions: workers record each one, a child exports spans to URL/v1/traces
                  (OTLP http/protobuf; OTEL_EXPORTER_OTLP_ENDPOINT and the other OTEL_* variables work too)
  --trace-ratio R  export this share (0..1) of successful decisions; failures always (docs/observability.md)
  --gateway-vip ADDR  own ADDR on the server interface whenever this director owns the VIPs: the real servers'
                  gateway follows the VIPs' owner (NAT replies; keepalived's gateway-VIP pattern)
Cluster options (a --keepalived file's vrrp_instance fills those not given here):
  --nats URLS     join a cluster over these NATS servers (comma-separated; default $TSVS_NATS_URL): tsvsd runs
                  the cluster agent as a child; only the leader owns the VIPs, or with --active-active every
                  ready director forwards them (docs/cluster.md). Without NATS, this director runs alone and
                  owns every VIP of its table
  --nats-creds FILE  NATS credentials file
  --node NAME     this director's name in the cluster (default $TSVS_LAB_NODE, else the host name)
  --cluster NAME  cluster name (default tsvs); directors of one cluster share NATS subjects and the term bucket
  --priority N    1..255, the highest live one leads (default 100; ties: lowest name)
  --nopreempt     never take leadership from a live leader of lower priority
  --preempt-delay MS  wait this long before preempting (default 0)
  --heartbeat MS  cluster heartbeat interval (default 25); --miss-beats N (default 7) missed = dead
  --startup-wait MS  listen for peers (and pull their state) this long before leading (default 2 x detection)
  --kv-replicas N  replicas of the cluster's KV buckets: leadership term, table (default 3: a 3-node NATS
                  cluster)
  --active-active  behind an ECMP router (or BGP): every ready director forwards the VIPs, not only the leader
                  (with --nats: once its snapshot is installed and while NATS reaches it). The VIPs go on lo,
                  not on the client interface, which stops answering ARP for them (arp_ignore=1,
                  arp_announce=2); no gratuitous ARP; needs --client-if, not with --gateway-vip; tsvsadm cluster
                  shows what it forwards (docs/cluster-tsvsd.md; docs/cluster.md, Active-active)
  --probe-port N  with --active-active: answer nexthop probes on UDP port N, up while this director forwards
                  the VIPs (default ${DEFAULT_PROBE_PORT}); a router drops a director that answers down or not at all
  -h, --help      this text
SIGHUP: reload the --keepalived file (an unreadable or broken file is logged and the running one kept).
SIGTERM or SIGINT: clean exit (workers stopped; socket, pidfile, kernel rules, VIPs and shared memory removed).
`;

/** Parses argv (without node and script). Never throws: usage mistakes come back as `error`. */
export function parseCli(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): { kind: 'run'; opts: CliOptions } | { kind: 'help' } | { kind: 'error'; message: string } {
  let v: ReturnType<typeof parse>;
  try {
    v = parse(argv);
  } catch (e) {
    return { kind: 'error', message: (e as Error).message };
  }
  if (v.values.help) return { kind: 'help' };
  let workers = defaultWorkers();
  if (v.values.workers !== undefined) {
    const s = v.values.workers;
    workers = /^\d+$/.test(s) ? Number(s) : NaN;
    if (!(workers >= 1 && workers <= 16)) return { kind: 'error', message: `--workers: want 1..16, got '${s}'` };
  }
  let cpus: number[] | undefined;
  if (v.values.cpus !== undefined) {
    cpus = v.values.cpus.split(',').map((x) => (/^\d+$/.test(x) ? Number(x) : NaN));
    if (cpus.some((c) => !Number.isInteger(c)) || cpus.length < workers) return { kind: 'error', message: `--cpus: want ${workers} CPU numbers separated by commas, got '${v.values.cpus}'` };
  }
  const ring = v.values.ring;
  if (ring !== undefined && ring !== 'adaptive' && ring !== 'v2' && ring !== 'v3') return { kind: 'error', message: `--ring: want adaptive, v2 or v3, got '${ring}'` };
  if (v.values['server-if'] !== undefined && v.values['client-if'] === undefined) return { kind: 'error', message: '--server-if needs --client-if' };
  if (v.values['mark-rules'] !== undefined && v.values['client-if'] === undefined) return { kind: 'error', message: '--mark-rules needs --client-if' };
  let spinUs: number | undefined;
  if (v.values['spin-us'] !== undefined) {
    spinUs = /^\d+$/.test(v.values['spin-us']) ? Number(v.values['spin-us']) : NaN;
    if (!(spinUs >= 0 && spinUs <= 100_000)) return { kind: 'error', message: `--spin-us: want 0..100000, got '${v.values['spin-us']}'` };
  }
  const busyPoll = v.values['busy-poll'] === true ? true : undefined;
  if (busyPoll && spinUs !== undefined) return { kind: 'error', message: '--busy-poll and --spin-us exclude each other (busy polling never stops)' };
  const backend = v.values.backend;
  if (busyPoll && backend === 'nfqueue') return { kind: 'error', message: '--busy-poll applies to the afpacket backend' };
  if (backend !== undefined && backend !== 'afpacket' && backend !== 'nfqueue') return { kind: 'error', message: `--backend: want afpacket or nfqueue, got '${backend}'` };
  const http = v.values.http;
  if (http !== undefined) {
    try {
      parseListen(http);
    } catch (e) {
      return { kind: 'error', message: (e as Error).message };
    }
  }
  const otlp = v.values.otlp;
  if (otlp !== undefined && !/^https?:\/\/[^/]+/.test(otlp)) return { kind: 'error', message: `--otlp: want an http(s) URL, got '${otlp}'` };
  const traceRatio = v.values['trace-ratio'];
  if (traceRatio !== undefined) {
    try {
      parseRatio(traceRatio, '--trace-ratio');
    } catch (e) {
      return { kind: 'error', message: (e as Error).message };
    }
  }
  let capacity: number | undefined;
  if (v.values.capacity !== undefined) {
    capacity = /^\d+$/.test(v.values.capacity) ? Number(v.values.capacity) : NaN;
    if (!(capacity >= 16 && capacity <= 0xfffffe)) return { kind: 'error', message: `--capacity: want 16..16777214, got '${v.values.capacity}'` };
  }
  const guard = parseGuardFlags(v.values);
  if ('error' in guard) return { kind: 'error', message: guard.error };
  if ((capacity !== undefined || Object.keys(guard).length > 0) && v.values['client-if'] === undefined) return { kind: 'error', message: '--capacity and the guard flags need --client-if' };
  if (v.values.check && v.values.keepalived === undefined) return { kind: 'error', message: '--check needs --keepalived FILE' };
  for (const k of ['socket', 'config', 'pidfile', 'keepalived'] as const) {
    if (v.values[k] === '') return { kind: 'error', message: `--${k}: empty path` };
  }
  const gatewayVip = v.values['gateway-vip'];
  if (gatewayVip !== undefined) {
    if (v.values['client-if'] === undefined) return { kind: 'error', message: '--gateway-vip needs --client-if' };
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(gatewayVip) || gatewayVip.split('.').some((x) => Number(x) > 255)) return { kind: 'error', message: `--gateway-vip: want an IPv4 address, got '${gatewayVip}'` };
  }
  let cluster: ClusterCli | undefined;
  const nats = v.values.nats ?? env.TSVS_NATS_URL;
  const clusterFlagGiven = CLUSTER_FLAGS.some((k) => v.values[k] !== undefined);
  if (nats === undefined || nats === '') {
    if (clusterFlagGiven) return { kind: 'error', message: 'cluster options need --nats (or $TSVS_NATS_URL)' };
  } else {
    const c: ClusterCli = {
      nats,
      creds: v.values['nats-creds'],
      node: v.values.node ?? defaultNodeName(env),
      cluster: v.values.cluster,
      priority: v.values.priority,
      nopreempt: v.values.nopreempt === true,
      preemptDelay: v.values['preempt-delay'],
      heartbeat: v.values.heartbeat,
      missBeats: v.values['miss-beats'],
      startupWait: v.values['startup-wait'],
      kvReplicas: v.values['kv-replicas'],
    };
    try {
      clusterAgentArgs(c);
    } catch (e) {
      return { kind: 'error', message: (e as Error).message };
    }
    cluster = c;
  }
  let activeActive: CliOptions['activeActive'];
  if (v.values['probe-port'] !== undefined && !v.values['active-active']) return { kind: 'error', message: '--probe-port needs --active-active' };
  if (v.values['active-active']) {
    if (v.values['client-if'] === undefined) return { kind: 'error', message: '--active-active needs --client-if' };
    if (gatewayVip !== undefined) return { kind: 'error', message: '--active-active and --gateway-vip do not go together: every director forwards, so no single one can be the real servers\' gateway (route them over every director)' };
    const probePort = v.values['probe-port'] === undefined ? DEFAULT_PROBE_PORT : Number(v.values['probe-port']);
    if (!Number.isInteger(probePort) || probePort < 1 || probePort > 65535) return { kind: 'error', message: `--probe-port: want 1..65535, got '${v.values['probe-port']}'` };
    activeActive = { probePort, node: cluster?.node ?? defaultNodeName(env) };
  }
  return {
    kind: 'run',
    opts: { cluster, activeActive, gatewayVip, socket: v.values.socket, config: v.values.config, keepalived: v.values.keepalived, check: v.values.check === true ? true : undefined, pidfile: v.values.pidfile, workers, clientIf: v.values['client-if'], serverIf: v.values['server-if'], cpus, ring, markRules: v.values['mark-rules'], backend, spinUs, busyPoll, http, otlp, traceRatio, capacity, guard: Object.keys(guard).length > 0 ? guard : undefined },
  };
}

/** $TSVS_LAB_NODE, else the host name made a valid cluster node name ([A-Za-z0-9_-], at most 32). */
export function defaultNodeName(env: NodeJS.ProcessEnv = process.env, host: string = hostname()): string {
  if (env.TSVS_LAB_NODE) return env.TSVS_LAB_NODE;
  return host.split('.')[0].replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 32) || 'tsvs';
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      socket: { type: 'string' },
      config: { type: 'string' },
      keepalived: { type: 'string' },
      check: { type: 'boolean' },
      pidfile: { type: 'string' },
      workers: { type: 'string' },
      'client-if': { type: 'string' },
      'server-if': { type: 'string' },
      cpus: { type: 'string' },
      ring: { type: 'string' },
      'mark-rules': { type: 'string' },
      backend: { type: 'string' },
      'spin-us': { type: 'string' },
      'busy-poll': { type: 'boolean' },
      http: { type: 'string' },
      otlp: { type: 'string' },
      'trace-ratio': { type: 'string' },
      capacity: { type: 'string' },
      ...GUARD_ARG_SPECS,
      'gateway-vip': { type: 'string' },
      nats: { type: 'string' },
      'nats-creds': { type: 'string' },
      node: { type: 'string' },
      cluster: { type: 'string' },
      priority: { type: 'string' },
      nopreempt: { type: 'boolean' },
      'preempt-delay': { type: 'string' },
      heartbeat: { type: 'string' },
      'miss-beats': { type: 'string' },
      'startup-wait': { type: 'string' },
      'kv-replicas': { type: 'string' },
      'active-active': { type: 'boolean' },
      'probe-port': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}
