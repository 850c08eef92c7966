// The -x/-y connection thresholds: when a real server's OVERLOAD flag is set and cleared (reference §3).
import type { OverheadVariant } from './types.ts';

// The one threshold rule. The three pure functions below are the classic kernel hysteresis (ip_vs_conn.c,
// ip_vs_ctl.c); everything else — the engine's per-schedule refresh, the table model's bind/unbind/edit, the
// ThresholdDest helpers — calls them. `conns` is always active + inactive connections, templates excluded,
// summed over all workers.

/** Classic rule on bind (`conns` counted after binding): OVERLOAD is set when u != 0 and conns >= u, else kept. */
export function overloadAfterBind(overloaded: boolean, conns: number, u: number): boolean {
  return overloaded || (u !== 0 && conns >= u);
}

/**
 * Classic rule on unbind (`conns` counted after unbinding): with l != 0 OVERLOAD clears when conns < l; else with
 * u != 0 when conns * 4 < u * 3 (below 75 % of u); with neither threshold it clears. Otherwise it is kept.
 */
export function overloadAfterUnbind(overloaded: boolean, conns: number, u: number, l: number): boolean {
  if (!overloaded) return false;
  return !(l !== 0 ? conns < l : u !== 0 ? conns * 4 < u * 3 : true);
}

/** Classic rule on -a/-e (__ip_vs_update_dest): OVERLOAD clears when the new u is 0 or larger than the old one. */
export function overloadAfterEdit(overloaded: boolean, oldU: number, newU: number): boolean {
  return overloaded && !(newU === 0 || newU > oldU);
}

/**
 * The hysteresis sampled at a connection count, for a reader that sees counts rather than bind/unbind events
 * (the forwarding engine, which sums the workers' shared counters before it schedules): set at conns >= u,
 * cleared by the unbind rule, kept in between; u = 0 means never overloaded (an edit to u = 0 clears it).
 */
export function overloadAt(overloaded: boolean, conns: number, u: number, l: number): boolean {
  if (u === 0) return false;
  return overloadAfterUnbind(overloadAfterBind(overloaded, conns, u), conns, u, l);
}

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
  if (variant === 'classic') d.overloaded = overloadAfterBind(d.overloaded, total, u);
  else if (total === u) d.overloaded = true;
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
  d.overloaded = overloadAfterUnbind(d.overloaded, total, u, l);
}

/**
 * Apply new thresholds from an add or edit (-a/-e), updating the flag the way the kernel does, then store
 * them. classic: clear OVERLOAD when the new u is 0 or larger than the old u. 2026: recompute: u == 0
 * clears; else set if `conns >= u`, clear if `conns < lower value`, otherwise leave it.
 * Validation (`l > u` → ERANGE) is the caller's job, before this.
 */
export function applyThresholds(d: ThresholdDest, u: number, l: number, variant: OverheadVariant = 'classic'): void {
  if (variant === 'classic') {
    d.overloaded = overloadAfterEdit(d.overloaded, d.uThreshold, u);
  } else {
    const total = d.activeConns + d.inactConns;
    if (u === 0) d.overloaded = false;
    else if (total >= u) d.overloaded = true;
    else if (total < lowerThresholdValue(u, l)) d.overloaded = false;
  }
  d.uThreshold = u;
  d.lThreshold = l;
}
