// Chaos: each nats-server of the lab's 3-node cluster killed (-9) in turn — the one holding the raft leader of the
// term bucket's stream first — and started again, while 300 long-lived connections stream through the leader d1 and
// a curl loop makes new connections (sync traffic). Nothing may move: no leader change (same leader, same term on
// both directors), no VIP gap (the VIP timeline from `ip monitor address` shows d1 holding it throughout and d2
// never), no connection reset; sync gaps are counted and repaired (d2's copy of the streams equals d1's table).
// Needs root and the lab's tools; run it under the lab lock:
// flock /tmp/tsvs-lab.lock vitest run test/chaos/chaos-nats.test.ts
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VIP, execCapture, fail, heal, natsIp } from '../../ops/lab/index.ts';
import { startEchoServer, startStreamClient } from '../../ops/lab/streams.ts';
import type { EchoServer } from '../../ops/lab/streams.ts';
import { labFor, waitFor } from '../support/lab.ts';
import { CHAOS_TOOLS, STREAM_PORT, cluster, connsTo, leaderIs, report, sleep, watchAddr, writeRules } from './_chaos.ts';

const DIRECTORS = ['d1', 'd2'];
const CONNS = 300;
/** The term bucket's stream (KV bucket tsvs_<cluster>_term, cluster "tsvs"). */
const TERM_STREAM = 'KV_tsvs_tsvs_term';

interface StreamInfo {
  leader: string | null;
  replicas: { name: string; current: boolean }[];
}

/** The term stream as the live nats-servers' monitoring endpoints (/jsz) describe it; null when none answers. */
function termStream(): StreamInfo | null {
  for (let k = 1; k <= 3; k++) {
    const r = execCapture(`nats${k}`, ['curl', '-s', '-m', '1', `http://${natsIp(k)}:8222/jsz?streams=true`], { timeoutMs: 3000 });
    if (r.status !== 0 || !r.stdout) continue;
    try {
      const j = JSON.parse(r.stdout) as { account_details?: { stream_detail?: { name: string; cluster?: { leader?: string; replicas?: { name: string; current: boolean }[] } }[] }[] };
      for (const a of j.account_details ?? []) {
        for (const s of a.stream_detail ?? []) {
          if (s.name === TERM_STREAM && s.cluster?.leader) return { leader: s.cluster.leader, replicas: s.cluster.replicas ?? [] };
        }
      }
    } catch {
      // a server that answers nonsense has no opinion
    }
  }
  return null;
}

describe('chaos nats: each nats-server killed in turn changes nothing', () => {
  const rules = writeRules('/tmp/tsvs-chaos-nats.rules', '-g');
  labFor({ directors: 2, servers: 2, mode: 'dr', nats: true, workers: 1, tsvsdArgs: `--config ${rules}` }, CHAOS_TOOLS);
  const echo: EchoServer[] = [];
  let curlLoop: ChildProcess | undefined;
  beforeAll(async () => {
    echo.push(await startEchoServer('rs1', STREAM_PORT), await startEchoServer('rs2', STREAM_PORT));
    await leaderIs('d1', DIRECTORS);
  });
  afterAll(async () => {
    curlLoop?.kill('SIGKILL');
    for (const e of echo) await e.stop();
    rmSync(rules, { force: true });
  });

  it('chaos nats: kill -9 each nats-server in turn (the term stream\'s leader first): no leader change, no VIP gap, no reset, sync gaps repaired', async () => {
    const s0 = await leaderIs('d1', DIRECTORS);
    const first = await waitFor('the term stream to have a leader', () => termStream()?.leader ?? undefined, 30_000, 500);
    const order = [first, ...['nats1', 'nats2', 'nats3'].filter((n) => n !== first)];
    report(`nats: term ${s0.term}, d1 on ${s0.nats_server}, term stream leader ${first}; killing ${order.join(', ')}`);
    const streams = startStreamClient('client', VIP, STREAM_PORT, { conns: CONNS });
    expect((await streams.ready).opened).toBe(CONNS);
    // New connections all along: every one is a NEW, UPDATEs and a CLOSE to sync.
    curlLoop = spawn('ip', ['netns', 'exec', 'tsvs-client', 'sh', '-c', `while :; do curl -s -o /dev/null -m 1 http://${VIP}/; sleep 0.02; done`], { stdio: 'ignore' });
    await sleep(1000);
    const sync0 = cluster('d2').sync;
    const watch = await watchAddr(DIRECTORS);
    const t0 = Date.now();
    try {
      for (const node of order) {
        const f = fail({ node, how: 'kill' });
        // Long enough for the clients to reconnect elsewhere and for JetStream to notice (stream leader election).
        await sleep(2500);
        for (const d of DIRECTORS) {
          const s = cluster(d);
          expect({ node: d, leader: s.leader, term: s.term }, `${node} killed: ${d}'s view`).toEqual({ node: d, leader: 'd1', term: s0.term });
        }
        const h = await heal(node);
        // Do not kill the next one before this one is back in the term stream (else the stream loses its quorum).
        const back = await waitFor(`${node} back in the term stream`, () => {
          const st = termStream();
          return st && st.replicas.length === 2 && st.replicas.every((r) => r.current) && st;
        }, 30_000, 250);
        report(`nats: ${node} killed at ${f.at}, healed in ${h.ms} ms; term stream leader now ${back ? back.leader : '?'}; d1 on ${cluster('d1').nats_server}, d2 on ${cluster('d2').nats_server}`);
      }
    } finally {
      await watch.stop();
    }
    const t1 = Date.now();
    curlLoop.kill('SIGKILL');
    curlLoop = undefined;
    await sleep(1500);
    const summary = await streams.stop();
    const g = watch.gaps(t0, t1);
    const sync1 = cluster('d2').sync;
    const d1Conns = connsTo('d1');
    const d2Conns = connsTo('d2');
    report(`nats: VIP timeline ${JSON.stringify(watch.events)}; without owner ${JSON.stringify(g.none)}, two owners ${JSON.stringify(g.both)}`);
    report(`nats: d2 sync before ${JSON.stringify(sync0)} after ${JSON.stringify(sync1)}`);
    report(`nats: streams reset ${summary.reset}, stalled over 1 s ${summary.stalled_over_1s}, max stall ${summary.max_stall_ms} ms; d1 lists ${d1Conns.length} stream connections, d2 ${d2Conns.length}`);
    expect(g.none, 'the VIP had no owner').toEqual([]);
    expect(g.both, 'the VIP had two owners').toEqual([]);
    expect(watch.events.filter((e) => e.node === 'd2' && e.present), 'd2 never held the VIP').toEqual([]);
    expect(summary.reset).toBe(0);
    expect(summary.stalled_over_1s).toBe(0);
    // Sync went on through the kills: d2 received batches, and whatever gaps it saw were repaired (resend or resync):
    // its copy of the long-lived connections is d1's table.
    expect(sync1.received - sync0.received, 'd2 received sync batches while the servers were killed').toBeGreaterThan(0);
    expect(d2Conns, 'd2 holds every long-lived connection d1 holds').toEqual(d1Conns);
  }, 150_000);
});
