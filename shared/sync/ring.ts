// Single-producer single-consumer ring of sync records over an ArrayBuffer (normally a shared-memory segment
// mapped by shared/sys/shm.ts): the per-worker OUTBOUND ring (the worker writes its new/changed/closed entries,
// the cluster agent's feeder drains them) and INBOUND ring (the feeder writes peers' entries, the worker drains
// and installs them, so each shard keeps one writer).
//
// Layout at `byteOffset` (8-byte aligned), little-endian u32 words, version 1:
//   word 0 magic "TSSR"   1 version   2 capacity C (records, power of two)   3 record words (12)
//   word 8  head: records ever written (u32, wraps), written only by the producer
//   word 9  dropped: records refused because the ring was full (u32, wraps), producer only
//   word 16 tail: records ever consumed (u32, wraps), written only by the consumer
//   bytes [128, 128 + 48·C): C records of 12 words (see record.ts); record n lives in slot n mod C
// Head and tail sit on different 64-byte lines so the two sides do not share a written line.
//
// Protocol: the producer writes a record's words into slot head mod C, then publishes with Atomics.store(head+1);
// the consumer reads head with Atomics.load, reads records below it, then Atomics.store(tail). The producer
// never touches a slot the consumer has not released ((head − tail) < C), so a record is never overwritten while
// it is read: no torn reads, provided there is exactly one producer and one consumer (one process or thread per
// side) and stores are not reordered past the Atomics.store (true for V8 on x86-64 and arm64: Atomics are
// sequentially consistent fences). A full ring drops the new record and counts it: the worker never blocks.
import { RECORD_WORDS, writeRecord, type SyncRecord } from './record.ts';

/** "TSSR" as a little-endian u32. */
export const SYNC_RING_MAGIC = 0x52535354;
/** Layout version. */
export const SYNC_RING_VERSION = 1;
const HEADER_BYTES = 128;
const W_MAGIC = 0, W_VERSION = 1, W_CAPACITY = 2, W_RECORD_WORDS = 3, W_HEAD = 8, W_DROPPED = 9, W_TAIL = 16;

/** Error with a stable code for a ring that cannot be created or attached. */
export class SyncRingError extends Error {
  readonly code: 'bad-capacity' | 'bad-offset' | 'too-small' | 'bad-magic' | 'bad-version' | 'bad-layout';
  constructor(code: SyncRingError['code'], message: string) {
    super(`sync ring: ${message}`);
    this.name = 'SyncRingError';
    this.code = code;
  }
}

/** Figures of one ring. Counters are u32 and wrap. */
export interface SyncRingStats {
  capacity: number;
  /** Records waiting for the consumer. */
  used: number;
  written: number;
  consumed: number;
  dropped: number;
}

/** One SPSC ring. Each side makes its own instance over the same memory (create on one side, attach on the other). */
export class SyncRing {
  /** Records this ring holds. */
  readonly capacity: number;
  /** The record area: record slot s starts at word s · 12. */
  readonly words: Uint32Array;
  private readonly hdr: Int32Array;
  private readonly mask: number;

  private constructor(buffer: ArrayBufferLike, byteOffset: number, capacity: number) {
    this.capacity = capacity;
    this.mask = capacity - 1;
    this.hdr = new Int32Array(buffer, byteOffset, HEADER_BYTES / 4);
    this.words = new Uint32Array(buffer, byteOffset + HEADER_BYTES, capacity * RECORD_WORDS);
  }

  /** Bytes a ring of `capacity` records needs. */
  static bytes(capacity: number): number {
    return HEADER_BYTES + capacity * RECORD_WORDS * 4;
  }

  /**
   * Formats a ring at `byteOffset` of `buffer` (erasing what was there) and returns the producer's or consumer's
   * view. `capacity` must be a power of two between 2 and 2^24.
   */
  static create(buffer: ArrayBufferLike, byteOffset: number, capacity: number): SyncRing {
    if (!Number.isInteger(capacity) || capacity < 2 || capacity > 1 << 24 || (capacity & (capacity - 1)) !== 0) {
      throw new SyncRingError('bad-capacity', `capacity ${capacity} is not a power of two in [2, 2^24]`);
    }
    check(buffer, byteOffset, capacity);
    const r = new SyncRing(buffer, byteOffset, capacity);
    r.hdr.fill(0);
    r.hdr[W_CAPACITY] = capacity;
    r.hdr[W_RECORD_WORDS] = RECORD_WORDS;
    r.hdr[W_VERSION] = SYNC_RING_VERSION;
    Atomics.store(r.hdr, W_MAGIC, SYNC_RING_MAGIC);
    return r;
  }

  /** Attaches to a ring formatted by {@link create} (possibly in another process). Throws SyncRingError. */
  static attach(buffer: ArrayBufferLike, byteOffset: number): SyncRing {
    if (byteOffset % 8 !== 0 || byteOffset + HEADER_BYTES > buffer.byteLength) throw new SyncRingError('bad-offset', `no header at byte ${byteOffset}`);
    const h = new Int32Array(buffer, byteOffset, HEADER_BYTES / 4);
    if (Atomics.load(h, W_MAGIC) !== SYNC_RING_MAGIC) throw new SyncRingError('bad-magic', `no ring at byte ${byteOffset}`);
    if (h[W_VERSION] !== SYNC_RING_VERSION) throw new SyncRingError('bad-version', `version ${h[W_VERSION]}, expected ${SYNC_RING_VERSION}`);
    const capacity = h[W_CAPACITY];
    if (h[W_RECORD_WORDS] !== RECORD_WORDS || capacity < 2 || (capacity & (capacity - 1)) !== 0) throw new SyncRingError('bad-layout', `capacity ${capacity}, record words ${h[W_RECORD_WORDS]}`);
    check(buffer, byteOffset, capacity);
    return new SyncRing(buffer, byteOffset, capacity);
  }

  // ---- producer side -------------------------------------------------------------------------------------------

  /**
   * Producer: the word offset in {@link words} of the next free slot, or -1 when the ring is full (the record is
   * counted as dropped). Fill the 12 words, then call {@link commit}. No allocation.
   */
  reserve(): number {
    const head = this.hdr[W_HEAD];
    if (((head - Atomics.load(this.hdr, W_TAIL)) >>> 0) >= this.capacity) {
      this.hdr[W_DROPPED] = (this.hdr[W_DROPPED] + 1) | 0;
      return -1;
    }
    return (head & this.mask) * RECORD_WORDS;
  }

  /** Producer: publishes the slot returned by the last successful {@link reserve}. */
  commit(): void {
    Atomics.store(this.hdr, W_HEAD, (this.hdr[W_HEAD] + 1) | 0);
  }

  /** Producer: writes one record from numbers (the worker's path: no allocation). Returns false when dropped. */
  push(opProtoState: number, flagsShard: number, caddr: number, vaddr: number, daddr: number, ports: number, dport: number,
    fwmark: number, timeoutMs: number, remainingMs: number): boolean {
    const off = this.reserve();
    if (off < 0) return false;
    const w = this.words;
    w[off] = opProtoState;
    w[off + 1] = flagsShard;
    w[off + 2] = caddr;
    w[off + 3] = vaddr;
    w[off + 4] = daddr;
    w[off + 5] = ports;
    w[off + 6] = dport;
    w[off + 7] = fwmark;
    w[off + 8] = timeoutMs;
    w[off + 9] = remainingMs;
    w[off + 10] = 0;
    w[off + 11] = 0;
    this.commit();
    return true;
  }

  /** Producer: writes one record object (control plane). Returns false when dropped. */
  pushRecord(r: SyncRecord): boolean {
    const off = this.reserve();
    if (off < 0) return false;
    writeRecord(this.words, off, r);
    this.commit();
    return true;
  }

  /** Producer: copies `count` records from `src` (word offset `srcOff`); returns how many fit (the rest are dropped and counted). */
  pushWords(src: Uint32Array, srcOff: number, count: number): number {
    let n = 0;
    for (; n < count; n++) {
      const off = this.reserve();
      if (off < 0) {
        this.hdr[W_DROPPED] = (this.hdr[W_DROPPED] + (count - n - 1)) | 0;
        break;
      }
      this.words.set(src.subarray(srcOff + n * RECORD_WORDS, srcOff + (n + 1) * RECORD_WORDS), off);
      this.commit();
    }
    return n;
  }

  // ---- consumer side -------------------------------------------------------------------------------------------

  /** Consumer: records ready to read. */
  available(): number {
    return (Atomics.load(this.hdr, W_HEAD) - this.hdr[W_TAIL]) >>> 0;
  }

  /** Consumer: word offset of the i-th ready record (i < {@link available}). */
  offsetAt(i: number): number {
    return ((this.hdr[W_TAIL] + i) & this.mask) * RECORD_WORDS;
  }

  /** Consumer: releases the first `n` ready records to the producer. */
  release(n: number): void {
    Atomics.store(this.hdr, W_TAIL, (this.hdr[W_TAIL] + n) | 0);
  }

  /**
   * Consumer: copies up to `max` ready records into `dst` at word offset `dstOff`, releases them, and returns how
   * many were copied. Allocates two small subarray views per call (not per record): the consumer's batch path.
   * A worker draining its inbound ring per packet batch should loop with {@link offsetAt} instead.
   */
  drainInto(dst: Uint32Array, dstOff: number, max: number): number {
    const n = Math.min(this.available(), max);
    if (n === 0) return 0;
    const tailSlot = this.hdr[W_TAIL] & this.mask;
    const first = Math.min(n, this.capacity - tailSlot);
    dst.set(this.words.subarray(tailSlot * RECORD_WORDS, (tailSlot + first) * RECORD_WORDS), dstOff);
    if (first < n) dst.set(this.words.subarray(0, (n - first) * RECORD_WORDS), dstOff + first * RECORD_WORDS);
    this.release(n);
    return n;
  }

  /** Either side: the ring's figures. */
  stats(): SyncRingStats {
    const written = Atomics.load(this.hdr, W_HEAD) >>> 0;
    const consumed = Atomics.load(this.hdr, W_TAIL) >>> 0;
    return { capacity: this.capacity, used: (written - consumed) >>> 0, written, consumed, dropped: Atomics.load(this.hdr, W_DROPPED) >>> 0 };
  }
}

function check(buffer: ArrayBufferLike, byteOffset: number, capacity: number): void {
  if (!Number.isInteger(byteOffset) || byteOffset < 0 || byteOffset % 8 !== 0) throw new SyncRingError('bad-offset', `byte offset ${byteOffset} is not 8-byte aligned`);
  if (byteOffset + SyncRing.bytes(capacity) > buffer.byteLength) {
    throw new SyncRingError('too-small', `${capacity} records need ${SyncRing.bytes(capacity)} bytes at ${byteOffset}, buffer has ${buffer.byteLength}`);
  }
}

/**
 * Layout of one worker's sync segment: the OUTBOUND ring at byte 0, the INBOUND ring right after it. The caller
 * maps {@link workerSyncBytes} bytes (e.g. /dev/shm/tsvs-sync-<shard>) and creates or attaches both rings.
 */
export function workerSyncBytes(capacity: number): number {
  return 2 * SyncRing.bytes(capacity);
}

/** The two rings of a worker's sync segment. `create` formats them (the owner, tsvsd), else attaches. */
export function workerSyncRings(buffer: ArrayBufferLike, capacity: number, create: boolean): { outbound: SyncRing; inbound: SyncRing } {
  const second = SyncRing.bytes(capacity);
  return create
    ? { outbound: SyncRing.create(buffer, 0, capacity), inbound: SyncRing.create(buffer, second, capacity) }
    : { outbound: SyncRing.attach(buffer, 0), inbound: SyncRing.attach(buffer, second) };
}
