// health machine: keepalived's checker semantics, rise/fall extensions, and virtual-server actions, tick by tick;
// and the receiving side's table.
import { describe, expect, it } from 'vitest';
import { readKeepalivedConfig } from '../../shared/keepalived/index.ts';
import { healthPlan } from '../../shared/health/plan.ts';
import type { HealthEffect, HealthState } from '../../shared/health/machine.ts';
import { HealthTable } from '../../shared/health/table.ts';
import { checkResult, dueChecks, healthStatus, healthView, nextDueAt, reloadHealth, shutdownHealth, startHealth } from '../../shared/health/machine.ts';

const plan = (text: string) => healthPlan(readKeepalivedConfig('k.conf', text));
const zero = () => 0;

function vs(body: string, rs: string): string {
  return `virtual_server 10.0.0.1 80 {\n protocol TCP\n lb_algo rr\n lb_kind NAT\n${body}\n${rs}\n}\n`;
}
function rsBlock(addr: string, inner: string, extra = ''): string {
  return ` real_server ${addr} 80 {\n${extra}\n  ${inner}\n }`;
}

/** Runs every due check at `now` and answers each with `ok(checkerId)`; returns the effects. */
function step(s: HealthState, now: number, ok: (id: string) => boolean | { ok: boolean; weight?: number | null }): HealthEffect[] {
  const out: HealthEffect[] = [];
  for (const e of dueChecks(s, now)) {
    if (e.type !== 'run') continue;
    const r = ok(e.checkerId);
    const res = typeof r === 'boolean' ? { ok: r } : r;
    out.push(...checkResult(s, { checkerId: e.checkerId, seq: e.seq, ok: res.ok, error: res.ok ? null : 'refused', weight: res.weight, durationMs: 0 }, now));
  }
  return out;
}

function table(s: HealthState): string[] {
  return healthView(s).virtualServers.flatMap((v) => v.dests.map((d) => `${d.addr}:${d.port} w${d.weight}`)).sort();
}

function changes(fx: HealthEffect[]): string[] {
  return fx.flatMap((e) => (e.type === 'change' ? [`${e.key.addr} ${e.dest ? `w${e.dest.weight}` : 'del'}`] : []));
}

describe('health machine', () => {
  it('health: startup table is keepalived\'s startup adds; first runs at min(1 s, delay_loop) + warmup × rand', () => {
    const p = plan(vs(' delay_loop 2', rsBlock('10.0.0.2', 'TCP_CHECK {\n warmup 4\n }') + '\n' + rsBlock('10.0.0.3', 'TCP_CHECK {\n warmup 0\n }')));
    const { state, effects } = startHealth(p, 10_000, () => 0.5);
    expect(changes(effects)).toEqual(['10.0.0.2 w1', '10.0.0.3 w1']);
    expect([...state.checkers.values()].map((c) => c.nextAt)).toEqual([10_000 + 1000 + 2000, 10_000 + 1000]);
    const sub = startHealth(plan(vs(' delay_loop 0.2', rsBlock('10.0.0.2', 'TCP_CHECK {\n warmup 0\n }'))), 0, zero).state;
    expect(nextDueAt(sub)).toBe(200);
  });

  it('health: keepalived semantics — first failure marks down at once, then retry × delay_before_retry while up', () => {
    const p = plan(vs(' delay_loop 6', rsBlock('10.0.0.2', 'TCP_CHECK {\n retry 2\n delay_before_retry 1\n warmup 0\n }')));
    const { state: s } = startHealth(p, 0, zero);
    let t = nextDueAt(s);
    expect(t).toBe(1000);
    expect(changes(step(s, t, () => false))).toEqual(['10.0.0.2 del']);
    t = nextDueAt(s);
    expect(t).toBe(7000); // down: next in delay_loop
    expect(changes(step(s, t, () => true))).toEqual(['10.0.0.2 w1']); // one success brings it back
    t = nextDueAt(s);
    expect(t).toBe(13_000);
    expect(changes(step(s, t, () => false))).toEqual([]); // retry 1 of 2
    expect(nextDueAt(s)).toBe(14_000);
    expect(changes(step(s, 14_000, () => false))).toEqual([]); // retry 2 of 2
    expect(changes(step(s, 15_000, () => false))).toEqual(['10.0.0.2 del']);
    expect(nextDueAt(s)).toBe(21_000);
    const st = healthStatus(s)[0].realServers[0];
    expect(st.checkers[0]).toMatchObject({ state: 'down', failInRow: 3, okInRow: 0, lastError: 'refused', lastChange: 15_000 });
  });

  it('health: cumulative counters — checks, failures, up and down transitions — survive a reload that keeps the checker', () => {
    const text = vs(' delay_loop 1', rsBlock('10.0.0.2', 'TCP_CHECK {\n retry 0\n warmup 0\n }'));
    const { state: s } = startHealth(plan(text), 0, zero);
    const answers = [true, false, false, true, false, true];
    let t = 0;
    for (const ok of answers) step(s, (t = nextDueAt(s)), () => ok);
    const vsSt = healthStatus(s)[0];
    expect(vsSt.services).toEqual([{ af: 4, protocol: 'tcp', addr: '10.0.0.1', port: 80, fwmark: 0 }]);
    const rs = vsSt.realServers[0];
    expect(rs).toMatchObject({ alive: true, ups: 2, downs: 2 });
    expect(rs.checkers[0]).toMatchObject({ checks: 6, failures: 3 });
    const r = reloadHealth(s, plan(text), t, zero).state;
    expect(healthStatus(r)[0].realServers[0]).toMatchObject({ ups: 2, downs: 2, checkers: [expect.objectContaining({ checks: 6, failures: 3 })] });
  });

  it('health: a success while retrying resets the retries', () => {
    const { state: s } = startHealth(plan(vs(' delay_loop 1', rsBlock('10.0.0.2', 'TCP_CHECK {\n retry 1\n delay_before_retry 0.5\n warmup 0\n }'))), 0, zero);
    step(s, 1000, () => true);
    step(s, 2000, () => false);
    step(s, 2500, () => true);
    expect(changes(step(s, 3500, () => false))).toEqual([]);
    expect(changes(step(s, 4000, () => false))).toEqual(['10.0.0.2 del']);
  });

  it('health: alpha starts down (not in the table, weight 0 with inhibit_on_failure) until a success', () => {
    const p = plan(vs(' alpha\n delay_loop 1', rsBlock('10.0.0.2', 'TCP_CHECK {\n warmup 0\n }') + '\n' + rsBlock('10.0.0.3', 'TCP_CHECK {\n warmup 0\n }', '  inhibit_on_failure')));
    const { state: s, effects } = startHealth(p, 0, zero);
    expect(changes(effects)).toEqual(['10.0.0.3 w0']);
    expect(changes(step(s, 1000, () => true))).toEqual(['10.0.0.2 w1', '10.0.0.3 w1']);
  });

  it('health: inhibit_on_failure keeps a failed server listed at weight 0 and restores its weight', () => {
    const { state: s } = startHealth(plan(vs(' inhibit_on_failure\n delay_loop 1', rsBlock('10.0.0.2', 'TCP_CHECK {\n warmup 0\n }', '  weight 5'))), 0, zero);
    expect(changes(step(s, 1000, () => false))).toEqual(['10.0.0.2 w0']);
    expect(table(s)).toEqual(['10.0.0.2:80 w0']);
    expect(changes(step(s, 2000, () => true))).toEqual(['10.0.0.2 w5']);
  });

  it('health: rise/fall — a server flapping every check never flips; fall failures in a row take it down at fastinter', () => {
    const p = plan(vs(' delay_loop 0.2', rsBlock('10.0.0.2', 'TCP_CHECK {\n warmup 0\n rise 3\n fall 2\n fastinter 0.1\n downinter 1\n }')));
    const { state: s } = startHealth(p, 0, zero);
    let t = nextDueAt(s);
    const fx: HealthEffect[] = [];
    for (let i = 0; i < 21; i++) {
      fx.push(...step(s, t, () => i % 2 === 0));
      t = nextDueAt(s);
    }
    expect(changes(fx)).toEqual([]);
    // now two failures in a row: the first arms fastinter (100 ms), the second takes it down
    const t1 = nextDueAt(s);
    step(s, t1, () => false);
    const t2 = nextDueAt(s);
    expect(t2 - t1).toBe(100);
    expect(changes(step(s, t2, () => false))).toEqual(['10.0.0.2 del']);
    // down: downinter (1 s) between checks; while rising, fastinter
    const t3 = nextDueAt(s);
    expect(t3 - t2).toBe(1000);
    expect(changes(step(s, t3, () => true))).toEqual([]);
    const t4 = nextDueAt(s);
    expect(t4 - t3).toBe(100);
    expect(changes(step(s, t4, () => true))).toEqual([]);
    expect(changes(step(s, nextDueAt(s), () => true))).toEqual(['10.0.0.2 w1']);
  });

  it('health: fall defaults to retry + 1 in extended mode and applies from the start', () => {
    const { state: s } = startHealth(plan(vs(' delay_loop 1', rsBlock('10.0.0.2', 'TCP_CHECK {\n warmup 0\n retry 2\n rise 2\n }'))), 0, zero);
    expect(changes(step(s, 1000, () => false))).toEqual([]);
    expect(changes(step(s, nextDueAt(s), () => false))).toEqual([]);
    expect(changes(step(s, nextDueAt(s), () => false))).toEqual(['10.0.0.2 del']);
  });

  it('health: a real server is alive only when all its checkers are up', () => {
    const p = plan(vs(' delay_loop 1', rsBlock('10.0.0.2', 'TCP_CHECK {\n warmup 0\n retry 0\n }\n  HTTP_GET {\n warmup 0\n url {\n path /\n }\n }')));
    const { state: s } = startHealth(p, 0, zero);
    expect(changes(step(s, 1000, (id) => !id.includes('HTTP_GET')))).toEqual(['10.0.0.2 del']);
    expect(changes(step(s, 2000, (id) => !id.includes('TCP_CHECK')))).toEqual([]);
    expect(changes(step(s, 3000, () => true))).toEqual(['10.0.0.2 w1']);
  });

  it('health: misc_dynamic exit status sets the weight (status − 2); exit 0 restores the configured weight', () => {
    const p = plan(vs(' delay_loop 1', rsBlock('10.0.0.2', 'MISC_CHECK {\n misc_path "/bin/check"\n misc_dynamic\n warmup 0\n }', '  weight 3')));
    const { state: s } = startHealth(p, 0, zero);
    expect(changes(step(s, 1000, () => ({ ok: true, weight: 7 })))).toEqual(['10.0.0.2 w7']);
    expect(changes(step(s, 2000, () => ({ ok: true, weight: 7 })))).toEqual([]);
    expect(table(s)).toEqual(['10.0.0.2:80 w7']);
    expect(changes(step(s, 3000, () => ({ ok: false })))).toEqual(['10.0.0.2 del']);
    expect(changes(step(s, 4000, () => ({ ok: true, weight: 4 })))).toEqual(['10.0.0.2 w4']);
    expect(changes(step(s, 5000, () => ({ ok: true, weight: null })))).toEqual(['10.0.0.2 w3']);
  });

  it("health: keepalived's quorum sample — quorum 7, hysteresis 2, ten servers: lost below 5, gained at 9; sorry server stands in", () => {
    const rss = Array.from({ length: 10 }, (_, i) => rsBlock(`10.0.0.${10 + i}`, 'TCP_CHECK {\n warmup 0\n retry 0\n }')).join('\n');
    const p = plan(vs(' delay_loop 1\n quorum 7\n hysteresis 2\n quorum_up "/bin/up"\n quorum_down "/bin/down"\n sorry_server 10.0.0.99 80', rss));
    const { state: s } = startHealth(p, 0, zero);
    const alive = new Set(Array.from({ length: 10 }, (_, i) => `10.0.0.${10 + i}`));
    const ok = (id: string) => [...alive].some((a) => id.includes(`${a}:80 `));
    const kill = (n: number) => { for (const a of [...alive].slice(0, n)) alive.delete(a); };
    let t = 1000;
    step(s, t, ok);
    kill(4); // 6 alive: 6 >= 7-2, quorum holds
    let fx = step(s, (t += 1000), ok);
    expect(changes(fx)).toEqual(['10.0.0.10 del', '10.0.0.11 del', '10.0.0.12 del', '10.0.0.13 del']);
    expect(healthStatus(s)[0].quorumUp).toBe(true);
    kill(2); // 4 alive < 5: lost; the sorry server replaces the live ones
    fx = step(s, (t += 1000), ok);
    expect(fx.filter((e) => e.type === 'notify')).toEqual([{ type: 'notify', script: '/bin/down', event: 'quorum_down', vsId: 'tcp 10.0.0.1:80', rsId: null }]);
    expect(table(s)).toEqual(['10.0.0.99:80 w1']);
    for (const a of ['10.0.0.10', '10.0.0.11', '10.0.0.12', '10.0.0.13']) alive.add(a); // 8 alive: not yet 9
    fx = step(s, (t += 1000), ok);
    expect(changes(fx)).toEqual([]);
    alive.add('10.0.0.14'); // 9 alive: gained
    fx = step(s, (t += 1000), ok);
    expect(fx.filter((e) => e.type === 'notify').map((e) => (e.type === 'notify' ? e.event : ''))).toEqual(['quorum_up']);
    expect(table(s)).toHaveLength(9);
    expect(table(s)).not.toContain('10.0.0.99:80 w1');
  });

  it('health: without a sorry server, losing quorum only runs quorum_down; sorry_server_inhibit keeps it at weight 0', () => {
    const p1 = plan(vs(' delay_loop 1\n quorum 2\n quorum_down "/bin/down"', rsBlock('10.0.0.2', 'TCP_CHECK {\n warmup 0\n }') + '\n' + rsBlock('10.0.0.3', 'TCP_CHECK {\n warmup 0\n }')));
    const { state: s1 } = startHealth(p1, 0, zero);
    const fx = step(s1, 1000, (id) => id.includes('10.0.0.2'));
    expect(changes(fx)).toEqual(['10.0.0.3 del']);
    expect(fx.some((e) => e.type === 'notify' && e.event === 'quorum_down')).toBe(true);
    expect(table(s1)).toEqual(['10.0.0.2:80 w1']);
    const p2 = plan(vs(' delay_loop 1\n sorry_server 10.0.0.99 80\n sorry_server_inhibit', rsBlock('10.0.0.2', 'TCP_CHECK {\n warmup 0\n }')));
    const { state: s2, effects } = startHealth(p2, 0, zero);
    expect(changes(effects)).toEqual(['10.0.0.2 w1', '10.0.0.99 w0']);
    expect(changes(step(s2, 1000, () => false))).toEqual(['10.0.0.2 del', '10.0.0.99 w1']);
    expect(changes(step(s2, 2000, () => true))).toEqual(['10.0.0.2 w1', '10.0.0.99 w0']);
  });

  it('health: notify_up / notify_down on real server transitions; omega runs down scripts at shutdown', () => {
    const p = plan(vs(' delay_loop 1\n omega\n quorum_down "/bin/qd"', rsBlock('10.0.0.2', 'TCP_CHECK {\n warmup 0\n }', '  notify_up "/bin/nu a"\n  notify_down "/bin/nd a"')));
    const { state: s } = startHealth(p, 0, zero);
    const notes = (fx: HealthEffect[]) => fx.flatMap((e) => (e.type === 'notify' ? [`${e.event} ${e.script}`] : []));
    expect(notes(step(s, 1000, () => false))).toEqual(['down /bin/nd a', 'quorum_down /bin/qd']);
    expect(notes(step(s, 2000, () => true))).toEqual(['up /bin/nu a']);
    expect(notes(shutdownHealth(s))).toEqual(['down /bin/nd a', 'quorum_down /bin/qd']);
  });

  it('health: a stale result (other seq, or a checker removed by reload) changes nothing', () => {
    const { state: s } = startHealth(plan(vs(' delay_loop 1', rsBlock('10.0.0.2', 'TCP_CHECK {\n warmup 0\n }'))), 0, zero);
    const [run] = dueChecks(s, 1000);
    expect(run.type).toBe('run');
    const id = run.type === 'run' ? run.checkerId : '';
    expect(checkResult(s, { checkerId: id, seq: 999, ok: false, error: 'x', durationMs: 1 }, 1001)).toEqual([]);
    expect(checkResult(s, { checkerId: 'nope', seq: 1, ok: false, error: 'x', durationMs: 1 }, 1001)).toEqual([]);
    expect(dueChecks(s, 5000)).toEqual([]); // still running: not started twice
  });

  it('health: reload keeps unchanged checkers\' state and only pushes what changes', () => {
    const two = rsBlock('10.0.0.2', 'TCP_CHECK {\n warmup 0\n }') + '\n' + rsBlock('10.0.0.3', 'TCP_CHECK {\n warmup 0\n }');
    const { state: s } = startHealth(plan(vs(' delay_loop 1', two)), 0, zero);
    step(s, 1000, (id) => id.includes('10.0.0.2'));
    expect(table(s)).toEqual(['10.0.0.2:80 w1']);
    // same servers, one more added, 10.0.0.2's weight edited: 10.0.0.3 stays down, 10.0.0.2 keeps its counts
    const edited = rsBlock('10.0.0.2', 'TCP_CHECK {\n warmup 0\n }', '  weight 4') + '\n' + rsBlock('10.0.0.3', 'TCP_CHECK {\n warmup 0\n }') + '\n' + rsBlock('10.0.0.4', 'TCP_CHECK {\n warmup 0\n }');
    const r = reloadHealth(s, plan(vs(' delay_loop 1', edited)), 1500, zero);
    expect(changes(r.effects)).toEqual(['10.0.0.2 w4', '10.0.0.4 w1']);
    const st = healthStatus(r.state)[0].realServers;
    expect(st.map((x) => [x.rs.split(' -> ')[1], x.alive, x.checkers[0].okInRow])).toEqual([['10.0.0.2:80', true, 1], ['10.0.0.3:80', false, 0], ['10.0.0.4:80', true, 0]]);
    expect(r.state.checkers.get('tcp 10.0.0.1:80 -> 10.0.0.3:80 TCP_CHECK#1')?.nextAt).toBe(2000);
    // a changed checker starts afresh; a removed virtual server's dests are removed
    const r2 = reloadHealth(r.state, plan('virtual_server 10.0.0.5 80 {\n protocol TCP\n lb_algo rr\n lb_kind NAT\n' + rsBlock('10.0.0.2', 'TCP_CHECK {\n warmup 0\n }') + '\n}\n'), 1600, zero);
    expect(changes(r2.effects)).toEqual(['10.0.0.2 del', '10.0.0.4 del', '10.0.0.2 w1']);
  });

  it('health: the view names every service of a group', () => {
    const p = plan('virtual_server_group G {\n 10.0.0.1-2 80\n fwmark 3\n}\nvirtual_server group G {\n protocol TCP\n lb_algo rr\n lb_kind NAT\n real_server 10.0.1.1 80 {\n }\n}\n');
    const { state: s } = startHealth(p, 0, zero);
    const v = healthView(s).virtualServers[0];
    expect(v.services.map((k) => (k.fwmark ? `fwm ${k.fwmark}` : `${k.addr}:${k.port}`))).toEqual(['10.0.0.1:80', '10.0.0.2:80', 'fwm 3']);
    expect(v.dests.map((d) => d.addr)).toEqual(['10.0.1.1']);
    expect(nextDueAt(s)).toBe(Infinity);
  });
});

describe('health table (the receiving side)', () => {
  it('health table: folds ready and transitions per IPVS service; a gap asks for a resync; destUp for up/down consumers', () => {
    const p = plan(vs(' delay_loop 1\n inhibit_on_failure', rsBlock('10.0.0.2', 'TCP_CHECK {\n warmup 0\n }') + '\n' + rsBlock('10.0.0.3', 'TCP_CHECK {\n warmup 0\n }')));
    const { state: s } = startHealth(p, 0, zero);
    const t = new HealthTable();
    t.reset(healthView(s), 1);
    const key = 'tcp|4|10.0.0.1|80';
    expect(t.dests(key)?.map((d) => `${d.addr} w${d.weight}`)).toEqual(['10.0.0.2 w1', '10.0.0.3 w1']);
    const fx = step(s, 1000, (id) => id.includes('10.0.0.2'));
    const batch = fx.flatMap((e) => (e.type === 'change' ? [{ vsId: e.vsId, services: [...e.services], key: e.key, dest: e.dest }] : []));
    expect(t.apply(1, 2, batch)).toBe('resync');
    expect(t.apply(1, 1, batch)).toBe('applied');
    expect(t.apply(1, 1, batch)).toBe('stale');
    expect(t.weight(key, { af: 4, addr: '10.0.0.3', port: 80 })).toBe(0);
    expect(t.destUp(key, { ...p.realServers[1].dest })).toBe(false);
    expect(t.destUp(key, { ...p.realServers[0].dest })).toBe(true);
    expect(t.destUp('tcp|4|10.9.9.9|80', { ...p.realServers[0].dest })).toBe(true);
    expect(t.weight(key, { af: 4, addr: '10.0.0.9', port: 80 })).toBeNull();
  });
});
