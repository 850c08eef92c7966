// tsvsd: the director's control process (see services/tsvsd/daemon.ts); parses the command line, runs in the foreground.
import { readFileSync } from 'node:fs';
import { FALLBACK_SERVICES, parseEtcHosts, parseEtcServices, tableResolver } from '../../shared/ipvsadm/names.ts';
import { parseCli, USAGE } from './args.ts';
import { DaemonStartError, resolveSocketPath, startDaemon, type RunningDaemon } from './daemon.ts';
import { warningLine } from '../../shared/keepalived/check.ts';
import { formatVrrpCluster, vrrpToCluster } from '../../shared/keepalived/vrrp.ts';
import { mergeVrrpCluster } from './cluster.ts';
import type { VrrpVipSpec } from './vrrp-vips.ts';
import { readKeepalivedFile } from './health.ts';
import { createLogger } from './log.ts';
import { ipvsadmRulesParser } from './rules.ts';

function readOr(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

const log = createLogger();
const cli = parseCli(process.argv.slice(2));
if (cli.kind === 'help') {
  process.stdout.write(USAGE);
  process.exit(0);
}
if (cli.kind === 'error') {
  process.stderr.write(`tsvsd: ${cli.message}\n${USAGE}`);
  process.exit(2);
}

// --keepalived FILE: read and checked before anything starts; --check stops there (keepalived -t). Its
// vrrp_instance blocks fill the cluster options not given on the command line and name the VIPs the leader owns.
let keepalived: { file: string; config: NonNullable<ReturnType<typeof readKeepalivedFile>['config']> } | undefined;
let cluster = cli.opts.cluster;
let vrrpVips: VrrpVipSpec[] | undefined;
let vrrpAtStart = '';
if (cli.opts.keepalived !== undefined) {
  const file = cli.opts.keepalived;
  const r = readKeepalivedFile(file);
  const vrrp = r.config ? vrrpToCluster(r.config, { clustered: cluster !== undefined }) : null;
  const lines = [...r.lines, ...(vrrp?.warnings ?? []).map(warningLine)];
  if (vrrp && cluster) {
    try {
      cluster = mergeVrrpCluster(cluster, vrrp);
    } catch (e) {
      process.stderr.write(`tsvsd: --keepalived ${file}: ${(e as Error).message}\n`);
      process.exit(2);
    }
  }
  if (cli.opts.check) {
    for (const l of lines) process.stdout.write(`${l}\n`);
    if (vrrp) for (const l of formatVrrpCluster(vrrp, cli.opts.cluster ?? null)) process.stdout.write(`${l}\n`);
    process.stdout.write(`${file}: ${r.errors} error(s), ${r.warnings + (vrrp?.warnings.length ?? 0)} warning(s)\n`);
    process.exit(r.errors > 0 ? 1 : 0);
  }
  if (!r.config) {
    for (const l of lines) log(`keepalived: ${l}`);
    log('failed to start', { error: `--keepalived ${file}: ${r.errors} error(s)` });
    process.exit(1);
  }
  for (const l of lines) log(`keepalived: ${l}`);
  if (vrrp) for (const l of formatVrrpCluster(vrrp, cli.opts.cluster ?? null)) log(`keepalived: ${l}`);
  keepalived = { file, config: r.config };
  vrrpVips = vrrp?.vips.map((v) => ({ addr: v.addr, dev: v.dev }));
  vrrpAtStart = vrrpKey(vrrp);
}

/** What of a vrrp mapping tsvsd acts on (cluster options and VIPs), to tell a reload that changed it. */
function vrrpKey(m: ReturnType<typeof vrrpToCluster> | null): string {
  return m === null ? '' : JSON.stringify([m.cluster, m.priority, m.nopreempt, m.preemptDelayMs, m.vips.map((v) => [v.addr, v.dev])]);
}

/** After a SIGHUP: the vrrp settings are read at start only; say so when the file's changed. */
function vrrpReloadNote(file: string): void {
  const r = readKeepalivedFile(file);
  const now = r.config ? vrrpKey(vrrpToCluster(r.config, { clustered: cluster !== undefined })) : vrrpAtStart;
  if (now !== vrrpAtStart) log('reload: the vrrp_instance settings (cluster options, virtual_ipaddress) changed: they apply when tsvsd restarts; the running ones stay');
}

// Handlers go in before anything starts, so a signal during start-up is never the default (abrupt) exit.
let daemon: RunningDaemon | null = null;
let stopReason: string | null = null;
function shutdown(reason: string, code: number): void {
  stopReason ??= reason;
  if (daemon) void daemon.stop(reason).then(() => process.exit(code));
}
process.once('SIGTERM', () => shutdown('SIGTERM', 0));
process.once('SIGINT', () => shutdown('SIGINT', 0));
process.on('SIGHUP', () => {
  if (!daemon) return;
  log('reload: SIGHUP');
  void daemon.reload().then((r) => {
    for (const l of r.lines) log(`reload: ${l}`);
    log(r.taken ? 'reload: done' : 'reload: file not taken, the running configuration stays');
    if (r.taken && keepalived) vrrpReloadNote(keepalived.file);
  });
});
process.on('uncaughtException', (e) => {
  log('fatal: uncaught exception (bug)', { error: e.stack ?? e.message });
  if (daemon) shutdown('uncaught exception', 1);
  else process.exit(1);
});

try {
  const o = cli.opts;
  const socketPath = resolveSocketPath(o.socket);
  log('starting', { socket: socketPath, config: o.config, pidfile: o.pidfile, workers: o.workers });
  const services = readOr('/etc/services');
  const resolver = tableResolver(parseEtcHosts(readOr('/etc/hosts') ?? ''), services === undefined ? FALLBACK_SERVICES : parseEtcServices(services));
  daemon = await startDaemon(
    {
      socketPath,
      configFile: o.config,
      keepalived,
      markRulesFile: o.markRules,
      pidFile: o.pidfile,
      workers: o.workers,
      forward: o.clientIf ? { clientIf: o.clientIf, serverIf: o.serverIf, cpus: o.cpus, ring: o.ring, backend: o.backend, spinUs: o.spinUs, busyPoll: o.busyPoll, capacity: o.capacity, guard: o.guard } : undefined,
      http: o.http,
      cluster,
      vrrpVips,
      activeActive: o.activeActive,
      gatewayVip: o.gatewayVip,
      // Tracing is on with --otlp, --trace-ratio or an OTLP endpoint in the environment.
      trace: o.otlp !== undefined || o.traceRatio !== undefined || process.env.OTEL_EXPORTER_OTLP_ENDPOINT || process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ? { otlp: o.otlp, ratio: o.traceRatio } : undefined,
    },
    { log, parseRules: ipvsadmRulesParser(resolver) },
  );
  if (stopReason !== null) shutdown(stopReason, 0);
} catch (e) {
  log('failed to start', { error: (e as Error).message });
  process.exit(e instanceof DaemonStartError ? e.exitCode : 1);
}
