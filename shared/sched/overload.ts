// The -x/-y connection thresholds: when a real server's OVERLOAD flag is set and cleared (reference §3).
import type { OverheadVariant } from './types.ts';

/**
 * The threshold state of one real server: what the caller keeps beside its {@link DestView} (usually the
 * same record). Connections are active + inactive, templates excluded, summed over all workers.
 */
export interface ThresholdDest {
  /** Upper threshold (-x), 0 = none. */
  uThreshold: number;
  /** Lower threshold (-y), 0 = none. */
  lThreshold: number;
  activeConns: number;
  inactConns: number;
  /** IP_VS_DEST_F_OVERLOAD. */
  overloaded: boolean;
}

/**
 * The lower bound the 2026 kernels use: `l` if set, else `u − floor(u/4)` (75 % of u).
 * For integer u this equals the classic clear point `total*4 < u*3` ⇔ `total < u − floor(u/4)`.
 */
export function lowerThresholdValue(u: number, l: number): number {
  return l !== 0 ? l : u - (u >> 2);
}

/**
 * Call after a connection was bound to the dest (its counters already include it).
 * classic: set OVERLOAD when `u != 0 && conns >= u`. 2026: set it when the count reaches u exactly.
 */
export function afterBind(d: ThresholdDest, variant: OverheadVariant = 'classic'): void {
  const u = d.uThreshold;
  if (u === 0) return;
  const total = d.activeConns + d.inactConns;
  if (variant === 'classic' ? total >= u : total === u) d.overloaded = true;
}

/**
 * Call after a connection was unbound from the dest (its counters no longer include it).
 * classic: with `l`, clear when `conns < l`; else with `u`, clear when `conns*4 < u*3`; with neither,
 * clear. 2026: clear when the count before the decrement equalled the lower value (i.e. it just dropped
 * below it).
 */
export function afterUnbind(d: ThresholdDest, variant: OverheadVariant = 'classic'): void {
  const total = d.activeConns + d.inactConns;
  const u = d.uThreshold;
  const l = d.lThreshold;
  if (variant === '2026') {
    if (u === 0 && l === 0) return;
    if (total + 1 === lowerThresholdValue(u, l)) d.overloaded = false;
    return;
  }
  if (l !== 0) {
    if (total < l) d.overloaded = false;
  } else if (u !== 0) {
    if (total * 4 < u * 3) d.overloaded = false;
  } else d.overloaded = false;
}

/**
 * Apply new thresholds from an add or edit (-a/-e), updating the flag the way the kernel does, then store
 * them. classic: clear OVERLOAD when the new u is 0 or larger than the old u. 2026: recompute: u == 0
 * clears; else set if `conns >= u`, clear if `conns < lower value`, otherwise leave it.
 * Validation (`l > u` → ERANGE) is the caller's job, before this.
 */
export function applyThresholds(d: ThresholdDest, u: number, l: number, variant: OverheadVariant = 'classic'): void {
  if (variant === 'classic') {
    if (u === 0 || u > d.uThreshold) d.overloaded = false;
  } else {
    const total = d.activeConns + d.inactConns;
    if (u === 0) d.overloaded = false;
    else if (total >= u) d.overloaded = true;
    else if (total < lowerThresholdValue(u, l)) d.overloaded = false;
  }
  d.uThreshold = u;
  d.lThreshold = l;
}
