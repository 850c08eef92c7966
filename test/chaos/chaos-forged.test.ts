// Chaos: forged and malformed sync batches on the cluster's real sync subject (2 directors running tsvsd over the lab's
// 3-node nats-server cluster, connections streaming through d1): a batch from a non-member, garbage bytes, a
// truncated batch, a batch naming another cluster, and a member's batch of bad records. `tsvsadm -L -c -n` on every
// director is unchanged (no entry for the forged client 10.200.0.99), and `tsvsadm cluster --json` counted them
// (sync.foreign, sync.malformed). Needs root and the lab's tools; run it under the lab lock:
// flock /tmp/tsvs-lab.lock vitest run test/chaos/chaos-forged.test.ts
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, VIP, execCapture, natsIp, realServerIp } from '../../ops/lab/index.ts';
import { startEchoServer, startStreamClient } from '../../ops/lab/streams.ts';
import type { EchoServer, StreamClient } from '../../ops/lab/streams.ts';
import { labFor, waitFor } from '../support/lab.ts';
import { CHAOS_TOOLS, STREAM_PORT, cluster, connEntries, connsTo, leaderIs, report, sleep, writeRules } from './_chaos.ts';

const DIRECTORS = ['d1', 'd2'];
const CONNS = 50;

describe('chaos forged: forged, malformed and foreign sync batches change no table', () => {
  const rules = writeRules('/tmp/tsvs-chaos-forged.rules', '-g');
  labFor({ directors: 2, servers: 2, mode: 'dr', nats: true, workers: 1, tsvsdArgs: `--config ${rules}` }, CHAOS_TOOLS);
  const echo: EchoServer[] = [];
  let streams: StreamClient | undefined;
  beforeAll(async () => {
    echo.push(await startEchoServer('rs1', STREAM_PORT), await startEchoServer('rs2', STREAM_PORT));
    await leaderIs('d1', DIRECTORS);
  });
  afterAll(async () => {
    await streams?.stop().catch(() => undefined);
    for (const e of echo) await e.stop();
    rmSync(rules, { force: true });
  });

  it('chaos forged: a non-member\'s batch, garbage, a truncated batch, another cluster\'s batch and bad records: tables unchanged on every director, foreign and malformed counted', async () => {
    // Real connections in the tables (ESTABLISHED, refreshed by traffic) so there is something to change.
    streams = startStreamClient('client', VIP, STREAM_PORT, { conns: CONNS });
    expect((await streams.ready).opened).toBe(CONNS);
    await waitFor('d1 to list the streams', () => connsTo('d1').length >= CONNS || undefined, 10_000, 200);
    await sleep(1000);
    const before = Object.fromEntries(DIRECTORS.map((d) => [d, { conns: connEntries(d), sync: cluster(d).sync }]));

    const r = execCapture('nats1', [`${REPO_ROOT}/node_modules/.bin/node`, `${REPO_ROOT}/test/chaos/_forge.ts`, `nats://${natsIp(1)}:4222`, 'tsvs', VIP, String(STREAM_PORT), realServerIp(1)], { timeoutMs: 20_000 });
    expect(r.status, `forger: ${r.stderr}`).toBe(0);
    report(`forged: ${r.stdout.trim()}`);
    // The agents see every message within milliseconds; give the counters and any (wrong) install a moment.
    await sleep(1500);

    for (const d of DIRECTORS) {
      const s = cluster(d);
      const after = connEntries(d);
      report(`forged: ${d}: foreign ${before[d].sync.foreign} → ${s.sync.foreign}, malformed ${before[d].sync.malformed} → ${s.sync.malformed}; `
        + `${before[d].conns.length} entries before, ${after.length} after`);
      expect(after.filter((e) => e.includes('10.200.0.99')), `${d} installed a forged entry`).toEqual([]);
      expect(after, `${d}'s connection table changed`).toEqual(before[d].conns);
      // non-member batch + other cluster: foreign; garbage + truncated + 4 bad records: malformed
      expect(s.sync.foreign - before[d].sync.foreign, `${d}: foreign`).toBeGreaterThanOrEqual(2);
      expect(s.sync.malformed - before[d].sync.malformed, `${d}: malformed`).toBeGreaterThanOrEqual(6);
      expect(s.leader, `${d}: the leader did not change`).toBe('d1');
    }
    const summary = await streams.stop();
    streams = undefined;
    expect(summary.reset).toBe(0);
  }, 60_000);
});
