// cluster-config: the cluster's table as one KV document (shared/cluster/config-doc.ts) and the compare-and-set edit
// loop (services/cluster/config-kv.ts runEdit) over an in-memory store: round trips, differences that keep ids and
// the kernel's list order, edits refused on the latest table, concurrent edits that both land, an unreachable store.
import { describe, expect, it } from 'vitest';
import { buildOps, docOfTable, editDoc, encodeDoc, isEmptyTable, parseDoc, sameConfig, syncOps, tableOfDoc } from '../../shared/cluster/config-doc.ts';
import { formatSave } from '../../shared/ipvsadm/format.ts';
import { numericResolver } from '../../shared/ipvsadm/names.ts';
import type { ListFormat } from '../../shared/ipvsadm/parse.ts';
import type { DestConfig, ServiceConfig, ServiceKey } from '../../shared/model/ipvs.ts';
import type { TableOp } from '../../shared/model/ops.ts';
import { IpvsTable } from '../../shared/model/table.ts';
import { CONFIG_RECENT_EDITS, type ConfigDoc } from '../../shared/proto/cluster.ts';
import { mulberry32 } from '../../shared/util/rng.ts';
import { runEdit, type ConfigBackend, type EditTiming } from '../../services/cluster/config-kv.ts';

const SAVE_N: ListFormat = { numeric: true, stats: false, rate: false, thresholds: false, persistentConn: false, nosort: false, exact: false, tunInfo: false };
const META = { prev: 0, by: 't', edit: 't/1' };

function svc(addr: string, port: number, scheduler = 'rr'): ServiceConfig {
  return { af: 4, protocol: 'tcp', addr, port, fwmark: 0, scheduler, flags: 0, timeout: 0, netmask: '255.255.255.255', pe: '' };
}
function key(s: ServiceConfig): ServiceKey {
  return { af: s.af, protocol: s.protocol, addr: s.addr, port: s.port, fwmark: s.fwmark };
}
function dest(addr: string, weight = 1): DestConfig {
  return { af: 4, addr, port: 80, method: 'masq', weight, uThreshold: 0, lThreshold: 0, tunType: 'ipip', tunPort: 0, tunCsum: '' };
}
function table(ops: TableOp[]): IpvsTable {
  const t = new IpvsTable();
  for (const op of ops) expect(t.apply(op)).toEqual({ ok: true });
  return t;
}
const save = (t: IpvsTable): string => formatSave(t.snapshot(), SAVE_N, numericResolver);

const A = svc('10.0.0.1', 80);
const B = svc('10.0.0.2', 80, 'wrr');
const C = svc('10.0.0.3', 53);

describe('cluster-config: the document', () => {
  it('cluster-config: a table → document → table keeps services, real servers in list order, timeouts and sync daemons (-S identical)', () => {
    const t = table([
      { op: 'add-service', svc: A }, { op: 'add-dest', key: key(A), dest: dest('10.1.0.1', 3) }, { op: 'add-dest', key: key(A), dest: dest('10.1.0.2') },
      { op: 'add-service', svc: B }, { op: 'add-dest', key: key(B), dest: dest('10.1.0.3', 0) },
      { op: 'set-timeout', tcp: 100, tcpfin: 0, udp: 7 },
      { op: 'start-daemon', daemon: { state: 'master', mcastIfn: 'eth0', syncid: 3, maxlen: 0, group: '', port: 0, ttl: 0 } },
    ]);
    const doc = docOfTable(t.compiled(), META);
    const parsed = parseDoc(encodeDoc(doc));
    expect(parsed.ok).toBe(true);
    const back = tableOfDoc(parsed.ok ? parsed.doc : doc);
    expect(back.ok).toBe(true);
    if (!back.ok) return;
    expect(save(back.table)).toBe(save(t));
    expect(sameConfig(back.table.compiled(), doc)).toBe(true);
    expect(back.table.snapshot().timeouts).toEqual({ tcp: 100, tcpfin: 120, udp: 7 });
    expect(back.table.snapshot().daemons).toEqual(t.snapshot().daemons);
    expect(isEmptyTable(new IpvsTable().compiled())).toBe(true);
    expect(isEmptyTable(t.compiled())).toBe(false);
  });

  it('cluster-config: an edit is replayed on the latest table with the kernel\'s checks; a refusal is that table\'s errno', () => {
    const base = editDoc(null, { op: 'add-service', svc: A }, META);
    expect(base.ok).toBe(true);
    const doc = base.ok ? base.doc : (undefined as never);
    expect(doc.op).toEqual({ op: 'add-service', svc: A });
    expect(editDoc(doc, { op: 'add-service', svc: A }, META)).toMatchObject({ ok: false, errno: 'EEXIST' });
    expect(editDoc(doc, { op: 'add-dest', key: key(B), dest: dest('10.1.0.1') }, META)).toMatchObject({ ok: false, errno: 'ESRCH' });
    expect(editDoc(doc, { op: 'del-dest', key: key(A), dest: { af: 4, addr: '10.1.0.9', port: 80 } }, META)).toMatchObject({ ok: false, errno: 'ENOENT' });
    expect(editDoc(doc, { op: 'add-dest', key: key(A), dest: dest('10.1.0.1', -1) }, META)).toMatchObject({ ok: false, errno: 'ERANGE' });
    expect(editDoc(doc, { op: 'zero' }, META)).toMatchObject({ ok: false, errno: 'EINVAL' });
    const two = editDoc(doc, { op: 'add-dest', key: key(A), dest: dest('10.1.0.1') }, { prev: 4, by: 'd2', edit: 'd2/1/1' });
    expect(two).toMatchObject({ ok: true, doc: { prev: 4, by: 'd2', edit: 'd2/1/1', services: [{ svc: A, dests: [dest('10.1.0.1')] }] } });
  });

  it('cluster-config: a bad KV value is refused with the reason, never thrown', () => {
    const good = docOfTable(table([{ op: 'add-service', svc: A }]).compiled(), META);
    const cases: [string, RegExp][] = [
      ['{nope', /not JSON/],
      ['[1,2]', /not an object/],
      [JSON.stringify({ ...good, v: 2 }), /schema version 2/],
      [JSON.stringify({ ...good, services: 'x' }), /services: not a list/],
      [JSON.stringify({ ...good, services: [{ svc: { ...A, port: 'eighty' }, dests: [] }] }), /services\[0\]\.svc\.port: want a number/],
      [JSON.stringify({ ...good, services: [{ svc: A, dests: [{ ...dest('10.1.0.1'), weight: -4 }] }] }), /refused by the table: add-dest: ERANGE/],
      [JSON.stringify({ ...good, services: [{ svc: { ...A, scheduler: 'nope' }, dests: [] }] }), /refused by the table: add-service: ENOENT/],
      [JSON.stringify({ ...good, op: { op: 'reboot' } }), /op: not a table operation/],
      [JSON.stringify({ ...good, timeouts: null }), /timeouts: not an object/],
    ];
    for (const [text, want] of cases) {
      const r = parseDoc(text);
      expect(r.ok, text).toBe(false);
      if (!r.ok) expect(r.detail).toMatch(want);
    }
  });
});

describe('cluster-config: bringing a director\'s table to a revision', () => {
  it('cluster-config: only differences are applied; real servers kept keep their ids; list order is the document\'s', () => {
    const t = table([
      { op: 'add-service', svc: A }, { op: 'add-dest', key: key(A), dest: dest('10.1.0.1') }, { op: 'add-dest', key: key(A), dest: dest('10.1.0.2') }, { op: 'add-dest', key: key(A), dest: dest('10.1.0.3') },
      { op: 'add-service', svc: B }, { op: 'add-dest', key: key(B), dest: dest('10.1.0.4') },
    ]);
    const ids = new Map(t.compiled().services.flatMap((s) => s.dests.map((d) => [`${s.key}/${d.config.addr}`, d.id] as const)));
    // target: A drops .2, gets .5 (newest) and weight 7 on .1; B's scheduler changes; C is new
    const target = table([
      { op: 'add-service', svc: A }, { op: 'add-dest', key: key(A), dest: dest('10.1.0.1', 7) }, { op: 'add-dest', key: key(A), dest: dest('10.1.0.3') }, { op: 'add-dest', key: key(A), dest: dest('10.1.0.5') },
      { op: 'add-service', svc: { ...B, scheduler: 'lc' } }, { op: 'add-dest', key: key(B), dest: dest('10.1.0.4') },
      { op: 'add-service', svc: C },
    ]);
    const doc = docOfTable(target.compiled(), META);
    const ops = syncOps(t.compiled(), doc);
    expect(ops.map((o) => o.op)).toEqual(['del-dest', 'edit-dest', 'add-dest', 'edit-service', 'add-service']);
    for (const op of ops) expect(t.apply(op)).toEqual({ ok: true });
    expect(sameConfig(t.compiled(), doc)).toBe(true);
    expect(save(t)).toBe(save(target));
    const after = t.compiled();
    const a = after.services.find((s) => s.config.addr === '10.0.0.1')!;
    expect(a.dests.map((d) => d.config.addr)).toEqual(['10.1.0.5', '10.1.0.3', '10.1.0.1']);
    expect(a.dests.find((d) => d.config.addr === '10.1.0.1')!.id).toBe(ids.get(`${a.key}/10.1.0.1`));
    expect(a.dests.find((d) => d.config.addr === '10.1.0.3')!.id).toBe(ids.get(`${a.key}/10.1.0.3`));
    expect(syncOps(t.compiled(), doc)).toEqual([]);
  });

  it('cluster-config: random tables reach any random revision by differences, in the document\'s order (300 seeded cases)', () => {
    const rnd = mulberry32(0x5eed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
    const svcs = [A, B, C, svc('10.0.0.4', 443, 'wlc')];
    const addrs = ['10.1.0.1', '10.1.0.2', '10.1.0.3', '10.1.0.4', '10.1.0.5'];
    const randomTable = (): IpvsTable => {
      const t = new IpvsTable();
      for (let i = 0; i < 25; i++) {
        const s = pick(svcs);
        const r = rnd();
        const op: TableOp = r < 0.25 ? { op: 'add-service', svc: { ...s, scheduler: pick(['rr', 'wrr', 'lc']) } }
          : r < 0.6 ? { op: 'add-dest', key: key(s), dest: dest(pick(addrs), Math.floor(rnd() * 4)) }
          : r < 0.75 ? { op: 'edit-dest', key: key(s), dest: dest(pick(addrs), Math.floor(rnd() * 4)) }
          : r < 0.85 ? { op: 'del-dest', key: key(s), dest: { af: 4, addr: pick(addrs), port: 80 } }
          : r < 0.93 ? { op: 'del-service', key: key(s) }
          : { op: 'set-timeout', tcp: Math.floor(rnd() * 3) * 100, tcpfin: 0, udp: 0 };
        t.apply(op);
      }
      return t;
    };
    for (let c = 0; c < 300; c++) {
      const t = randomTable();
      const target = randomTable();
      const doc = docOfTable(target.compiled(), META);
      for (const op of syncOps(t.compiled(), doc)) expect(t.apply(op), JSON.stringify(op)).toEqual({ ok: true });
      expect(sameConfig(t.compiled(), doc)).toBe(true);
      expect(save(t)).toBe(save(target));
      expect(buildOps(doc).length).toBeGreaterThanOrEqual(target.compiled().services.length);
    }
  });
});

/** An in-memory KV key with revisions, optional failures, and writes that can be held to interleave two edits. */
class MemoryStore implements ConfigBackend {
  rev = 0;
  text: string | null = null;
  failReads = 0;
  /** Writes applied but answered as failures (a timed-out CAS that still landed). */
  lostAnswers = 0;
  gate: Promise<void> | null = null;
  writes = 0;

  async read(): Promise<{ rev: number; text: string | null }> {
    await Promise.resolve();
    if (this.failReads > 0) {
      this.failReads--;
      throw new Error('jetstream is not enabled');
    }
    return { rev: this.rev, text: this.text };
  }

  async write(text: string, expectRev: number): Promise<{ ok: true; rev: number } | { ok: false; conflict: boolean; error: string }> {
    if (this.gate) await this.gate;
    this.writes++;
    if (expectRev !== this.rev) return { ok: false, conflict: true, error: `wrong last sequence: ${this.rev}` };
    this.rev += 1;
    this.text = text;
    if (this.lostAnswers > 0) {
      this.lostAnswers--;
      return { ok: false, conflict: false, error: 'KV operation did not settle within 1600 ms' };
    }
    return { ok: true, rev: this.rev };
  }

  doc(): ConfigDoc {
    const p = parseDoc(this.text!);
    if (!p.ok) throw new Error(p.detail);
    return p.doc;
  }
}

function timing(deadlineMs = 3000): EditTiming & { t: number } {
  const tm = { t: 0, deadlineMs, retryMs: 100, now: () => tm.t, sleep: async (ms: number) => void (tm.t += ms) };
  return tm;
}

describe('cluster-config: the compare-and-set edit loop', () => {
  it('cluster-config: two concurrent edits from two directors both land; the later one is replayed on the table holding the first', async () => {
    const kv = new MemoryStore();
    await runEdit(kv, { op: 'add-service', svc: A }, { by: 'd1', edit: 'd1/1/1' }, timing());
    let open!: () => void;
    kv.gate = new Promise((r) => (open = r));
    const e1 = runEdit(kv, { op: 'add-dest', key: key(A), dest: dest('10.1.0.1') }, { by: 'd1', edit: 'd1/1/2' }, timing());
    const e2 = runEdit(kv, { op: 'add-dest', key: key(A), dest: dest('10.1.0.2') }, { by: 'd2', edit: 'd2/1/1' }, timing());
    await new Promise((r) => setTimeout(r, 0));
    kv.gate = null;
    open();
    const [r1, r2] = await Promise.all([e1, e2]);
    expect(r1.ok && r2.ok).toBe(true);
    expect(r1.conflicts + r2.conflicts).toBe(1);
    expect(kv.rev).toBe(3);
    const doc = kv.doc();
    expect(doc.services[0].dests.map((d) => d.addr).sort()).toEqual(['10.1.0.1', '10.1.0.2']);
    // the loser was replayed on the winner's revision
    const loser = r1.conflicts ? r1 : r2;
    expect(loser.ok && loser.doc.prev).toBe(2);
  });

  it('cluster-config: an edit that becomes invalid on the latest table gets that table\'s errno (the same real server added twice)', async () => {
    const kv = new MemoryStore();
    await runEdit(kv, { op: 'add-service', svc: A }, { by: 'd1', edit: 'd1/1/1' }, timing());
    let open!: () => void;
    kv.gate = new Promise((r) => (open = r));
    const op: TableOp = { op: 'add-dest', key: key(A), dest: dest('10.1.0.1') };
    const e1 = runEdit(kv, op, { by: 'd1', edit: 'd1/1/2' }, timing());
    const e2 = runEdit(kv, op, { by: 'd2', edit: 'd2/1/1' }, timing());
    await new Promise((r) => setTimeout(r, 0));
    kv.gate = null;
    open();
    const rs = await Promise.all([e1, e2]);
    expect(rs.filter((r) => r.ok)).toHaveLength(1);
    expect(rs.find((r) => !r.ok)).toMatchObject({ ok: false, errno: 'EEXIST' });
    expect(kv.rev).toBe(2);
  });

  it('cluster-config: store errors are retried; past the deadline the edit fails with EAGAIN saying the store is unreachable', async () => {
    const kv = new MemoryStore();
    kv.failReads = 3;
    const ok = await runEdit(kv, { op: 'add-service', svc: A }, { by: 'd1', edit: 'd1/1/1' }, timing());
    expect(ok).toMatchObject({ ok: true, rev: 1 });
    kv.failReads = 1000;
    const tm = timing(3000);
    const r = await runEdit(kv, { op: 'add-service', svc: B }, { by: 'd1', edit: 'd1/1/2' }, tm);
    expect(r).toMatchObject({ ok: false, errno: 'EAGAIN' });
    if (!r.ok) expect(r.detail).toMatch(/cluster config store unreachable: .*jetstream is not enabled.*unchanged/);
    expect(tm.t).toBeGreaterThanOrEqual(3000);
    expect(kv.rev).toBe(1);
  });

  it('cluster-config: a write that timed out but landed is recognised on the retry by its edit id (not applied twice, not EEXIST)', async () => {
    const kv = new MemoryStore();
    kv.lostAnswers = 1;
    const r = await runEdit(kv, { op: 'add-service', svc: A }, { by: 'd1', edit: 'd1/1/1' }, timing());
    expect(r).toMatchObject({ ok: true, rev: 1 });
    expect(kv.writes).toBe(1);
  });

  it('cluster-config: a write that timed out but landed is recognised even after another director\'s edit landed on top of it', async () => {
    const kv = new MemoryStore();
    await runEdit(kv, { op: 'add-service', svc: A }, { by: 'd1', edit: 'd1/1/1' }, timing());
    kv.lostAnswers = 1;
    const tm = timing();
    let other: Promise<unknown> | null = null;
    // While d1 waits to retry its unanswered write, d2's edit lands on the revision d1's write made.
    tm.sleep = async (ms: number) => {
      tm.t += ms;
      other ??= runEdit(kv, { op: 'add-dest', key: key(A), dest: dest('10.1.0.2') }, { by: 'd2', edit: 'd2/1/1' }, timing());
      await other;
    };
    const r = await runEdit(kv, { op: 'add-dest', key: key(A), dest: dest('10.1.0.1') }, { by: 'd1', edit: 'd1/1/2' }, tm);
    expect(r).toMatchObject({ ok: true, rev: 3 });
    expect(kv.writes).toBe(3);
    const doc = kv.doc();
    expect(doc.edit).toBe('d2/1/1');
    expect(doc.recent).toEqual(['d1/1/1', 'd1/1/2']);
    expect(doc.services[0].dests.map((d) => d.addr).sort()).toEqual(['10.1.0.1', '10.1.0.2']);
  });

  it('cluster-config: a document carries the ids of the last CONFIG_RECENT_EDITS edits before its own', async () => {
    const kv = new MemoryStore();
    await runEdit(kv, { op: 'add-service', svc: A }, { by: 'd1', edit: 'e0' }, timing());
    for (let i = 1; i <= CONFIG_RECENT_EDITS + 10; i++) {
      const r = await runEdit(kv, { op: 'edit-service', svc: { ...A, timeout: i } }, { by: 'd1', edit: `e${i}` }, timing());
      expect(r.ok).toBe(true);
    }
    const doc = kv.doc();
    expect(doc.recent).toHaveLength(CONFIG_RECENT_EDITS);
    expect(doc.recent!.at(-1)).toBe(`e${CONFIG_RECENT_EDITS + 9}`);
    expect(doc.recent![0]).toBe('e10');
  });

  it('cluster-config: a stored value that is not a valid table refuses edits with EINVAL naming the revision', async () => {
    const kv = new MemoryStore();
    kv.rev = 7;
    kv.text = '{"v":1,"services":"garbage"}';
    const r = await runEdit(kv, { op: 'add-service', svc: A }, { by: 'd1', edit: 'd1/1/1' }, timing());
    expect(r).toMatchObject({ ok: false, errno: 'EINVAL' });
    if (!r.ok) expect(r.detail).toMatch(/revision 7 is not valid/);
  });
});
