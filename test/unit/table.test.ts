// table: the kernel side of every ipvsadm operation — errno answers, list order, replacement semantics, epochs, trash.
import { describe, expect, it } from 'vitest';
import { DEST_TRASH_PERIOD_MS, IpvsTable, MAX_SET_TIMEOUT_S, MH_TABLE_SIZE } from '../../shared/model/table.ts';
import type { CounterProvider, DestCounters, TableResult } from '../../shared/model/table.ts';
import type { DestConfig, ServiceConfig, ServiceKey } from '../../shared/model/ipvs.ts';

function svc(over: Partial<ServiceConfig> = {}): ServiceConfig {
  return { af: 4, protocol: 'tcp', addr: '10.0.0.1', port: 80, fwmark: 0, scheduler: 'wlc', flags: 0, timeout: 0, netmask: '255.255.255.255', pe: '', ...over };
}

function dest(addr: string, over: Partial<DestConfig> = {}): DestConfig {
  return { af: 4, addr, port: 80, method: 'route', weight: 1, uThreshold: 0, lThreshold: 0, tunType: 'ipip', tunPort: 0, tunCsum: '', ...over };
}

const KEY: ServiceKey = { af: 4, protocol: 'tcp', addr: '10.0.0.1', port: 80, fwmark: 0 };

function errno(r: TableResult): string {
  return r.ok ? 'OK' : r.errno;
}

function order(t: IpvsTable, i = 0): string[] {
  return t.snapshot().services[i].dests.map((d) => d.addr);
}

function withService(over: Partial<ServiceConfig> = {}): IpvsTable {
  const t = new IpvsTable();
  expect(errno(t.addService(svc(over)))).toBe('OK');
  return t;
}

describe('table: services', () => {
  it('table: add-service twice answers EEXIST, even with a bad scheduler (existence is checked first)', () => {
    const t = withService();
    expect(errno(t.addService(svc()))).toBe('EEXIST');
    expect(errno(t.addService(svc({ scheduler: 'bogus' })))).toBe('EEXIST');
  });
  it('table: unknown scheduler or persistence engine answers ENOENT on add and edit', () => {
    const t = new IpvsTable();
    expect(errno(t.addService(svc({ scheduler: 'bogus' })))).toBe('ENOENT');
    expect(errno(t.addService(svc({ pe: 'http' })))).toBe('ENOENT');
    expect(t.snapshot().services).toEqual([]);
    t.addService(svc());
    expect(errno(t.editService(svc({ scheduler: 'bogus' })))).toBe('ENOENT');
    expect(errno(t.editService(svc({ pe: 'nope' })))).toBe('ENOENT');
  });
  it('table: every implemented scheduler, none, and the sip engine are accepted', () => {
    const t = new IpvsTable();
    const names = ['rr', 'wrr', 'lc', 'wlc', 'lblc', 'lblcr', 'dh', 'sh', 'sed', 'nq', 'fo', 'ovf', 'mh', 'twos', 'none'];
    names.forEach((s, i) => expect(errno(t.addService(svc({ port: 1000 + i, scheduler: s, pe: i === 0 ? 'sip' : '' })))).toBe('OK'));
    expect(t.snapshot().services.map((s) => s.scheduler)).toEqual(names);
  });
  it('table: IPv6 netmask outside 1..128 answers EINVAL', () => {
    const t = new IpvsTable();
    const v6 = { af: 6 as const, addr: 'fd00::1' };
    expect(errno(t.addService(svc({ ...v6, netmask: '0' })))).toBe('EINVAL');
    expect(errno(t.addService(svc({ ...v6, netmask: '129' })))).toBe('EINVAL');
    expect(errno(t.addService(svc({ ...v6, netmask: '64' })))).toBe('OK');
  });
  it('table: edit-service and del-service on a missing service answer ESRCH', () => {
    const t = new IpvsTable();
    expect(errno(t.editService(svc()))).toBe('ESRCH');
    expect(errno(t.delService(KEY))).toBe('ESRCH');
  });
  it('table: -E replaces the whole definition and keeps dests and creation order', () => {
    const t = withService({ scheduler: 'rr', flags: 1, timeout: 300, pe: 'sip' });
    t.addService(svc({ port: 443 }));
    t.addDest(KEY, dest('192.168.0.1'));
    expect(errno(t.editService(svc()))).toBe('OK');
    const s = t.snapshot().services;
    expect(s.map((x) => x.port)).toEqual([80, 443]);
    expect(s[0]).toMatchObject({ scheduler: 'wlc', flags: 0, timeout: 0, pe: '' });
    expect(s[0].dests.map((d) => d.addr)).toEqual(['192.168.0.1']);
  });
  it('table: fwmark services are keyed by address family and mark', () => {
    const t = new IpvsTable();
    const fwm = { addr: '', port: 0, fwmark: 7 };
    expect(errno(t.addService(svc(fwm)))).toBe('OK');
    expect(errno(t.addService(svc({ ...fwm, protocol: 'udp' })))).toBe('EEXIST');
    expect(errno(t.addService(svc({ ...fwm, af: 6, netmask: '128' })))).toBe('OK');
    expect(errno(t.delService({ af: 4, protocol: 'tcp', addr: '', port: 0, fwmark: 7 }))).toBe('OK');
  });
  it('table: flush removes every service and always succeeds', () => {
    const t = withService();
    t.addService(svc({ port: 81 }));
    expect(errno(t.flush())).toBe('OK');
    expect(t.snapshot().services).toEqual([]);
    expect(errno(t.flush())).toBe('OK');
  });
  it('table: switching to mh with more dests than its table size answers EINVAL and changes nothing', () => {
    const t = withService({ scheduler: 'rr' });
    for (let i = 0; i <= MH_TABLE_SIZE; i++) t.addDest(KEY, dest(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, { port: 80 }));
    const before = t.epoch;
    expect(errno(t.editService(svc({ scheduler: 'mh', flags: 8 })))).toBe('EINVAL');
    expect(t.epoch).toBe(before);
    expect(t.snapshot().services[0]).toMatchObject({ scheduler: 'rr', flags: 0 });
  });
  it('table: an mh service refuses the dest that would exceed its table size with EINVAL', () => {
    const t = withService({ scheduler: 'mh' });
    for (let i = 0; i < MH_TABLE_SIZE; i++) expect(t.addDest(KEY, dest(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`)).ok).toBe(true);
    expect(errno(t.addDest(KEY, dest('172.16.0.1')))).toBe('EINVAL');
  });
});

describe('table: dests', () => {
  it('table: add-dest on a missing service answers ESRCH; a duplicate answers EEXIST', () => {
    const t = new IpvsTable();
    expect(errno(t.addDest(KEY, dest('192.168.0.1')))).toBe('ESRCH');
    t.addService(svc());
    expect(errno(t.addDest(KEY, dest('192.168.0.1')))).toBe('OK');
    expect(errno(t.addDest(KEY, dest('192.168.0.1', { weight: 5 })))).toBe('EEXIST');
    expect(errno(t.addDest(KEY, dest('192.168.0.1', { port: 81 })))).toBe('OK');
  });
  it('table: weight < 0 and l_threshold > u_threshold answer ERANGE on add and edit', () => {
    const t = withService();
    expect(errno(t.addDest(KEY, dest('192.168.0.1', { weight: -1 })))).toBe('ERANGE');
    expect(errno(t.addDest(KEY, dest('192.168.0.1', { lThreshold: 5, uThreshold: 4 })))).toBe('ERANGE');
    expect(errno(t.addDest(KEY, dest('192.168.0.1', { lThreshold: 5, uThreshold: 0 })))).toBe('ERANGE');
    t.addDest(KEY, dest('192.168.0.1'));
    expect(errno(t.editDest(KEY, dest('192.168.0.1', { weight: -3 })))).toBe('ERANGE');
    expect(errno(t.editDest(KEY, dest('192.168.0.1', { lThreshold: 2, uThreshold: 1 })))).toBe('ERANGE');
    // Range is checked before existence, as in the kernel.
    expect(errno(t.editDest(KEY, dest('192.168.0.9', { weight: -1 })))).toBe('ERANGE');
  });
  it('table: GUE with tun_port 0 answers EINVAL', () => {
    const t = withService();
    expect(errno(t.addDest(KEY, dest('192.168.0.1', { method: 'tunnel', tunType: 'gue', tunPort: 0 })))).toBe('EINVAL');
    expect(errno(t.addDest(KEY, dest('192.168.0.1', { method: 'tunnel', tunType: 'gue', tunPort: 6080 })))).toBe('OK');
  });
  it('table: a dest of another family must be a tunnel dest and forbids a sync daemon (EINVAL)', () => {
    const t = withService();
    const v6 = { af: 6 as const };
    expect(errno(t.addDest(KEY, dest('fd00::2', { ...v6, method: 'masq' })))).toBe('EINVAL');
    expect(errno(t.addDest(KEY, dest('fd00::2', { ...v6, method: 'tunnel' })))).toBe('OK');
    expect(errno(t.startDaemon({ state: 'master', mcastIfn: 'eth0', syncid: 0, maxlen: 0, group: '', port: 0, ttl: 0 }))).toBe('EINVAL');
    t.delDest(KEY, { af: 6, addr: 'fd00::2', port: 80 });
    expect(errno(t.startDaemon({ state: 'master', mcastIfn: 'eth0', syncid: 0, maxlen: 0, group: '', port: 0, ttl: 0 }))).toBe('OK');
    expect(errno(t.addDest(KEY, dest('fd00::3', { ...v6, method: 'tunnel' })))).toBe('EINVAL');
  });
  it('table: a multicast or broadcast real server answers EINVAL', () => {
    const t = withService();
    expect(errno(t.addDest(KEY, dest('224.0.0.5')))).toBe('EINVAL');
    expect(errno(t.addDest(KEY, dest('255.255.255.255')))).toBe('EINVAL');
  });
  it('table: edit-dest and del-dest of a missing dest answer ENOENT; of a missing service ESRCH', () => {
    const t = withService();
    expect(errno(t.editDest(KEY, dest('192.168.0.1')))).toBe('ENOENT');
    expect(errno(t.delDest(KEY, dest('192.168.0.1')))).toBe('ENOENT');
    const other = { ...KEY, port: 99 };
    expect(errno(t.editDest(other, dest('192.168.0.1')))).toBe('ESRCH');
    expect(errno(t.delDest(other, dest('192.168.0.1')))).toBe('ESRCH');
  });
  it('table: new dests go to the head of the list; edit does not move; delete and re-add returns to the head', () => {
    const t = withService();
    for (const a of ['192.168.0.1', '192.168.0.2', '192.168.0.3']) t.addDest(KEY, dest(a));
    expect(order(t)).toEqual(['192.168.0.3', '192.168.0.2', '192.168.0.1']);
    t.editDest(KEY, dest('192.168.0.1', { weight: 9 }));
    expect(order(t)).toEqual(['192.168.0.3', '192.168.0.2', '192.168.0.1']);
    t.delDest(KEY, dest('192.168.0.1'));
    t.addDest(KEY, dest('192.168.0.1'));
    expect(order(t)).toEqual(['192.168.0.1', '192.168.0.3', '192.168.0.2']);
    expect(t.compiled().services[0].dests.map((d) => d.config.addr)).toEqual(order(t));
  });
  it('table: -e replaces the whole dest definition', () => {
    const t = withService();
    t.addDest(KEY, dest('192.168.0.1', { method: 'masq', weight: 7, uThreshold: 10, lThreshold: 5 }));
    t.editDest(KEY, dest('192.168.0.1'));
    expect(t.snapshot().services[0].dests[0]).toMatchObject({ method: 'route', weight: 1, uThreshold: 0, lThreshold: 0 });
  });
  it('table: lastWeight is set on add (even 0) and follows only non-zero weights on edit', () => {
    const t = withService({ scheduler: 'mh' });
    t.addDest(KEY, dest('192.168.0.1', { weight: 0 }));
    const last = (): number => t.compiled().services[0].dests[0].lastWeight;
    expect(last()).toBe(0);
    t.editDest(KEY, dest('192.168.0.1', { weight: 5 }));
    expect(last()).toBe(5);
    t.editDest(KEY, dest('192.168.0.1', { weight: 0 }));
    expect(last()).toBe(5);
    expect(t.snapshot().services[0].dests[0].weight).toBe(0);
    t.editDest(KEY, dest('192.168.0.1', { weight: 3 }));
    expect(last()).toBe(3);
  });
});

describe('table: thresholds', () => {
  function overloadedDest(u: number, l = 0): { t: IpvsTable; id: number; flag: () => boolean } {
    const t = withService();
    t.addDest(KEY, dest('192.168.0.1', { uThreshold: u, lThreshold: l }));
    const id = t.compiled().services[0].dests[0].id;
    expect(t.thresholdAfterBind(id, u)).toBe(true);
    return { t, id, flag: () => t.snapshot().services[0].dests[0].overloaded };
  }
  it('table: OVERLOAD is set when a bind reaches u_threshold, never without one', () => {
    const t = withService();
    t.addDest(KEY, dest('192.168.0.1', { uThreshold: 3 }));
    t.addDest(KEY, dest('192.168.0.2'));
    const [none, three] = t.compiled().services[0].dests.map((d) => d.id);
    expect(t.snapshot().services[0].dests[1].overloaded).toBe(false);
    expect(t.thresholdAfterBind(three, 2)).toBe(false);
    expect(t.thresholdAfterBind(none, 1_000_000)).toBe(false);
    const e = t.epoch;
    expect(t.thresholdAfterBind(three, 3)).toBe(true);
    expect(t.epoch).toBe(e + 1);
    expect(t.compiled().services[0].dests[1].overloaded).toBe(true);
    expect(t.thresholdAfterBind(three, 4)).toBe(false);
    expect(t.epoch).toBe(e + 1);
  });
  it('table: OVERLOAD clears below l_threshold, or below 75 % of u without one', () => {
    const a = overloadedDest(10, 4);
    expect(a.t.thresholdAfterUnbind(a.id, 4)).toBe(false);
    expect(a.t.thresholdAfterUnbind(a.id, 3)).toBe(true);
    expect(a.flag()).toBe(false);
    const b = overloadedDest(10);
    expect(b.t.thresholdAfterUnbind(b.id, 8)).toBe(false);
    expect(b.t.thresholdAfterUnbind(b.id, 7)).toBe(true);
  });
  it('table: on edit OVERLOAD clears only when the new u is 0 or larger than the old u', () => {
    const same = overloadedDest(10);
    same.t.editDest(KEY, dest('192.168.0.1', { uThreshold: 10, weight: 3 }));
    expect(same.flag()).toBe(true);
    same.t.editDest(KEY, dest('192.168.0.1', { uThreshold: 5 }));
    expect(same.flag()).toBe(true);
    same.t.editDest(KEY, dest('192.168.0.1', { uThreshold: 6 }));
    expect(same.flag()).toBe(false);
    const zero = overloadedDest(10);
    zero.t.editDest(KEY, dest('192.168.0.1', { uThreshold: 0 }));
    expect(zero.flag()).toBe(false);
  });
  it('table: a new dest starts without OVERLOAD', () => {
    const t = withService();
    t.addDest(KEY, dest('192.168.0.1', { uThreshold: 1 }));
    expect(t.snapshot().services[0].dests[0].overloaded).toBe(false);
  });
});

describe('table: epochs and compiled view', () => {
  it('table: every successful mutation bumps the epoch by one; failures and reads do not', () => {
    const t = new IpvsTable();
    expect(t.epoch).toBe(0);
    const steps: [() => TableResult, number][] = [
      [() => t.addService(svc()), 1],
      [() => t.addService(svc()), 1],
      [() => t.addDest(KEY, dest('192.168.0.1')), 2],
      [() => t.editDest(KEY, dest('192.168.0.1', { weight: 2 })), 3],
      [() => t.editDest(KEY, dest('192.168.0.2')), 3],
      [() => t.editService(svc({ scheduler: 'rr' })), 4],
      [() => t.zero(KEY), 5],
      [() => t.setTimeout({ tcp: 0, tcpfin: 0, udp: 0 }), 6],
      [() => t.delDest(KEY, dest('192.168.0.1')), 7],
      [() => t.apply({ op: 'del-dest', key: KEY, dest: dest('192.168.0.9') }), 7],
      [() => t.delService(KEY), 8],
      [() => t.flush(), 9],
    ];
    for (const [step, epoch] of steps) {
      step();
      expect(t.epoch).toBe(epoch);
    }
  });
  it('table: the compiled view is frozen, cached per epoch and replaced by a mutation', () => {
    const t = withService();
    t.addDest(KEY, dest('192.168.0.1'));
    const c = t.compiled();
    expect(c.epoch).toBe(2);
    expect(t.compiled()).toBe(c);
    expect(Object.isFrozen(c.services[0].dests[0].config)).toBe(true);
    expect(() => {
      (c.services as unknown as unknown[]).push(1);
    }).toThrow();
    t.addDest(KEY, dest('192.168.0.2'));
    expect(t.compiled()).not.toBe(c);
    expect(c.services[0].dests).toHaveLength(1);
  });
  it('table: snapshots are copies the caller may change', () => {
    const t = withService();
    t.snapshot().services[0].scheduler = 'rr';
    expect(t.snapshot().services[0].scheduler).toBe('wlc');
  });
});

describe('table: timeouts, daemons, zero', () => {
  it('table: set-timeout 0 leaves a value unchanged; out of range answers EINVAL', () => {
    const t = new IpvsTable();
    expect(t.snapshot().timeouts).toEqual({ tcp: 900, tcpfin: 120, udp: 300 });
    t.setTimeout({ tcp: 100, tcpfin: 0, udp: 50 });
    expect(t.snapshot().timeouts).toEqual({ tcp: 100, tcpfin: 120, udp: 50 });
    expect(errno(t.setTimeout({ tcp: -1, tcpfin: 0, udp: 0 }))).toBe('EINVAL');
    expect(errno(t.setTimeout({ tcp: 0, tcpfin: MAX_SET_TIMEOUT_S + 1, udp: 0 }))).toBe('EINVAL');
    expect(t.snapshot().timeouts).toEqual({ tcp: 100, tcpfin: 120, udp: 50 });
  });
  it('table: start-daemon twice in one state answers EEXIST; stop-daemon without one answers ESRCH', () => {
    const t = new IpvsTable();
    const d = { state: 'master' as const, mcastIfn: 'eth0', syncid: 1, maxlen: 0, group: '', port: 0, ttl: 0 };
    expect(errno(t.stopDaemon('master'))).toBe('ESRCH');
    expect(errno(t.startDaemon(d))).toBe('OK');
    expect(errno(t.startDaemon({ ...d, syncid: 2 }))).toBe('EEXIST');
    expect(errno(t.startDaemon({ ...d, state: 'backup' }))).toBe('OK');
    expect(t.snapshot().daemons.map((x) => x.state)).toEqual(['master', 'backup']);
    expect(errno(t.stopDaemon('master'))).toBe('OK');
    expect(errno(t.stopDaemon('master'))).toBe('ESRCH');
    expect(t.snapshot().daemons.map((x) => x.state)).toEqual(['backup']);
  });
  it('table: zero of a missing service answers ESRCH; zero of all always succeeds', () => {
    const t = new IpvsTable();
    expect(errno(t.zero(KEY))).toBe('ESRCH');
    expect(errno(t.zero())).toBe('OK');
  });
  it('table: counters come from the provider and -Z subtracts what was counted before it', () => {
    const live = new Map<number, DestCounters>();
    const svcStats = { conns: 10, inpkts: 100, outpkts: 90, inbytes: 1000, outbytes: 900 };
    const rate = { cps: 1, inpps: 2, outpps: 3, inbps: 4, outbps: 5 };
    const provider: CounterProvider = {
      service: (id) => (id === 1 ? { stats: { ...svcStats }, rate } : undefined),
      dest: (id) => live.get(id),
    };
    const t = new IpvsTable({ counters: provider });
    t.addService(svc());
    t.addDest(KEY, dest('192.168.0.1'));
    const id = t.compiled().services[0].dests[0].id;
    live.set(id, { activeConns: 3, inactConns: 4, persistConns: 1, stats: { ...svcStats }, rate });
    let s = t.snapshot().services[0];
    expect(s.stats).toEqual(svcStats);
    expect(s.rate).toEqual(rate);
    expect(s.dests[0]).toMatchObject({ activeConns: 3, inactConns: 4, persistConns: 1, stats: svcStats });
    t.zero();
    svcStats.conns = 12;
    live.set(id, { activeConns: 3, inactConns: 4, persistConns: 1, stats: { ...svcStats }, rate });
    s = t.snapshot().services[0];
    expect(s.stats).toEqual({ conns: 2, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0 });
    expect(s.dests[0].stats.conns).toBe(2);
    expect(s.dests[0].activeConns).toBe(3);
  });
});

describe('table: trash', () => {
  function setup(bound: Map<number, number>, now: { t: number }): IpvsTable {
    const t = new IpvsTable({ clock: () => now.t, boundConns: (id) => bound.get(id) ?? 0 });
    t.addService(svc());
    t.addDest(KEY, dest('192.168.0.1', { weight: 4 }));
    t.addDest(KEY, dest('192.168.0.2'));
    return t;
  }
  it('table: a deleted dest with connections waits in the trash and is revived, same id, at the head', () => {
    const bound = new Map<number, number>();
    const now = { t: 0 };
    const t = setup(bound, now);
    const id = t.compiled().services[0].dests[1].id;
    bound.set(id, 5);
    t.delDest(KEY, dest('192.168.0.1'));
    expect(t.trash()).toMatchObject([{ destId: id, idleSince: null }]);
    now.t = 10 * DEST_TRASH_PERIOD_MS;
    t.expireTrash();
    expect(t.trash()).toHaveLength(1);
    expect(errno(t.addDest(KEY, dest('192.168.0.1', { weight: 2 })))).toBe('OK');
    expect(t.trash()).toHaveLength(0);
    const d = t.compiled().services[0].dests[0];
    expect(d).toMatchObject({ id, lastWeight: 2 });
    expect(d.config.weight).toBe(2);
  });
  it('table: a trashed dest is freed once it has been idle for the trash period; re-adding then makes a new one', () => {
    const bound = new Map<number, number>();
    const now = { t: 1000 };
    const t = setup(bound, now);
    const id = t.compiled().services[0].dests[1].id;
    bound.set(id, 1);
    t.delDest(KEY, dest('192.168.0.1'));
    now.t = 5000;
    bound.set(id, 0);
    t.expireTrash();
    expect(t.trash()).toMatchObject([{ destId: id, idleSince: 5000 }]);
    now.t = 5000 + DEST_TRASH_PERIOD_MS - 1;
    t.expireTrash();
    expect(t.trash()).toHaveLength(1);
    now.t = 5000 + DEST_TRASH_PERIOD_MS;
    t.expireTrash();
    expect(t.trash()).toHaveLength(0);
    t.addDest(KEY, dest('192.168.0.1'));
    expect(t.compiled().services[0].dests[0].id).not.toBe(id);
  });
  it('table: a dest deleted without connections is revivable for the trash period, then gone', () => {
    const now = { t: 0 };
    const t = setup(new Map(), now);
    const id = t.compiled().services[0].dests[1].id;
    t.delDest(KEY, dest('192.168.0.1'));
    expect(t.trash()).toMatchObject([{ destId: id, idleSince: 0 }]);
    now.t = DEST_TRASH_PERIOD_MS - 1;
    t.addDest(KEY, dest('192.168.0.1'));
    expect(t.compiled().services[0].dests[0].id).toBe(id);
    t.delDest(KEY, dest('192.168.0.1'));
    now.t += DEST_TRASH_PERIOD_MS;
    t.addDest(KEY, dest('192.168.0.1'));
    expect(t.compiled().services[0].dests[0].id).not.toBe(id);
  });
  it('table: deleting a service trashes its dests; a re-created service revives them', () => {
    const now = { t: 0 };
    const t = setup(new Map(), now);
    const ids = t.compiled().services[0].dests.map((d) => d.id);
    t.delService(KEY);
    expect(t.trash().map((e) => e.destId).sort()).toEqual([...ids].sort());
    t.addService(svc());
    t.addDest(KEY, dest('192.168.0.2'));
    expect(t.compiled().services[0].dests[0].id).toBe(ids[0]);
    expect(t.trash()).toHaveLength(1);
  });
  it('table: a trashed dest is not revived into another service', () => {
    const t = setup(new Map(), { t: 0 });
    t.addService(svc({ port: 81 }));
    t.delDest(KEY, dest('192.168.0.1'));
    t.addDest({ ...KEY, port: 81 }, dest('192.168.0.1'));
    expect(t.trash()).toHaveLength(1);
  });
});
