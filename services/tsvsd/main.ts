// tsvsd: the director's control process (see services/tsvsd/daemon.ts); parses the command line, runs in the foreground.
import { parseCli, USAGE } from './args.ts';
import { DaemonStartError, resolveSocketPath, startDaemon } from './daemon.ts';
import type { RunningDaemon } from './daemon.ts';
import { readFileSync } from 'node:fs';
import { FALLBACK_SERVICES, parseEtcHosts, parseEtcServices, tableResolver } from '../../shared/ipvsadm/names.ts';
import { DataPlane } from './dataplane.ts';
import { createLogger } from './log.ts';
import { ipvsadmRulesParser } from './rules.ts';
import { parseMarkRules } from '../../shared/fwd/mark-rules.ts';
import type { MarkRule } from '../../shared/fwd/classifier.ts';

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

// Handlers go in before anything starts, so a signal during start-up is never the default (abrupt) exit.
let daemon: RunningDaemon | null = null;
let stopReason: string | null = null;
function shutdown(reason: string, code: number): void {
  stopReason ??= reason;
  if (daemon) void daemon.stop(reason).then(() => process.exit(code));
}
process.once('SIGTERM', () => shutdown('SIGTERM', 0));
process.once('SIGINT', () => shutdown('SIGINT', 0));
process.on('uncaughtException', (e) => {
  log('fatal: uncaught exception (bug)', { error: e.stack ?? e.message });
  if (daemon) shutdown('uncaught exception', 1);
  else process.exit(1);
});

try {
  const socketPath = resolveSocketPath(cli.opts.socket);
  log('starting', { socket: socketPath, config: cli.opts.config, pidfile: cli.opts.pidfile, workers: cli.opts.workers });
  const services = readOr('/etc/services');
  const resolver = tableResolver(parseEtcHosts(readOr('/etc/hosts') ?? ''), services === undefined ? FALLBACK_SERVICES : parseEtcServices(services));
  // With --client-if the director forwards; without it, tsvsd keeps the table for tsvsadm only (and says so).
  const o = cli.opts;
  let marks: MarkRule[] | undefined;
  if (o.markRules !== undefined) {
    try {
      marks = parseMarkRules(readFileSync(o.markRules, 'utf8'), { source: o.markRules });
    } catch (e) {
      throw new DaemonStartError(`--mark-rules ${o.markRules}: ${(e as Error).message}`, 1);
    }
  }
  const dp = o.clientIf ? new DataPlane({ clientIf: o.clientIf, serverIf: o.serverIf, cpus: o.cpus, ring: o.ring, marks, backend: o.backend, spinUs: o.spinUs, busyPoll: o.busyPoll, log }) : undefined;
  daemon = await startDaemon(
    { socketPath, configFile: o.config, pidFile: o.pidfile, workers: o.workers },
    {
      log,
      parseRules: ipvsadmRulesParser(resolver),
      supervisor: dp,
      conns: dp ? () => dp.conns() : undefined,
      boundConns: dp ? (id) => dp.boundConns(id) : undefined,
      dataplane: dp ? () => dp.status() : undefined,
      marks: dp ? { set: (t) => dp.setMarks(t), get: () => dp.getMarks() } : undefined,
      onTable: (table) => {
        if (!dp) return;
        table.setCounterProvider(dp.counterProvider());
        dp.setTrashSource(() => table.trash().map((t) => t.destId));
      },
    },
  );
  if (stopReason !== null) shutdown(stopReason, 0);
} catch (e) {
  log('failed to start', { error: (e as Error).message });
  process.exit(e instanceof DaemonStartError ? e.exitCode : 1);
}
