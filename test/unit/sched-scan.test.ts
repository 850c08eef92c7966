// sched: the list-scanning schedulers (rr wrr lc wlc sed nq fo ovf twos) against hand-computed kernel cases.
import { describe, expect, it } from 'vitest';
import { createScheduler, NO_DEST, NO_DEST_OVERLOADED } from '../../shared/sched/index.ts';
import type { DestView, Scheduler } from '../../shared/sched/index.ts';
import { dest, dests, mulberry32, picks, pkt, renumber, scriptedRng } from '../support/sched.ts';
import { gcd } from '../../shared/util/math.ts';

function make(name: string, ds: DestView[], opts: Parameters<typeof createScheduler>[1] = { flags: 0 }): Scheduler {
  const s = createScheduler(name, opts);
  if (!s) throw new Error(`no scheduler ${name}`);
  s.update(ds, { kind: 'init' });
  return s;
}

describe('sched rr', () => {
  it('sched: rr cycles in list order and skips weight 0 and overloaded dests', () => {
    const ds = dests([1, 0, 1, 1]);
    ds[2].overloaded = true;
    expect(picks(make('rr', ds), ds, 6)).toBe('ADADAD');
  });
  it('sched: rr returns -1 when nothing is eligible', () => {
    const ds = dests([0, 0]);
    expect(picks(make('rr', ds), ds, 2)).toBe('--');
  });
  it('sched: rr deleting the saved dest moves the pointer to its predecessor', () => {
    const ds = dests([1, 1, 1]);
    const s = make('rr', ds);
    expect(picks(s, ds, 2)).toBe('AB');
    const [a, , c] = ds;
    const after = renumber([a, c]);
    s.update(after, { kind: 'del', at: 1 });
    // The pointer is now A, so the deleted dest's successor C comes next.
    expect(s.schedule(after, pkt(), 0)).toBe(1);
    expect(s.schedule(after, pkt(), 0)).toBe(0);
  });
  it('sched: rr adding at the head keeps the pointer on the same dest', () => {
    const ds = dests([1, 1, 1]);
    const s = make('rr', ds);
    expect(picks(s, ds, 1)).toBe('A');
    const x = dest(0, 1);
    const after = renumber([x, ...ds]);
    s.update(after, { kind: 'add', at: 0 });
    // Pointer stays on old A (now position 1): next is old B at position 2, then C, then X at the head.
    expect(picks(s, after, 4)).toBe('CDAB');
  });
});

describe('sched wrr', () => {
  it('sched: wrr [4,3,2] gives A A B A B C A B C repeating', () => {
    const ds = dests([4, 3, 2]);
    expect(picks(make('wrr', ds), ds, 18)).toBe('AABABCABC'.repeat(2));
  });
  it('sched: wrr [5,1,1] gives AAAAABC repeating', () => {
    const ds = dests([5, 1, 1]);
    expect(picks(make('wrr', ds), ds, 14)).toBe('AAAAABC'.repeat(2));
  });
  it('sched: wrr [2,4] (gcd 2, mw 3) gives B A B repeating', () => {
    const ds = dests([2, 4]);
    expect(picks(make('wrr', ds), ds, 9)).toBe('BAB'.repeat(3));
  });
  it('sched: wrr 3:1 gives three then one', () => {
    const ds = dests([3, 1]);
    expect(picks(make('wrr', ds), ds, 8)).toBe('AAABAAAB');
  });
  it('sched: wrr skips overloaded dests and reports all-overloaded after a full pass', () => {
    const ds = dests([2, 1]);
    const s = make('wrr', ds);
    ds[0].overloaded = true;
    expect(picks(s, ds, 3)).toBe('BBB');
    ds[1].overloaded = true;
    expect(s.schedule(ds, pkt(), 0)).toBe(-1);
    expect(s.noDestReason).toBe(NO_DEST_OVERLOADED);
  });
  it('sched: wrr with every weight 0 has mw 0: no destination', () => {
    const ds = dests([0, 0]);
    const s = make('wrr', ds);
    expect(s.schedule(ds, pkt(), 0)).toBe(-1);
    expect(s.noDestReason).toBe(NO_DEST);
  });
  it('sched: wrr update resets the position to the head and keeps cw when it still fits', () => {
    const ds = dests([4, 3, 2]);
    const s = make('wrr', ds);
    expect(picks(s, ds, 2)).toBe('AA'); // cl = A, cw = 3
    s.update(ds, { kind: 'edit', at: 2 });
    // Without the reset the next pick would be B; from the head with cw 3 it is A again.
    expect(picks(s, ds, 3)).toBe('ABA');
  });
  it('sched: wrr update lowers cw to the new mw', () => {
    const ds = dests([4, 3, 2]);
    const s = make('wrr', ds);
    expect(picks(s, ds, 1)).toBe('A'); // cw = 4
    ds[0].weight = 2;
    s.update(ds, { kind: 'edit', at: 0 }); // mw = 3 < cw: cw = 3
    expect(picks(s, ds, 1)).toBe('B');
  });
  it('sched: wrr update with gcd > 1 rounds cw to (cw/di)*di + 1', () => {
    const ds = dests([4, 8]);
    const s = make('wrr', ds); // di 4, mw 5, cw 5
    expect(picks(s, ds, 1)).toBe('B'); // B >= 5
    expect(picks(s, ds, 1)).toBe('A'); // end of list: cw 1, A >= 1
    ds[1].weight = 12; // di 4, mw 9; cw 1 <= 9: cw = (1/4)*4 + 1 = 1
    s.update(ds, { kind: 'edit', at: 1 });
    expect(picks(s, ds, 2)).toBe('AB');
  });
  it('sched: wrr long-run share equals weight share exactly per cycle (property, 300 random vectors)', () => {
    const rnd = mulberry32(0x5eed);
    for (let k = 0; k < 300; k++) {
      const n = 1 + Math.floor(rnd() * 8);
      const ws: number[] = Array.from({ length: n }, () => (rnd() < 0.15 ? 0 : 1 + Math.floor(rnd() * 20)));
      if (!ws.some((w) => w > 0)) ws[0] = 1;
      const g = ws.filter((w) => w > 0).reduce(gcd);
      const cycle = ws.reduce((a, b) => a + b, 0) / g;
      const ds = dests(ws);
      const s = make('wrr', ds);
      for (let c = 0; c < 3; c++) {
        const counts = new Array<number>(n).fill(0);
        for (let i = 0; i < cycle; i++) counts[s.schedule(ds, pkt(), 0)]++;
        expect(counts, `weights ${ws.join(',')} cycle ${c}`).toEqual(ws.map((w) => w / g));
      }
    }
  });
});

describe('sched lc/wlc/sed/nq', () => {
  it('sched: lc picks the minimum (active<<8)+inactive, first wins ties', () => {
    const ds = dests([1, 1, 1]);
    ds[0].inactConns = 5;
    ds[1].inactConns = 3;
    ds[2].inactConns = 3;
    expect(make('lc', ds).schedule(ds, pkt(), 0)).toBe(1);
  });
  it('sched: lc classic ties A(1 active) with B(256 inactive); 2026 prefers B', () => {
    const ds = [dest(0, 1, { activeConns: 1 }), dest(1, 1, { inactConns: 256 })];
    expect(make('lc', ds).schedule(ds, pkt(), 0)).toBe(0);
    expect(make('lc', ds, { flags: 0, overhead: '2026' }).schedule(ds, pkt(), 0)).toBe(1);
  });
  it('sched: lc ignores weight except that weight 0 and overloaded are skipped', () => {
    const ds = [dest(0, 0), dest(1, 1, { activeConns: 10 }), dest(2, 100, { overloaded: true }), dest(3, 1, { activeConns: 11 })];
    expect(make('lc', ds).schedule(ds, pkt(), 0)).toBe(1);
  });
  it('sched: wlc minimises overhead/weight with strict comparison', () => {
    // A: 256/1 = 256; B: 512/3 = 170.7 -> B.
    const ds = [dest(0, 1, { activeConns: 1 }), dest(1, 3, { activeConns: 2 })];
    expect(make('wlc', ds).schedule(ds, pkt(), 0)).toBe(1);
    // A: 256/1; B: 512/2 -> tie -> A (first in list order).
    ds[1].weight = 2;
    expect(make('wlc', ds).schedule(ds, pkt(), 0)).toBe(0);
  });
  it('sched: wlc never picks weight 0 or overloaded dests', () => {
    const ds = [dest(0, 1, { activeConns: 10 }), dest(1, 0), dest(2, 5, { overloaded: true })];
    expect(make('wlc', ds).schedule(ds, pkt(), 0)).toBe(0);
    ds[0].weight = 0;
    expect(make('wlc', ds).schedule(ds, pkt(), 0)).toBe(-1);
  });
  it('sched: wlc products stay exact with large counts and weights', () => {
    // A: (2^24*256 + 1) / 65535 vs B: (2^24*256) / 65535 -> B strictly less.
    const ds = [dest(0, 65535, { activeConns: 2 ** 24, inactConns: 1 }), dest(1, 65535, { activeConns: 2 ** 24 })];
    expect(make('wlc', ds).schedule(ds, pkt(), 0)).toBe(1);
  });
  it('sched: sed uses (active+1)/weight, ignores inactive, first wins ties', () => {
    // A: 1/1; B: 3/3 -> tie -> A.
    const ds = [dest(0, 1, { inactConns: 1000 }), dest(1, 3, { activeConns: 2 })];
    expect(make('sed', ds).schedule(ds, pkt(), 0)).toBe(0);
    // B: 2/3 < 1 -> B.
    ds[1].activeConns = 1;
    expect(make('sed', ds).schedule(ds, pkt(), 0)).toBe(1);
  });
  it('sched: nq returns the first idle eligible dest', () => {
    const ds = [dest(0, 1, { activeConns: 3 }), dest(1, 0), dest(2, 5, { overloaded: true }), dest(3, 5), dest(4, 10)];
    expect(make('nq', ds).schedule(ds, pkt(), 0)).toBe(3);
  });
  it('sched: nq without an idle dest takes sed\'s minimum', () => {
    // A: 2/1; B: 4/4 = 1 -> B; C: 3/2 = 1.5.
    const ds = [dest(0, 1, { activeConns: 1 }), dest(1, 4, { activeConns: 3 }), dest(2, 2, { activeConns: 2 })];
    expect(make('nq', ds).schedule(ds, pkt(), 0)).toBe(1);
  });
});

describe('sched fo/ovf/twos', () => {
  it('sched: fo picks the highest weight, first wins ties, skips overloaded', () => {
    const ds = dests([2, 5, 5, 3]);
    const s = make('fo', ds);
    expect(s.schedule(ds, pkt(), 0)).toBe(1);
    ds[1].overloaded = true;
    expect(s.schedule(ds, pkt(), 0)).toBe(2);
    for (const d of ds) d.weight = 0;
    expect(s.schedule(ds, pkt(), 0)).toBe(-1);
  });
  it('sched: ovf keeps a dest while active == weight and overflows at active > weight', () => {
    const ds = [dest(0, 5, { activeConns: 5 }), dest(1, 3)];
    const s = make('ovf', ds);
    expect(s.schedule(ds, pkt(), 0)).toBe(0);
    ds[0].activeConns = 6;
    expect(s.schedule(ds, pkt(), 0)).toBe(1);
    ds[1].activeConns = 4;
    expect(s.schedule(ds, pkt(), 0)).toBe(-1);
  });
  it('sched: ovf picks the highest weight, first wins ties', () => {
    const ds = dests([3, 7, 7, 0]);
    expect(make('ovf', ds).schedule(ds, pkt(), 0)).toBe(1);
  });
  it('sched: twos draws r in [0, Σw+1) and keeps the less loaded of its two choices', () => {
    // Weights 1,2,3: Σ+1 = 7. r1 = 0 -> A (0-1 <= 0); r2 = 4 -> C (4-1-2-3 <= 0).
    const ds = [dest(0, 1, { activeConns: 1 }), dest(1, 2), dest(2, 3)];
    let s = make('twos', ds, { flags: 0, rng: scriptedRng(7, [0, 4]) });
    expect(s.schedule(ds, pkt(), 0)).toBe(2); // 3*256 > 1*0 -> choice2
    // r1 = 3 -> B (3-1-2 = 0); r2 = 6 -> C (exactly 0 at C). Equal overheads -> choice1.
    s = make('twos', ds, { flags: 0, rng: scriptedRng(7, [3, 6]) });
    expect(s.schedule(ds, pkt(), 0)).toBe(1);
  });
  it('sched: twos skips overloaded and weight-0 dests and returns -1 when none is left', () => {
    const ds = [dest(0, 4, { overloaded: true }), dest(1, 0), dest(2, 2)];
    const s = make('twos', ds, { flags: 0, rng: scriptedRng(3, [0, 2]) });
    expect(s.schedule(ds, pkt(), 0)).toBe(2);
    ds[2].weight = 0;
    expect(s.schedule(ds, pkt(), 0)).toBe(-1);
  });
});

describe('sched factory', () => {
  it('sched: createScheduler knows every name in SCHEDULERS and nothing else', async () => {
    const { SCHEDULERS } = await import('../../shared/model/ipvs.ts');
    for (const n of SCHEDULERS) expect(createScheduler(n, { flags: 0 })?.name).toBe(n);
    expect(createScheduler('nope', { flags: 0 })).toBeUndefined();
  });
  it('sched: update rejects a dest list whose index fields are not positions', () => {
    const ds = dests([1, 1]);
    ds[1].index = 5;
    expect(() => createScheduler('rr', { flags: 0 })!.update(ds, { kind: 'init' })).toThrow(/index/);
  });
});
