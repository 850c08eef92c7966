// tsvs health checker: a child process of tsvsd speaking shared/proto/health.ts over IPC; or `--check FILE` to
// validate a keepalived.conf (like `keepalived -t`); or `--keepalived FILE` to run standalone, printing JSON lines.
import { checkKeepalivedConfig } from '../../shared/keepalived/check.ts';
import { healthWarnings } from '../../shared/health/unsupported.ts';
import { HEALTH_PROTO_VERSION } from '../../shared/proto/health.ts';
import { CHILD_PROTO_VERSION, ChildKind } from '../../shared/proto/child.ts';
import type { ChildEnvelope } from '../../shared/proto/child.ts';
import type { FromHealth, ToHealth } from '../../shared/proto/health.ts';
import { nodeKeepalivedFs } from '../../shared/sys/keepalived-fs.ts';
import { HealthRunner } from './runner.ts';

const USAGE = `usage: node services/health/main.ts --check FILE [--config-id ID]
       node services/health/main.ts --keepalived FILE [--config-id ID]
       (no arguments, as a child process with an IPC channel: tsvsd's health checker)`;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function check(file: string): number {
  const r = checkKeepalivedConfig(file, nodeKeepalivedFs, { configId: arg('--config-id') }, healthWarnings);
  for (const l of r.lines) process.stderr.write(`${l}\n`);
  process.stderr.write(`${file}: ${r.errors} error(s), ${r.warnings} warning(s)\n`);
  return r.errors > 0 ? 1 : 0;
}

function standalone(file: string): void {
  const r = checkKeepalivedConfig(file, nodeKeepalivedFs, { configId: arg('--config-id') }, healthWarnings);
  if (!r.config) {
    for (const l of r.lines) process.stderr.write(`${l}\n`);
    process.exit(1);
  }
  const runner = new HealthRunner({ send: (m: FromHealth) => process.stdout.write(`${JSON.stringify(m)}\n`) });
  runner.init(r.config, 1);
  const stop = () => void runner.stop().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  process.on('SIGHUP', () => {
    const again = checkKeepalivedConfig(file, nodeKeepalivedFs, { configId: arg('--config-id') }, healthWarnings);
    if (again.config) runner.reconfigure(again.config, Date.now());
    else for (const l of again.lines) process.stderr.write(`${l}\n`);
  });
}

function child(): void {
  const send = (m: FromHealth | ChildEnvelope) => {
    if (process.connected) process.send?.(m);
  };
  const runner = new HealthRunner({ send });
  let stopping = false;
  const stop = (reason: string) => {
    if (stopping) return;
    stopping = true;
    void runner.stop().then(() => {
      send({ type: 'exit', code: 0, reason });
      process.exit(0);
    });
  };
  send({ type: 'hello', v: CHILD_PROTO_VERSION, kind: ChildKind.health, pid: process.pid });
  process.on('message', (raw: unknown) => {
    const m = raw as ToHealth;
    if (!m || typeof m !== 'object' || m.v !== HEALTH_PROTO_VERSION) {
      send({ v: 1, type: 'log', line: `health: dropped a message of another version or shape` });
      return;
    }
    switch (m.type) {
      case 'init': runner.init(m.config, m.epoch); break;
      case 'config': runner.reconfigure(m.config, m.epoch); break;
      case 'status-request': runner.status(m.id); break;
      case 'view-request': runner.view(m.id); break;
      case 'stop': stop('stop requested'); break;
      default: send({ v: 1, type: 'log', line: `health: unknown message type` });
    }
  });
  process.on('SIGTERM', () => stop('SIGTERM'));
  // The parent is gone: stop, as a supervised child must not outlive its supervisor.
  process.on('disconnect', () => stop('parent gone'));
}

const checkFile = arg('--check');
const runFile = arg('--keepalived');
if (checkFile) process.exit(check(checkFile));
else if (runFile) standalone(runFile);
else if (process.send) child();
else {
  process.stderr.write(`${USAGE}\n`);
  process.exit(2);
}
