// telemetry: the exporter's sampling (a byte test per record, TraceIdRatioBased's law and trace IDs), the reader
// that samples without copying, and the adaptive poll delay.
import { describe, expect, it } from 'vitest';
import { ROOT_CONTEXT } from '@opentelemetry/api';
import { SamplingDecision, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace';
import { DecisionReader, DecisionWriter, Outcome, TemplateUse, decisionRingBytes } from '../../shared/telemetry/decision-ring.ts';
import { DecisionSampler, ratioUpperBound, traceIdAccumulation } from '../../shared/telemetry/sampler.ts';
import { mulberry32 } from '../../shared/util/rng.ts';
import { TARGET_FILL, nextPollDelay } from '../../services/telemetry/poll-delay.ts';

const FAILURES = [Outcome.noDest, Outcome.overloaded, Outcome.quiescent, Outcome.tableFull, 9];

describe('telemetry sampler', () => {
  it('telemetry sampler: failures are always kept, at any ratio, and do not move the countdown', () => {
    for (const ratio of [0, 0.01, 1]) {
      const s = new DecisionSampler(ratio, mulberry32(1));
      for (let i = 0; i < 1000; i++) for (const o of FAILURES) expect(s.keep(o)).toBe(true);
    }
    // The same seed keeps the same successes whether failures are interleaved or not.
    const a = new DecisionSampler(0.1, mulberry32(7));
    const b = new DecisionSampler(0.1, mulberry32(7));
    const keptA: number[] = [];
    const keptB: number[] = [];
    for (let i = 0; i < 5000; i++) {
      if (a.keep(Outcome.scheduled)) keptA.push(i);
      b.keep(Outcome.noDest);
      if (b.keep(Outcome.scheduled)) keptB.push(i);
    }
    expect(keptB).toEqual(keptA);
  });

  it('telemetry sampler: ratio 0 keeps no success, ratio 1 every one', () => {
    const none = new DecisionSampler(0, mulberry32(2));
    const all = new DecisionSampler(1, mulberry32(2));
    for (let i = 0; i < 10_000; i++) {
      expect(none.keep(Outcome.scheduled)).toBe(false);
      expect(all.keep(i % 2 === 0 ? Outcome.scheduled : Outcome.persistent)).toBe(true);
    }
  });

  it('telemetry sampler: successes are kept at the ratio, with independent (geometric) gaps', () => {
    for (const ratio of [0.01, 0.1, 0.5]) {
      const s = new DecisionSampler(ratio, mulberry32(Math.round(ratio * 1000)));
      const n = 400_000;
      let kept = 0;
      let runs = 0;
      let prev = false;
      for (let i = 0; i < n; i++) {
        const k = s.keep(Outcome.scheduled);
        if (k) kept++;
        if (k && prev) runs++;
        prev = k;
      }
      const p = ratioUpperBound(ratio) / 2 ** 32;
      const sd = Math.sqrt(n * p * (1 - p));
      // Within 5 standard deviations of the binomial mean (a fixed seed: this is deterministic).
      expect(Math.abs(kept - n * p)).toBeLessThan(5 * sd);
      // Two kept in a row as often as independence says: p² per pair.
      const pairs = (n - 1) * p * p;
      expect(Math.abs(runs - pairs)).toBeLessThan(5 * Math.sqrt(pairs) + 5);
    }
  });

  it("telemetry sampler: a kept success's trace ID is one the SDK's TraceIdRatioBased sampler keeps at the same ratio", () => {
    for (const ratio of [0.0001, 0.01, 0.3, 1]) {
      const s = new DecisionSampler(ratio, mulberry32(11));
      const sdk = new TraceIdRatioBasedSampler(ratio);
      const lower = new TraceIdRatioBasedSampler(ratio / 2);
      let keptByLower = 0;
      const n = 4000;
      for (let i = 0; i < n; i++) {
        const id = s.traceId();
        expect(id).toMatch(/^[0-9a-f]{32}$/);
        expect(id).not.toBe('0'.repeat(32));
        expect(traceIdAccumulation(id)).toBeLessThan(ratioUpperBound(ratio));
        expect(sdk.shouldSample(ROOT_CONTEXT, id).decision).toBe(SamplingDecision.RECORD_AND_SAMPLED);
        if (lower.shouldSample(ROOT_CONTEXT, id).decision === SamplingDecision.RECORD_AND_SAMPLED) keptByLower++;
      }
      // A collector re-sampling at half the ratio keeps about half of them (consistent sampling).
      expect(Math.abs(keptByLower / n - 0.5)).toBeLessThan(0.05);
    }
  });
});

describe('telemetry reader sampling in place', () => {
  it('telemetry ring: keep() sees every intact record once, in order; turned-down records are counted, not returned', () => {
    const buf = new ArrayBuffer(decisionRingBytes(64));
    const w = new DecisionWriter(buf, { init: true, worker: 0, director: 'd1', epochMs: 0 });
    const r = new DecisionReader(buf);
    const outcomes = [Outcome.scheduled, Outcome.noDest, Outcome.persistent, Outcome.quiescent, Outcome.scheduled];
    for (let i = 0; i < 40; i++) {
      w.begin(i, 6, 1, 1000 + i, 2, 80, 0, 1);
      w.commit(outcomes[i % outcomes.length], TemplateUse.none, -1, 0, 0, 255);
    }
    const seen: number[] = [];
    const { records, skipped, torn, lost } = r.poll(undefined, (o) => (seen.push(o), o >= Outcome.noDest));
    expect(seen).toEqual(Array.from({ length: 40 }, (_, i) => outcomes[i % outcomes.length]));
    expect(records.map((x) => x.clientPort)).toEqual(Array.from({ length: 40 }, (_, i) => 1000 + i).filter((_, i) => outcomes[i % outcomes.length] >= Outcome.noDest));
    expect(skipped).toBe(24);
    expect(torn + lost).toBe(0);
  });

  it('telemetry ring: a slot being rewritten is counted torn before keep() is asked', () => {
    const buf = new ArrayBuffer(decisionRingBytes(8));
    const w = new DecisionWriter(buf, { init: true, worker: 0, director: 'd1', epochMs: 0 });
    const r = new DecisionReader(buf);
    for (let i = 1; i <= 3; i++) {
      w.begin(i, 6, 1, i, 2, 80, 0, 1);
      w.commit(Outcome.scheduled, TemplateUse.none, -1, 0, 0, 255);
    }
    // Seq 4 is begun and not committed; the reader was told the head moved past it (a writer mid-record).
    w.begin(4, 6, 1, 4, 2, 80, 0, 1);
    new Uint32Array(buf)[20 >>> 2] = 4;
    let asked = 0;
    const res = r.poll(undefined, () => (asked++, true));
    expect(asked).toBe(3);
    expect(res.torn).toBe(1);
    expect(res.records.map((x) => x.seq)).toEqual([1, 2, 3]);
  });
});

describe('telemetry poll delay', () => {
  it('telemetry poll: idle rings double the delay up to the longest; busy rings shorten it to a quarter-ring of time', () => {
    expect(nextPollDelay(20, 20, 0, 20, 200)).toBe(40);
    expect(nextPollDelay(160, 160, 0, 20, 200)).toBe(200);
    expect(nextPollDelay(200, 200, 0, 20, 200)).toBe(200);
    // 8 000 records/s into a 16 384-record ring: a quarter lasts 512 ms, capped at the longest sleep.
    expect(nextPollDelay(200, 200, 1600 / 16384, 20, 200)).toBe(200);
    // 100 000 records/s: 2 000 in 20 ms is 12 % of the ring, so the next poll comes in about 41 ms.
    expect(nextPollDelay(20, 20, 2000 / 16384, 20, 200)).toBe(Math.round((20 * TARGET_FILL * 16384) / 2000));
    // A ring found half full (or worse) brings the delay down to the shortest.
    expect(nextPollDelay(200, 200, 0.5, 20, 200)).toBe(100);
    expect(nextPollDelay(200, 200, 1, 20, 200)).toBe(50);
    expect(nextPollDelay(20, 20, 1, 20, 200)).toBe(20);
  });
});
