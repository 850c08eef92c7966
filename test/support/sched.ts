// Test fixtures for shared/sched: dest lists in kernel order, a reused packet record, scripted randomness.
import type { DestView, SchedInput, Scheduler } from '../../shared/sched/index.ts';

/** A dest with the given weight; addr 10.0.0.(i+1), port 80. */
export function dest(i: number, weight: number, extra: Partial<DestView> = {}): DestView {
  return { index: i, addr: (0x0a000001 + i) >>> 0, port: 80, weight, lastWeight: weight, overloaded: false, available: true, activeConns: 0, inactConns: 0, ...extra };
}

/** Dests A, B, C, ... in list order with the given weights. */
export function dests(weights: number[]): DestView[] {
  return weights.map((w, i) => dest(i, w));
}

/** A packet record; fields default to 0. */
export function pkt(p: Partial<SchedInput> = {}): SchedInput {
  return { saddr: 0, sport: 0, daddr: 0, dport: 0, ...p };
}

/** Letters of `n` successive picks ('-' for no destination). */
export function picks(s: Scheduler, ds: DestView[], n: number, p: SchedInput = pkt(), now = 0): string {
  let out = '';
  for (let i = 0; i < n; i++) {
    const r = s.schedule(ds, p, now);
    out += r < 0 ? '-' : String.fromCharCode(65 + r);
  }
  return out;
}

/** Renumber after a list change, as the caller must. */
export function renumber(ds: DestView[]): DestView[] {
  ds.forEach((d, i) => (d.index = i));
  return ds;
}

/** An rng whose `floor(rng() * range)` yields each scripted integer in turn (twos draws over Σw + 1). */
export function scriptedRng(range: number, values: number[]): () => number {
  let k = 0;
  return () => (values[k++ % values.length] + 0.5) / range;
}

export { mulberry32 } from '../../shared/util/rng.ts';
