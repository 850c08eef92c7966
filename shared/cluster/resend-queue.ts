// The sender's bounded resend queue: the latest state of up to `capacity` entries with the sequence number each was
// last sent in, over typed arrays (open-addressing index with linear probing and backward-shift deletion, a FIFO
// log in send order for eviction and range lookup). O(1) per record, no allocation per record.
import { RECORD_WORDS, RECORD_TEMPLATE_FLAG } from '../sync/record.ts';

const SLOT = RECORD_WORDS + 1; // record words, then its last sequence

export class ResendQueue {
  readonly capacity: number;
  private readonly pool: Uint32Array;
  private readonly index: Int32Array; // 0 = empty, else slot + 1
  private readonly mask: number;
  private readonly logSlot: Int32Array;
  private readonly logSeq: Float64Array;
  private readonly logMask: number;
  private logHead = 0; // oldest log position (counter)
  private logTail = 0; // next log position (counter)
  private readonly free: Int32Array;
  private nfree = 0;
  private used = 0;
  /** Live entries. */
  size = 0;
  /** Lowest sequence the queue still answers for completely. */
  floor = 1;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 1 << 24) throw new RangeError(`resend queue: capacity ${capacity}`);
    this.capacity = capacity;
    this.pool = new Uint32Array(capacity * SLOT);
    let b = 2;
    while (b < capacity * 2) b <<= 1;
    this.index = new Int32Array(b);
    this.mask = b - 1;
    let l = 2;
    while (l < capacity * 4) l <<= 1;
    this.logSlot = new Int32Array(l);
    this.logSeq = new Float64Array(l);
    this.logMask = l - 1;
    this.free = new Int32Array(capacity);
  }

  /** Remembers the record at `off` of `words` as sent in `seq` (sequences must not decrease). */
  put(words: Uint32Array, off: number, seq: number): void {
    let slot = this.find(words, off);
    if (slot < 0) {
      if (this.nfree > 0) slot = this.free[--this.nfree];
      else if (this.used < this.capacity) slot = this.used++;
      else slot = this.evictOldest();
      this.insert(words, off, slot);
      this.size++;
    }
    const base = slot * SLOT;
    for (let j = 0; j < RECORD_WORDS; j++) this.pool[base + j] = words[off + j];
    this.pool[base + RECORD_WORDS] = seq;
    if (this.logTail - this.logHead > this.logMask) this.dropLogHead();
    const p = this.logTail++ & this.logMask;
    this.logSlot[p] = slot;
    this.logSeq[p] = seq;
  }

  /** Every live entry last sent in a..b, as record words (oldest first). */
  range(a: number, b: number): Uint32Array {
    let lo = this.logHead;
    let hi = this.logTail;
    while (lo < hi) {
      const mid = lo + Math.floor((hi - lo) / 2);
      if (this.logSeq[mid & this.logMask] < a) lo = mid + 1;
      else hi = mid;
    }
    const slots: number[] = [];
    for (let i = lo; i < this.logTail; i++) {
      const p = i & this.logMask;
      const s = this.logSeq[p];
      if (s > b) break;
      const slot = this.logSlot[p];
      if (this.pool[slot * SLOT + RECORD_WORDS] === s && this.live(slot)) slots.push(slot);
    }
    const out = new Uint32Array(slots.length * RECORD_WORDS);
    for (let i = 0; i < slots.length; i++) out.set(this.pool.subarray(slots[i] * SLOT, slots[i] * SLOT + RECORD_WORDS), i * RECORD_WORDS);
    return out;
  }

  private live(slot: number): boolean {
    // a slot on the free list has seq 0 (cleared on eviction); live entries have seq ≥ 1
    return this.pool[slot * SLOT + RECORD_WORDS] !== 0;
  }

  /** Pops the oldest log record; a live one is evicted (its slot freed when `toFree`). */
  private popLog(toFree: boolean): number {
    for (;;) {
      const p = this.logHead++ & this.logMask;
      const slot = this.logSlot[p];
      const s = this.logSeq[p];
      if (this.pool[slot * SLOT + RECORD_WORDS] !== s) continue; // superseded by a later send
      this.remove(slot);
      if (s + 1 > this.floor) this.floor = s + 1;
      this.pool[slot * SLOT + RECORD_WORDS] = 0;
      this.size--;
      if (toFree) this.free[this.nfree++] = slot;
      return slot;
    }
  }

  private evictOldest(): number {
    return this.popLog(false);
  }

  /**
   * The log is full (it holds superseded positions too): frees its oldest position. When that one is still live
   * (every position live: only after long runs of distinct entries), the entry is evicted early; the floor
   * records it, so a NACK for it turns into a resync rather than a silent loss.
   */
  private dropLogHead(): void {
    const p = this.logHead & this.logMask;
    const slot = this.logSlot[p];
    if (this.pool[slot * SLOT + RECORD_WORDS] !== this.logSeq[p]) {
      this.logHead++;
      return;
    }
    this.popLog(true);
  }

  private hash(words: Uint32Array, off: number): number {
    const w0 = words[off];
    let h = Math.imul(words[off + 2] ^ 0x9e3779b9, 0x85ebca6b);
    h = Math.imul(h ^ words[off + 5] ^ (h >>> 15), 0xc2b2ae35);
    h = Math.imul(h ^ words[off + 3] ^ ((w0 >>> 8) & 0xff) ^ (h >>> 13), 0x27d4eb2f);
    return (h ^ (h >>> 16)) & this.mask;
  }

  private sameKey(words: Uint32Array, off: number, slot: number): boolean {
    const b = slot * SLOT;
    const p = this.pool;
    if (p[b + 2] !== words[off + 2] || p[b + 5] !== words[off + 5] || p[b + 3] !== words[off + 3]) return false;
    if (((p[b] ^ words[off]) & 0xff00) !== 0) return false;
    const ta = (p[b + 1] & RECORD_TEMPLATE_FLAG) !== 0;
    if (ta !== ((words[off + 1] & RECORD_TEMPLATE_FLAG) !== 0)) return false;
    return !ta || p[b + 7] === words[off + 7];
  }

  private find(words: Uint32Array, off: number): number {
    for (let i = this.hash(words, off); ; i = (i + 1) & this.mask) {
      const v = this.index[i];
      if (v === 0) return -1;
      if (this.sameKey(words, off, v - 1)) return v - 1;
    }
  }

  private insert(words: Uint32Array, off: number, slot: number): void {
    let i = this.hash(words, off);
    while (this.index[i] !== 0) i = (i + 1) & this.mask;
    this.index[i] = slot + 1;
  }

  /** Removes `slot` from the index (backward-shift deletion: no tombstones). */
  private remove(slot: number): void {
    const b = slot * SLOT;
    let i = this.hash(this.pool, b);
    while (this.index[i] !== slot + 1) i = (i + 1) & this.mask;
    let j = i;
    for (;;) {
      j = (j + 1) & this.mask;
      const v = this.index[j];
      if (v === 0) break;
      const k = this.hash(this.pool, (v - 1) * SLOT);
      // move v back to i if its home k is not cyclically in (i, j]
      if ((j > i && (k <= i || k > j)) || (j < i && k <= i && k > j)) {
        this.index[i] = v;
        i = j;
      }
    }
    this.index[i] = 0;
  }
}
