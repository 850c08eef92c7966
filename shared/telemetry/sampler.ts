// Ratio sampling of decision records as OpenTelemetry's TraceIdRatioBased sampler decides on random trace IDs, at
// the cost of a byte test per record: failures are always kept; successes are kept by a geometric countdown (one
// random draw per kept record, none per skipped one), and each kept success gets a trace ID that TraceIdRatioBased
// at the same ratio keeps, so a collector re-sampling at a lower ratio keeps a consistent subset.
import { Outcome } from './decision-ring.ts';

/** 2^32: the range of the SDK's trace-ID accumulation (the xor of the ID's four 32-bit words). */
const U32 = 4294967296;

/**
 * The SDK's TraceIdRatioBasedSampler bound (@opentelemetry/sdk-trace 3.1): a trace ID is kept when the xor of its
 * four 32-bit words is below it. Ratio 1 keeps every ID, 0 none; the probability of keeping is bound / 2^32.
 */
export function ratioUpperBound(ratio: number): number {
  if (!(ratio > 0)) return 0;
  return ratio >= 1 ? U32 : Math.floor(ratio * 4294967295);
}

/** The xor of a 32-hex-digit trace ID's four 32-bit words (what TraceIdRatioBased compares with its bound). */
export function traceIdAccumulation(traceId: string): number {
  let acc = 0;
  for (let i = 0; i < 32; i += 8) acc = (acc ^ Number.parseInt(traceId.slice(i, i + 8), 16)) >>> 0;
  return acc;
}

function hex8(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}

/**
 * Decides which decision records become spans. `keep(outcome)` runs on a record's raw outcome byte before the
 * record is copied or decoded: a failure (no-dest, overloaded, quiescent, table-full, or an unknown code) is always
 * kept; a success is kept with probability `bound / 2^32` ({@link ratioUpperBound}), independently of every other
 * record — the same law as TraceIdRatioBased over random trace IDs — by counting down a geometric gap drawn after
 * each kept success, so a skipped record costs a comparison and a decrement. {@link traceId} then gives the kept
 * success a random trace ID whose accumulation is below the bound (uniform among those), which is exactly the
 * distribution of the IDs TraceIdRatioBased keeps. `rng` returns uniform draws in [0, 1).
 */
export class DecisionSampler {
  readonly ratio: number;
  private readonly bound: number;
  private readonly rng: () => number;
  /** ln(1 − p) for the geometric gaps (p the probability of keeping a success); 0 when p is 0 or 1. */
  private readonly lnMiss: number;
  /** Successes still to skip before the next one is kept. */
  private gap: number;

  constructor(ratio: number, rng: () => number) {
    this.ratio = ratio;
    this.rng = rng;
    this.bound = ratioUpperBound(ratio);
    const p = this.bound / U32;
    this.lnMiss = p > 0 && p < 1 ? Math.log1p(-p) : 0;
    this.gap = this.nextGap();
  }

  /** Number of successes to skip before the next kept one: Geometric(p) on {0, 1, ...}; Infinity when p is 0. */
  private nextGap(): number {
    if (this.bound === 0) return Infinity;
    if (this.bound === U32) return 0;
    // 1 − rng() is in (0, 1]: its log is finite.
    return Math.floor(Math.log(1 - this.rng()) / this.lnMiss);
  }

  /** Whether the record with this raw outcome code is kept. Call once per record, in order. */
  keep(outcome: number): boolean {
    if (outcome !== Outcome.scheduled && outcome !== Outcome.persistent) return true;
    if (this.gap > 0) {
      this.gap--;
      return false;
    }
    this.gap = this.nextGap();
    return true;
  }

  /**
   * A trace ID for a kept success: four random 32-bit words whose xor is uniform below the bound, so
   * TraceIdRatioBased(ratio) keeps it. Never the invalid all-zero ID.
   */
  traceId(): string {
    for (;;) {
      const target = Math.floor(this.rng() * this.bound);
      const a = Math.floor(this.rng() * U32);
      const b = Math.floor(this.rng() * U32);
      const c = Math.floor(this.rng() * U32);
      const d = (target ^ a ^ b ^ c) >>> 0;
      if ((a | b | c | d) !== 0) return hex8(a) + hex8(b) + hex8(c) + hex8(d);
    }
  }
}
