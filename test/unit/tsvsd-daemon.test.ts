// tsvsd-daemon: the control plane's pure parts — the event queue's order, the config store's change events,
// the admin handler map, the reconciler applying only differences, the VIP set — with fakes for the host.
import { describe, expect, it } from 'vitest';
import type { FwdTable } from '../../shared/fwd/table.ts';
import type { DestConfig, ServiceConfig } from '../../shared/model/ipvs.ts';
import { IpvsTable } from '../../shared/model/table.ts';
import { DesiredCompiler } from '../../shared/rules/desired.ts';
import type { KernelRuleSpec } from '../../shared/rules/kernel-rules.ts';
import { ADMIN_HANDLERS, handleAdmin } from '../../services/tsvsd/admin-handlers.ts';
import { LocalConfigStore, type ConfigChange } from '../../services/tsvsd/config-store.ts';
import { EventPriority, EventQueue, QueueClosedError } from '../../services/tsvsd/event-queue.ts';
import { Reconciler, type ReconcileTargets } from '../../services/tsvsd/reconciler.ts';
import { StatsModel } from '../../services/tsvsd/stats.ts';
import { VipSet, type VipHost } from '../../services/tsvsd/vips.ts';

function svc(over: Partial<ServiceConfig> = {}): ServiceConfig {
  return { af: 4, protocol: 'tcp', addr: '10.200.0.10', port: 80, fwmark: 0, scheduler: 'rr', flags: 0, timeout: 0, netmask: '255.255.255.255', pe: '', ...over };
}
function dest(addr: string, over: Partial<DestConfig> = {}): DestConfig {
  return { af: 4, addr, port: 80, method: 'masq', weight: 1, uThreshold: 0, lThreshold: 0, tunType: 'ipip', tunPort: 0, tunCsum: '', ...over };
}
const quiet = (): void => {};

describe('tsvsd-daemon: event queue', () => {
  it('tsvsd-daemon: one event at a time, higher priority first, FIFO within a priority', async () => {
    const seen: string[] = [];
    let running = 0;
    const q = new EventQueue<{ p: number; n: string }, string>(async (e) => {
      running++;
      expect(running).toBe(1);
      await Promise.resolve();
      seen.push(e.n);
      running--;
      return e.n.toUpperCase();
    }, (e) => e.p);
    const first = q.push({ p: EventPriority.admin, n: 'a1' });
    const rest = [
      q.push({ p: EventPriority.admin, n: 'a2' }),
      q.push({ p: EventPriority.config, n: 'c1' }),
      q.push({ p: EventPriority.ownership, n: 'o1' }),
      q.push({ p: EventPriority.config, n: 'c2' }),
    ];
    expect(await first).toBe('A1');
    await Promise.all(rest);
    expect(seen).toEqual(['a1', 'o1', 'c1', 'c2', 'a2']);
    expect(q.handled).toBe(5);
  });
  it('tsvsd-daemon: a handler that throws fails its own event only; a closed queue refuses new events', async () => {
    const q = new EventQueue<number, number>((n) => {
      if (n === 2) throw new Error('bug');
      return n * 10;
    }, () => 0);
    const r = await Promise.allSettled([q.push(1), q.push(2), q.push(3)]);
    expect(r.map((x) => x.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    await q.close();
    await expect(q.push(4)).rejects.toBeInstanceOf(QueueClosedError);
  });
});

describe('tsvsd-daemon: config store and admin handlers', () => {
  it('tsvsd-daemon: a table op goes to the store; a stored change is announced once, with its sequence; a refused one is not', async () => {
    const t = new IpvsTable();
    const store = new LocalConfigStore(t);
    const changes: ConfigChange[] = [];
    store.onChange((c) => changes.push(c));
    const ctx = { store, stats: new StatsModel(t), log: quiet, forwarding: true };
    expect(await handleAdmin({ v: 1, id: 7, op: 'add-service', svc: svc() }, ctx)).toEqual({ reply: { id: 7, ok: true }, seq: 1 });
    expect((await handleAdmin({ v: 1, id: 8, op: 'add-service', svc: svc() }, ctx)).reply).toMatchObject({ id: 8, ok: false, errno: 'EEXIST' });
    expect(changes.map((c) => [c.seq, c.cause, c.table.epoch])).toEqual([[1, 'add-service', 1]]);
    expect(await handleAdmin({ v: 1, id: 9, op: 'set-marks', text: '-A PREROUTING -t mangle -d 10.0.0.1 -j MARK --set-mark 2\n' }, ctx)).toEqual({ reply: { id: 9, ok: true }, seq: 2 });
    expect(changes[1]).toMatchObject({ seq: 2, cause: 'marks' });
    expect(changes[1].marks).toHaveLength(1);
    expect((await handleAdmin({ v: 1, id: 10, op: 'set-marks', text: '-A nonsense\n' }, ctx)).reply).toMatchObject({ ok: false, errno: 'EINVAL' });
    expect((await handleAdmin({ v: 1, id: 11, op: 'get-marks' }, ctx)).reply).toEqual({ id: 11, ok: true, marks: expect.stringContaining('--set-mark 2') });
    expect(changes).toHaveLength(2);
  });
  it('tsvsd-daemon: without a data plane, marks are EOPNOTSUPP and stats says nothing is forwarded', async () => {
    const t = new IpvsTable();
    const ctx = { store: new LocalConfigStore(t), stats: new StatsModel(t), log: quiet, forwarding: false };
    expect((await handleAdmin({ v: 1, id: 1, op: 'get-marks' }, ctx)).reply).toMatchObject({ ok: false, errno: 'EOPNOTSUPP' });
    const s = (await handleAdmin({ v: 1, id: 2, op: 'stats' }, ctx)).reply;
    expect(s).toMatchObject({ ok: true, stats: { tableEpoch: 0, dataplane: { forwarding: false, workers: [] }, table: { services: [] } } });
    expect(Object.keys(ADMIN_HANDLERS).sort()).toContain('stats');
  });
});

/** Targets that record what the reconciler asked for. */
function recorder(own: string[] = ['10.200.0.2']): ReconcileTargets & { published: FwdTable[]; kernels: KernelRuleSpec[]; vipSyncs: string[][] } {
  const r = {
    published: [] as FwdTable[],
    kernels: [] as KernelRuleSpec[],
    vipSyncs: [] as string[][],
    publish: (f: FwdTable) => void r.published.push(f),
    kernel: { apply: (k: KernelRuleSpec) => void r.kernels.push(k) },
    vips: { sync: (v: readonly string[]) => void r.vipSyncs.push([...v]) },
    ownAddrs: () => own,
    trashDestIds: () => [],
  };
  return r;
}

describe('tsvsd-daemon: reconciler', () => {
  it('tsvsd-daemon: nothing is applied before the first config and grant; then the table is published only when it changed', async () => {
    const t = new IpvsTable();
    const store = new LocalConfigStore(t);
    const tg = recorder();
    const rc = new Reconciler({ compiler: new DesiredCompiler({ backend: 'afpacket', workers: 1 }), targets: tg, host: { clientIf: 'front', serverIf: 'back', localTun: 'tsvs-local0' }, log: quiet });
    store.onChange((c) => rc.setConfig(c));
    rc.setConfig(store.current());
    expect(tg.published).toHaveLength(0);
    let done = false;
    void rc.applied(1).then(() => (done = true));
    rc.setGrant({ kind: 'all' });
    expect(tg.published).toHaveLength(1);
    await store.apply({ op: 'add-service', svc: svc() });
    await store.apply({ op: 'add-dest', key: svc(), dest: dest('10.200.1.101') });
    await Promise.resolve();
    expect(done).toBe(true);
    expect(tg.published.map((f) => f.epoch)).toEqual([0, 1, 2]);
    expect(tg.vipSyncs.at(-1)).toEqual(['10.200.0.10']);
    rc.setGrant({ kind: 'all' });
    expect(tg.published).toHaveLength(3);
    rc.setGrant({ kind: 'only', vips: [] });
    expect(tg.published).toHaveLength(3);
    expect(tg.vipSyncs.at(-1)).toEqual([]);
    rc.setHealth((_k, d) => d.addr !== '10.200.1.101');
    expect(tg.published).toHaveLength(4);
    expect(tg.published[3].services[0].dests[0].weight).toBe(0);
    expect(rc.fwd()).toBe(tg.published[3]);
  });
  it('tsvsd-daemon: without a data plane the reconciler applies nothing but still settles changes', async () => {
    const rc = new Reconciler({ compiler: new DesiredCompiler({ backend: 'afpacket', workers: 1 }), targets: null, host: { clientIf: '', serverIf: '', localTun: 'x' }, log: quiet });
    rc.setGrant({ kind: 'all' });
    rc.setConfig(new LocalConfigStore(new IpvsTable()).current());
    await rc.applied(0);
    expect(rc.runs).toBe(1);
    expect(rc.fwd()).toBeUndefined();
  });
});

describe('tsvsd-daemon: VIP set', () => {
  it('tsvsd-daemon: VIPs are added and announced once, released when no longer wanted; a failed add is retried next time', () => {
    const calls: string[] = [];
    let fail = true;
    const host: VipHost = {
      add: (v) => (calls.push(`add ${v}`), !(fail && v === '10.0.0.2')),
      del: (v) => void calls.push(`del ${v}`),
      announce: (v) => void calls.push(`arp ${v}`),
    };
    const s = new VipSet(host, quiet);
    s.sync(['10.0.0.1', '10.0.0.2']);
    s.sync(['10.0.0.1', '10.0.0.2']);
    fail = false;
    s.sync(['10.0.0.2']);
    s.releaseAll();
    expect(calls).toEqual(['add 10.0.0.1', 'arp 10.0.0.1', 'add 10.0.0.2', 'add 10.0.0.2', 'add 10.0.0.2', 'arp 10.0.0.2', 'del 10.0.0.1', 'del 10.0.0.2']);
  });
});
