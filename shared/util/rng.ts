// The one seeded pseudo-random generator (mulberry32) for deterministic tests, property checks and benchmarks.
// Not for anything that needs unpredictability.

/** A generator of uniform uint32 values (0..2^32-1), fully determined by `seed` (any number; its low 32 bits). */
export function mulberry32U32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** A generator of uniform numbers in [0, 1) (as Math.random), fully determined by `seed`: {@link mulberry32U32} / 2^32. */
export function mulberry32(seed: number): () => number {
  const next = mulberry32U32(seed);
  return () => next() / 4294967296;
}
