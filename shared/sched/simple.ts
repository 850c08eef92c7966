// The list-scanning schedulers: rr wrr lc wlc sed nq fo ovf twos, with the kernel's formulas and tie-breaks.
import type { SchedulerName } from '../model/ipvs.ts';
import type { DestChange, DestView, SchedInput, Scheduler } from './types.ts';
import { NO_DEST, NO_DEST_OVERLOADED, checkIndexes } from './types.ts';
import { gcd } from '../util/math.ts';

// Products below are exact in a double while overhead * weight < 2^53, i.e. activeConns < 2^29 at weight
// 65535; the kernel computes them in s64 from a 32-bit overhead (which itself wraps at 2^23 active).

/** Base for the stateless scanners: update only checks the index invariant. */
abstract class Stateless implements Scheduler {
  abstract readonly name: SchedulerName;
  noDestReason = NO_DEST;
  update(dests: readonly DestView[], _change: DestChange): void {
    checkIndexes(this.name, dests);
  }
  abstract schedule(dests: readonly DestView[], pkt: SchedInput, now: number): number;
  gc(_now: number): void {}
}

/**
 * rr (ip_vs_rr.c): walk on from the last selected dest, wrapping once; take the first with weight > 0 and
 * not overloaded. The saved position is a list position, -1 = the list head; deleting the saved dest moves
 * it to the predecessor, so the next pick is the deleted dest's successor.
 */
export class RoundRobin extends Stateless {
  readonly name = 'rr' as const;
  /** Position of the last selected dest, -1 = list head. */
  private pos = -1;
  override update(dests: readonly DestView[], change: DestChange): void {
    checkIndexes(this.name, dests);
    if (change.kind === 'init') this.pos = -1;
    else if (change.kind === 'add') {
      if (this.pos >= change.at) this.pos++;
    } else if (change.kind === 'del') {
      if (this.pos === change.at) this.pos = change.at - 1;
      else if (this.pos > change.at) this.pos--;
    }
    if (this.pos >= dests.length) this.pos = -1;
  }
  schedule(dests: readonly DestView[], _pkt: SchedInput, _now: number): number {
    const last = this.pos;
    const n = dests.length;
    let i = last;
    let pass = 0;
    do {
      for (i = i + 1; i < n; i++) {
        const d = dests[i];
        if (!d.overloaded && d.weight > 0) {
          this.pos = i;
          return i;
        }
        if (i === last) return -1;
      }
      i = -1;
      pass++;
    } while (pass < 2 && last !== -1);
    return -1;
  }
}

/**
 * wrr (ip_vs_wrr.c): `di` = gcd of the weights > 0 (1 if none), `mw` = max weight over all dests − (di − 1),
 * `cw` steps down by `di` at each end of list; a dest is taken when not overloaded and `weight >= cw`.
 * Every list change resets the position to the head and re-derives di/mw, keeping cw as the kernel does.
 */
export class WeightedRoundRobin extends Stateless {
  readonly name = 'wrr' as const;
  /** Current position, -1 = list head. */
  private cl = -1;
  private cw = 0;
  private mw = 0;
  private di = 1;
  override update(dests: readonly DestView[], change: DestChange): void {
    checkIndexes(this.name, dests);
    let g = 0;
    let max = 0;
    for (const d of dests) {
      if (d.weight > 0) g = g > 0 ? gcd(d.weight, g) : d.weight;
      if (d.weight > max) max = d.weight;
    }
    this.di = g > 0 ? g : 1;
    this.mw = max - (this.di - 1);
    this.cl = -1;
    if (change.kind === 'init' || this.cw > this.mw || this.cw === 0) this.cw = this.mw;
    else if (this.di > 1) this.cw = Math.trunc(this.cw / this.di) * this.di + 1;
  }
  schedule(dests: readonly DestView[], _pkt: SchedInput, _now: number): number {
    const n = dests.length;
    let i = this.cl;
    if (this.mw === 0) {
      this.noDestReason = NO_DEST;
      return -1;
    }
    const last = i;
    let stop = -2; // -2 = none
    let lastPass = false;
    let restarted = false;
    for (;;) {
      for (i = i + 1; i < n; i++) {
        const d = dests[i];
        if (!d.overloaded && d.weight >= this.cw) {
          this.cl = i;
          return i;
        }
        if (i === stop) {
          this.cl = i;
          this.noDestReason = NO_DEST_OVERLOADED;
          return -1;
        }
      }
      i = -1;
      this.cw -= this.di;
      if (this.cw <= 0) {
        this.cw = this.mw;
        if (lastPass || last === -1) {
          this.cl = -1;
          this.noDestReason = NO_DEST_OVERLOADED;
          return -1;
        }
        restarted = true;
      }
      lastPass = this.cw <= this.di;
      if (lastPass && restarted && last !== -1) stop = last;
    }
  }
}

/** The §1.3 overhead, `active * mul + inactive` with mul 256 (classic) or 257 (2026). */
function overhead(d: DestView, mul: number): number {
  return d.activeConns * mul + d.inactConns;
}

/** lc (ip_vs_lc.c): minimum overhead among dests with weight > 0, not overloaded; first wins ties. */
export class LeastConnection extends Stateless {
  readonly name = 'lc' as const;
  private readonly mul: number;
  constructor(mul: number) {
    super();
    this.mul = mul;
  }
  schedule(dests: readonly DestView[], _pkt: SchedInput, _now: number): number {
    let least = -1;
    let loh = 0;
    for (let i = 0; i < dests.length; i++) {
      const d = dests[i];
      if (d.overloaded || d.weight === 0) continue;
      const doh = overhead(d, this.mul);
      if (least < 0 || doh < loh) {
        least = i;
        loh = doh;
      }
    }
    return least;
  }
}

/**
 * The wlc step shared by wlc, lblc and lblcr: the first dest with weight > 0 and not overloaded seeds,
 * later non-overloaded dests replace it when `loh * w_dest > doh * w_least` (minimum overhead/weight,
 * first wins ties).
 */
export function wlcPick(dests: readonly DestView[], mul: number): number {
  const n = dests.length;
  let i = 0;
  for (; i < n; i++) if (!dests[i].overloaded && dests[i].weight > 0) break;
  if (i === n) return -1;
  let least = i;
  let loh = overhead(dests[i], mul);
  let lw = dests[i].weight;
  for (i++; i < n; i++) {
    const d = dests[i];
    if (d.overloaded) continue;
    const doh = overhead(d, mul);
    if (loh * d.weight > doh * lw) {
      least = i;
      loh = doh;
      lw = d.weight;
    }
  }
  return least;
}

/** wlc (ip_vs_wlc.c), the default: minimum overhead/weight, first wins ties. */
export class WeightedLeastConnection extends Stateless {
  readonly name = 'wlc' as const;
  private readonly mul: number;
  constructor(mul: number) {
    super();
    this.mul = mul;
  }
  schedule(dests: readonly DestView[], _pkt: SchedInput, _now: number): number {
    return wlcPick(dests, this.mul);
  }
}

/** sed (ip_vs_sed.c): like wlc with overhead `activeConns + 1` (inactive ignored). */
export class ShortestExpectedDelay extends Stateless {
  readonly name = 'sed' as const;
  schedule(dests: readonly DestView[], _pkt: SchedInput, _now: number): number {
    const n = dests.length;
    let i = 0;
    for (; i < n; i++) if (!dests[i].overloaded && dests[i].weight > 0) break;
    if (i === n) return -1;
    let least = i;
    let loh = dests[i].activeConns + 1;
    let lw = dests[i].weight;
    for (i++; i < n; i++) {
      const d = dests[i];
      if (d.overloaded) continue;
      const doh = d.activeConns + 1;
      if (loh * d.weight > doh * lw) {
        least = i;
        loh = doh;
        lw = d.weight;
      }
    }
    return least;
  }
}

/** nq (ip_vs_nq.c): the first eligible dest with no active connection, else sed's minimum. */
export class NeverQueue extends Stateless {
  readonly name = 'nq' as const;
  schedule(dests: readonly DestView[], _pkt: SchedInput, _now: number): number {
    let least = -1;
    let loh = 0;
    let lw = 0;
    for (let i = 0; i < dests.length; i++) {
      const d = dests[i];
      if (d.overloaded || d.weight === 0) continue;
      if (d.activeConns === 0) return i;
      const doh = d.activeConns + 1;
      if (least < 0 || loh * d.weight > doh * lw) {
        least = i;
        loh = doh;
        lw = d.weight;
      }
    }
    return least;
  }
}

/** fo (ip_vs_fo.c): the non-overloaded dest with the highest weight (> 0); first wins ties. */
export class FailOver extends Stateless {
  readonly name = 'fo' as const;
  schedule(dests: readonly DestView[], _pkt: SchedInput, _now: number): number {
    let best = -1;
    let hw = 0;
    for (let i = 0; i < dests.length; i++) {
      const d = dests[i];
      if (!d.overloaded && d.weight > hw) {
        best = i;
        hw = d.weight;
      }
    }
    return best;
  }
}

/**
 * ovf (ip_vs_ovf.c): the highest-weight dest that is not overloaded, has weight > 0 and `activeConns <=
 * weight` (it overflows once active > weight); first wins ties.
 */
export class Overflow extends Stateless {
  readonly name = 'ovf' as const;
  schedule(dests: readonly DestView[], _pkt: SchedInput, _now: number): number {
    let best = -1;
    let hw = 0;
    for (let i = 0; i < dests.length; i++) {
      const d = dests[i];
      const w = d.weight;
      if (d.overloaded || d.activeConns > w || w === 0) continue;
      if (best < 0 || w > hw) {
        best = i;
        hw = w;
      }
    }
    return best;
  }
}

/**
 * twos (ip_vs_twos.c): two weighted random picks r1, r2 in [0, Σw + 1) over the eligible dests (a dest is
 * chosen where the running `r -= weight` first reaches <= 0), then the one with the lower overhead/weight;
 * choice1 wins ties.
 */
export class PowerOfTwo extends Stateless {
  readonly name = 'twos' as const;
  private readonly mul: number;
  private readonly rng: () => number;
  constructor(mul: number, rng: () => number) {
    super();
    this.mul = mul;
    this.rng = rng;
  }
  schedule(dests: readonly DestView[], _pkt: SchedInput, _now: number): number {
    let total = 0;
    for (let i = 0; i < dests.length; i++) {
      const d = dests[i];
      if (!d.overloaded && d.weight > 0) total += d.weight;
    }
    if (total === 0) return -1;
    total += 1;
    let r1 = Math.floor(this.rng() * total);
    let r2 = Math.floor(this.rng() * total);
    let c1 = -1;
    let c2 = -1;
    let w1 = 0;
    let w2 = 0;
    let o1 = 0;
    let o2 = 0;
    for (let i = 0; i < dests.length; i++) {
      const d = dests[i];
      if (d.overloaded || d.weight <= 0) continue;
      r1 -= d.weight;
      r2 -= d.weight;
      if (r1 <= 0 && c1 < 0) {
        c1 = i;
        w1 = d.weight;
        o1 = overhead(d, this.mul);
      }
      if (r2 <= 0 && c2 < 0) {
        c2 = i;
        w2 = d.weight;
        o2 = overhead(d, this.mul);
      }
      if (c1 >= 0 && c2 >= 0) break;
    }
    if (c2 >= 0 && w2 * o1 > w1 * o2) return c2;
    return c1;
  }
}
