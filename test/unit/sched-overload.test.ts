// sched: the -x/-y thresholds: where OVERLOAD is set and cleared on bind, unbind and edit (classic and 2026).
import { describe, expect, it } from 'vitest';
import { afterBind, afterUnbind, applyThresholds, lowerThresholdValue, overloadAt } from '../../shared/sched/overload.ts';
import { mulberry32 } from '../../shared/util/rng.ts';
import type { ThresholdDest } from '../../shared/sched/overload.ts';
import type { OverheadVariant } from '../../shared/sched/index.ts';

function td(u: number, l: number): ThresholdDest {
  return { uThreshold: u, lThreshold: l, activeConns: 0, inactConns: 0, overloaded: false };
}

/** Bind connections one by one up to `n`; returns the count at which OVERLOAD was first set (0 = never). */
function bindTo(d: ThresholdDest, n: number, v: OverheadVariant): number {
  let at = 0;
  while (d.activeConns + d.inactConns < n) {
    d.activeConns++;
    afterBind(d, v);
    if (d.overloaded && at === 0) at = d.activeConns + d.inactConns;
  }
  return at;
}

/** Unbind down to 0; returns the count at which OVERLOAD was cleared (-1 = never). */
function unbindAll(d: ThresholdDest, v: OverheadVariant): number {
  while (d.activeConns + d.inactConns > 0) {
    if (d.inactConns > 0) d.inactConns--;
    else d.activeConns--;
    afterUnbind(d, v);
    if (!d.overloaded) return d.activeConns + d.inactConns;
  }
  return -1;
}

describe('sched thresholds', () => {
  for (const v of ['classic', '2026'] as const) {
    it(`sched: ${v} u=10 sets OVERLOAD at 10 connections and clears it at 7 without l`, () => {
      const d = td(10, 0);
      expect(bindTo(d, 10, v)).toBe(10);
      expect(unbindAll(d, v)).toBe(7);
    });
    it(`sched: ${v} u=5 clears at 3; u=10 l=4 clears at 3 (below l)`, () => {
      const a = td(5, 0);
      bindTo(a, 5, v);
      expect(unbindAll(a, v)).toBe(3);
      const b = td(10, 4);
      bindTo(b, 10, v);
      expect(unbindAll(b, v)).toBe(3);
    });
    it(`sched: ${v} inactive connections count toward the thresholds`, () => {
      const d = td(3, 0);
      d.inactConns = 2;
      d.activeConns = 1;
      afterBind(d, v);
      expect(d.overloaded).toBe(true);
    });
  }
  it('sched: classic keeps setting OVERLOAD above u; no thresholds means unbind clears it', () => {
    const d = td(2, 0);
    d.activeConns = 5;
    afterBind(d, 'classic');
    expect(d.overloaded).toBe(true);
    const n = td(0, 0);
    n.overloaded = true;
    n.activeConns = 3;
    afterUnbind(n, 'classic');
    expect(n.overloaded).toBe(false);
  });
  it('sched: classic edit clears OVERLOAD when u becomes 0 or grows, not when it shrinks', () => {
    const d = td(10, 0);
    bindTo(d, 10, 'classic');
    applyThresholds(d, 8, 0, 'classic');
    expect(d.overloaded).toBe(true);
    applyThresholds(d, 9, 0, 'classic');
    expect(d.overloaded).toBe(false);
    expect(d.uThreshold).toBe(9);
    d.overloaded = true;
    applyThresholds(d, 0, 0, 'classic');
    expect(d.overloaded).toBe(false);
  });
  it('sched: 2026 edit recomputes: set at conns >= u, clear below the lower value, else unchanged', () => {
    const d = td(0, 0);
    d.activeConns = 8;
    applyThresholds(d, 8, 0, '2026');
    expect(d.overloaded).toBe(true);
    applyThresholds(d, 10, 0, '2026'); // 8 is neither >= 10 nor below the lower value 8: unchanged
    expect(d.overloaded).toBe(true);
    applyThresholds(d, 20, 0, '2026'); // lower 15 > 8: clear
    expect(d.overloaded).toBe(false);
    expect(lowerThresholdValue(10, 0)).toBe(8);
    expect(lowerThresholdValue(10, 4)).toBe(4);
  });
  it('sched: the engine\'s sampled rule (overloadAt) agrees with the classic bind/unbind events on random ±1 walks', () => {
    const r = mulberry32(0x7e5);
    for (let k = 0; k < 300; k++) {
      const u = Math.floor(r() * 12);
      const l = r() < 0.5 ? 0 : Math.floor(r() * (u + 1));
      const d = td(u, l);
      let sampled = false;
      for (let step = 0; step < 200; step++) {
        if (r() < 0.55 || d.activeConns === 0) {
          d.activeConns++;
          afterBind(d, 'classic');
        } else {
          d.activeConns--;
          afterUnbind(d, 'classic');
        }
        sampled = overloadAt(sampled, d.activeConns, u, l);
        expect(sampled, `u=${u} l=${l} step ${step} conns ${d.activeConns}`).toBe(d.overloaded && u !== 0);
      }
    }
  });
});
