// Rate estimation as the kernel's ip_vs_est does it: every 2 s, the counter deltas feed an exponentially
// weighted moving average (weight 1/4) kept in fixed point — 10 fraction bits for conns and packets, 5 for
// bytes — and readers round it to whole units per second. tsvsadm --rate shows these values.
import type { Rates, Stats } from '../model/ipvs.ts';

/** The estimator's tick, ms. */
export const EST_INTERVAL_MS = 2000;

/** One estimator's state: the last counters seen and the scaled averages. */
export interface EstState {
  last: Stats;
  cps: number;
  inpps: number;
  outpps: number;
  inbps: number;
  outbps: number;
}

export function newEstimator(start: Stats): EstState {
  return { last: { ...start }, cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 };
}

/** Feeds one 2-second tick of counters (cumulative) into the estimator. */
export function estimate(e: EstState, now: Stats): void {
  // Deltas over 2 s scaled by 2^9 are per-second rates scaled by 2^10 (and 2^4 → 2^5 for bytes).
  e.cps += ((now.conns - e.last.conns) * 512 - e.cps) / 4;
  e.inpps += ((now.inpkts - e.last.inpkts) * 512 - e.inpps) / 4;
  e.outpps += ((now.outpkts - e.last.outpkts) * 512 - e.outpps) / 4;
  e.inbps += ((now.inbytes - e.last.inbytes) * 16 - e.inbps) / 4;
  e.outbps += ((now.outbytes - e.last.outbytes) * 16 - e.outbps) / 4;
  e.cps = Math.trunc(e.cps);
  e.inpps = Math.trunc(e.inpps);
  e.outpps = Math.trunc(e.outpps);
  e.inbps = Math.trunc(e.inbps);
  e.outbps = Math.trunc(e.outbps);
  e.last = { ...now };
}

/** The rates as ipvsadm reads them: rounded up from the fixed-point averages (kernel ip_vs_read_estimator). */
export function readRates(e: EstState): Rates {
  return {
    cps: Math.max(0, Math.floor((e.cps + 0x1ff) / 1024)),
    inpps: Math.max(0, Math.floor((e.inpps + 0x1ff) / 1024)),
    outpps: Math.max(0, Math.floor((e.outpps + 0x1ff) / 1024)),
    inbps: Math.max(0, Math.floor((e.inbps + 0xf) / 32)),
    outbps: Math.max(0, Math.floor((e.outbps + 0xf) / 32)),
  };
}
