// cluster-config-first-write: the very first writes into the cluster's config bucket are compare-and-set like every
// later one (services/cluster/config-kv.ts): two real cluster agents (this test as their tsvsd) over a real 3-node
// nats-server cluster on loopback each send a burst of edits into a bucket with no table — a fresh one, or one whose
// key was deleted (a delete marker: kv.create's fallback there was a subject-level check, racy on 2.9) — at the same
// moment; repeated on new buckets. Every edit must be in the final table (0 lost). Also pins the nats-server behaviour
// this relies on: a stream-level expected sequence (0 included) admits exactly one of concurrent writers. Needs /usr/sbin/nats-server
// (installed by ops/nats if missing); run it under the lab lock (ports 47001-47023):
// flock /tmp/tsvs-lab.lock vitest run test/integration/cluster-config-first-write.test.ts
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNatsCluster, type NatsCluster } from '../../ops/nats/cluster.ts';
import type { DestConfig, ServiceConfig, ServiceKey } from '../../shared/model/ipvs.ts';
import type { TableOp } from '../../shared/model/ops.ts';
import type { ConfigDoc } from '../../shared/proto/cluster.ts';
import { AgentParent } from '../support/agent-parent.ts';

let nats: NatsCluster;

beforeAll(async () => {
  nats = await startNatsCluster({ base: 47000 });
}, 60_000);

afterAll(async () => {
  await nats?.stop();
}, 30_000);

const svc = (side: number): ServiceConfig => ({ af: 4, protocol: 'udp', addr: `10.79.0.${side}`, port: 53, fwmark: 0, scheduler: 'rr', flags: 0, timeout: 0, netmask: '255.255.255.255', pe: '' });
const key = (side: number): ServiceKey => ({ af: 4, protocol: 'udp', addr: `10.79.0.${side}`, port: 53, fwmark: 0 });
const dest = (side: number, i: number): DestConfig => ({ af: 4, addr: `10.79.${side}.${i}`, port: 53, method: 'masq', weight: 1, uThreshold: 0, lThreshold: 0, tunType: 'ipip', tunPort: 0, tunCsum: '' });
/** One side's burst: its own service, then `n` real servers in it. */
const burst = (side: number, n: number): TableOp[] => [{ op: 'add-service', svc: svc(side) }, ...Array.from({ length: n }, (_, i): TableOp => ({ op: 'add-dest', key: key(side), dest: dest(side, i + 1) }))];

/** Puts a table under the key and deletes it, as an operator's `nats kv del` would: the bucket holds a delete marker. */
async function deletedKey(bucket: string): Promise<void> {
  const nc = await connect({ servers: nats.urls });
  try {
    const kv = await new Kvm(jetstream(nc, { timeout: 5000 })).create(bucket, { replicas: 3, history: 16, allow_direct: false });
    await kv.put('table', '{}');
    await kv.delete('table');
  } finally {
    await nc.close();
  }
}

describe('cluster-config: the first writes into a bucket without a table', () => {
  it('cluster-config: 2 agents × (1 service + 5 real servers) at once into an empty bucket, 8 rounds (fresh buckets and deleted keys): every edit lands, 0 lost', async () => {
    const ROUNDS = 8;
    const N = 5;
    let conflicts = 0;
    const times: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const cluster = `kvfirst${round}`;
      const deleted = round % 2 === 1;
      if (deleted) await deletedKey(`tsvs_${cluster}_config`);
      const a = new AgentParent(nats.urls, 'f1', cluster);
      const b = new AgentParent(nats.urls, 'f2', cluster);
      try {
        // both agents found the bucket open and without a table: nothing written yet
        await Promise.all([a.seedRequested, b.seedRequested]);
        const t0 = Date.now();
        const answers = await Promise.all([...burst(1, N).map((op) => a.edit(op)), ...burst(2, N).map((op) => b.edit(op))]);
        times.push(Date.now() - t0);
        expect(answers.filter((r) => !r.ok), `round ${round}`).toEqual([]);
        const revs = answers.map((r) => (r.ok ? r.rev : 0));
        expect(new Set(revs).size, `round ${round}: one revision per edit`).toBe(2 * (N + 1));
        const last = Math.max(...revs);
        const final = await new Promise<ConfigDoc>((res, rej) => {
          const t = setInterval(() => {
            if (a.latest?.rev === last && b.latest?.rev === last) {
              clearInterval(t);
              clearTimeout(to);
              res(a.latest.doc);
            }
          }, 20);
          const to = setTimeout(() => {
            clearInterval(t);
            rej(new Error(`round ${round}: revision ${last} not seen by both agents in 10 s (a ${a.latest?.rev}, b ${b.latest?.rev})`));
          }, 10_000);
        });
        for (const side of [1, 2]) {
          const s = final.services.find((x) => x.svc.addr === `10.79.0.${side}`);
          expect(s, `round ${round}: service of side ${side}`).toBeDefined();
          expect(s!.dests.map((d) => d.addr).sort(), `round ${round}: real servers of side ${side}`).toEqual(burst(side, N).slice(1).map((op) => (op as { dest: DestConfig }).dest.addr).sort());
        }
        expect(final.services).toHaveLength(2);
        conflicts += [...a.logs, ...b.logs].filter((l) => /after \d+ conflicting write/.test(l)).length;
      } finally {
        await Promise.all([a.stop(), b.stop()]);
      }
    }
    process.stderr.write(`cluster-config-first-write: ${ROUNDS} rounds × ${2 * (N + 1)} edits from 2 agents into buckets without a table (half fresh, half a deleted key), 0 lost; edits retried after a conflict: ${conflicts}; burst ms ${times.join(' ')}\n`);
    expect(conflicts).toBeGreaterThan(0); // the two sides did contend
  }, 180_000);
});

describe('cluster-config: what the first write relies on in nats-server (R3 stream, writers on 4 connections at once)', () => {
  it('cluster-config: Nats-Expected-Last-Sequence admits exactly one of 4 concurrent writers, on an empty stream (0) and on a deleted key (the marker\'s sequence); 0 on a non-empty stream is refused', async () => {
    const ncs = await Promise.all([0, 1, 2, 0].map((i) => connect({ servers: nats.urls[i] })));
    try {
      const jss = ncs.map((nc) => jetstream(nc, { timeout: 5000 }));
      const TRIALS = 10;
      let subjectLevelExtra = 0;
      for (let t = 0; t < TRIALS; t++) {
        for (const deleted of [false, true]) {
          const bucket = `kvpin${t}${deleted ? 'd' : 'e'}`;
          const kv = await new Kvm(jss[0]).create(bucket, { replicas: 3, history: 16, allow_direct: false });
          let expect0 = 0;
          if (deleted) {
            await kv.put('table', '{}');
            await kv.delete('table');
            expect0 = (await kv.get('table'))!.revision;
          }
          const res = await Promise.allSettled(jss.map((js, i) => js.publish(`$KV.${bucket}.table`, `w${i}`, { expect: { lastSequence: expect0 } })));
          expect(res.filter((r) => r.status === 'fulfilled'), `trial ${t}${deleted ? ' (deleted key)' : ''}`).toHaveLength(1);
          if (deleted) {
            // kv.create's path on a deleted key (subject-level, checked before the raft proposal only on 2.9): counted, not asserted
            const kvs = await Promise.all(jss.map((js) => new Kvm(js).open(bucket)));
            await kvs[0].delete('table');
            const c = await Promise.allSettled(kvs.map((k, i) => k.create('table', `c${i}`)));
            subjectLevelExtra += c.filter((r) => r.status === 'fulfilled').length - 1;
          }
          await (await jss[0].jetstreamManager()).streams.delete(`KV_${bucket}`);
        }
      }
      const kv = await new Kvm(jss[0]).create('kvpinfull', { replicas: 3 });
      await kv.put('table', 'x');
      await expect(jss[1].publish('$KV.kvpinfull.table', 'y', { expect: { lastSequence: 0 } })).rejects.toThrow(/wrong last sequence/);
      process.stderr.write(`cluster-config-first-write: stream-level check, ${TRIALS} trials × 4 writers, empty stream and deleted key: exactly 1 accepted each time; kv.create on a deleted key: ${subjectLevelExtra} extra writes accepted in ${TRIALS} trials\n`);
    } finally {
      await Promise.all(ncs.map((nc) => nc.close()));
    }
  }, 120_000);
});
