// tsvsd as a composition root: the config store, the event queue, the reconciler and its targets (workers,
// kernel rules, VIPs), the stats read model, the children and the admin socket, started and stopped as one.
import { guardArgs, type GuardOptions } from '../../shared/fwd/guard.ts';
import { statSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { FwdTable } from '../../shared/fwd/table.ts';
import { IpvsTable } from '../../shared/model/table.ts';
import type { Clock } from '../../shared/model/table.ts';
import { defaultAdminSocketPath } from '../../shared/proto/admin.ts';
import type { AdminEnvelope } from '../../shared/proto/admin.ts';
import { ChildKind, isChildEnvelope, type ChildSpec } from '../../shared/proto/child.ts';
import type { ControlEvent, TelemetryStats, ToTelemetry } from '../../shared/proto/telemetry.ts';
import { DEFAULT_RING_RECORDS } from '../../shared/telemetry/decision-ring.ts';
import { DecisionRings } from './http/decisions.ts';
import { startHttp, type RunningHttp } from './http/server.ts';
import { DEFAULT_SYNC_RING_RECORDS, LOCAL_TUN } from '../../shared/proto/worker.ts';
import { SyncRings, workerSyncStatus } from './sync-rings.ts';
import type { ClusterStatus } from '../../shared/proto/cluster.ts';
import { DesiredCompiler, type HealthView, type VipGrant } from '../../shared/rules/desired.ts';
import { handleAdmin, type Handled } from './admin-handlers.ts';
import { startAdminServer, type AdminServer } from './admin-server.ts';
import { ChildSupervisor } from './children.ts';
import { CLUSTER_CHILD, ClusterLink, clusterChildSpec, type ClusterCli, type ClusterLinkDeps } from './cluster.ts';
import { ActiveActiveLink, LoopbackVips, ProbeResponder, quietArp } from './active-active.ts';
import type { SysctlSet } from '../../shared/sys/sysctl.ts';
import { LeasedIpVips, RecordedVipHost, vipRecordPath } from './cluster-vips.ts';
import { ClusterConfigStore } from './cluster-config.ts';
import { LocalConfigStore, type ConfigChange, type RulesParser } from './config-store.ts';
import { EventPriority, EventQueue } from './event-queue.ts';
import { HEALTH_CHILD, HealthLink } from './health.ts';
import { keepalivedStartOps } from './health-sync.ts';
import type { KeepalivedConfig } from '../../shared/keepalived/model.ts';
import type { VirtualServerStatus } from '../../shared/health/machine.ts';
import { KernelRules } from './kernel.ts';
import { rateLimited, type Logger } from './log.ts';
import { RtnlAddresses, type OwnAddresses } from './own-addrs.ts';
import { AllTableVips, type OwnershipSource } from './ownership.ts';
import { Reconciler, type ReconcileTargets } from './reconciler.ts';
import { parseRequestLine } from './request.ts';
import { DataShm } from './shm.ts';
import { StatsModel } from './stats.ts';
import { clusterControlEvent, Observer } from './observer.ts';
import { RtnlVips, VipSet, type VipHost } from './vips.ts';
import { WorkerPool } from './workers.ts';
import { VrrpVips, type VrrpVipSpec } from './vrrp-vips.ts';

/** How often tsvsd moves sync records between the workers' rings and the cluster agent, ms. */
const SYNC_PUMP_MS = 2;

/** How often the trash is checked for dests idle long enough to free, in ms (the kernel's timer period). */
const TRASH_CHECK_MS = 60_000;

const ROOT = new URL('../..', import.meta.url).pathname;

/** How the director forwards (tsvsd --client-if and the options that go with it). */
export interface ForwardOptions {
  /** Interface where clients' packets arrive (the VIPs live here). */
  clientIf: string;
  /** Interface toward the real servers (NAT replies arrive here); default clientIf. */
  serverIf?: string;
  /** CPU per worker (index → cpu); default worker i on CPU i. */
  cpus?: number[];
  /** Connection-table capacity per worker (entries). */
  capacity?: number;
  ring?: 'adaptive' | 'v2' | 'v3';
  /** 'afpacket' (default; the workers own L2) or 'nfqueue' (safe mode). */
  backend?: 'afpacket' | 'nfqueue';
  /** NFQUEUE: first queue number (worker i uses queueBase + i). Default 0. */
  queueBase?: number;
  /** AF_PACKET: µs a worker keeps polling after a batch. */
  spinUs?: number;
  /** AF_PACKET: workers poll without ever sleeping. */
  busyPoll?: boolean;
  /** Dead destinations and flood defence, passed to every worker (shared/fwd/guard.ts). */
  guard?: Partial<GuardOptions>;
}

/** What to run: paths are final (see {@link resolveSocketPath}). */
export interface DaemonOptions {
  socketPath: string;
  /** Rules file (ipvsadm-save format) loaded before the socket opens. */
  configFile?: string;
  /**
   * A keepalived.conf, already read and checked: its virtual servers are loaded into the table and the health
   * checker child edits their real servers (services/tsvsd/health.ts). With `configFile`, both load.
   */
  keepalived?: { file: string; config: KeepalivedConfig };
  /** Mark rules file (iptables MARK syntax) for fwmark services; needs `forward`. */
  markRulesFile?: string;
  pidFile?: string;
  /** Forwarding workers (with `forward`). */
  workers: number;
  /** Without it tsvsd keeps the table for tsvsadm and forwards nothing. */
  forward?: ForwardOptions;
  /** Children besides the workers (the cluster agent, the health checker), supervised like them. */
  children?: readonly ChildSpec[];
  /** HTTP listener (/metrics, /api/*, the monitor page): ADDR:PORT, [V6]:PORT or PORT (loopback). */
  http?: string;
  /**
   * Decision tracing (with `forward`): every worker writes a record per scheduling decision into its ring and the
   * telemetry child (services/telemetry) exports spans: to `otlp` (else the OTEL_* variables), sampled at `ratio`.
   */
  trace?: { otlp?: string; ratio?: string; records?: number };
  /**
   * Cluster membership: tsvsd runs the cluster agent (services/cluster) as a child with these options and owns the
   * VIPs only while the agent grants them (this node leads). Without it the director runs alone and owns them all.
   */
  cluster?: ClusterCli;
  /** A floating inside address owned on the server interface while this director owns the VIPs (the real servers' gateway). Needs `forward`. */
  gatewayVip?: string;
  /**
   * The keepalived.conf's virtual_ipaddress addresses (shared/keepalived/vrrp.ts): owned beside the table's VIPs
   * whenever this director owns VIPs (it leads, or runs alone), each on its interface. Needs `forward`.
   */
  vrrpVips?: readonly VrrpVipSpec[];
  /** Active-active behind an ECMP router (services/tsvsd/active-active.ts). Needs `forward`. */
  activeActive?: { probePort: number; node: string };
}

/** The name this director gives itself in decision records, spans and the monitor page: its cluster node name (--node), else $TSVS_DIRECTOR, else the host name. */
export function directorName(opts: Pick<DaemonOptions, 'cluster'>, env: NodeJS.ProcessEnv = process.env): string {
  return opts.cluster?.node || env.TSVS_DIRECTOR || hostname();
}

/**
 * Everything that happens to the daemon, handled one at a time by the event queue (leadership and ownership
 * first). Children's payload messages become one of these through {@link DaemonDeps.routeChild}.
 */
export type DaemonEvent =
  | { kind: 'ownership'; grant: VipGrant }
  | { kind: 'health'; view: HealthView }
  | { kind: 'child-exit'; name: string; how: string; restartInMs: number | null }
  | { kind: 'child-message'; name: string; msg: unknown }
  | { kind: 'config'; change: ConfigChange }
  /** The director's own addresses changed (rtnetlink). */
  | { kind: 'addresses' }
  | { kind: 'trash-check' }
  /** Read the keepalived.conf again (SIGHUP); `reply` gets whether it was taken and its problems. */
  | { kind: 'reload'; reply: (r: { taken: boolean; lines: readonly string[] }) => void }
  | { kind: 'admin'; env: AdminEnvelope }
  /** The health link's retry of edits the store could not take (run where the checker's messages run). */
  | { kind: 'health-retry'; run: () => Promise<void> };

const PRIORITY: Record<DaemonEvent['kind'], number> = {
  ownership: EventPriority.ownership,
  health: EventPriority.health,
  'child-exit': EventPriority.child,
  'child-message': EventPriority.child,
  'health-retry': EventPriority.child,
  config: EventPriority.config,
  addresses: EventPriority.config,
  'trash-check': EventPriority.config,
  reload: EventPriority.config,
  admin: EventPriority.admin,
};

/** The daemon's collaborators; all but `log` have a default. */
export interface DaemonDeps {
  log: Logger;
  /** Needed only with `configFile`. */
  parseRules?: RulesParser;
  /** Monotonic ms; default performance.now. */
  clock?: Clock;
  /** Which VIPs this director may own; default {@link AllTableVips}. */
  ownership?: OwnershipSource;
  /** The director's own addresses; default followed over rtnetlink (a change queues an `addresses` event). */
  ownAddrs?: OwnAddresses;
  /** Adds/removes/announces VIPs; default rtnetlink (`ip addr replace`/`del`) + gratuitous ARP (shared/sys/arp.ts) on the client interface. */
  vipHost?: VipHost;
  /** Turns a child's payload message into an event (a grant, a health view); default: logged and dropped. */
  routeChild?: (name: string, msg: unknown) => DaemonEvent | null;
}

/** A running daemon. */
export interface RunningDaemon {
  readonly table: IpvsTable;
  readonly socketPath: string;
  /** Closes the socket, stops children and workers, removes kernel rules, VIPs, shared memory, socket and pidfile. Idempotent. */
  stop(reason: string): Promise<void>;
  /**
   * Reads the keepalived.conf again (SIGHUP) and applies it without a flush; resolves with the problems found
   * (`file:line: ...`) and whether it was taken. Not taken without --keepalived or when the file has errors.
   */
  reload(): Promise<{ taken: boolean; lines: readonly string[] }>;
  /** Every real server's health state (tsvsadm health); rejects when there is no checker or it does not answer. */
  health(): Promise<VirtualServerStatus[]>;
}

/** A start-up failure with the exit status main should use (2 for usage, 1 otherwise). */
export class DaemonStartError extends Error {
  override readonly name = 'DaemonStartError';
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

/**
 * The admin socket path: `flag`, else $TSVS_ADMIN_SOCKET, else the default keyed on this process's
 * network namespace inode (one daemon per namespace).
 */
export function resolveSocketPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (flag) return flag;
  if (env.TSVS_ADMIN_SOCKET) return env.TSVS_ADMIN_SOCKET;
  return defaultAdminSocketPath(statSync('/proc/self/ns/net').ino);
}

/** The forwarding side: workers, their shared memory, the kernel rules, the VIPs and their host inputs. */
interface Forwarding {
  shm: DataShm;
  pool: WorkerPool;
  kernel: KernelRules;
  vips: VipSet;
  /** The gateway address's set on the server interface (with --gateway-vip). */
  gateway: VipSet | null;
  own: OwnAddresses;
}

function workerArgs(f: ForwardOptions, shmDir: string, trace: DaemonOptions['trace'], syncRing: number, director: string): string[] {
  const a = ['--shm-dir', shmDir, '--client-if', f.clientIf, '--server-if', f.serverIf ?? f.clientIf];
  if (syncRing > 0) a.push('--sync-ring', String(syncRing));
  if (trace) a.push('--decisions', String(trace.records ?? DEFAULT_RING_RECORDS), '--director', director);
  if (f.capacity) a.push('--capacity', String(f.capacity));
  if (f.ring) a.push('--ring', f.ring);
  if (f.spinUs !== undefined) a.push('--spin-us', String(f.spinUs));
  if (f.busyPoll) a.push('--busy-poll');
  if (f.guard) a.push(...guardArgs(f.guard));
  if (f.backend === 'nfqueue') a.push('--backend', 'nfqueue', '--queue-base', String(f.queueBase ?? 0));
  return a;
}

/**
 * Starts the daemon: checks it runs as root (the admin socket must be root-only), loads the rules, starts the
 * workers and children, reconciles once, opens the socket, writes the pidfile. Throws DaemonStartError, having
 * undone what it started, when any step fails. Signals are the caller's business (see main.ts).
 */
export async function startDaemon(opts: DaemonOptions, deps: DaemonDeps): Promise<RunningDaemon> {
  const { log } = deps;
  if (process.getuid?.() !== 0) throw new DaemonStartError('tsvsd must run as root: its admin socket is root-only');
  if (opts.markRulesFile !== undefined && !opts.forward) throw new DaemonStartError('--mark-rules needs --client-if', 2);
  if (opts.configFile !== undefined && !deps.parseRules) throw new DaemonStartError('--config: no rules parser given', 2);
  const clock = deps.clock ?? (() => performance.now());
  let stats: StatsModel | undefined;
  const table = new IpvsTable({ clock, boundConns: (id) => stats?.boundConns(id) ?? 0 });
  const local = new LocalConfigStore(table);
  // Connection sync: the workers' rings (made with the shared memory below, when forwarding in a cluster).
  let syncRings: SyncRings | null = null;
  let syncTimer: NodeJS.Timeout | null = null;
  const onShardError = (w: number, e: Error): void => log('conns: cannot read shard', { worker: w, error: e.message });
  // The cluster link sends through the supervisor made further down (only once started).
  if (opts.activeActive && !opts.forward) throw new DaemonStartError('--active-active needs --client-if', 2);
  const aa = opts.activeActive;
  const linkDeps: ClusterLinkDeps = {
    send: (m) => children.send(CLUSTER_CHILD, m),
    log,
    snapshot: () => (fw && syncRings ? fw.shm.withShards((b) => SyncRings.snapshot(b, reconciler.fwd() ?? null, Date.now(), onShardError), onShardError) : new Uint32Array(0)),
    install: (words) => syncRings?.install(words) ?? 0,
    whenInstalled: (done) => (syncRings ? syncRings.whenInstalled(done) : done()),
    event: (e) => sendControl(clusterControlEvent(e, directorName(opts), Date.now())),
  };
  // Active-active: every ready director forwards (services/tsvsd/active-active.ts); else only the leader.
  const link = opts.cluster ? (aa ? new ActiveActiveLink(linkDeps) : new ClusterLink(linkDeps)) : null;
  let aaVips: LoopbackVips | null = null;
  let aaArp: SysctlSet | null = null;
  let probe: ProbeResponder | null = null;
  // In a cluster the table lives in NATS KV (cluster-config.ts): the loaded files only seed an empty bucket.
  const clusterStore = opts.cluster ? new ClusterConfigStore(local, { send: (m) => children.send(CLUSTER_CHILD, m), log }) : null;
  const store = clusterStore ?? local;
  try {
    const n = local.load({ config: opts.configFile, markRules: opts.markRulesFile }, deps.parseRules);
    if (opts.configFile !== undefined) log('config: loaded', { file: opts.configFile, rules: n, epoch: table.epoch });
  } catch (e) {
    throw new DaemonStartError((e as Error).message);
  }
  if (opts.keepalived) {
    const ops = keepalivedStartOps(opts.keepalived.config);
    for (const op of ops) {
      const r = table.apply(op);
      if (!r.ok) throw new DaemonStartError(`--keepalived ${opts.keepalived.file}: ${op.op}: ${r.errno}: ${r.detail}`);
    }
    log('keepalived: loaded', { file: opts.keepalived.file, operations: ops.length, epoch: table.epoch });
  }

  const f = opts.forward;
  const compiler = new DesiredCompiler({ backend: f?.backend ?? 'afpacket', workers: opts.workers, queueBase: f?.queueBase });
  let fw: Forwarding | undefined;
  let leased: LeasedIpVips | null = null;
  let gwLeased: LeasedIpVips | null = null;
  let vrrp: VrrpVips | null = null;
  let reconciler: Reconciler;
  // Events are queued from here on; the queue's handler needs the reconciler, made just below.
  const queue = new EventQueue<DaemonEvent, Handled | undefined>((e) => handle(e), (e) => PRIORITY[e.kind]);
  if (f) {
    let own: OwnAddresses;
    try {
      own = deps.ownAddrs ?? new RtnlAddresses(() => void queue.push({ kind: 'addresses' }).catch(() => {}));
    } catch (e) {
      throw new DaemonStartError(`own addresses (rtnetlink): ${(e as Error).message}`);
    }
    let shm: DataShm;
    try {
      shm = new DataShm(opts.workers);
    } catch (e) {
      own.stop();
      throw new DaemonStartError(`shared memory: ${(e as Error).message}`);
    }
    if (opts.cluster) {
      try {
        syncRings = new SyncRings(shm.dir, opts.workers, DEFAULT_SYNC_RING_RECORDS, f.backend === 'nfqueue' ? 'all' : 'client');
        // Peers' connections are installed only once the cluster's table is in the workers (else they would be
        // dropped as unknown services), and the agent is told 'installed' only then.
        syncRings.gated = true;
      } catch (e) {
        own.stop();
        shm.remove();
        throw new DaemonStartError(`sync rings: ${(e as Error).message}`);
      }
    }
    const pool = new WorkerPool({
      count: opts.workers,
      cpus: f.cpus,
      entry: `${ROOT}services/worker/main.ts`,
      args: workerArgs(f, shm.dir, opts.trace, syncRings ? syncRings.capacity : 0, directorName(opts)),
      // TSVS_WORKER_NODE_ARGS: extra Node flags for the workers only (diagnostics: --trace-gc, --cpu-prof, ...).
      nodeArgs: (process.env.TSVS_WORKER_NODE_ARGS ?? '').split(/\s+/).filter((x) => x !== ''),
      log: (line) => log(`workers: ${line}`),
      onExit: (i, how, restartInMs) => void queue.push({ kind: 'child-exit', name: `worker ${i}`, how, restartInMs }).catch(() => {}),
    });
    // Held VIPs are recorded beside the admin socket: a tsvsd that was killed left them in the kernel, where they
    // would answer ARP beside the cluster's new owner; this one removes them before anything else.
    // In a cluster the addresses also carry a lifetime this process renews: a director whose processes all died
    // stops answering for the VIP within it, even though nothing removes the address.
    leased = !deps.vipHost && opts.cluster && !aa ? new LeasedIpVips(f.clientIf, log) : null;
    leased?.start();
    // Active-active: the VIPs on lo (routed to this director, never ARPed for), the client interface quiet in ARP.
    if (aa && !deps.vipHost) {
      aaVips = new LoopbackVips(log, opts.cluster !== undefined);
      aaVips.start();
      try {
        aaArp = quietArp(f.clientIf);
      } catch (e) {
        log('active-active: cannot make the client interface quiet in ARP', { error: (e as Error).message });
      }
    }
    const recorded = new RecordedVipHost(deps.vipHost ?? aaVips ?? leased ?? new RtnlVips(f.clientIf, log), vipRecordPath(dirname(opts.socketPath), aa ? 'lo' : f.clientIf), log);
    recorded.removeLeftovers();
    let gateway: VipSet | null = null;
    if (opts.gatewayVip !== undefined) {
      const serverIf = f.serverIf ?? f.clientIf;
      const gwHost = !deps.vipHost && opts.cluster ? new LeasedIpVips(serverIf, log) : (deps.vipHost ?? new RtnlVips(serverIf, log));
      if (gwHost instanceof LeasedIpVips) {
        gwHost.start();
        gwLeased = gwHost;
      }
      const gwRecorded = new RecordedVipHost(gwHost, vipRecordPath(dirname(opts.socketPath), `gw-${serverIf}`), log);
      gwRecorded.removeLeftovers();
      gateway = new VipSet(gwRecorded, log);
    }
    if (opts.vrrpVips && opts.vrrpVips.length > 0) {
      vrrp = new VrrpVips({ specs: opts.vrrpVips, clientIf: f.clientIf, exclude: opts.gatewayVip === undefined ? [] : [opts.gatewayVip], socketPath: opts.socketPath, leased: opts.cluster !== undefined, log, host: deps.vipHost });
    }
    fw = { shm, pool, kernel: new KernelRules({ log, clientIf: f.clientIf }), vips: new VipSet(recorded, log), gateway, own };
    const fwd = fw;
    stats = new StatsModel(table, {
      shm,
      svcSlots: compiler.svcSlots,
      destSlots: compiler.destSlots,
      fwd: () => reconciler.fwd(),
      workers: () => pool.status(),
      onShardError,
    });
    table.setCounterProvider(stats.counterProvider() ?? null);
    const targets: ReconcileTargets = {
      publish: (t: FwdTable) => fwd.pool.publish(t),
      kernel: fwd.kernel,
      vips: vrrp ? { sync: (want) => fwd.vips.sync(vrrp!.withClient(want)) } : fwd.vips,
      ownAddrs: () => fwd.own.list(),
      trashDestIds: () => table.trash().map((t) => t.destId),
    };
    reconciler = new Reconciler({ compiler, targets, host: { clientIf: f.clientIf, serverIf: f.serverIf ?? f.clientIf, localTun: LOCAL_TUN }, log });
    pool.start();
    log('forwarding: started', { workers: opts.workers, clientIf: f.clientIf, serverIf: f.serverIf ?? f.clientIf, backend: f.backend ?? 'afpacket', shm: shm.dir });
  } else {
    stats = new StatsModel(table);
    reconciler = new Reconciler({ compiler, targets: null, host: { clientIf: '', serverIf: '', localTun: LOCAL_TUN }, log });
    log('forwarding: off (no --client-if): the table is kept for tsvsadm, no packet is forwarded');
    if (opts.vrrpVips && opts.vrrpVips.length > 0) log('keepalived: virtual_ipaddress not owned: no --client-if', { vips: opts.vrrpVips.map((v) => v.addr).join(',') });
  }
  const st = stats;
  // `healthLink` is made below, before the first admin request can arrive.
  const clusterStatus = async (): Promise<ClusterStatus> => {
    const s = await link!.status();
    if (syncRings && fw) s.sync.workers = workerSyncStatus(fw.shm.counters, syncRings.stats());
    s.mode = aa ? 'active-active' : 'active-backup';
    if (aaVips) s.vips = aaVips.held; // active-active: what this director forwards, as held on lo
    else if (fw) s.vips = fw.vips.held; // active-backup: the VIPs this director holds now (the agent knows only --vip)
    return s;
  };
  const ctx = { store, stats: st, log, forwarding: f !== undefined, cluster: link ? clusterStatus : undefined, health: opts.keepalived ? () => healthLink!.status() : undefined };
  // Tracing: the exporter child's latest counters (for /metrics), and control events sent to it as spans.
  const tracing = opts.trace !== undefined && fw !== undefined;
  let telemetry: TelemetryStats | null = null;
  const control = (name: string, attributes?: ControlEvent['attributes'], error?: boolean): void => sendControl({ name, timeMs: Date.now(), attributes, error });
  function sendControl(event: ControlEvent): void {
    if (!tracing) return;
    const m: ToTelemetry = { type: 'control-event', event };
    children.send('telemetry', m);
  }

  async function handle(e: DaemonEvent): Promise<Handled | undefined> {
    switch (e.kind) {
      case 'admin':
        return handleAdmin(e.env, ctx);
      case 'config':
        reconciler.setConfig(e.change);

        control('config-applied', { 'lvs.table.epoch': table.epoch });
        return undefined;
      case 'ownership':
        log('ownership: VIP grant', { grant: e.grant.kind === 'all' ? 'all' : e.grant.vips.join(',') });
        vrrp?.follow(e.grant);
        reconciler.setGrant(e.grant);
        // The gateway address follows the VIPs: owned with a grant of the table's VIPs, released with none.
        fw?.gateway?.sync(e.grant.kind === 'all' || e.grant.vips.length > 0 ? [opts.gatewayVip!] : []);
        // The agent says it stepped down only once the VIPs are out of the kernel (no two owners at a handback).
        if (link && e.grant.kind === 'only' && e.grant.vips.length === 0) children.send(CLUSTER_CHILD, { type: 'released' });
        // In a cluster the link reports grants and releases itself, with term and reason.
        if (!link) control('vip-grant', { 'lvs.vips': e.grant.kind === 'all' ? 'all' : e.grant.vips.join(',') });
        return undefined;
      case 'health':
        reconciler.setHealth(e.view);
        return undefined;
      case 'addresses':
        reconciler.reconcile();
        return undefined;
      case 'trash-check':
        table.expireTrash();
        return undefined;
      case 'health-retry':
        await e.run();
        return undefined;
      case 'reload': {
        if (!healthLink) {
          e.reply({ taken: false, lines: ['no --keepalived file to reload'] });
          return undefined;
        }
        const r = await healthLink.reload();
        e.reply({ taken: r.config !== null, lines: r.lines });
        return undefined;
      }
      case 'child-exit':
        log('child: exited', { name: e.name, how: e.how, restart_in_ms: e.restartInMs ?? undefined });
        if (e.name === CLUSTER_CHILD) link?.onAgentExit(e.how);
        if (e.name !== 'telemetry') control('child-exit', { 'lvs.child': e.name, 'lvs.exit': e.how }, true);
        return undefined;
      case 'child-message': {
        const m = e.msg;
        if (e.name === HEALTH_CHILD && healthLink) {
          await healthLink.onMessage(m);
          // A batch of transitions: read the checker's states soon, for the health-transition spans.
          if (typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'transitions') observer.poke();
          return undefined;
        }
        if (isChildEnvelope(m)) {
          if (m.type === 'log') log(`${e.name}: ${m.line}`);
          else log(`child: ${m.type}`, { name: e.name, ...(m.type === 'exit' ? { code: m.code, reason: m.reason } : { pid: m.pid }) });
          return undefined;
        }
        if (e.name === 'telemetry' && typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'stats') {
          telemetry = (m as { stats: TelemetryStats }).stats;
          return undefined;
        }
        if (e.name === CLUSTER_CHILD && link) {
          link.onMessage(m);
          return undefined;
        }
        const routed = deps.routeChild?.(e.name, m) ?? null;
        if (routed === null) logChild('child: message not handled', { name: e.name });
        else void queue.push(routed).catch(() => {});
        return undefined;
      }
    }
  }
  const logChild = rateLimited(log, 10);

  const children = new ChildSupervisor({
    message: (name, msg) => {
      // Status answers bypass the queue: the admin request waiting for one holds the queue. So do config answers
      // and revisions (an edit's revision is applied before its answer resolves the admin request).
      if (name === CLUSTER_CHILD && clusterStore?.intercept(msg)) return;
      if (name === CLUSTER_CHILD && link?.intercept(msg)) return;
      if (name === HEALTH_CHILD && healthLink?.intercept(msg)) return;
      void queue.push({ kind: 'child-message', name, msg }).catch(() => {});
    },
    exited: (name, how, restartInMs) => {
      if (name === CLUSTER_CHILD) clusterStore?.onAgentExit();
      void queue.push({ kind: 'child-exit', name, how, restartInMs }).catch(() => {});
    },
  });
  const ownership = deps.ownership ?? link ?? new AllTableVips();
  const healthLink = opts.keepalived
    ? new HealthLink(opts.keepalived.file, opts.keepalived.config, { children, table: () => table.compiled(), apply: (op) => store.apply(op), log, later: (run) => void queue.push({ kind: 'health-retry', run }).catch(() => {}) })
    : null;
  store.onChange((change) => void queue.push({ kind: 'config', change }).catch(() => {}));
  if (clusterStore && syncRings) {
    const rings = syncRings;
    clusterStore.whenInForce(() => {
      void reconciler.applied(local.current().seq).then(() => {
        rings.gated = false;
        log('cluster: the cluster\'s table is in force: installing peers\' connections', { rev: clusterStore.revision });
      });
    });
  }
  // The cluster's and the checker's status, polled for the read model (outside the queue) and turned into control events.
  const observer = new Observer({
    node: directorName(opts),
    // The agent's status with the workers' side of sync added (as tsvsadm cluster shows it); the role as heard.
    cluster: link ? { status: () => clusterStatus(), get role() { return link.role; } } : undefined,
    health: healthLink ? () => healthLink.status() : undefined,
    control: sendControl,
    log,
  });

  const rings = tracing ? new DecisionRings(fw!.shm.dir) : null;
  let http: RunningHttp | null = null;
  const undo = async (): Promise<void> => {
    observer.stop();
    probe?.close();
    await http?.close();
    rings?.close();
    healthLink?.close();
    clusterStore?.stop();
    ownership.stop();
    if (syncTimer) clearInterval(syncTimer);
    await children.stop();
    await queue.close();
    if (fw) {
      await fw.pool.stop();
      fw.kernel.remove();
      fw.vips.releaseAll();
      fw.gateway?.releaseAll();
      vrrp?.stop();
      leased?.stop();
      gwLeased?.stop();
      aaVips?.stop();
      const r = aaArp?.restore();
      if (r?.failed.length) log('active-active: sysctls not restored', { failed: r.failed.join('; ') });
      fw.own.stop();
      syncRings?.close();
      fw.shm.remove();
    }
    st.stop();
  };

  let server: AdminServer;
  try {
    void queue.push({ kind: 'config', change: store.current() });
    ownership.start((grant) => void queue.push({ kind: 'ownership', grant }).catch(() => {}));
    for (const spec of opts.children ?? []) children.start(spec);
    if (opts.cluster) {
      children.start(clusterChildSpec(ROOT, opts.cluster));
      log('cluster: agent started', { node: opts.cluster.node, nats: opts.cluster.nats });
    }
    if (syncRings) {
      // What the workers changed goes to the agent to publish; peers' records wait here for room in the rings.
      const rings = syncRings;
      syncTimer = setInterval(() => {
        const words = rings.drain();
        if (words) children.send(CLUSTER_CHILD, { type: 'publish', words });
        rings.pump();
      }, SYNC_PUMP_MS);
    }
    healthLink?.start(`${ROOT}services/health/main.ts`);
    if (tracing) {
      const t = opts.trace!;
      const args = ['--ring-dir', fw!.shm.dir];
      if (t.otlp !== undefined) args.push('--otlp', t.otlp);
      if (t.ratio !== undefined) args.push('--trace-ratio', t.ratio);
      children.start({ name: 'telemetry', kind: ChildKind.telemetry, entry: `${ROOT}services/telemetry/main.ts`, args });
    }
    await reconciler.applied(0);
    if (aa) {
      // Up while this director forwards the VIPs: alone, always; in a cluster, while the agent says it is ready.
      const aaLink = link instanceof ActiveActiveLink ? link : null;
      probe = new ProbeResponder(aa.node, () => (aaLink ? aaLink.serving : true));
      await probe.listen(aa.probePort);
      log('active-active: answering nexthop probes', { port: aa.probePort, node: aa.node });
    }
    st.start();
    observer.start();
    const logBad = rateLimited(log, 10);
    server = await startAdminServer({
      path: opts.socketPath,
      log,
      handle: async (line) => {
        const p = parseRequestLine(line);
        if (!p.ok) {
          logBad('admin: bad request', { errno: p.reply.ok ? undefined : p.reply.errno, detail: p.reply.ok ? undefined : p.reply.detail });
          return p.reply;
        }
        const h = (await queue.push({ kind: 'admin', env: p.env })) as Handled;
        if (h.seq !== undefined) await reconciler.applied(h.seq);
        return h.reply;
      },
    });
  } catch (e) {
    await undo();
    throw new DaemonStartError(`admin socket ${opts.socketPath}: ${(e as Error).message}`);
  }
  log('admin: listening', { socket: opts.socketPath });

  if (opts.http !== undefined) {
    try {
      http = await startHttp(
        opts.http,
        {
          director: directorName(opts),
          read: () => ({ ...st.view(), telemetry, cluster: observer.cluster(), health: observer.health(), vipsHeld: fw ? [...fw.vips.held, ...(fw.gateway?.held ?? [])] : undefined, floating: opts.gatewayVip !== undefined ? [opts.gatewayVip] : undefined }),
          decisions: rings ? (max, filter) => rings.recent(max, filter) : undefined,
        },
        { log },
      );
    } catch (e) {
      await server.close();
      await undo();
      throw new DaemonStartError(`--http ${opts.http}: ${(e as Error).message}`);
    }
    log('http: listening', { url: http.url });
  }

  if (opts.pidFile !== undefined) {
    try {
      writeFileSync(opts.pidFile, `${process.pid}\n`, { mode: 0o644 });
    } catch (e) {
      await server.close();
      await undo();
      throw new DaemonStartError(`--pidfile ${opts.pidFile}: ${(e as Error).message}`);
    }
  }

  log('ready', { socket: opts.socketPath, epoch: table.epoch });
  const trashTimer = setInterval(() => void queue.push({ kind: 'trash-check' }).catch(() => {}), TRASH_CHECK_MS);
  trashTimer.unref();

  let stopping: Promise<void> | null = null;
  return {
    table,
    socketPath: opts.socketPath,
    stop(reason) {
      stopping ??= (async () => {
        log('stopping', { reason });
        clearInterval(trashTimer);
        if (link) {
          // Hand leadership over first: the agent releases and says bye, a peer takes over in ms.
          const t0 = performance.now();
          await link.handOver();
          await queue.push({ kind: 'ownership', grant: { kind: 'only', vips: [] } }).catch(() => {});
          log('cluster: handed over', { ms: Math.round(performance.now() - t0) });
        }
        await server.close();
        await undo();
        if (opts.pidFile !== undefined) {
          try {
            unlinkSync(opts.pidFile);
          } catch (e) {
            log('pidfile: could not remove', { file: opts.pidFile, error: (e as Error).message });
          }
        }
        log('stopped');
      })();
      return stopping;
    },
    async reload() {
      if (!healthLink) return { taken: false, lines: ['no --keepalived file to reload'] };
      // Through the queue, so its table edits do not interleave with a batch of the checker's.
      let out: { taken: boolean; lines: readonly string[] } = { taken: false, lines: [] };
      await queue.push({ kind: 'reload', reply: (r) => (out = r) });
      return out;
    },
    health() {
      if (!healthLink) return Promise.reject(new Error('no health checker: tsvsd runs without --keepalived'));
      return healthLink.status();
    },
  };
}
