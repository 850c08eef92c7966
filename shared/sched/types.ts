// The scheduler contract: the per-dest view the forwarding worker keeps, the per-packet input, list changes, options.
import type { SchedulerName } from '../model/ipvs.ts';

/**
 * One real server as a scheduler sees it. The caller owns these records and updates them in place; the
 * `dests` array passed to a scheduler is the service's destination list in kernel order (newest first) and
 * holds only members of the service (deleted dests, even those still in the trash, are not in it).
 *
 * Invariant: `dests[i].index === i` whenever the array is passed to {@link Scheduler.update} or
 * {@link Scheduler.schedule}; the caller renumbers after an add or delete. Schedulers that cache a dest
 * across list changes (lblc, lblcr) hold the record itself and return its current `index`, so a deleted
 * dest must get `available = false` (and keeps it while the caches may still refer to it).
 */
export interface DestView {
  /** Position in the service's list; see the invariant above. */
  index: number;
  /** IPv4 host-order uint32; IPv6 folded by XOR of its four host-order words (as the kernel hashes it). */
  addr: number;
  /** Port, host order (0 for fwmark/port-0 real servers). */
  port: number;
  /** Current weight, 0..65535; 0 = quiesced. */
  weight: number;
  /** Latest non-zero weight (set on add, updated on edit when the new weight is > 0); only mh reads it. */
  lastWeight: number;
  /** IP_VS_DEST_F_OVERLOAD: set and cleared only by the threshold logic in overload.ts. */
  overloaded: boolean;
  /** In the service and not in the trash. */
  available: boolean;
  /** Active connections, summed over all workers. */
  activeConns: number;
  /** Inactive connections, summed over all workers. */
  inactConns: number;
}

/**
 * The packet facts a scheduler may read, in host order: a reused record, filled by the worker per packet.
 * `saddr`/`daddr` are IPv4 uint32 or folded IPv6 (see {@link DestView.addr}). For "inverse" packets (ICMP
 * errors about a reply) the caller swaps the roles as the kernel's `ip_vs_iph_inverse` does. `sport` must be
 * 0 for protocols other than TCP, UDP and SCTP.
 */
export interface SchedInput {
  saddr: number;
  sport: number;
  daddr: number;
  dport: number;
}

/**
 * What changed in the destination list, reported to {@link Scheduler.update} after the caller applied it.
 * - `init`: a new service, a scheduler switch, or a full resync: rebuild everything.
 * - `add`: a dest was inserted at position `at` (the kernel always inserts at 0, the head).
 * - `del`: the dest that was at position `at` (before removal) is gone.
 * - `edit`: the dest at `at` changed weight or thresholds (list order unchanged).
 */
export type DestChange = { readonly kind: 'init' } | { readonly kind: 'add' | 'del' | 'edit'; readonly at: number };

/** Which kernel connection-overhead formula to use (reference §1.3). */
export type OverheadVariant = 'classic' | '2026';

/** Options of {@link createScheduler}. */
export interface SchedOptions {
  /** Service flag bits (SvcFlag): SCHED1 = sh-fallback/mh-fallback, SCHED2 = sh-port/mh-port. */
  flags: number;
  /**
   * Uniform random number in [0, 1), as Math.random (the default). twos draws `floor(rng() * n)`, which is
   * how the kernel's `prandom_u32_max(n)` maps a 32-bit random value to [0, n).
   */
  rng?: () => number;
  /** mh table size M: a prime, default 4093 (the kernel default); must be >= the number of dests. */
  mhTableSize?: number;
  /**
   * Overhead formula for lc, wlc, lblc, lblcr, twos: `classic` = `(active << 8) + inactive` (every released
   * kernel before the 2026 stable updates; the default), `2026` = `(active << 8) + (active + inactive)`.
   * `2026` also caps lblc/lblcr caches at 1.5 × 16384 entries.
   */
  overhead?: OverheadVariant;
  /** lblc_expiration / lblcr_expiration sysctl in ms (default 24 h). */
  expirationMs?: number;
}

/**
 * A scheduler instance for one virtual service. `schedule` is called by the forwarding worker on every new
 * connection: it does not allocate (lblc/lblcr may grow their cache pools, amortised), never throws and
 * returns a position in `dests` or -1.
 */
export interface Scheduler {
  /** Scheduler name as ipvsadm spells it. */
  readonly name: SchedulerName;
  /**
   * Tell the scheduler the list changed (control path). Rebuilds tables the way the kernel does for this
   * scheduler (e.g. dh on init/add/del only, sh and mh on every change, wrr resets its position).
   * Throws RangeError when the list is not acceptable (mh: more dests than table slots, kernel -EINVAL)
   * and Error when the index invariant is broken (a bug in the caller).
   */
  update(dests: readonly DestView[], change: DestChange): void;
  /** Pick a dest for a new connection: its position in `dests`, or -1 for "no destination available". */
  schedule(dests: readonly DestView[], pkt: SchedInput, now: number): number;
  /** One garbage-collection tick (lblc/lblcr: call every {@link GC_INTERVAL_MS}); a no-op for the others. */
  gc(now: number): void;
  /**
   * After `schedule` returned -1: the kernel's log text suffix, "no destination available" or, for wrr after
   * a full pass, "no destination available: all destinations are overloaded".
   */
  readonly noDestReason: string;
}

/** lblc/lblcr GC tick period (CHECK_EXPIRE_INTERVAL), ms. */
export const GC_INTERVAL_MS = 60_000;

/** The kernel's "no destination available" log text. */
export const NO_DEST = 'no destination available';
/** wrr's text after a full pass found nothing. */
export const NO_DEST_OVERLOADED = 'no destination available: all destinations are overloaded';

/** Check the `dests[i].index === i` invariant; throws Error naming the first offender. */
export function checkIndexes(name: string, dests: readonly DestView[]): void {
  for (let i = 0; i < dests.length; i++) {
    if (dests[i].index !== i) throw new Error(`sched ${name}: update: dests[${i}].index is ${dests[i].index}, expected ${i}`);
  }
}

/** Multiplier of activeconns in the overhead formula: 256 (classic) or 257 (2026, `(a << 8) + a + i`). */
export function overheadMultiplier(v: OverheadVariant | undefined): number {
  return v === '2026' ? 257 : 256;
}
