// The scheduler factory: ipvsadm's scheduler names to instances, plus the public surface of shared/sched.
import { SCHEDULERS } from '../model/ipvs.ts';
import type { SchedulerName } from '../model/ipvs.ts';
import type { SchedOptions, Scheduler } from './types.ts';
import { overheadMultiplier } from './types.ts';
import {
  FailOver,
  LeastConnection,
  NeverQueue,
  Overflow,
  PowerOfTwo,
  RoundRobin,
  ShortestExpectedDelay,
  WeightedLeastConnection,
  WeightedRoundRobin,
} from './simple.ts';
import { DestinationHashing, MaglevHashing, SourceHashing } from './hashing.ts';
import { LBLC_DEFAULT_EXPIRATION_MS, Lblc, Lblcr } from './lblc.ts';

export type { DestChange, DestView, OverheadVariant, SchedInput, SchedOptions, Scheduler } from './types.ts';
export { GC_INTERVAL_MS, NO_DEST, NO_DEST_OVERLOADED } from './types.ts';
export { afterBind, afterUnbind, applyThresholds, lowerThresholdValue } from './overload.ts';
export type { ThresholdDest } from './overload.ts';
export { foldIPv6 } from './hash.ts';

/** True when `name` is a scheduler tsvs implements. */
export function isSchedulerName(name: string): name is SchedulerName {
  return (SCHEDULERS as readonly string[]).includes(name);
}

/**
 * A new scheduler for one service, or undefined for an unknown name (the daemon answers ENOENT, as the
 * kernel does for a scheduler module it cannot load). Call `update(dests, { kind: 'init' })` before the first
 * `schedule`. Throws RangeError for an invalid `mhTableSize` (not a prime).
 */
export function createScheduler(name: string, opts: SchedOptions): Scheduler | undefined {
  const mul = overheadMultiplier(opts.overhead);
  const capped = opts.overhead === '2026';
  const exp = opts.expirationMs ?? LBLC_DEFAULT_EXPIRATION_MS;
  switch (name) {
    case 'rr':
      return new RoundRobin();
    case 'wrr':
      return new WeightedRoundRobin();
    case 'lc':
      return new LeastConnection(mul);
    case 'wlc':
      return new WeightedLeastConnection(mul);
    case 'sed':
      return new ShortestExpectedDelay();
    case 'nq':
      return new NeverQueue();
    case 'fo':
      return new FailOver();
    case 'ovf':
      return new Overflow();
    case 'twos':
      return new PowerOfTwo(mul, opts.rng ?? Math.random);
    case 'lblc':
      return new Lblc(mul, exp, capped);
    case 'lblcr':
      return new Lblcr(mul, exp, capped);
    case 'dh':
      return new DestinationHashing();
    case 'sh':
      return new SourceHashing(opts.flags);
    case 'mh':
      return new MaglevHashing(opts.flags, opts.mhTableSize);
    default:
      return undefined;
  }
}
