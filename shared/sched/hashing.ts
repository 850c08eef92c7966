// The table-driven hashing schedulers: dh (destination hashing), sh (source hashing), mh (Maglev hashing).
import { SvcFlag } from '../model/ipvs.ts';
import type { DestChange, DestView, SchedInput, Scheduler } from './types.ts';
import { NO_DEST, checkIndexes } from './types.ts';
import { MH_KEY1, MH_KEY2, hash32, hsiphash32 } from './hash.ts';
import type { HsipKey } from './hash.ts';
import { gcd } from '../util/math.ts';

/** dh/sh table size: 2^8 buckets (CONFIG_IP_VS_DH_TAB_BITS / CONFIG_IP_VS_SH_TAB_BITS). */
export const DH_SH_TAB_BITS = 8;
const TAB_SIZE = 1 << DH_SH_TAB_BITS;
const TAB_MASK = TAB_SIZE - 1;

/**
 * dh (ip_vs_dh.c): bucket `hash_32(daddr, 8)`; the table assigns bucket i to the i-th dest of the list,
 * cyclically, ignoring weights. It is rebuilt on init, add and delete but **not** on edit (the kernel has no
 * upd_dest for dh). A bucket whose dest is unavailable, weight 0 or overloaded gives -1, with no fallback.
 */
export class DestinationHashing implements Scheduler {
  readonly name = 'dh' as const;
  readonly noDestReason = NO_DEST;
  /** Bucket → position in dests, -1 = empty. */
  readonly table = new Int32Array(TAB_SIZE).fill(-1);
  update(dests: readonly DestView[], change: DestChange): void {
    checkIndexes(this.name, dests);
    if (change.kind === 'edit') return;
    const n = dests.length;
    for (let i = 0; i < TAB_SIZE; i++) this.table[i] = n === 0 ? -1 : i % n;
  }
  schedule(dests: readonly DestView[], pkt: SchedInput, _now: number): number {
    const pos = this.table[hash32(pkt.daddr, DH_SH_TAB_BITS)];
    if (pos < 0 || pos >= dests.length) return -1;
    const d = dests[pos];
    if (!d.available || d.weight <= 0 || d.overloaded) return -1;
    return pos;
  }
  gc(_now: number): void {}
}

/** sh's bucket of (addr, port) at probe offset: `(offset + hash_32(port + addr, 8)) & 255`. */
export function shHashkey(addr: number, port: number, offset: number): number {
  return (offset + hash32((port + addr) >>> 0, DH_SH_TAB_BITS)) & TAB_MASK;
}

/**
 * sh (ip_vs_sh.c): key = source address (+ source port with sh-port, SCHED2). The table walks the list
 * cyclically, each dest taking `weight` consecutive buckets (a weight-0 dest still takes one), rebuilt on
 * every change. Unavailable = weight <= 0 or overloaded: -1, or with sh-fallback (SCHED1) the probe
 * `(offset + ihash) % 256` for offset 0..255, stopping at an empty bucket.
 */
export class SourceHashing implements Scheduler {
  readonly name = 'sh' as const;
  readonly noDestReason = NO_DEST;
  /** Bucket → position in dests, -1 = empty. */
  readonly table = new Int32Array(TAB_SIZE).fill(-1);
  private readonly fallback: boolean;
  private readonly usePort: boolean;
  constructor(flags: number) {
    this.fallback = (flags & SvcFlag.SCHED1) !== 0;
    this.usePort = (flags & SvcFlag.SCHED2) !== 0;
  }
  update(dests: readonly DestView[], _change: DestChange): void {
    checkIndexes(this.name, dests);
    const n = dests.length;
    let p = 0;
    let count = 0;
    for (let i = 0; i < TAB_SIZE; i++) {
      if (n === 0) {
        this.table[i] = -1;
        continue;
      }
      this.table[i] = p;
      if (++count >= dests[p].weight) {
        p = (p + 1) % n;
        count = 0;
      }
    }
  }
  schedule(dests: readonly DestView[], pkt: SchedInput, _now: number): number {
    const port = this.usePort ? pkt.sport : 0;
    const ihash = shHashkey(pkt.saddr, port, 0);
    let pos = this.table[ihash];
    if (pos < 0 || pos >= dests.length) return -1;
    let d = dests[pos];
    if (d.weight > 0 && !d.overloaded) return pos;
    if (!this.fallback) return -1;
    for (let off = 0; off < TAB_SIZE; off++) {
      const roff = (off + ihash) % TAB_SIZE;
      pos = this.table[shHashkey(pkt.saddr, port, roff)];
      if (pos < 0 || pos >= dests.length) return -1;
      d = dests[pos];
      if (d.weight > 0 && !d.overloaded) return pos;
    }
    return -1;
  }
  gc(_now: number): void {}
}

/** The kernel's mh table sizes (ip_vs_mh.c primes[]); index = CONFIG_IP_VS_MH_TAB_INDEX − 8. */
export const MH_PRIMES = [251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071] as const;
/** Default mh table size (CONFIG_IP_VS_MH_TAB_INDEX 12). */
export const MH_DEFAULT_SIZE = 4093;

function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  for (let f = 2; f * f <= n; f++) if (n % f === 0) return false;
  return true;
}

/** fls(x): 1-based index of the highest set bit, 0 for 0. */
function fls(x: number): number {
  return x === 0 ? 0 : 32 - Math.clz32(x);
}

/** mh's 32-bit hash of (addr, port) with probe offset: `hsiphash(offset + port + addr)`, uint32 wrap. */
export function mhHash(addr: number, port: number, offset: number, key: HsipKey): number {
  return hsiphash32((offset + port + addr) >>> 0, key);
}

/**
 * mh (ip_vs_mh.c), Maglev hashing with the kernel's exact table: per dest (list order) `offset = h1 % M`,
 * `skip = h2 % (M−1) + 1`, `turns = (lastWeight/gcd) >> rshift` (or 1 for a non-zero lastWeight), then a
 * round-robin fill where each dest takes `turns` free slots of its own permutation per visit. Weights are
 * `lastWeight`, so quiescing a dest (weight 0) keeps its slots: lookups there give -1, or with mh-fallback
 * (SCHED1) probe `hash1(addr, port, (i + ihash) % M) % M`. mh-port (SCHED2) adds the source port.
 * Rebuilt on every change.
 */
export class MaglevHashing implements Scheduler {
  readonly name = 'mh' as const;
  readonly noDestReason = NO_DEST;
  /** Table size M (prime). */
  readonly size: number;
  /** Slot → position in dests, -1 = empty (no dest with lastWeight > 0). */
  readonly table: Int32Array;
  /** IP_VS_MH_TAB_BITS used for rshift (6 for the default M). */
  readonly tabBits: number;
  private readonly fallback: boolean;
  private readonly usePort: boolean;
  private readonly used: Uint8Array;

  /** Throws RangeError when `size` is not a prime. */
  constructor(flags: number, size: number = MH_DEFAULT_SIZE) {
    if (!isPrime(size)) throw new RangeError(`sched mh: table size ${size} is not a prime`);
    this.size = size;
    this.table = new Int32Array(size).fill(-1);
    this.used = new Uint8Array(size);
    const idx = (MH_PRIMES as readonly number[]).indexOf(size);
    // Listed primes: CONFIG_IP_VS_MH_TAB_INDEX / 2; other primes: half the bits needed to hold M.
    this.tabBits = idx >= 0 ? (idx + 8) >> 1 : fls(size - 1) >> 1;
    this.fallback = (flags & SvcFlag.SCHED1) !== 0;
    this.usePort = (flags & SvcFlag.SCHED2) !== 0;
  }

  update(dests: readonly DestView[], _change: DestChange): void {
    checkIndexes(this.name, dests);
    const M = this.size;
    const n = dests.length;
    if (n > M) throw new RangeError(`sched mh: ${n} destinations exceed the table size ${M}`);
    let g = 0;
    let maxw = 0;
    for (const d of dests) {
      const w = d.lastWeight;
      if (w > 0) g = g > 0 ? gcd(w, g) : w;
      if (w > maxw) maxw = w;
    }
    this.table.fill(-1);
    if (g < 1) return;
    const shift = fls(Math.trunc(maxw / g)) - this.tabBits;
    const rshift = shift > 0 ? shift : 0;
    const skip = new Uint32Array(n);
    const perm = new Uint32Array(n);
    const turns = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const d = dests[i];
      perm[i] = mhHash(d.addr, d.port, 0, MH_KEY1) % M;
      skip[i] = (mhHash(d.addr, d.port, 0, MH_KEY2) % (M - 1)) + 1;
      const lw = d.lastWeight;
      const t = Math.trunc(lw / g) >> rshift;
      turns[i] = t !== 0 ? t : lw !== 0 ? 1 : 0;
    }
    const used = this.used;
    used.fill(0);
    let filled = 0;
    let dt = 0;
    for (;;) {
      for (let i = 0; i < n; ) {
        if (turns[i] < 1) {
          i++;
          continue;
        }
        let c = perm[i];
        while (used[c] !== 0) {
          c += skip[i];
          if (c >= M) c -= M;
        }
        perm[i] = c;
        used[c] = 1;
        this.table[c] = i;
        if (++filled === M) return;
        if (++dt >= turns[i]) {
          dt = 0;
          i++;
        }
      }
    }
  }

  schedule(dests: readonly DestView[], pkt: SchedInput, _now: number): number {
    const M = this.size;
    const port = this.usePort ? pkt.sport : 0;
    const ihash = mhHash(pkt.saddr, port, 0, MH_KEY1) % M;
    let pos = this.table[ihash];
    if (pos < 0 || pos >= dests.length) return -1;
    let d = dests[pos];
    if (d.weight > 0 && !d.overloaded) return pos;
    if (!this.fallback) return -1;
    for (let off = 0; off < M; off++) {
      const roff = (off + ihash) % M;
      pos = this.table[mhHash(pkt.saddr, port, roff, MH_KEY1) % M];
      if (pos < 0 || pos >= dests.length) return -1;
      d = dests[pos];
      if (d.weight > 0 && !d.overloaded) return pos;
    }
    return -1;
  }

  gc(_now: number): void {}
}
