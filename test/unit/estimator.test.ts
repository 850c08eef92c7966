// estimator: ip_vs_est's EWMA converges to the true per-second rate and decays to zero.
import { describe, expect, it } from 'vitest';
import { estimate, newEstimator, readRates } from '../../shared/fwd/estimator.ts';
import { zeroStats } from '../../shared/model/ipvs.ts';

describe('estimator', () => {
  it('estimator: a steady 100 conn/s, 1000 pkt/s, 64 kB/s converges to exactly those rates', () => {
    const s = zeroStats();
    const e = newEstimator(s);
    for (let t = 0; t < 60; t++) {
      s.conns += 200;
      s.inpkts += 2000;
      s.outpkts += 1000;
      s.inbytes += 128_000;
      s.outbytes += 64_000;
      estimate(e, s);
    }
    expect(readRates(e)).toEqual({ cps: 100, inpps: 1000, outpps: 500, inbps: 64_000, outbps: 32_000 });
  });
  it('estimator: after the traffic stops the rates decay to zero, and the first tick shows a quarter', () => {
    const s = zeroStats();
    const e = newEstimator(s);
    s.inpkts += 8000; // 4000 pkt/s over one tick
    estimate(e, s);
    expect(readRates(e).inpps).toBe(1000);
    for (let t = 0; t < 80; t++) estimate(e, s);
    expect(readRates(e)).toEqual({ cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 });
  });
});
