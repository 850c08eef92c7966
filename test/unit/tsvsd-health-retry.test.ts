// tsvsd-health-retry: health edits the config store could not take (EAGAIN, the cluster's NATS unreachable) are
// retried with backoff until they land or are superseded, from the latest wanted state; a refusal on the table is not
// retried; each wanted state is logged once (services/tsvsd/health.ts, HealthLink; the store and timers are fakes).
import { describe, expect, it } from 'vitest';
import { emptyKeepalivedFs, readKeepalivedConfig } from '../../shared/keepalived/index.ts';
import type { DestConfig, ServiceKey } from '../../shared/model/ipvs.ts';
import type { TableOp } from '../../shared/model/ops.ts';
import { IpvsTable } from '../../shared/model/table.ts';
import type { FromHealth } from '../../shared/proto/health.ts';
import { HEALTH_RETRY_FIRST_MS, HEALTH_RETRY_MAX_MS, HealthLink } from '../../services/tsvsd/health.ts';
import { keepalivedStartOps } from '../../services/tsvsd/health-sync.ts';
import type { StoreResult } from '../../services/tsvsd/config-store.ts';

const CONF = `virtual_server 10.0.0.10 80 {
  delay_loop 1
  lb_algo rr
  protocol TCP
  real_server 10.0.1.1 80 {
    weight 3
    TCP_CHECK {
    }
  }
  real_server 10.0.1.2 80 {
    weight 1
    TCP_CHECK {
    }
  }
}
`;
const key: ServiceKey = { af: 4, protocol: 'tcp', addr: '10.0.0.10', port: 80, fwmark: 0 };
const dest = (addr: string, weight: number): DestConfig => ({ af: 4, addr, port: 80, method: 'masq', weight, uThreshold: 0, lThreshold: 0, tunType: 'ipip', tunPort: 0, tunCsum: '' });
const R1 = 'tcp/10.0.0.10:80/10.0.1.1:80';

function setup() {
  const config = readKeepalivedConfig('k.conf', CONF, emptyKeepalivedFs);
  const table = new IpvsTable({ clock: () => 0 });
  for (const op of keepalivedStartOps(config)) expect(table.apply(op)).toEqual({ ok: true });
  const logs: { event: string; fields?: Record<string, unknown> }[] = [];
  const timers: { fn: () => void; ms: number }[] = [];
  let now = 0;
  /** The store: 'down' answers EAGAIN; 'up' applies to the table (as a cluster revision would). */
  const store = { state: 'up' as 'up' | 'down', attempts: [] as TableOp[] };
  const link = new HealthLink('k.conf', config, {
    children: { start: () => {}, send: () => true },
    table: () => table.compiled(),
    apply: async (op): Promise<StoreResult> => {
      store.attempts.push(op);
      if (store.state === 'down') return { ok: false, errno: 'EAGAIN', detail: 'cluster config store unreachable: no NATS connection for 1500 ms' };
      const r = table.apply(op);
      return r.ok ? { ok: true, seq: 1 } : { ok: false, errno: r.errno, detail: r.errno };
    },
    log: (event, fields) => logs.push({ event, fields }),
    now: () => now,
    setTimer: (fn, ms) => {
      const t = { fn, ms };
      timers.push(t);
      return t;
    },
    clearTimer: (t) => {
      const i = timers.indexOf(t as (typeof timers)[number]);
      if (i >= 0) timers.splice(i, 1);
    },
  });
  const msg = (m: FromHealth) => link.onMessage(m);
  /** Fires the one pending retry timer after its delay; returns that delay. */
  const fire = async (): Promise<number> => {
    expect(timers).toHaveLength(1);
    const t = timers.shift()!;
    now += t.ms;
    t.fn();
    await Promise.resolve();
    await new Promise((r) => setImmediate(r));
    return t.ms;
  };
  let seq = 0;
  const transition = (addr: string, weight: number | null) => msg({ v: 1, type: 'transitions', epoch: 1, seq: ++seq, changes: [{ vsId: 'vs', services: [key], key: { af: 4, addr, port: 80 }, dest: weight === null ? null : dest(addr, weight) }] });
  return { link, table, logs, timers, store, msg, fire, transition, weightOf: (addr: string) => table.compiled().services[0].dests.find((d) => d.config.addr === addr)?.config.weight ?? null };
}

async function ready(s: ReturnType<typeof setup>): Promise<void> {
  await s.msg({ v: 1, type: 'ready', epoch: 1, pid: 1, view: { virtualServers: [{ vsId: 'vs', services: [key], dests: [dest('10.0.1.1', 3), dest('10.0.1.2', 1)] }] }, warnings: [] });
}

describe('tsvsd-health-retry: health edits refused while the store is unreachable', () => {
  it('health-retry: a removal refused with EAGAIN is retried with backoff 250 → 500 → 1000 → 2000 → 2000 ms, logged once, and lands when the store is back', async () => {
    const s = setup();
    await ready(s);
    s.store.state = 'down';
    await s.transition('10.0.1.1', null);
    expect(s.weightOf('10.0.1.1')).toBe(3); // not stored
    expect(s.link.pending()).toEqual(new Map([[R1, 'removed']]));
    const delays = [];
    for (let i = 0; i < 5; i++) delays.push(await s.fire());
    expect(delays).toEqual([HEALTH_RETRY_FIRST_MS, 500, 1000, HEALTH_RETRY_MAX_MS, HEALTH_RETRY_MAX_MS]);
    expect(s.logs.filter((l) => l.event === 'health: table edit not stored, retrying until it lands')).toHaveLength(1);
    s.store.state = 'up';
    await s.fire();
    expect(s.weightOf('10.0.1.1')).toBeNull();
    expect(s.timers).toHaveLength(0);
    expect(s.link.pending().size).toBe(0);
    expect(s.logs.find((l) => l.event === 'health: retried table edit stored')?.fields).toMatchObject({ dest: R1, state: 'removed', attempts: 6, ms: 250 + 500 + 1000 + 2000 + 2000 + 2000 });
    expect(s.link.counts).toMatchObject({ unreachable: 6, retries: 6, retriedLanded: 1, refused: 0 });
  });

  it('health-retry: a newer transition supersedes the pending state (the latest is what is retried, logged again as a new state); back to what the table holds → nothing left to retry', async () => {
    const s = setup();
    await ready(s);
    s.store.state = 'down';
    await s.transition('10.0.1.1', null);
    await s.fire();
    await s.transition('10.0.1.1', 5); // the server is back with another weight: edit-dest, not del-dest
    expect(s.link.pending()).toEqual(new Map([[R1, 'weight 5']]));
    expect(s.logs.filter((l) => l.event === 'health: table edit not stored, retrying until it lands').map((l) => l.fields?.state)).toEqual(['removed', 'weight 5']);
    s.store.state = 'up';
    await s.fire();
    expect(s.weightOf('10.0.1.1')).toBe(5);
    expect(s.store.attempts.filter((o) => o.op === 'del-dest')).toHaveLength(2); // never retried after it was superseded

    s.store.state = 'down';
    await s.transition('10.0.1.2', 4);
    expect(s.link.pending().size).toBe(1);
    await s.transition('10.0.1.2', 1); // what the table holds: no edit wanted any more
    expect(s.link.pending().size).toBe(0);
    expect(s.timers).toHaveLength(0);
    expect(s.logs.at(-1)).toMatchObject({ event: 'health: retried table edit no longer needed', fields: { dest: 'tcp/10.0.0.10:80/10.0.1.2:80', state: 'weight 4' } });
  });

  it('health-retry: the same change already in the table (another director applied it first) is done, not retried; a refusal on the table is not retried', async () => {
    const s = setup();
    await ready(s);
    s.store.state = 'down';
    await s.transition('10.0.1.1', null);
    // another director's revision removed it meanwhile
    expect(s.table.apply({ op: 'del-dest', key, dest: { af: 4, addr: '10.0.1.1', port: 80 } })).toEqual({ ok: true });
    s.store.state = 'up';
    const before = s.store.attempts.length;
    await s.fire();
    expect(s.store.attempts.length).toBe(before); // nothing to send: the table holds it
    expect(s.link.pending().size).toBe(0);
    expect(s.logs.at(-1)?.event).toBe('health: retried table edit no longer needed');

    // a refusal on the table (ENOENT: another director removed it from the cluster's table first) is not retried
    const t = setup();
    await ready(t);
    const apply = t.table.apply.bind(t.table);
    t.table.apply = (op) => (op.op === 'del-dest' ? { ok: false, errno: 'ENOENT', detail: 'No such destination' } : apply(op));
    await t.transition('10.0.1.1', null);
    expect(t.link.counts.refused).toBe(1);
    expect(t.link.pending().size).toBe(0);
    expect(t.timers).toHaveLength(0);
  });

  it('health-retry: close() stops retrying', async () => {
    const s = setup();
    await ready(s);
    s.store.state = 'down';
    await s.transition('10.0.1.1', null);
    expect(s.timers).toHaveLength(1);
    s.link.close();
    expect(s.timers).toHaveLength(0);
  });
});
