// The test command: type-check, unit tests (parallel), integration, lab and chaos tests (one file at a time: they
// share namespace names, ports and /dev/shm), then one closing line "N passed, N failed" that CI reads.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('../..', import.meta.url).pathname;
const extra = process.argv.slice(2);
let passed = 0;
let failed = 0;

function step(title: string): void {
  process.stdout.write(`\n== ${title}\n`);
}

step('typecheck: tsc --noEmit');
const tsc = spawnSync(join(root, 'node_modules/.bin/tsc'), ['--noEmit', '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
if (tsc.status === 0) {
  passed++;
  process.stdout.write('typecheck: clean\n');
} else {
  failed++;
  process.stdout.write('typecheck: FAILED\n');
}

function hasTests(dir: string): boolean {
  const d = join(root, dir);
  if (!existsSync(d)) return false;
  return readdirSync(d, { recursive: true }).some((f) => String(f).endsWith('.test.ts'));
}

function vitest(title: string, dir: string, args: string[]): void {
  if (!hasTests(dir)) return;
  step(title);
  const out = join(mkdtempSync(join(tmpdir(), 'tsvs-test-')), 'report.json');
  const r = spawnSync(
    join(root, 'node_modules/.bin/vitest'),
    ['run', dir, '--reporter=default', '--reporter=json', `--outputFile.json=${out}`, ...args, ...extra],
    { cwd: root, stdio: 'inherit', env: { ...process.env, NO_COLOR: '1' } },
  );
  if (!existsSync(out)) {
    process.stdout.write(`${title}: vitest wrote no report (exit ${r.status})\n`);
    failed++;
    return;
  }
  const rep = JSON.parse(readFileSync(out, 'utf8')) as { numPassedTests: number; numFailedTests: number; numPendingTests: number; numTodoTests: number; testResults: { status: string; message?: string; name: string }[] };
  passed += rep.numPassedTests;
  failed += rep.numFailedTests + rep.numPendingTests + rep.numTodoTests;
  // A file that fails to load has no test results but counts as a failure.
  for (const f of rep.testResults) if (f.status === 'failed' && f.message) failed++;
}

vitest('unit tests', 'test/unit', []);
// The integration tests' servers listen on fixed loopback ports in 41000-49999, inside Linux's ephemeral range: keep
// the kernel from handing those out as client ports meanwhile (an outgoing connection on 127.0.0.1:49010 made a test
// server's listen fail with EADDRINUSE once). Restored afterwards.
const RESERVED = '/proc/sys/net/ipv4/ip_local_reserved_ports';
let reservedBefore: string | null = null;
try {
  reservedBefore = readFileSync(RESERVED, 'utf8').trim();
  writeFileSync(RESERVED, reservedBefore ? `${reservedBefore},41000-49999` : '41000-49999');
} catch (e) {
  process.stdout.write(`test: cannot reserve ports 41000-49999 (${(e as Error).message}); integration servers may meet ephemeral ports\n`);
  reservedBefore = null;
}
vitest('integration tests (processes, root, real nats-server)', 'test/integration', ['--no-file-parallelism']);
vitest('lab tests (network namespaces, real peers; root)', 'test/lab', ['--no-file-parallelism']);
vitest('chaos tests (kills, partitions; real nats-server cluster)', 'test/chaos', ['--no-file-parallelism']);

// A zero-length write leaves the file as it is: write a newline to clear it.
if (reservedBefore !== null) writeFileSync(RESERVED, `${reservedBefore}\n`);
process.stdout.write(`\n${passed} passed, ${failed} failed\n`);
process.exit(failed === 0 ? 0 : 1);
