// tsvsadm entry point: an ipvsadm 1.31 drop-in that drives tsvsd over its admin socket.
import { readFileSync } from 'node:fs';
import { text } from 'node:stream/consumers';
import { FALLBACK_SERVICES, parseEtcHosts, parseEtcServices, tableResolver } from '../../shared/ipvsadm/names.ts';
import { adminSocketPath, connectAdmin } from './client.ts';
import { run } from './run.ts';
import { runStatus } from './status.ts';
import { runHealth } from './health.ts';
import { runMarks } from './marks.ts';
import { runCluster } from './cluster.ts';
import { runTrace } from './trace.ts';

function readOr(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

// ipvsadm dies of SIGPIPE, silently, when its reader goes away (`tsvsadm -Ln | head -1`). Node ignores SIGPIPE and
// would print an EPIPE stack trace instead, so end the same quiet way, with the status a shell shows for it (128 + 13).
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(141);
  throw e;
});

const servicesText = readOr('/etc/services');
const resolver = tableResolver(
  parseEtcHosts(readOr('/etc/hosts') ?? ''),
  servicesText === undefined ? FALLBACK_SERVICES : parseEtcServices(servicesText),
);

const argv = process.argv.slice(2);
if (argv[0] === 'status') {
  process.exitCode = await runStatus(argv.slice(1), () => connectAdmin(adminSocketPath()), (s) => process.stdout.write(s), (s) => process.stderr.write(s));
} else if (argv[0] === 'health') {
  process.exitCode = await runHealth(argv.slice(1), () => connectAdmin(adminSocketPath()), (s) => process.stdout.write(s), (s) => process.stderr.write(s));
} else if (argv[0] === 'cluster') {
  process.exitCode = await runCluster(argv.slice(1), () => connectAdmin(adminSocketPath()), (s) => process.stdout.write(s), (s) => process.stderr.write(s));
} else if (argv[0] === 'trace') {
  process.exitCode = await runTrace(argv.slice(1), (s) => process.stdout.write(s), (s) => process.stderr.write(s));
} else if (argv[0] === 'marks') {
  process.exitCode = await runMarks(argv.slice(1), () => connectAdmin(adminSocketPath()), () => text(process.stdin), (s) => process.stdout.write(s), (s) => process.stderr.write(s));
} else {
  process.exitCode = await run(['ipvsadm', ...argv], {
    stdout: (s) => process.stdout.write(s),
    stderr: (s) => process.stderr.write(s),
    readStdin: () => text(process.stdin),
    connect: () => connectAdmin(adminSocketPath()),
    resolver,
  });
}
