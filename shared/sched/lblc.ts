// Locality-based schedulers lblc and lblcr: a destination-address cache over the wlc step, with the kernel's GC.
import type { DestChange, DestView, SchedInput, Scheduler } from './types.ts';
import { NO_DEST, checkIndexes } from './types.ts';
import { hash32 } from './hash.ts';
import { wlcPick } from './simple.ts';

/** Cache hash bits (CONFIG_IP_VS_LBLC_TAB_BITS / LBLCR): 1024 buckets keyed on `hash_32(daddr, 10)`. */
export const LBLC_TAB_BITS = 10;
const TAB_SIZE = 1 << LBLC_TAB_BITS;
const TAB_MASK = TAB_SIZE - 1;
/** Cache size above which a GC tick drops idle entries: 1024 × 16. */
export const LBLC_MAX_SIZE = TAB_SIZE * 16;
/** Idle time after which an entry may go when the cache is over its size (ENTRY_TIMEOUT, 6 min), ms. */
export const LBLC_ENTRY_TIMEOUT_MS = 6 * 60_000;
/** Every this many GC ticks (while under max size) a full scan drops entries idle for the expiration. */
export const LBLC_COUNT_FOR_FULL_EXPIRATION = 30;
/** Default lblc_expiration / lblcr_expiration sysctl: 24 h, ms. */
export const LBLC_DEFAULT_EXPIRATION_MS = 24 * 3600_000;

/**
 * lblc/lblcr "overloaded" (is_overloaded): D is overloaded when `D.activeConns > D.weight` and some dest M of
 * the service (any, D included, no filter) is below half load, `M.activeConns * 2 < M.weight`.
 */
export function lblcOverloaded(d: DestView, dests: readonly DestView[]): boolean {
  if (d.activeConns > d.weight) {
    for (let i = 0; i < dests.length; i++) if (dests[i].activeConns * 2 < dests[i].weight) return true;
  }
  return false;
}

/**
 * The cache shared by lblc and lblcr: entries in typed-array pools chained per bucket (new entries at the
 * bucket head), a free list, and the kernel's GC (rover, counter). The pool doubles when full.
 */
abstract class AddrCache {
  protected cap = 64;
  protected addr = new Uint32Array(this.cap);
  protected lastuse = new Float64Array(this.cap);
  protected next = new Int32Array(this.cap);
  protected readonly head = new Int32Array(TAB_SIZE).fill(-1);
  protected free = -1;
  protected top = 0;
  /** Number of live entries. */
  entries = 0;
  private rover = 0;
  private counter = 1;
  protected readonly expiration: number;
  /** Entries are not created at or above this count (2026 kernels: 1.5 × max size; classic: unbounded). */
  protected readonly createCap: number;

  constructor(expiration: number, capped: boolean) {
    this.expiration = expiration;
    this.createCap = capped ? (LBLC_MAX_SIZE * 3) / 2 : Infinity;
  }

  protected find(a: number): number {
    for (let e = this.head[hash32(a, LBLC_TAB_BITS)]; e >= 0; e = this.next[e]) if (this.addr[e] === a) return e;
    return -1;
  }

  protected alloc(a: number, now: number): number {
    let e = this.free;
    if (e >= 0) this.free = this.next[e];
    else {
      if (this.top === this.cap) this.grow();
      e = this.top++;
    }
    const b = hash32(a, LBLC_TAB_BITS);
    this.addr[e] = a;
    this.lastuse[e] = now;
    this.next[e] = this.head[b];
    this.head[b] = e;
    this.entries++;
    return e;
  }

  protected grow(): void {
    const cap = this.cap * 2;
    const addr = new Uint32Array(cap);
    addr.set(this.addr);
    const lastuse = new Float64Array(cap);
    lastuse.set(this.lastuse);
    const next = new Int32Array(cap);
    next.set(this.next);
    this.addr = addr;
    this.lastuse = lastuse;
    this.next = next;
    this.cap = cap;
    this.growSlots(cap);
  }

  /** Subclasses grow their per-entry slots to `cap`. */
  protected abstract growSlots(cap: number): void;
  /** Subclasses drop the references an entry holds. */
  protected abstract release(e: number): void;

  /** Remove every entry of bucket `b` with `now >= lastuse + idle`; returns how many went. */
  private sweep(b: number, now: number, idle: number): number {
    let removed = 0;
    let prev = -1;
    let e = this.head[b];
    while (e >= 0) {
      const nx = this.next[e];
      if (now >= this.lastuse[e] + idle) {
        if (prev < 0) this.head[b] = nx;
        else this.next[prev] = nx;
        this.release(e);
        this.next[e] = this.free;
        this.free = e;
        this.entries--;
        removed++;
      } else prev = e;
      e = nx;
    }
    return removed;
  }

  /**
   * One GC tick (ip_vs_lblc_check_expire): every 30th tick a full scan with the expiration; otherwise, only
   * when over LBLC_MAX_SIZE, drop entries idle for ENTRY_TIMEOUT bucket by bucket from the rover until
   * `min((entries − max) × 4/3, max/2)` went. The counter advances only on ticks under the max size.
   */
  gc(now: number): void {
    if (this.counter % LBLC_COUNT_FOR_FULL_EXPIRATION === 0) {
      let j = this.rover;
      for (let i = 0; i < TAB_SIZE; i++) {
        j = (j + 1) & TAB_MASK;
        this.sweep(j, now, this.expiration);
      }
      this.rover = j;
      this.counter = 1;
      return;
    }
    if (this.entries <= LBLC_MAX_SIZE) {
      this.counter++;
      return;
    }
    let goal = Math.trunc(((this.entries - LBLC_MAX_SIZE) * 4) / 3);
    if (goal > LBLC_MAX_SIZE / 2) goal = LBLC_MAX_SIZE / 2;
    let j = this.rover;
    for (let i = 0; i < TAB_SIZE; i++) {
      j = (j + 1) & TAB_MASK;
      goal -= this.sweep(j, now, LBLC_ENTRY_TIMEOUT_MS);
      if (goal <= 0) break;
    }
    this.rover = j;
  }

  /** Number of cached addresses. */
  get size(): number {
    return this.entries;
  }
}

/**
 * lblc (ip_vs_lblc.c): key = the packet's destination address. A cached dest is used while it is available,
 * has weight > 0 and is not lblc-overloaded ({@link lblcOverloaded}); otherwise the wlc step picks one and
 * the entry is replaced. Call {@link Lblc.gc} every 60 s.
 */
export class Lblc extends AddrCache implements Scheduler {
  readonly name = 'lblc' as const;
  readonly noDestReason = NO_DEST;
  private dest: (DestView | null)[] = new Array<DestView | null>(this.cap).fill(null);
  private readonly mul: number;

  constructor(mul: number, expiration: number, capped: boolean) {
    super(expiration, capped);
    this.mul = mul;
  }

  protected growSlots(cap: number): void {
    for (let i = this.dest.length; i < cap; i++) this.dest.push(null);
  }
  protected release(e: number): void {
    this.dest[e] = null;
  }

  update(dests: readonly DestView[], _change: DestChange): void {
    checkIndexes(this.name, dests);
  }

  /** The dest cached for `daddr` (or null), for inspection. */
  cached(daddr: number): DestView | null {
    const e = this.find(daddr >>> 0);
    return e < 0 ? null : this.dest[e];
  }

  schedule(dests: readonly DestView[], pkt: SchedInput, now: number): number {
    const a = pkt.daddr >>> 0;
    const e = this.find(a);
    if (e >= 0) {
      this.lastuse[e] = now;
      const d = this.dest[e];
      if (d !== null && d.available && d.weight > 0 && !lblcOverloaded(d, dests)) return d.index;
    }
    const pos = wlcPick(dests, this.mul);
    if (pos < 0) return -1;
    if (e >= 0) {
      // ip_vs_lblc_new: an entry for the address is replaced by a fresh one (same effect: new dest, lastuse now).
      this.dest[e] = dests[pos];
    } else if (this.entries < this.createCap) {
      this.dest[this.alloc(a, now)] = dests[pos];
    }
    return pos;
  }
}

/**
 * lblcr (ip_vs_lblcr.c): like lblc, but each address maps to a set of dests. On a hit the set's weighted
 * least-connection member is taken; if the set has more than one member and was not modified for the
 * expiration, its weighted most-loaded member is removed (one per period: removal sets lastmod). If the
 * member is missing or lblc-overloaded, the wlc step picks a dest over the service and adds it to the set.
 */
export class Lblcr extends AddrCache implements Scheduler {
  readonly name = 'lblcr' as const;
  readonly noDestReason = NO_DEST;
  /** Per entry: its set, head first (the most recently inserted member first). Arrays are reused. */
  private sets: DestView[][] = [];
  private lastmod = new Float64Array(this.cap);
  private readonly mul: number;

  constructor(mul: number, expiration: number, capped: boolean) {
    super(expiration, capped);
    this.mul = mul;
    for (let i = 0; i < this.cap; i++) this.sets.push([]);
  }

  protected growSlots(cap: number): void {
    for (let i = this.sets.length; i < cap; i++) this.sets.push([]);
    const lm = new Float64Array(cap);
    lm.set(this.lastmod);
    this.lastmod = lm;
  }
  protected release(e: number): void {
    this.sets[e].length = 0;
  }

  update(dests: readonly DestView[], _change: DestChange): void {
    checkIndexes(this.name, dests);
  }

  /** The set cached for `daddr`, head first (a copy), or null; for inspection. */
  cachedSet(daddr: number): DestView[] | null {
    const e = this.find(daddr >>> 0);
    return e < 0 ? null : this.sets[e].slice();
  }

  private insert(e: number, d: DestView, now: number): void {
    const set = this.sets[e];
    if (set.includes(d)) return;
    set.unshift(d);
    this.lastmod[e] = now;
  }

  /** ip_vs_dest_set_min: weighted least-connection member that is available, weight > 0, not overloaded. */
  private setMin(set: DestView[]): DestView | null {
    let i = 0;
    for (; i < set.length; i++) {
      const d = set[i];
      if (d.overloaded) continue;
      if (d.weight > 0 && d.available) break;
    }
    if (i === set.length) return null;
    let least = set[i];
    let loh = least.activeConns * this.mul + least.inactConns;
    for (i++; i < set.length; i++) {
      const d = set[i];
      if (d.overloaded) continue;
      const doh = d.activeConns * this.mul + d.inactConns;
      if (loh * d.weight > doh * least.weight && d.available) {
        least = d;
        loh = doh;
      }
    }
    return least;
  }

  /** ip_vs_dest_set_max: weighted most-loaded member with weight > 0 (overload/availability ignored). */
  private setMax(set: DestView[]): number {
    let i = 0;
    for (; i < set.length; i++) if (set[i].weight > 0) break;
    if (i === set.length) return -1;
    let most = i;
    let moh = set[i].activeConns * this.mul + set[i].inactConns;
    for (i++; i < set.length; i++) {
      const d = set[i];
      const doh = d.activeConns * this.mul + d.inactConns;
      if (moh * d.weight < doh * set[most].weight && d.weight > 0) {
        most = i;
        moh = doh;
      }
    }
    return most;
  }

  schedule(dests: readonly DestView[], pkt: SchedInput, now: number): number {
    const a = pkt.daddr >>> 0;
    const e = this.find(a);
    if (e >= 0) {
      this.lastuse[e] = now;
      const set = this.sets[e];
      const d = this.setMin(set);
      if (set.length > 1 && now > this.lastmod[e] + this.expiration) {
        const m = this.setMax(set);
        if (m >= 0) {
          for (let i = m + 1; i < set.length; i++) set[i - 1] = set[i];
          set.length--;
          this.lastmod[e] = now;
        }
      }
      if (d !== null && !lblcOverloaded(d, dests)) return d.index;
      const pos = wlcPick(dests, this.mul);
      if (pos < 0) return -1;
      this.insert(e, dests[pos], now);
      return pos;
    }
    const pos = wlcPick(dests, this.mul);
    if (pos < 0) return -1;
    if (this.entries < this.createCap) {
      const ne = this.alloc(a, now);
      this.sets[ne].length = 0;
      this.sets[ne].push(dests[pos]);
      this.lastmod[ne] = now;
    }
    return pos;
  }
}
