// tsvsd: the director's control process (see services/tsvsd/daemon.ts); parses the command line, runs in the foreground.
import { parseCli, USAGE } from './args.ts';
import { DaemonStartError, resolveSocketPath, startDaemon } from './daemon.ts';
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

try {
  const socketPath = resolveSocketPath(cli.opts.socket);
  log('starting', { socket: socketPath, config: cli.opts.config, pidfile: cli.opts.pidfile, workers: cli.opts.workers });
  // Integrator: pass `parseRules` (shared/ipvsadm/parse.ts, adapted to RulesParser) to enable --config.
  const daemon = await startDaemon({ socketPath, configFile: cli.opts.config, pidFile: cli.opts.pidfile, workers: cli.opts.workers }, { log });
  const onSignal = (sig: NodeJS.Signals): void => {
    void daemon.stop(sig).then(() => process.exit(0));
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  process.on('uncaughtException', (e) => {
    log('fatal: uncaught exception (bug)', { error: e.stack ?? e.message });
    void daemon.stop('uncaught exception').then(() => process.exit(1));
  });
} catch (e) {
  log('failed to start', { error: (e as Error).message });
  process.exit(e instanceof DaemonStartError ? e.exitCode : 1);
}
