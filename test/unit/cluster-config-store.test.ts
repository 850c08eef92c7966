// cluster-config: tsvsd's ClusterConfigStore (services/tsvsd/cluster-config.ts) with the agent played by the test:
// edits go out as config-edit and resolve on the answer, revisions are replayed or synced into the director's table,
// the start-up rule (an empty bucket is seeded, a stored table replaces the loaded one), EAGAIN without an agent.
import { describe, expect, it } from 'vitest';
import { docOfTable } from '../../shared/cluster/config-doc.ts';
import type { DestConfig, ServiceConfig, ServiceKey } from '../../shared/model/ipvs.ts';
import type { TableOp } from '../../shared/model/ops.ts';
import { IpvsTable } from '../../shared/model/table.ts';
import type { ConfigDoc, ToClusterAgent } from '../../shared/proto/cluster.ts';
import { ClusterConfigStore } from '../../services/tsvsd/cluster-config.ts';
import { LocalConfigStore, type ConfigChange } from '../../services/tsvsd/config-store.ts';

const quiet = (): void => {};
const A: ServiceConfig = { af: 4, protocol: 'tcp', addr: '10.0.0.1', port: 80, fwmark: 0, scheduler: 'rr', flags: 0, timeout: 0, netmask: '255.255.255.255', pe: '' };
const KA: ServiceKey = { af: 4, protocol: 'tcp', addr: '10.0.0.1', port: 80, fwmark: 0 };
const dest = (addr: string, weight = 1): DestConfig => ({ af: 4, addr, port: 80, method: 'route', weight, uThreshold: 0, lThreshold: 0, tunType: 'ipip', tunPort: 0, tunCsum: '' });

/** The cluster's table as the agent would store it: each edit makes the next revision. */
class Cluster {
  table = new IpvsTable();
  rev = 0;
  edit(op: TableOp, by = 'd2'): ConfigDoc {
    const prev = this.rev;
    expect(this.table.apply(op)).toEqual({ ok: true });
    this.rev++;
    return docOfTable(this.table.compiled(), { op, prev, by, edit: `${by}/1/${this.rev}` });
  }
}

function setup(opts: { running?: boolean; seed?: TableOp[] } = {}) {
  const table = new IpvsTable();
  for (const op of opts.seed ?? []) table.apply(op);
  const local = new LocalConfigStore(table);
  const sent: ToClusterAgent[] = [];
  const store = new ClusterConfigStore(local, { send: (m) => (opts.running === false ? false : (sent.push(m), true)), log: quiet, answerTimeoutMs: 200 });
  const changes: ConfigChange[] = [];
  store.onChange((c) => changes.push(c));
  return { table, store, sent, changes };
}

describe('cluster-config: tsvsd\'s cluster store', () => {
  it('cluster-config: an edit goes to the agent; its revision (pushed before the answer) changes the table; the answer resolves with that change\'s seq', async () => {
    const { store, sent, changes, table } = setup();
    const c = new Cluster();
    store.intercept({ type: 'config-revision', rev: 1, doc: c.edit({ op: 'add-service', svc: A }), initial: true });
    expect(changes).toHaveLength(1);
    const p = store.apply({ op: 'add-dest', key: KA, dest: dest('10.1.0.1') });
    expect(sent.at(-1)).toMatchObject({ type: 'config-edit', op: { op: 'add-dest' } });
    const id = (sent.at(-1) as { id: number }).id;
    expect(table.compiled().services[0].dests).toHaveLength(0); // nothing local before the cluster took it
    store.intercept({ type: 'config-revision', rev: 2, doc: c.edit({ op: 'add-dest', key: KA, dest: dest('10.1.0.1') }, 'd1'), initial: false });
    expect(store.intercept({ type: 'config-answer', id, ok: true, rev: 2 })).toBe(true);
    const r = await p;
    expect(r).toEqual({ ok: true, seq: changes.at(-1)!.seq });
    expect(changes.at(-1)!.cause).toBe('add-dest');
    expect(table.compiled().services[0].dests.map((d) => d.config.addr)).toEqual(['10.1.0.1']);
    expect(store.revision).toBe(2);
    expect(store.counts).toMatchObject({ replayed: 1, synced: 1 });
  });

  it('cluster-config: a refusal on the latest table is answered with its errno; no agent or no answer → EAGAIN "unreachable"', async () => {
    const { store, sent } = setup();
    const p = store.apply({ op: 'add-service', svc: A });
    store.intercept({ type: 'config-answer', id: (sent.at(-1) as { id: number }).id, ok: false, errno: 'EEXIST', detail: 'service exists' });
    expect(await p).toEqual({ ok: false, errno: 'EEXIST', detail: 'service exists' });
    expect(await store.apply({ op: 'flush' })).toMatchObject({ ok: false, errno: 'EAGAIN', detail: expect.stringMatching(/did not answer in 200 ms/) });
    const pending = store.apply({ op: 'flush' });
    store.onAgentExit();
    expect(await pending).toMatchObject({ ok: false, errno: 'EAGAIN', detail: expect.stringMatching(/cluster config store unreachable: the cluster agent exited/) });
    const none = setup({ running: false });
    expect(await none.store.apply({ op: 'flush' })).toMatchObject({ ok: false, errno: 'EAGAIN', detail: expect.stringMatching(/cluster config store unreachable/) });
  });

  it('cluster-config: edits go to the agent one at a time; each one\'s answer timeout starts when it is sent, not while it waits behind others', async () => {
    const { store, sent } = setup();
    const edits = [store.apply({ op: 'flush' }), store.apply({ op: 'flush' }), store.apply({ op: 'flush' })];
    for (let i = 0; i < 3; i++) {
      expect(sent).toHaveLength(i + 1); // the next one only once the previous was answered
      await new Promise((r) => setTimeout(r, 150)); // 3 × 150 ms in all: past the 200 ms timeout, not for any one edit
      const id = (sent.at(-1) as { id: number }).id;
      store.intercept({ type: 'config-answer', id, ok: false, errno: 'EINVAL', detail: `refused ${i}` });
      await edits[i];
      await new Promise((r) => setImmediate(r));
    }
    expect(await Promise.all(edits)).toEqual([0, 1, 2].map((i) => ({ ok: false, errno: 'EINVAL', detail: `refused ${i}` })));
    expect(sent).toHaveLength(3);
  });

  it('cluster-config: -Z stays local (counters are per director): nothing goes to the agent', async () => {
    const { store, sent } = setup({ seed: [{ op: 'add-service', svc: A }] });
    expect(await store.apply({ op: 'zero' })).toMatchObject({ ok: true });
    expect(sent).toEqual([]);
  });

  it('cluster-config: start-up rule: an empty bucket is seeded with the loaded table (null when empty); a stored table replaces the loaded one', () => {
    const loaded = setup({ seed: [{ op: 'add-service', svc: A }, { op: 'add-dest', key: KA, dest: dest('10.1.0.9') }] });
    loaded.store.intercept({ type: 'config-seed-request' });
    expect(loaded.sent.at(-1)).toMatchObject({ type: 'config-seed', doc: { services: [{ svc: A, dests: [dest('10.1.0.9')] }] } });
    expect(setup().store.intercept({ type: 'config-seed-request' })).toBe(true);
    const empty = setup();
    empty.store.intercept({ type: 'config-seed-request' });
    expect(empty.sent.at(-1)).toEqual({ type: 'config-seed', doc: null });
    // the bucket has another table: it wins over the file
    const c = new Cluster();
    c.edit({ op: 'add-service', svc: { ...A, addr: '10.0.0.2' } });
    const doc = c.edit({ op: 'add-dest', key: { ...KA, addr: '10.0.0.2' }, dest: dest('10.1.0.1') });
    loaded.store.intercept({ type: 'config-revision', rev: 2, doc, initial: true });
    expect(loaded.table.compiled().services.map((s) => s.config.addr)).toEqual(['10.0.0.2']);
    expect(loaded.store.counts.synced).toBe(1);
  });

  it('cluster-config: stale revisions are ignored; a missed revision is caught up by differences; an agent\'s first push is always taken', () => {
    const { store, table } = setup();
    const c = new Cluster();
    const d1 = c.edit({ op: 'add-service', svc: A });
    const d2 = c.edit({ op: 'add-dest', key: KA, dest: dest('10.1.0.1') });
    const d3 = c.edit({ op: 'add-dest', key: KA, dest: dest('10.1.0.2') });
    store.intercept({ type: 'config-revision', rev: 1, doc: d1, initial: true });
    store.intercept({ type: 'config-revision', rev: 3, doc: d3, initial: false }); // 2 was missed
    expect(table.compiled().services[0].dests.map((d) => d.config.addr)).toEqual(['10.1.0.2', '10.1.0.1']);
    const epoch = table.epoch;
    store.intercept({ type: 'config-revision', rev: 2, doc: d2, initial: false });
    expect(table.epoch).toBe(epoch);
    // a restarted agent pushes what the bucket holds, even an older revision (a re-created bucket)
    store.intercept({ type: 'config-revision', rev: 2, doc: d2, initial: true });
    expect(table.compiled().services[0].dests.map((d) => d.config.addr)).toEqual(['10.1.0.1']);
  });

  it('cluster-config: a revision that is not a valid table for tsvsd (non-canonical address) is refused; the table in force stays', () => {
    const { store, table } = setup({ seed: [{ op: 'add-service', svc: A }] });
    const bad: ConfigDoc = { v: 1, services: [{ svc: { ...A, addr: '010.0.0.1' }, dests: [] }], timeouts: { tcp: 900, tcpfin: 120, udp: 300 }, daemons: [], prev: 0, by: 'x', edit: 'x' };
    const epoch = table.epoch;
    store.intercept({ type: 'config-revision', rev: 5, doc: bad, initial: true });
    expect(table.epoch).toBe(epoch);
    expect(store.counts.refused).toBe(1);
    expect(store.revision).toBe(0);
    expect(store.intercept({ type: 'status', id: 1 })).toBe(false);
  });
});
