// sched: lblc and lblcr: the destination cache, the "half load" overload rule, set compaction and the GC ticks.
import { describe, expect, it } from 'vitest';
import { createScheduler, GC_INTERVAL_MS } from '../../shared/sched/index.ts';
import type { DestView } from '../../shared/sched/index.ts';
import { LBLC_MAX_SIZE, Lblc, Lblcr, lblcOverloaded } from '../../shared/sched/lblc.ts';
import { dest, dests, pkt, renumber } from '../support/sched.ts';

const MIN = 60_000;

function lblc(ds: DestView[], opts: { expirationMs?: number; overhead?: '2026' } = {}): Lblc {
  const s = createScheduler('lblc', { flags: 0, ...opts }) as Lblc;
  s.update(ds, { kind: 'init' });
  return s;
}
function lblcr(ds: DestView[], expirationMs?: number): Lblcr {
  const s = createScheduler('lblcr', { flags: 0, expirationMs }) as Lblcr;
  s.update(ds, { kind: 'init' });
  return s;
}

describe('sched lblc', () => {
  it('sched: lblc overload rule needs active > weight and some dest below half load', () => {
    const ds = [dest(0, 1, { activeConns: 2 }), dest(1, 2, { activeConns: 1 })];
    expect(lblcOverloaded(ds[0], ds)).toBe(false); // B: 1*2 < 2 is false
    ds[1].activeConns = 0;
    expect(lblcOverloaded(ds[0], ds)).toBe(true);
    ds[0].activeConns = 1; // not above its weight
    expect(lblcOverloaded(ds[0], ds)).toBe(false);
  });
  it('sched: lblc keeps a destination address on its cached server while it is not overloaded', () => {
    const ds = dests([1, 1]);
    const s = lblc(ds);
    const p = pkt({ daddr: 0xc6336401 });
    expect(s.schedule(ds, p, 0)).toBe(0); // wlc tie -> A
    ds[0].activeConns = 1; // wlc alone would now pick B
    expect(s.schedule(ds, p, 1)).toBe(0);
    expect(s.schedule(ds, pkt({ daddr: 0xc6336402 }), 2)).toBe(1); // another address: wlc
  });
  it('sched: lblc re-schedules when the cached dest is over weight and another is at half load', () => {
    const ds = dests([1, 1]);
    const s = lblc(ds);
    const p = pkt({ daddr: 5 });
    expect(s.schedule(ds, p, 0)).toBe(0);
    ds[0].activeConns = 2; // > weight 1; B has 0*2 < 1
    expect(s.schedule(ds, p, 1)).toBe(1);
    expect(s.cached(5)).toBe(ds[1]);
  });
  it('sched: lblc keeps an over-weight cached dest when no dest is below half load', () => {
    const ds = [dest(0, 1), dest(1, 2)];
    const s = lblc(ds);
    const p = pkt({ daddr: 5 });
    expect(s.schedule(ds, p, 0)).toBe(0);
    ds[0].activeConns = 3;
    ds[1].activeConns = 1; // 2 < 2 false
    expect(s.schedule(ds, p, 1)).toBe(0);
  });
  it('sched: lblc ignores a cached dest that was deleted, quiesced or is not available', () => {
    const ds = dests([1, 1]);
    const s = lblc(ds);
    const p = pkt({ daddr: 9 });
    expect(s.schedule(ds, p, 0)).toBe(0);
    const gone = ds[0];
    gone.available = false;
    const after = renumber([ds[1]]);
    s.update(after, { kind: 'del', at: 0 });
    expect(s.schedule(after, p, 1)).toBe(0);
    expect(s.cached(9)).toBe(after[0]);
  });
  it('sched: lblc GC drops idle entries only on the 30th tick (full check at the expiration)', () => {
    const ds = dests([1]);
    const s = lblc(ds, { expirationMs: 10 * MIN });
    s.schedule(ds, pkt({ daddr: 1 }), 0);
    for (let t = 1; t <= 29; t++) {
      s.gc(t * GC_INTERVAL_MS);
      expect(s.size, `tick ${t}`).toBe(1);
    }
    s.gc(30 * GC_INTERVAL_MS);
    expect(s.size).toBe(0);
  });
  it('sched: lblc default expiration (24 h) keeps a 30-minute idle entry', () => {
    const ds = dests([1]);
    const s = lblc(ds);
    s.schedule(ds, pkt({ daddr: 1 }), 0);
    for (let t = 1; t <= 30; t++) s.gc(t * GC_INTERVAL_MS);
    expect(s.size).toBe(1);
  });
  it('sched: lblc over max size drops entries idle for 6 min, up to its goal, and keeps fresh ones', () => {
    const ds = dests([1]);
    const s = lblc(ds);
    const old = LBLC_MAX_SIZE + 3700;
    for (let i = 0; i < old; i++) s.schedule(ds, pkt({ daddr: 0x0a000000 + i }), 0);
    for (let i = 0; i < 100; i++) s.schedule(ds, pkt({ daddr: 0x0b000000 + i }), 6.5 * MIN);
    const total = old + 100;
    expect(s.size).toBe(total);
    const goal = Math.min(Math.trunc(((total - LBLC_MAX_SIZE) * 4) / 3), LBLC_MAX_SIZE / 2);
    s.gc(7 * MIN);
    const removed = total - s.size;
    expect(removed).toBeGreaterThanOrEqual(goal);
    expect(removed).toBeLessThan(goal + 200); // stops after the bucket that reached the goal
    for (let i = 0; i < 100; i++) expect(s.cached(0x0b000000 + i)).toBe(ds[0]);
  });
  it('sched: lblc 2026 caps the cache at 1.5 × max size; classic does not', () => {
    const ds = dests([1]);
    const capped = lblc(ds, { overhead: '2026' });
    const classic = lblc(ds);
    const n = (LBLC_MAX_SIZE * 3) / 2 + 10;
    for (let i = 0; i < n; i++) {
      expect(capped.schedule(ds, pkt({ daddr: i }), 0)).toBe(0);
      classic.schedule(ds, pkt({ daddr: i }), 0);
    }
    expect(capped.size).toBe((LBLC_MAX_SIZE * 3) / 2);
    expect(classic.size).toBe(n);
  });
});

describe('sched lblcr', () => {
  it('sched: lblcr adds a server to the set when the member is overloaded, then uses the set minimum', () => {
    const ds = dests([1, 1]);
    const s = lblcr(ds);
    const p = pkt({ daddr: 3 });
    expect(s.schedule(ds, p, 0)).toBe(0);
    ds[0].activeConns = 2;
    expect(s.schedule(ds, p, 1)).toBe(1);
    expect(s.cachedSet(3)).toEqual([ds[1], ds[0]]);
    ds[1].activeConns = 1;
    ds[0].activeConns = 1;
    expect(s.schedule(ds, p, 2)).toBe(1); // set min: tie -> set head (B)
  });
  it('sched: lblcr compaction drops the weighted most-loaded member once per expiration period', () => {
    const ds = dests([1, 1, 1]);
    const s = lblcr(ds, 1000);
    const p = pkt({ daddr: 3 });
    s.schedule(ds, p, 0); // {A}
    ds[0].activeConns = 5;
    s.schedule(ds, p, 10); // A overloaded (B, C idle): add B -> {B, A}
    ds[1].activeConns = 5;
    s.schedule(ds, p, 20); // min is B (tie, head first), overloaded: add C -> {C, B, A}, lastmod 20
    expect(s.cachedSet(3)).toEqual([ds[2], ds[1], ds[0]]);
    ds[0].activeConns = 9; // A is the most loaded
    ds[1].activeConns = 1;
    expect(s.schedule(ds, p, 1020)).toBe(2); // not yet: now must be > lastmod + expiration
    expect(s.cachedSet(3)).toHaveLength(3);
    expect(s.schedule(ds, p, 1021)).toBe(2);
    expect(s.cachedSet(3)).toEqual([ds[2], ds[1]]);
    expect(s.schedule(ds, p, 1022)).toBe(2); // lastmod was reset: no second removal
    expect(s.cachedSet(3)).toHaveLength(2);
    expect(s.schedule(ds, p, 2022)).toBe(2);
    expect(s.cachedSet(3)).toEqual([ds[2]]);
  });
  it('sched: lblcr set minimum skips unavailable and overloaded members', () => {
    const ds = dests([1, 1]);
    const s = lblcr(ds);
    const p = pkt({ daddr: 4 });
    s.schedule(ds, p, 0);
    ds[0].activeConns = 2;
    s.schedule(ds, p, 1); // {B, A}
    ds[0].activeConns = 0;
    ds[1].activeConns = 0;
    ds[1].overloaded = true;
    expect(s.schedule(ds, p, 2)).toBe(0);
  });
  it('sched: lblcr GC follows lblc (full expiration on the 30th tick)', () => {
    const ds = dests([1]);
    const s = lblcr(ds, 5 * MIN);
    s.schedule(ds, pkt({ daddr: 1 }), 0);
    for (let t = 1; t <= 29; t++) s.gc(t * GC_INTERVAL_MS);
    expect(s.size).toBe(1);
    s.gc(30 * GC_INTERVAL_MS);
    expect(s.size).toBe(0);
    expect(s.schedule(ds, pkt({ daddr: 1 }), 31 * MIN)).toBe(0);
    expect(s.size).toBe(1);
  });
});
