// npm run bench -- restore: how long `tsvsadm -R` takes to load a large rule set into a running director (the data
// plane up: every line is a table change that reaches the workers and the kernel rules). Ends with one line of JSON:
// lines, seconds, lines_per_s.
import { spawnSync } from 'node:child_process';
import { ROOT, VIP, lab, log, table } from './_lib.ts';

export async function main(args: string[]): Promise<void> {
  let services = 300;
  let servers = 3;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--services') services = Number(args[++i]);
    else if (args[i] === '--servers') servers = Number(args[++i]);
    else throw new Error(`restore: unknown option ${args[i]} (--services N --servers N)`);
  }
  if (!(Number.isInteger(services) && services >= 1 && services <= 10_000 && Number.isInteger(servers) && servers >= 1 && servers <= 3)) {
    throw new Error('restore: want --services 1..10000 and --servers 1..3');
  }
  const lines: string[] = [];
  for (let i = 0; i < services; i++) {
    lines.push(`-A -t ${VIP}:${2000 + i} -s wrr`);
    for (let j = 1; j <= servers; j++) lines.push(`-a -t ${VIP}:${2000 + i} -r 10.200.1.${100 + j}:80 -m -w ${j}`);
  }
  lab('down');
  lab('up', '--mode', 'nat', '--servers', String(servers));
  let secs = NaN;
  let listed = 0;
  try {
    log(`tsvsadm -R of ${lines.length} lines`);
    const t0 = process.hrtime.bigint();
    const r = spawnSync('ip', ['netns', 'exec', 'tsvs-d1', `${ROOT}ops/bin/tsvsadm`, '-R'], { input: lines.join('\n') + '\n', encoding: 'utf8' });
    secs = Number(process.hrtime.bigint() - t0) / 1e9;
    if (r.status !== 0) throw new Error(`tsvsadm -R exited ${r.status}: ${r.stderr}`);
    const l = spawnSync('ip', ['netns', 'exec', 'tsvs-d1', `${ROOT}ops/bin/tsvsadm`, '-L', '-n'], { encoding: 'utf8' });
    listed = l.stdout.split('\n').filter((x) => x.startsWith('TCP ') || (x.startsWith('  -> ') && !x.includes('RemoteAddress'))).length;
  } finally {
    lab('down');
  }
  if (listed !== lines.length) throw new Error(`restore: tsvsadm -L -n lists ${listed} services and servers, want ${lines.length}`);
  process.stdout.write(`\nrestore: tsvsadm -R of ${services} TCP services × ${servers} NAT real servers (${lines.length} lines) into tsvsd with its data\n`);
  process.stdout.write(`plane up (lab: 1 director, ${servers} real servers, NAT), wall time of the command; every line is a table change.\n\n`);
  table([
    ['lines', 'seconds', 'lines/s'],
    [lines.length, Number(secs.toFixed(2)), Math.round(lines.length / secs)],
  ]);
  process.stdout.write('\n' + JSON.stringify({ bench: 'restore', lines: lines.length, seconds: Number(secs.toFixed(3)), lines_per_s: Math.round(lines.length / secs) }) + '\n');
}
