// tsvsd: the director's control process (see services/tsvsd/daemon.ts); parses the command line, runs in the foreground.
import { parseCli, USAGE } from './args.ts';
import { DaemonStartError, resolveSocketPath, startDaemon } from './daemon.ts';
import type { RunningDaemon } from './daemon.ts';
import { createLogger } from './log.ts';

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
  // Integrator: pass `parseRules` (shared/ipvsadm/parse.ts, adapted to RulesParser) to enable --config.
  daemon = await startDaemon({ socketPath, configFile: cli.opts.config, pidFile: cli.opts.pidfile, workers: cli.opts.workers }, { log });
  if (stopReason !== null) shutdown(stopReason, 0);
} catch (e) {
  log('failed to start', { error: (e as Error).message });
  process.exit(e instanceof DaemonStartError ? e.exitCode : 1);
}
