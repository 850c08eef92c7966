// rs-agent: the real-server side of tsvs. `setup`/`teardown` the VIP and ARP sysctls; `decap` tunnelled packets.
import { parseArgs } from 'node:util';
import { ipv4FromText, ipv4FromTextOrThrow } from '../../shared/net/addr.ts';
import { setup, teardown } from './setup.ts';
import { formatCounters, startDecap } from './decap.ts';

const USAGE = `usage:
  rs-agent setup --vip A.B.C.D [--vip ...] [--mode dr|tun] [--dev lo]
  rs-agent teardown --vip A.B.C.D [--vip ...] [--dev lo]
  rs-agent decap --vip A.B.C.D [--vip ...] [--gue-port N] [--tun-dev tsvs-tun0]`;

function fail(msg: string): never {
  process.stderr.write(`rs-agent: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

function main(argv: string[]): void {
  const [cmd, ...rest] = argv;
  let a;
  try {
    a = parseArgs({
      args: rest,
      options: {
        vip: { type: 'string', multiple: true },
        mode: { type: 'string', default: 'dr' },
        dev: { type: 'string', default: 'lo' },
        'gue-port': { type: 'string', default: '0' },
        'tun-dev': { type: 'string', default: 'tsvs-tun0' },
      },
    }).values;
  } catch (e) {
    fail((e as Error).message);
  }
  const vips = a.vip ?? [];
  if (vips.length === 0) fail('--vip is required');
  for (const v of vips) if (ipv4FromText(v) === undefined) fail(`bad --vip ${v}`);
  if (a.mode !== 'dr' && a.mode !== 'tun') fail(`bad --mode ${a.mode}`);
  switch (cmd) {
    case 'setup':
      for (const vip of vips) for (const line of setup({ vip, mode: a.mode, dev: a.dev })) process.stdout.write(`${line}\n`);
      return;
    case 'teardown':
      for (const vip of vips) for (const line of teardown(vip, a.dev)) process.stdout.write(`${line}\n`);
      return;
    case 'decap': {
      const port = Number(a['gue-port']);
      if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`bad --gue-port ${a['gue-port']}`);
      const d = startDecap({ vips: vips.map((v) => ipv4FromTextOrThrow(v, '--vip')), guePort: port, tunName: a['tun-dev'] });
      process.stdout.write(`rs-agent: decap ready on ${a['tun-dev']} for ${vips.join(',')}${port ? ` (GUE port ${port})` : ''}\n`);
      process.on('SIGUSR1', () => process.stdout.write(`${formatCounters(d.counters)}\n`));
      const stop = (): void => {
        d.stop();
        process.stdout.write(`${formatCounters(d.counters)}\n`);
        process.exit(0);
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
      return;
    }
    default:
      fail(`unknown command ${cmd ?? ''}`);
  }
}

try {
  main(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`rs-agent: ${(e as Error).message}\n`);
  process.exit(1);
}
