// cluster-health-retry: a health transition whose table edit the cluster's config store could not take (every
// nats-server down: EAGAIN) is retried until it lands, without another transition: the real tsvsd with --nats and
// --keepalived runs the real health checker against real TCP servers on loopback and its real cluster agent against
// a real 3-node nats-server cluster; the table is read back with the real tsvsadm. Needs root (tsvsd's admin socket is
// root-only) and /usr/sbin/nats-server (installed by ops/nats if missing); run it under the lab lock (ports
// 47201-47223 for NATS, 47300-47301 for the real servers):
// flock /tmp/tsvs-lab.lock vitest run test/integration/cluster-health-retry.test.ts
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNatsCluster, type NatsCluster } from '../../ops/nats/cluster.ts';
import { TcpListeners } from '../support/tcp-listeners.ts';

const root = resolve(import.meta.dirname, '../..');
const TSVSD = join(root, 'ops/bin/tsvsd');
const TSVSADM = join(root, 'ops/bin/tsvsadm');
const A = 47300;
const B = 47301;
const VIP = '10.249.7.10';

if (process.getuid?.() !== 0) throw new Error('cluster-health-retry: must run as root — tsvsd refuses to start without root (its admin socket is root-only). CI runs the suite as root.');

let nats: NatsCluster;
let dir = '';
let proc: ChildProcess | null = null;
let err = '';
let exited: Promise<number | null> = Promise.resolve(null);

const tcp = new TcpListeners();
const listen = (port: number): Promise<void> => tcp.listen(port);
const unlisten = (port: number): Promise<void> => tcp.unlisten(port);

const CONF = (port: number) => `  real_server 127.0.0.1 ${port} {\n    weight 1\n    TCP_CHECK {\n      connect_timeout 0.3\n      delay_before_retry 0.1\n    }\n  }\n`;

function save(): string {
  const r = spawnSync(TSVSADM, ['-S', '-n'], { env: { ...process.env, TSVS_ADMIN_SOCKET: join(dir, 'tsvsd.sock') }, encoding: 'utf8', timeout: 20_000 });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
}

async function until(what: string, ms: number, ok: () => boolean): Promise<number> {
  const t0 = Date.now();
  while (!ok()) {
    if (Date.now() - t0 > ms) throw new Error(`cluster-health-retry: ${what} not within ${ms} ms; tsvsd log:\n${err}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return Date.now() - t0;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tsvs-hretry-'));
  await listen(A);
  await listen(B);
  writeFileSync(join(dir, 'k.conf'), `virtual_server ${VIP} 80 {\n  delay_loop 0.2\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n${CONF(A)}${CONF(B)}}\n`);
  nats = await startNatsCluster({ base: 47200 });
  proc = spawn(TSVSD, ['--socket', join(dir, 'tsvsd.sock'), '--nats', nats.urls.join(','), '--node', 'h1', '--cluster', 'kvhretry', '--keepalived', join(dir, 'k.conf')], {
    stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, TSVS_DIRECTOR: 'h1' },
  });
  proc.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  exited = new Promise((r) => proc!.once('exit', (code) => r(code)));
  await until('the cluster table in force with both real servers', 40_000, () => /config: cluster revision applied/.test(err) && save().includes(`:${B} -m`) && save().includes(`:${A} -m`));
}, 90_000);

afterAll(async () => {
  if (proc && proc.exitCode === null) {
    proc.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (proc.exitCode === null) proc.kill('SIGKILL');
  }
  await nats?.stop();
  await tcp.closeAll();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 30_000);

describe('cluster-health-retry: health edits wait for the cluster store', () => {
  it('cluster-health-retry: every nats-server down, a real server fails its check (edit refused: EAGAIN, retried); NATS back → the table drops it without another transition', async () => {
    for (let i = 0; i < 3; i++) await nats.kill(i);
    await unlisten(A);
    const retrying = new RegExp(`health: table edit not stored, retrying until it lands op=del-dest dest=tcp/${VIP.replace(/\./g, '\\.')}:80/127\\.0\\.0\\.1:${A} state=removed`);
    const waited = await until('the refused removal queued for retry', 20_000, () => retrying.test(err));
    expect(save()).toContain(`-r 127.0.0.1:${A} -m`); // not stored: the table in force keeps it
    process.stderr.write(`cluster-health-retry: removal of the failed server refused (store unreachable) and queued ${waited} ms after its listener closed\n`);
    // stay down a while: the retry keeps trying (backoff up to 2 s) and logs the state once
    await new Promise((r) => setTimeout(r, 4000));
    for (let i = 0; i < 3; i++) await nats.start(i);
    const back = await until('the failed server out of the table after NATS came back', 40_000, () => !save().includes(`127.0.0.1:${A}`));
    process.stderr.write(`cluster-health-retry: the table dropped it ${back} ms after the nats-servers restarted (JetStream's stream leader election included)\n`);
    expect(save()).toContain(`-r 127.0.0.1:${B} -m`);
    expect(err.match(new RegExp(retrying, 'g'))).toHaveLength(1); // logged once for that state, not per attempt
    // the retry's own log line follows its revision (which -S shows) by the time the answer comes back
    await until('the retry logged as stored', 5000, () => new RegExp(`health: retried table edit stored dest=tcp/[^ ]*:${A} state=removed attempts=\\d+`).test(err));
    // exactly one transition of that server: the retry, not a new transition, made the edit
    expect(err.match(new RegExp(`health: dest removed vs=(?:"[^"]*"|[^ ]*) dest=127\\.0\\.0\\.1:${A}`, 'g'))).toHaveLength(1);
  }, 90_000);
});
