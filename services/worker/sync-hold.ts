// Frames held while their connection's synced entry may still be on its way (a cluster): a TCP segment in the middle
// of a flow that this director has no entry for — a flow that just moved here (takeover, an ECMP rehash in
// active-active) before the peer's record arrived. Preallocated FIFO of fixed slots; no allocation per frame.

/** Hold queue options. */
export interface SyncHoldOptions {
  /** Frames held at most. */
  slots: number;
  /** Bytes per slot (longer frames are not held). */
  slotBytes: number;
  /** How long a frame may wait for its entry, ms. */
  holdMs: number;
}

export const SYNC_HOLD_DEFAULTS: SyncHoldOptions = { slots: 256, slotBytes: 2048, holdMs: 200 };

/** FIFO of held frames: put at the tail, take from the head. */
export class SyncHold {
  readonly opts: SyncHoldOptions;
  /** Slot s's bytes start at s · slotBytes. */
  readonly buf: Uint8Array;
  private readonly len: Uint16Array;
  private readonly at: Float64Array;
  private readonly partial: Uint8Array;
  private head = 0;
  private count = 0;

  constructor(opts: SyncHoldOptions = SYNC_HOLD_DEFAULTS) {
    this.opts = opts;
    this.buf = new Uint8Array(opts.slots * opts.slotBytes);
    this.len = new Uint16Array(opts.slots);
    this.at = new Float64Array(opts.slots);
    this.partial = new Uint8Array(opts.slots);
  }

  get size(): number {
    return this.count;
  }

  /** Copies frame `src[off, off+len)` in; false when full or too long (the caller drops it). */
  put(src: Uint8Array, off: number, len: number, partial: boolean, now: number): boolean {
    const o = this.opts;
    if (this.count === o.slots || len > o.slotBytes) return false;
    const s = (this.head + this.count) % o.slots;
    const b = this.buf;
    const d = s * o.slotBytes;
    for (let i = 0; i < len; i++) b[d + i] = src[off + i];
    this.len[s] = len;
    this.at[s] = now;
    this.partial[s] = partial ? 1 : 0;
    this.count++;
    return true;
  }

  /**
   * Removes the oldest frame, copying it to `dst` (≥ slotBytes); returns its length, or -1 when empty. `meta[0]`
   * gets its hold time, `meta[1]` 1 when its checksum is partial.
   */
  take(dst: Uint8Array, meta: Float64Array): number {
    if (this.count === 0) return -1;
    const o = this.opts;
    const s = this.head;
    const n = this.len[s];
    const b = this.buf;
    const from = s * o.slotBytes;
    for (let i = 0; i < n; i++) dst[i] = b[from + i];
    meta[0] = this.at[s];
    meta[1] = this.partial[s];
    this.head = (s + 1) % o.slots;
    this.count--;
    return n;
  }
}
