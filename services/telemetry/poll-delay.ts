// How long the exporter sleeps between two polls of the decision rings: long when the rings are idle or fill
// slowly (a wake-up costs CPU the workers could use), short enough that no ring is ever near full between polls.

/** Share of a ring the exporter lets fill between two polls at the rate it last saw (the rest is headroom). */
export const TARGET_FILL = 0.25;

/**
 * The next poll delay, ms. `fill` is the largest share of a ring's capacity the last poll had to read (records
 * read, skipped, torn or lost, over capacity) and `elapsedMs` the time since the poll before it. With records
 * coming in, the delay is the time the busiest ring takes to fill {@link TARGET_FILL} at that rate; with none,
 * the previous delay doubled. Always within [minMs, maxMs].
 */
export function nextPollDelay(prevMs: number, elapsedMs: number, fill: number, minMs: number, maxMs: number): number {
  const d = fill > 0 ? (elapsedMs * TARGET_FILL) / fill : prevMs * 2;
  return d < minMs ? minMs : d > maxMs ? maxMs : Math.round(d);
}
