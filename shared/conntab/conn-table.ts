// The IPVS connection table of one shard: IPv4 connections and persistence templates in one ArrayBuffer
// (entries, open-addressing index, timer wheel), so it can live in shared memory and be re-attached.
//
// Buffer layout (all words little-endian u32 through one Uint32Array; version 1):
//
//   bytes [0, 128)           header, HEADER_WORDS u32 (see H_* below); epoch is a float64 at byte 64
//   bytes [128, +48·C)       C entries of ENTRY_WORDS = 12 u32 (48 B), entry i at word 32 + 12·i:
//     0 caddr   1 vaddr (fwmark for fwmark templates)   2 daddr
//     3 cport | vport << 16        4 dport | proto << 16 | state << 24
//     5 flags (ConnFlag, u16) | service index << 16      6 dest id (NO_DEST = unbound)
//     7 expiry, ms since the table epoch, modulo 2^32    8 conn: controlling template index + 1 (0 = none)
//     9 template: n_control      10 wheel next / free-list next      11 wheel prev (C + slot = slot head)
//   then B = 2^indexBits u32     the index: 0 = empty, else tag << 24 | (entry + 1), tag = hash >>> 24
//   then W = 2^wheelBits u32     the wheel: head entry of each slot, NIL = 0xffffffff
//
// Index: linear probing over (proto, caddr, cport), the key IPVS hashes on, with B ≥ 2·C (load ≤ 0.5).
// Deletion is backward-shift (no tombstones, so probe lengths never degrade); entries never move, so
// template links and wheel links are stable entry indices. The 8-bit tag rejects most foreign buckets
// without touching the entry. At C = 2^20: 48 + 8 bytes per slot, ≈ 59 B per connection at 1,000,000 live.
// IPv6 would use a second entry format (three 16-byte addresses, 80 B stride) in its own table type with
// the same index/wheel code; the header's version and entry-stride words let attach() tell them apart.
//
// Timer wheel: W slots of 2^tickShift ms; an entry sits in the slot of its expiry (modulo one revolution);
// expire() walks slots from a cursor, expiring entries whose expiry ≤ now and leaving later revolutions.
// Entries are expired exactly at the first expire(now) with now ≥ expiry (the current slot is scanned too).
//
// Single writer per table. Every mutation sets the header's dirty word first and clears it last; attach()
// of a dirty buffer (the writer died mid-update) rebuilds index, wheel, free list and n_control from the
// live entries, which are the source of truth (an entry is live only after it is fully written).
import { ipv4ToText } from '../net/addr.ts';
import { clientShard } from '../util/flowhash.ts';
import type { ConnSnapshot, ProtocolName } from '../model/ipvs.ts';
import {
  defaultTimeouts, Dir, MAX_TIMEOUT_MS, NEW_CONN_TIMEOUT_MS, TCP_STATE_ACTIVE, TCP_STATE_COUNT, TCP_STATE_NAMES,
  TCP_STATE_TABLE, TEMPLATE_REARM_MS, TEMPLATE_STATE_NAMES, TemplateState, TcpState, tcpFlagRow, type ProtoTimeouts,
} from './tcp-state.ts';

/** Entry flag bits (u16), using the kernel's IP_VS_CONN_F_* values; LIVE is tsvs's own. */
export const ConnFlag = {
  /** Forwarding method mask; values are FwdCode (masq 0, local 1, tunnel 2, route 3, bypass 4). */
  FWD_MASK: 0x0007,
  /** Entry created by connection sync. */
  SYNC: 0x0020,
  /** No reply packets seen (non-NAT dest); input packets use the INPUT_ONLY rows until one is seen. */
  NOOUTPUT: 0x0080,
  /** Counted as InActConn (not in an active TCP state). Every new connection starts with it. */
  INACTIVE: 0x0100,
  /** Persistence template, not a connection. */
  TEMPLATE: 0x1000,
  /** One-packet scheduling (`-o`): the caller removes the entry right after transmit. */
  ONE_PACKET: 0x2000,
  /** Slot holds a live entry (internal; set last on insert, cleared first on removal). */
  LIVE: 0x8000,
} as const;

/** Dest id of an entry bound to no dest (not counted anywhere). */
export const NO_DEST = 0xffffffff;
/**
 * The one per-dest connection-count layout (shared/fwd/counters.ts sizes its segment from it): Int32 columns
 * per dest in a worker's counter row, `row[dest * ConnCount.width + ConnCount.X]`. Classic IPVS counting
 * (kernels before the 2026 `totalconns` change): active and inactive are separate counters, a connection is in
 * exactly one of them; templates count only in persist. Each worker writes its own row; readers sum the rows.
 */
export const ConnCount = { active: 0, inactive: 1, persist: 2, width: 3 } as const;
/** Largest capacity one table can have: entry indices + 1 must fit the index word's 24 bits. */
export const MAX_CAPACITY = 0xfffffe;

/** Header magic, "TSCT" as a little-endian u32. */
export const CONNTAB_MAGIC = 0x54435354;
/** Layout version written to and required by the header. */
export const CONNTAB_VERSION = 1;

const HEADER_WORDS = 32;
const ENTRY_WORDS = 12;
const NIL = 0xffffffff;
const IDX_MASK = 0xffffff;

const H_MAGIC = 0, H_VERSION = 1, H_CAPACITY = 2, H_INDEX_BITS = 3, H_WHEEL_BITS = 4, H_TICK_SHIFT = 5,
  H_LIVE = 6, H_HWM = 7, H_FREE = 8, H_CURSOR = 9, H_INSERT_FAIL = 10, H_TEMPLATES = 11, H_EXPIRED = 12,
  H_REARMED = 13, H_DIRTY = 14, H_BAD_DEST = 15, H_BYTES = 18, H_ENTRY_WORDS = 19, H_EVICTED = 20;
const H_EPOCH_F64 = 8;

const E_CADDR = 0, E_VADDR = 1, E_DADDR = 2, E_PORTS = 3, E_DPS = 4, E_FLAGS = 5, E_DEST = 6, E_EXPIRES = 7,
  E_CTL = 8, E_NCTL = 9, E_NEXT = 10, E_PREV = 11;

const TCP = 6;
const UDP = 17;

/** Options of {@link ConnTable.create}. */
export interface ConnTableOptions {
  /** Table epoch in ms on the caller's clock (expiries are stored relative to it); default 0. */
  epochMs?: number;
  /** log2 of the wheel slot count; default clamp(ceil(log2 capacity), 6, 14). */
  wheelBits?: number;
  /** log2 of the wheel tick in ms; default 6 (64 ms; 2^14 slots then span 1048 s). */
  tickShift?: number;
}

/** Options of both create() and attach(): what is not stored in the buffer. */
export interface ConnTableRuntime {
  /** Per-state timeouts; default {@link defaultTimeouts}. Shared by reference; change between batches. */
  timeouts?: ProtoTimeouts;
  /** This worker's counter row (`[active, inactive, persist]` per dest id), or null to count nothing. */
  counters?: Int32Array | null;
  /**
   * attach() only: a reader beside a live writer (tsvsd listing a worker's shard). Never rebuilds a dirty
   * table; the caller must use only lookups, accessors and entries(), which do not write.
   */
  readOnly?: boolean;
  /**
   * The caller passes *table time*: ms since the table's epoch ({@link ConnTable.epochMs}), not its clock's ms.
   * Table time stays a small integer for 24 days, which V8 passes between functions without boxing it (a clock
   * in ms since 1970 is a double, boxed on every non-inlined call: an allocation per packet). Same results.
   */
  tableTime?: boolean;
}

/** Table-wide figures read from the header. */
export interface ConnTableStats {
  capacity: number;
  live: number;
  templates: number;
  /** Inserts refused because the table was full. */
  insertFails: number;
  /** Entries freed by expire(). */
  expired: number;
  /** Template expiries postponed by 60 s because connections still depended on them. */
  rearmed: number;
  /** Counter updates skipped because the dest id was outside the counter row. */
  badDest: number;
  /** Embryonic connections freed by evictEmbryonic() to make room. */
  evicted: number;
  /** Bytes of the whole buffer. */
  bytes: number;
  indexBuckets: number;
  wheelSlots: number;
  tickMs: number;
}

/** One live entry for the control plane (`ipvsadm -L -c`), ConnSnapshot plus table internals. */
export interface ConnEntryInfo extends ConnSnapshot {
  /** Entry index in the table. */
  index: number;
  proto: number;
  flags: number;
  destId: number;
  service: number;
  /** Entry index of the controlling template, -1 for none. */
  control: number;
  /** Connections controlled by this template (0 for connections). */
  nControl: number;
  /** Remaining lifetime in ms (negative when overdue). */
  expiresMs: number;
}

/** Bytes a table of `capacity` entries needs with the given options (header + entries + index + wheel). */
export function conntabBytes(capacity: number, opts: ConnTableOptions = {}): number {
  const g = geometry(capacity, opts);
  return (HEADER_WORDS + capacity * ENTRY_WORDS + (1 << g.indexBits) + (1 << g.wheelBits)) * 4;
}

/**
 * The shard of a flow: clientShard (the packet fanout's function) of the client address (host-order u32)
 * and port. Both directions of a NAT flow land on the same worker, hence the same table.
 */
export function shardOf(caddr: number, cport: number, n: number): number {
  return clientShard(caddr >>> 0, cport, n);
}

/**
 * Index hash of the IPVS connection key (proto, caddr, cport): murmur3's finalizer, independent of the
 * shard hash (every entry of a shard shares `clientHash % n`, so the index must not use those bits).
 */
export function connKeyHash(proto: number, caddr: number, cport: number): number {
  let h = (caddr ^ Math.imul(cport | (proto << 16), 0x85ebca6b)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Connection flags a new connection to a dest with forwarding method `fwd` (FwdCode) starts with, as the
 * kernel's dest->conn_flags: INACTIVE, the method, and NOOUTPUT for every method but masq.
 */
export function destConnFlags(fwd: number): number {
  return ConnFlag.INACTIVE | (fwd & ConnFlag.FWD_MASK) | (fwd === 0 ? 0 : ConnFlag.NOOUTPUT);
}

function geometry(capacity: number, opts: ConnTableOptions): { indexBits: number; wheelBits: number; tickShift: number } {
  let indexBits = 4;
  while (1 << indexBits < capacity * 2) indexBits++;
  const log2c = Math.ceil(Math.log2(Math.max(capacity, 2)));
  const wheelBits = opts.wheelBits ?? Math.min(14, Math.max(6, log2c));
  const tickShift = opts.tickShift ?? 6;
  return { indexBits, wheelBits, tickShift };
}

/**
 * One shard's connection table. No allocation on insert, lookup, packet or expire; lookups return an entry
 * index (≥ 0) or -1, and accessors read fields by index. Entry indices stay valid until the entry is
 * removed or expires; afterwards the slot may be reused by another connection.
 */
export class ConnTable {
  /** The buffer holding all state (header, entries, index, wheel). */
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  /** Entry capacity (fixed). */
  readonly capacity: number;
  /** Timeouts in use; replace the whole object (or mutate it) between batches. */
  timeouts: ProtoTimeouts;
  /** Counter row of the worker owning the table, or null. */
  counters: Int32Array | null;

  private readonly u: Uint32Array;
  private readonly f64: Float64Array;
  private readonly epoch: number;
  private readonly idxOff: number;
  private readonly idxMask: number;
  private readonly whOff: number;
  private readonly whMask: number;
  private readonly tickShift: number;
  private readonly tick: number;
  /**
   * The embryonic queue (process memory, not in the buffer): every TCP connection inserted, oldest first, as
   * (entry index, key hash) so that a slot reused by another connection is not mistaken for the old one.
   * {@link evictEmbryonic} takes from its head; when it is full the oldest record is overwritten.
   */
  private readonly embE: Uint32Array;
  private readonly embK: Uint32Array;
  private readonly embMask: number;
  private embHead = 0;
  private embTail = 0;

  private constructor(buffer: ArrayBuffer | SharedArrayBuffer, rt: ConnTableRuntime) {
    this.buffer = buffer;
    this.u = new Uint32Array(buffer);
    this.f64 = new Float64Array(buffer, 0, HEADER_WORDS / 2);
    const u = this.u;
    this.capacity = u[H_CAPACITY];
    this.epoch = rt.tableTime ? 0 : this.f64[H_EPOCH_F64];
    this.idxOff = HEADER_WORDS + this.capacity * ENTRY_WORDS;
    this.idxMask = (1 << u[H_INDEX_BITS]) - 1;
    this.whOff = this.idxOff + (1 << u[H_INDEX_BITS]);
    this.whMask = (1 << u[H_WHEEL_BITS]) - 1;
    this.tickShift = u[H_TICK_SHIFT];
    this.tick = 1 << this.tickShift;
    this.timeouts = rt.timeouts ?? defaultTimeouts();
    this.counters = rt.counters ?? null;
    let q = 16;
    while (q < this.capacity) q *= 2;
    this.embE = new Uint32Array(rt.readOnly ? 1 : q);
    this.embK = new Uint32Array(rt.readOnly ? 1 : q);
    this.embMask = rt.readOnly ? 0 : q - 1;
  }

  /**
   * Allocate a table for `capacity` entries (1..MAX_CAPACITY) in a new ArrayBuffer, or in `buffer` if given
   * (it must be zero-filled and at least conntabBytes() long, e.g. a fresh shared-memory mapping).
   * Throws RangeError on a bad capacity, wheel/tick option or buffer size (control plane only).
   */
  static create(capacity: number, opts: ConnTableOptions & ConnTableRuntime = {}, buffer?: ArrayBuffer | SharedArrayBuffer): ConnTable {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > MAX_CAPACITY) throw new RangeError(`conntab create: capacity ${capacity} not in 1..${MAX_CAPACITY}`);
    const g = geometry(capacity, opts);
    if (g.wheelBits < 1 || g.wheelBits > 20 || g.tickShift < 0 || g.tickShift > 16) throw new RangeError('conntab create: wheelBits must be 1..20 and tickShift 0..16');
    const bytes = conntabBytes(capacity, opts);
    const buf = buffer ?? new ArrayBuffer(bytes);
    if (buf.byteLength < bytes) throw new RangeError(`conntab create: buffer of ${buf.byteLength} bytes, need ${bytes}`);
    const u = new Uint32Array(buf);
    u[H_VERSION] = CONNTAB_VERSION;
    u[H_CAPACITY] = capacity;
    u[H_INDEX_BITS] = g.indexBits;
    u[H_WHEEL_BITS] = g.wheelBits;
    u[H_TICK_SHIFT] = g.tickShift;
    u[H_FREE] = NIL;
    u[H_BYTES] = bytes;
    u[H_ENTRY_WORDS] = ENTRY_WORDS;
    new Float64Array(buf, 0, HEADER_WORDS / 2)[H_EPOCH_F64] = opts.epochMs ?? 0;
    const whOff = HEADER_WORDS + capacity * ENTRY_WORDS + (1 << g.indexBits);
    u.fill(NIL, whOff, whOff + (1 << g.wheelBits));
    u[H_MAGIC] = CONNTAB_MAGIC;
    return new ConnTable(buf, opts);
  }

  /**
   * Adopt an existing table buffer (a restarted worker's shared-memory segment, or a copy). Validates magic,
   * version, entry stride and sizes (RangeError otherwise); if the previous writer died mid-update, rebuilds
   * the derived structures from the live entries. The counter row is not rebuilt: use {@link recount}.
   */
  static attach(buffer: ArrayBuffer | SharedArrayBuffer, rt: ConnTableRuntime = {}): ConnTable {
    if (buffer.byteLength < HEADER_WORDS * 4) throw new RangeError('conntab attach: buffer shorter than the header');
    const u = new Uint32Array(buffer, 0, HEADER_WORDS);
    if (u[H_MAGIC] !== CONNTAB_MAGIC) throw new RangeError('conntab attach: bad magic');
    if (u[H_VERSION] !== CONNTAB_VERSION) throw new RangeError(`conntab attach: layout version ${u[H_VERSION]}, expected ${CONNTAB_VERSION}`);
    if (u[H_ENTRY_WORDS] !== ENTRY_WORDS) throw new RangeError(`conntab attach: entry stride ${u[H_ENTRY_WORDS]} words, expected ${ENTRY_WORDS}`);
    const cap = u[H_CAPACITY];
    const bytes = (HEADER_WORDS + cap * ENTRY_WORDS + 2 ** u[H_INDEX_BITS] + 2 ** u[H_WHEEL_BITS]) * 4;
    if (cap < 1 || cap > MAX_CAPACITY || u[H_INDEX_BITS] > 25 || u[H_WHEEL_BITS] > 20 || 2 ** u[H_INDEX_BITS] < cap * 2 || u[H_BYTES] !== bytes || buffer.byteLength < bytes || u[H_HWM] > cap) {
      throw new RangeError('conntab attach: header geometry does not match the buffer');
    }
    const t = new ConnTable(buffer, rt);
    if (u[H_DIRTY] !== 0 && !rt.readOnly) t.rebuild();
    return t;
  }

  // ---- clock ----

  /** The table's epoch on the creator's clock (ms); table time is the clock minus this. */
  get epochMs(): number {
    return this.f64[H_EPOCH_F64];
  }

  /** Caller's clock (ms) → table time (u32 ms since epoch, modulo 2^32). */
  private rel(nowMs: number): number {
    return (nowMs - this.epoch) >>> 0;
  }

  // ---- lookups (no allocation) ----

  /**
   * Connection for a client→director packet: (proto, caddr:cport → vaddr:vport). Addresses are host-order
   * u32. Templates never match. Returns the entry index or -1.
   */
  lookupIn(proto: number, caddr: number, cport: number, vaddr: number, vport: number): number {
    const u = this.u;
    caddr >>>= 0;
    vaddr >>>= 0;
    const ports = (cport | (vport << 16)) >>> 0;
    const h = connKeyHash(proto, caddr, cport);
    const tag = h >>> 24;
    const mask = this.idxMask;
    const off = this.idxOff;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const w = u[off + i];
      if (w === 0) return -1;
      if (w >>> 24 !== tag) continue;
      const e = (w & IDX_MASK) - 1;
      const b = HEADER_WORDS + e * ENTRY_WORDS;
      if (u[b + E_CADDR] === caddr && u[b + E_PORTS] === ports && u[b + E_VADDR] === vaddr && ((u[b + E_DPS] >>> 16) & 0xff) === proto && (u[b + E_FLAGS] & ConnFlag.TEMPLATE) === 0) return e;
    }
  }

  /**
   * Connection for a NAT reply (daddr:dport → caddr:cport): the reply's destination is the client, its
   * source the real server. Hashes on the client side like lookupIn. Templates never match. Entry or -1.
   */
  lookupOut(proto: number, caddr: number, cport: number, daddr: number, dport: number): number {
    const u = this.u;
    caddr >>>= 0;
    daddr >>>= 0;
    const h = connKeyHash(proto, caddr, cport);
    const tag = h >>> 24;
    const mask = this.idxMask;
    const off = this.idxOff;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const w = u[off + i];
      if (w === 0) return -1;
      if (w >>> 24 !== tag) continue;
      const e = (w & IDX_MASK) - 1;
      const b = HEADER_WORDS + e * ENTRY_WORDS;
      const dps = u[b + E_DPS];
      if (u[b + E_CADDR] === caddr && (u[b + E_PORTS] & 0xffff) === cport && u[b + E_DADDR] === daddr && (dps & 0xffff) === dport && ((dps >>> 16) & 0xff) === proto && (u[b + E_FLAGS] & ConnFlag.TEMPLATE) === 0) return e;
    }
  }

  /**
   * Persistence template by its key (proto, caddr & netmask, cport 0, vaddr or fwmark, vport); for fwmark
   * services proto is 0 (IPPROTO_IP) and vaddr the mark. Entry index or -1.
   */
  lookupTemplate(proto: number, caddrMasked: number, vaddrOrMark: number, vport: number): number {
    const u = this.u;
    caddrMasked >>>= 0;
    vaddrOrMark >>>= 0;
    const ports = (vport << 16) >>> 0;
    const h = connKeyHash(proto, caddrMasked, 0);
    const tag = h >>> 24;
    const mask = this.idxMask;
    const off = this.idxOff;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const w = u[off + i];
      if (w === 0) return -1;
      if (w >>> 24 !== tag) continue;
      const e = (w & IDX_MASK) - 1;
      const b = HEADER_WORDS + e * ENTRY_WORDS;
      if (u[b + E_CADDR] === caddrMasked && u[b + E_PORTS] === ports && u[b + E_VADDR] === vaddrOrMark && ((u[b + E_DPS] >>> 16) & 0xff) === proto && (u[b + E_FLAGS] & ConnFlag.TEMPLATE) !== 0) return e;
    }
  }

  // ---- inserts ----

  /**
   * New connection in state NONE (TCP) / UDP, expiring in 3 s until its first packet's transition
   * ({@link onPacket}). `flags`: ConnFlag bits, normally destConnFlags(fwd) plus ONE_PACKET/SYNC; INACTIVE
   * is always set (every new connection is counted InActConn), TEMPLATE is stripped. `destId` NO_DEST makes
   * an unbound, uncounted entry. Does not check for an existing entry with the same key (look up first).
   * Returns the entry index, or -1 when the table is full (counted in stats().insertFails; nothing changes).
   */
  insert(proto: number, caddr: number, cport: number, vaddr: number, vport: number, daddr: number, dport: number, flags: number, destId: number, service: number, nowMs: number): number {
    const e = this.alloc();
    if (e < 0) return -1;
    this.syncCursor(this.rel(nowMs));
    this.fill(e, proto, caddr, cport, vaddr, vport, daddr, dport, ((flags & ~(ConnFlag.TEMPLATE | ConnFlag.LIVE)) | ConnFlag.INACTIVE) & 0xffff, destId, service, this.rel(nowMs) + NEW_CONN_TIMEOUT_MS);
    this.count(destId, ConnCount.inactive, 1);
    this.u[H_DIRTY] = 0;
    if (proto === TCP && this.embMask !== 0) {
      const t = this.embTail;
      this.embE[t & this.embMask] = e;
      this.embK[t & this.embMask] = connKeyHash(proto, caddr, cport);
      this.embTail = (t + 1) >>> 0;
      if (((this.embTail - this.embHead) >>> 0) > this.embMask + 1) this.embHead = (this.embHead + 1) >>> 0;
    }
    return e;
  }

  /**
   * Frees the oldest embryonic connection (IPVS's drop_entry idea, aimed): a TCP connection still in NONE or
   * SYN_RECV (no handshake completed) and not controlled by a template, taken oldest first from the queue of
   * inserted TCP connections. A SYN flood's entries age out first, while a
   * legitimate handshake, which completes within a round trip, is rarely the oldest. Established connections
   * are never evicted here. Returns the freed entry index, or -1 when no embryonic entry was found (then the
   * caller refuses the new connection). No allocation.
   *
   * Every record is examined once (it leaves the queue), so the cost is O(1) per inserted connection however many
   * are skipped in one call. The search goes as far as it must: a budget of 64 records refused SYNs while evictable
   * entries waited behind a run of records whose entries had expired (the lab's 20 k SYN/s flood under the pressure
   * timeout: thousands of them, 409 SYNs refused in 15 s).
   */
  evictEmbryonic(): number {
    const u = this.u;
    while (this.embHead !== this.embTail) {
      const i = this.embHead & this.embMask;
      this.embHead = (this.embHead + 1) >>> 0;
      const e = this.embE[i];
      if (!this.isLive(e)) continue;
      const b = HEADER_WORDS + e * ENTRY_WORDS;
      const dps = u[b + E_DPS];
      const st = dps >>> 24;
      if ((u[b + E_FLAGS] & ConnFlag.TEMPLATE) !== 0 || ((dps >>> 16) & 0xff) !== TCP || (st !== TcpState.NONE && st !== TcpState.SYN_RECV) || u[b + E_CTL] !== 0) continue;
      if (this.home(e) !== this.embK[i]) continue;
      u[H_DIRTY] = 1;
      this.free(e);
      u[H_EVICTED]++;
      u[H_DIRTY] = 0;
      return e;
    }
    return -1;
  }

  /**
   * New persistence template with key (proto, caddrMasked, cport 0, vaddrOrMark, vport) pointing at
   * daddr:dport, expiring after `timeoutMs` (the service's `-p` timeout). State NONE; counted in the dest's
   * PersistConn. `flags`: the dest's conn flags (fwd method); TEMPLATE is added. Entry index or -1 when full.
   */
  insertTemplate(proto: number, caddrMasked: number, vaddrOrMark: number, vport: number, daddr: number, dport: number, flags: number, destId: number, service: number, timeoutMs: number, nowMs: number): number {
    const e = this.alloc();
    if (e < 0) return -1;
    this.syncCursor(this.rel(nowMs));
    this.fill(e, proto, caddrMasked, 0, vaddrOrMark, vport, daddr, dport, ((flags & ~ConnFlag.LIVE) | ConnFlag.TEMPLATE) & 0xffff, destId, service, this.rel(nowMs) + Math.min(timeoutMs, MAX_TIMEOUT_MS));
    this.count(destId, ConnCount.persist, 1);
    this.u[H_TEMPLATES]++;
    this.u[H_DIRTY] = 0;
    return e;
  }

  /**
   * Link connection `conn` to its controlling template `tmpl` (ip_vs_control_add): the template's n_control
   * grows, and it will not expire while n_control > 0. Replaces an earlier link. False (no change) if either
   * index is not a live entry of the right kind.
   */
  control(conn: number, tmpl: number): boolean {
    if (!this.isLive(conn) || !this.isLive(tmpl)) return false;
    const u = this.u;
    const b = HEADER_WORDS + conn * ENTRY_WORDS;
    const t = HEADER_WORDS + tmpl * ENTRY_WORDS;
    if ((u[b + E_FLAGS] & ConnFlag.TEMPLATE) !== 0 || (u[t + E_FLAGS] & ConnFlag.TEMPLATE) === 0) return false;
    u[H_DIRTY] = 1;
    const old = u[b + E_CTL];
    if (old !== 0) u[HEADER_WORDS + (old - 1) * ENTRY_WORDS + E_NCTL]--;
    u[b + E_CTL] = tmpl + 1;
    u[t + E_NCTL]++;
    u[H_DIRTY] = 0;
    return true;
  }

  // ---- per packet ----

  /**
   * A packet of connection `e` was forwarded: run the protocol's state transition and re-arm the entry's
   * timer (`set_tcp_state` / `udp_state_transition` + ip_vs_conn_put). `dir`: Dir.INPUT for client→director,
   * Dir.OUTPUT for replies. TCP: NOOUTPUT sends INPUT packets through the INPUT_ONLY rows and is cleared by
   * the first OUTPUT packet; flags with no RST/SYN/FIN/ACK give CLOSE; crossing the active/inactive line
   * moves the dest's counters (bound entries only); reaching ESTABLISHED marks the controlling template
   * ASSURED. UDP (and any other protocol): timeout refreshed to the UDP value; an OUTPUT packet marks the
   * template ASSURED. Returns the new state. Never throws; an index that is not a live connection returns -1.
   */
  onPacket(e: number, dir: number, tcpFlags: number, nowMs: number): number {
    if (!this.isLive(e)) return -1;
    const u = this.u;
    const b = HEADER_WORDS + e * ENTRY_WORDS;
    let flags = u[b + E_FLAGS];
    if ((flags & ConnFlag.TEMPLATE) !== 0) return -1;
    u[H_DIRTY] = 1;
    const dps = u[b + E_DPS];
    const proto = (dps >>> 16) & 0xff;
    let state = dps >>> 24;
    let timeout: number;
    if (proto === TCP) {
      let off = dir === Dir.OUTPUT ? 4 : dir === Dir.INPUT_ONLY ? 8 : 0;
      if ((flags & ConnFlag.NOOUTPUT) !== 0) {
        if (off === 4) flags &= ~ConnFlag.NOOUTPUT;
        else off = 8;
      }
      const row = tcpFlagRow(tcpFlags);
      const ns = row < 0 || state >= TCP_STATE_COUNT ? TcpState.CLOSE : TCP_STATE_TABLE[(off + row) * TCP_STATE_COUNT + state];
      if (ns !== state) {
        const dest = u[b + E_DEST];
        if (dest !== NO_DEST) {
          if ((flags & ConnFlag.INACTIVE) === 0 && TCP_STATE_ACTIVE[ns] === 0) {
            this.count(dest, ConnCount.active, -1);
            this.count(dest, ConnCount.inactive, 1);
            flags |= ConnFlag.INACTIVE;
          } else if ((flags & ConnFlag.INACTIVE) !== 0 && TCP_STATE_ACTIVE[ns] === 1) {
            this.count(dest, ConnCount.active, 1);
            this.count(dest, ConnCount.inactive, -1);
            flags &= ~ConnFlag.INACTIVE;
          }
        }
        if (ns === TcpState.ESTABLISHED) this.assure(u[b + E_CTL]);
        state = ns;
        u[b + E_DPS] = ((dps & 0xffffff) | (ns << 24)) >>> 0;
      }
      u[b + E_FLAGS] = flags;
      timeout = this.timeouts.tcp[state];
    } else {
      if (dir === Dir.OUTPUT) this.assure(u[b + E_CTL]);
      timeout = this.timeouts.udp;
    }
    const now = this.rel(nowMs);
    this.syncCursor(now);
    this.relink(e, (now + Math.min(timeout, MAX_TIMEOUT_MS)) >>> 0);
    u[H_DIRTY] = 0;
    return state;
  }

  /**
   * Re-arm entry `e` to expire `timeoutMs` after `nowMs` (ip_vs_conn_put; e.g. a template reused by a new
   * connection gets the service's persistence timeout again). False if `e` is not live.
   */
  rearm(e: number, nowMs: number, timeoutMs: number): boolean {
    if (!this.isLive(e)) return false;
    this.u[H_DIRTY] = 1;
    const now = this.rel(nowMs);
    this.syncCursor(now);
    this.relink(e, (now + Math.min(Math.max(timeoutMs, 0), MAX_TIMEOUT_MS)) >>> 0);
    this.u[H_DIRTY] = 0;
    return true;
  }

  /**
   * Set a connection's state directly (e.g. from a sync record), moving the active/inactive counters as a
   * transition would; the timer is re-armed with the state's timeout. TCP states 0..10 only; false otherwise.
   */
  setState(e: number, state: number, nowMs: number): boolean {
    if (!this.isLive(e) || this.isTemplate(e) || state < 0 || state >= TCP_STATE_COUNT) return false;
    const u = this.u;
    const b = HEADER_WORDS + e * ENTRY_WORDS;
    const dps = u[b + E_DPS];
    if (((dps >>> 16) & 0xff) !== TCP) return false;
    u[H_DIRTY] = 1;
    let flags = u[b + E_FLAGS];
    const dest = u[b + E_DEST];
    const active = TCP_STATE_ACTIVE[state] === 1;
    if (dest !== NO_DEST && active === ((flags & ConnFlag.INACTIVE) !== 0)) {
      this.count(dest, ConnCount.active, active ? 1 : -1);
      this.count(dest, ConnCount.inactive, active ? -1 : 1);
      flags ^= ConnFlag.INACTIVE;
    }
    u[b + E_FLAGS] = flags;
    u[b + E_DPS] = ((dps & 0xffffff) | (state << 24)) >>> 0;
    const now = this.rel(nowMs);
    this.syncCursor(now);
    this.relink(e, (now + Math.min(this.timeouts.tcp[state], MAX_TIMEOUT_MS)) >>> 0);
    u[H_DIRTY] = 0;
    return true;
  }

  /**
   * Invalidate a template so it no longer matches (ip_vs_check_template: vport and dport become 0xffff);
   * it stays until it expires. False if `e` is not a live template.
   */
  invalidateTemplate(e: number): boolean {
    if (!this.isLive(e) || !this.isTemplate(e)) return false;
    const u = this.u;
    const b = HEADER_WORDS + e * ENTRY_WORDS;
    u[b + E_PORTS] = (u[b + E_PORTS] | 0xffff0000) >>> 0;
    u[b + E_DPS] = (u[b + E_DPS] | 0xffff) >>> 0;
    return true;
  }

  /**
   * Remove entry `e` now (one-packet connections after transmit, conn reuse, flush): counters, template link
   * and index are updated, the slot is freed. A template that still controls connections is not removed
   * (returns false), so links never dangle; false also if `e` is not live.
   */
  remove(e: number): boolean {
    if (!this.isLive(e)) return false;
    const b = HEADER_WORDS + e * ENTRY_WORDS;
    if ((this.u[b + E_FLAGS] & ConnFlag.TEMPLATE) !== 0 && this.u[b + E_NCTL] !== 0) return false;
    this.u[H_DIRTY] = 1;
    this.free(e);
    this.u[H_DIRTY] = 0;
    return true;
  }

  /**
   * Expire due entries: walks the wheel from its cursor up to `nowMs`, examining at most `budget` entries and
   * slots per call (so a batch never stalls; call again next batch for the rest). A due connection is
   * passed to `onExpire` (before its slot is freed; the callback may read but must not mutate the table) and
   * freed, decrementing its template's n_control. A due template with n_control > 0 is re-armed for 60 s
   * from now instead. Returns the number of entries freed.
   */
  expire(nowMs: number, budget = 4096, onExpire?: (e: number) => void): number {
    const u = this.u;
    const now = this.rel(nowMs);
    const shift = this.tickShift;
    const tick = this.tick;
    const nowSlot = ((now >>> shift) << shift) >>> 0;
    u[H_DIRTY] = 1;
    this.syncCursor(now);
    let cursor = u[H_CURSOR];
    let work = 0;
    let freed = 0;
    const wh = this.whOff;
    for (;;) {
      const s = (cursor >>> shift) & this.whMask;
      let e = u[wh + s];
      while (e !== NIL && work < budget) {
        const b = HEADER_WORDS + e * ENTRY_WORDS;
        const next = u[b + E_NEXT];
        work++;
        if (((now - u[b + E_EXPIRES]) | 0) >= 0) {
          if ((u[b + E_FLAGS] & ConnFlag.TEMPLATE) !== 0 && u[b + E_NCTL] !== 0) {
            this.relink(e, (now + TEMPLATE_REARM_MS) >>> 0);
            u[H_REARMED]++;
          } else {
            if (onExpire !== undefined) onExpire(e);
            this.free(e);
            u[H_EXPIRED]++;
            freed++;
          }
        }
        e = next;
      }
      if (e !== NIL || cursor === nowSlot || work >= budget) break;
      cursor = (cursor + tick) >>> 0;
      work++;
    }
    u[H_CURSOR] = cursor;
    u[H_DIRTY] = 0;
    return freed;
  }

  // ---- accessors (no allocation) ----

  /** Whether `e` is an index of a live entry. */
  isLive(e: number): boolean {
    return e >= 0 && e < this.u[H_HWM] && (this.u[HEADER_WORDS + e * ENTRY_WORDS + E_FLAGS] & ConnFlag.LIVE) !== 0;
  }
  /** Whether live entry `e` is a persistence template. */
  isTemplate(e: number): boolean {
    return (this.u[HEADER_WORDS + e * ENTRY_WORDS + E_FLAGS] & ConnFlag.TEMPLATE) !== 0;
  }
  /** IP protocol number (0 for fwmark templates). */
  proto(e: number): number {
    return (this.u[HEADER_WORDS + e * ENTRY_WORDS + E_DPS] >>> 16) & 0xff;
  }
  /** State: TcpState for TCP, 0 (UDP NORMAL) for UDP, TemplateState for templates. */
  state(e: number): number {
    return this.u[HEADER_WORDS + e * ENTRY_WORDS + E_DPS] >>> 24;
  }
  /** ConnFlag bits. */
  flags(e: number): number {
    return this.u[HEADER_WORDS + e * ENTRY_WORDS + E_FLAGS] & 0xffff;
  }
  /** Forwarding method (FwdCode). */
  fwd(e: number): number {
    return this.u[HEADER_WORDS + e * ENTRY_WORDS + E_FLAGS] & ConnFlag.FWD_MASK;
  }
  /** Client address (host-order u32; masked for templates). */
  caddr(e: number): number {
    return this.u[HEADER_WORDS + e * ENTRY_WORDS + E_CADDR];
  }
  /** Client port (0 for templates). */
  cport(e: number): number {
    return this.u[HEADER_WORDS + e * ENTRY_WORDS + E_PORTS] & 0xffff;
  }
  /** Virtual address, or the fwmark for fwmark templates. */
  vaddr(e: number): number {
    return this.u[HEADER_WORDS + e * ENTRY_WORDS + E_VADDR];
  }
  /** Virtual port (0 for port-0, FTP and fwmark templates; 0xffff once invalidated). */
  vport(e: number): number {
    return this.u[HEADER_WORDS + e * ENTRY_WORDS + E_PORTS] >>> 16;
  }
  /** Real server address (host-order u32). */
  daddr(e: number): number {
    return this.u[HEADER_WORDS + e * ENTRY_WORDS + E_DADDR];
  }
  /** Real server port. */
  dport(e: number): number {
    return this.u[HEADER_WORDS + e * ENTRY_WORDS + E_DPS] & 0xffff;
  }
  /** Global dest id, or NO_DEST. */
  destId(e: number): number {
    return this.u[HEADER_WORDS + e * ENTRY_WORDS + E_DEST];
  }
  /** Service index given at insert. */
  service(e: number): number {
    return this.u[HEADER_WORDS + e * ENTRY_WORDS + E_FLAGS] >>> 16;
  }
  /** Entry index of the controlling template, or -1. */
  controlOf(e: number): number {
    return this.u[HEADER_WORDS + e * ENTRY_WORDS + E_CTL] - 1;
  }
  /** Number of connections a template controls. */
  nControl(e: number): number {
    return this.u[HEADER_WORDS + e * ENTRY_WORDS + E_NCTL];
  }
  /** Whether template `e` is ASSURED (a controlled connection reached ESTABLISHED or got a UDP reply). */
  isAssured(e: number): boolean {
    return this.isTemplate(e) && this.state(e) === TemplateState.ASSURED;
  }
  /** Ms until entry `e` expires at `nowMs` (negative when overdue and not yet expired). */
  expiresIn(e: number, nowMs: number): number {
    return (this.u[HEADER_WORDS + e * ENTRY_WORDS + E_EXPIRES] - this.rel(nowMs)) | 0;
  }
  /** Number of live entries (connections + templates). */
  get size(): number {
    return this.u[H_LIVE];
  }

  /** Header figures. */
  stats(): ConnTableStats {
    const u = this.u;
    return {
      capacity: this.capacity, live: u[H_LIVE], templates: u[H_TEMPLATES], insertFails: u[H_INSERT_FAIL], expired: u[H_EXPIRED],
      rearmed: u[H_REARMED], badDest: u[H_BAD_DEST], evicted: u[H_EVICTED], bytes: u[H_BYTES], indexBuckets: this.idxMask + 1, wheelSlots: this.whMask + 1, tickMs: this.tick,
    };
  }

  // ---- control plane (may allocate) ----

  /** Walk live entries in index order, as `ipvsadm -L -c` lists them (state names as /proc prints them). */
  *entries(nowMs: number): Generator<ConnEntryInfo> {
    const hwm = this.u[H_HWM];
    for (let e = 0; e < hwm; e++) {
      if (!this.isLive(e)) continue;
      const proto = this.proto(e);
      const template = this.isTemplate(e);
      const st = this.state(e);
      const expiresMs = this.expiresIn(e, nowMs);
      yield {
        protocol: protoName(proto), af: 4,
        caddr: ipv4ToText(this.caddr(e)), cport: this.cport(e), vaddr: ipv4ToText(this.vaddr(e)), vport: this.vport(e),
        daddr: ipv4ToText(this.daddr(e)), dport: this.dport(e),
        state: template ? (TEMPLATE_STATE_NAMES[st] ?? 'ERR!') : proto === TCP ? (TCP_STATE_NAMES[st] ?? 'ERR!') : proto === UDP ? 'UDP' : 'NONE',
        expires: Math.max(0, Math.floor(expiresMs / 1000)), template, pe: '', peData: '',
        index: e, proto, flags: this.flags(e) & ~ConnFlag.LIVE, destId: this.destId(e), service: this.service(e),
        control: this.controlOf(e), nControl: template ? this.nControl(e) : 0, expiresMs,
      };
    }
  }

  /**
   * Add this table's per-dest counts to `row` (`[active, inactive, persist]` per dest id; zero it first).
   * Used when a restarted worker re-attaches and its counter row was lost.
   */
  recount(row: Int32Array): void {
    const hwm = this.u[H_HWM];
    for (let e = 0; e < hwm; e++) {
      if (!this.isLive(e)) continue;
      const d = this.destId(e);
      if (d === NO_DEST || d * ConnCount.width + 2 >= row.length) continue;
      const f = this.flags(e);
      const k = (f & ConnFlag.TEMPLATE) !== 0 ? ConnCount.persist : (f & ConnFlag.INACTIVE) !== 0 ? ConnCount.inactive : ConnCount.active;
      row[d * ConnCount.width + k]++;
    }
  }

  /**
   * Rebuild the index, wheel, free list, counts and n_control from the live entries (after a writer died
   * mid-update). Links to entries that are not live templates are cleared. O(capacity).
   */
  rebuild(): void {
    const u = this.u;
    u[H_DIRTY] = 1;
    u.fill(0, this.idxOff, this.idxOff + this.idxMask + 1);
    u.fill(NIL, this.whOff, this.whOff + this.whMask + 1);
    const hwm = u[H_HWM];
    let live = 0;
    let templates = 0;
    let free = NIL;
    for (let e = hwm - 1; e >= 0; e--) {
      const b = HEADER_WORDS + e * ENTRY_WORDS;
      if ((u[b + E_FLAGS] & ConnFlag.LIVE) === 0) {
        u[b + E_NEXT] = free;
        u[b + E_PREV] = NIL;
        free = e;
        continue;
      }
      live++;
      if ((u[b + E_FLAGS] & ConnFlag.TEMPLATE) !== 0) {
        templates++;
        u[b + E_NCTL] = 0;
      }
    }
    for (let e = 0; e < hwm; e++) {
      const b = HEADER_WORDS + e * ENTRY_WORDS;
      if ((u[b + E_FLAGS] & ConnFlag.LIVE) === 0) continue;
      const c = u[b + E_CTL];
      if (c !== 0) {
        const t = c - 1;
        const tb = HEADER_WORDS + t * ENTRY_WORDS;
        if (t < hwm && (u[tb + E_FLAGS] & (ConnFlag.LIVE | ConnFlag.TEMPLATE)) === (ConnFlag.LIVE | ConnFlag.TEMPLATE) && (u[b + E_FLAGS] & ConnFlag.TEMPLATE) === 0) u[tb + E_NCTL]++;
        else u[b + E_CTL] = 0;
      }
      this.indexAdd(e);
      u[b + E_PREV] = NIL;
      this.link(e);
    }
    u[H_LIVE] = live;
    u[H_TEMPLATES] = templates;
    u[H_FREE] = free;
    u[H_DIRTY] = 0;
  }

  // ---- internals ----

  /**
   * Keep the wheel cursor within one revolution behind `now` (table time). A cursor further behind, or ahead
   * (clock stepped back, or a buffer idle for > 2^31 ms), moves to one revolution before now: every slot is
   * still visited once, so nothing due is missed, and entries are never parked behind a stale cursor.
   */
  private syncCursor(now: number): void {
    const nowSlot = ((now >>> this.tickShift) << this.tickShift) >>> 0;
    const span = this.whMask * this.tick;
    const lag = (nowSlot - this.u[H_CURSOR]) | 0;
    if (lag < 0 || lag > span) this.u[H_CURSOR] = (nowSlot - span) >>> 0;
  }

  private alloc(): number {
    const u = this.u;
    let e = u[H_FREE];
    if (e !== NIL) {
      u[H_DIRTY] = 1;
      u[H_FREE] = u[HEADER_WORDS + e * ENTRY_WORDS + E_NEXT];
    } else if (u[H_HWM] < this.capacity) {
      u[H_DIRTY] = 1;
      e = u[H_HWM]++;
    } else {
      u[H_INSERT_FAIL]++;
      return -1;
    }
    return e;
  }

  private fill(e: number, proto: number, caddr: number, cport: number, vaddr: number, vport: number, daddr: number, dport: number, flags: number, destId: number, service: number, expires: number): void {
    const u = this.u;
    const b = HEADER_WORDS + e * ENTRY_WORDS;
    u[b + E_CADDR] = caddr >>> 0;
    u[b + E_VADDR] = vaddr >>> 0;
    u[b + E_DADDR] = daddr >>> 0;
    u[b + E_PORTS] = ((cport & 0xffff) | ((vport & 0xffff) << 16)) >>> 0;
    u[b + E_DPS] = ((dport & 0xffff) | ((proto & 0xff) << 16)) >>> 0;
    u[b + E_DEST] = destId >>> 0;
    u[b + E_EXPIRES] = expires >>> 0;
    u[b + E_CTL] = 0;
    u[b + E_NCTL] = 0;
    u[b + E_PREV] = NIL;
    u[b + E_FLAGS] = (flags | ((service & 0xffff) << 16)) >>> 0;
    this.indexAdd(e);
    this.link(e);
    u[b + E_FLAGS] |= ConnFlag.LIVE;
    u[H_LIVE]++;
  }

  private free(e: number): void {
    const u = this.u;
    const b = HEADER_WORDS + e * ENTRY_WORDS;
    const flags = u[b + E_FLAGS];
    u[b + E_FLAGS] = flags & ~ConnFlag.LIVE;
    this.indexRemove(e);
    this.unlink(e);
    const dest = u[b + E_DEST];
    if ((flags & ConnFlag.TEMPLATE) !== 0) {
      this.count(dest, ConnCount.persist, -1);
      u[H_TEMPLATES]--;
    } else {
      this.count(dest, (flags & ConnFlag.INACTIVE) !== 0 ? ConnCount.inactive : ConnCount.active, -1);
      const c = u[b + E_CTL];
      if (c !== 0) u[HEADER_WORDS + (c - 1) * ENTRY_WORDS + E_NCTL]--;
      u[b + E_CTL] = 0;
    }
    u[b + E_NEXT] = u[H_FREE];
    u[H_FREE] = e;
    u[H_LIVE]--;
  }

  private count(dest: number, k: number, delta: number): void {
    const row = this.counters;
    if (row === null || dest === NO_DEST) return;
    const i = dest * ConnCount.width + k;
    if (i >= row.length) {
      this.u[H_BAD_DEST]++;
      return;
    }
    row[i] += delta;
  }

  private assure(ctl: number): void {
    if (ctl === 0) return;
    const tb = HEADER_WORDS + (ctl - 1) * ENTRY_WORDS + E_DPS;
    this.u[tb] = ((this.u[tb] & 0xffffff) | (TemplateState.ASSURED << 24)) >>> 0;
  }

  private home(e: number): number {
    const u = this.u;
    const b = HEADER_WORDS + e * ENTRY_WORDS;
    return connKeyHash((u[b + E_DPS] >>> 16) & 0xff, u[b + E_CADDR], u[b + E_PORTS] & 0xffff);
  }

  private indexAdd(e: number): void {
    const u = this.u;
    const h = this.home(e);
    const mask = this.idxMask;
    let i = h & mask;
    while (u[this.idxOff + i] !== 0) i = (i + 1) & mask;
    u[this.idxOff + i] = (((h >>> 24) << 24) | (e + 1)) >>> 0;
  }

  private indexRemove(e: number): void {
    const u = this.u;
    const off = this.idxOff;
    const mask = this.idxMask;
    let i = this.home(e) & mask;
    for (;;) {
      const w = u[off + i];
      if (w === 0) return;
      if ((w & IDX_MASK) === e + 1) break;
      i = (i + 1) & mask;
    }
    // Backward shift: pull later members of the run into the hole unless their home lies cyclically in (i, j].
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const w = u[off + j];
      if (w === 0) break;
      const k = this.home((w & IDX_MASK) - 1) & mask;
      const stays = i <= j ? i < k && k <= j : i < k || k <= j;
      if (stays) continue;
      u[off + i] = w;
      i = j;
    }
    u[off + i] = 0;
  }

  private link(e: number): void {
    const u = this.u;
    const b = HEADER_WORDS + e * ENTRY_WORDS;
    let t = u[b + E_EXPIRES];
    const cursor = u[H_CURSOR];
    if (((t - cursor) | 0) < 0) t = cursor;
    const s = (t >>> this.tickShift) & this.whMask;
    const h = u[this.whOff + s];
    u[b + E_NEXT] = h;
    u[b + E_PREV] = this.capacity + s;
    if (h !== NIL) u[HEADER_WORDS + h * ENTRY_WORDS + E_PREV] = e;
    u[this.whOff + s] = e;
  }

  private unlink(e: number): void {
    const u = this.u;
    const b = HEADER_WORDS + e * ENTRY_WORDS;
    const p = u[b + E_PREV];
    if (p === NIL) return;
    const n = u[b + E_NEXT];
    if (p >= this.capacity) u[this.whOff + p - this.capacity] = n;
    else u[HEADER_WORDS + p * ENTRY_WORDS + E_NEXT] = n;
    if (n !== NIL) u[HEADER_WORDS + n * ENTRY_WORDS + E_PREV] = p;
    u[b + E_PREV] = NIL;
    u[b + E_NEXT] = NIL;
  }

  private relink(e: number, expires: number): void {
    const u = this.u;
    const b = HEADER_WORDS + e * ENTRY_WORDS;
    const old = u[b + E_EXPIRES];
    u[b + E_EXPIRES] = expires;
    const cursor = u[H_CURSOR];
    if ((old >>> this.tickShift) === (expires >>> this.tickShift) && ((old - cursor) | 0) >= 0 && u[b + E_PREV] !== NIL) return;
    this.unlink(e);
    this.link(e);
  }
}

function protoName(p: number): ProtocolName | 'ip' {
  return p === 6 ? 'tcp' : p === 17 ? 'udp' : p === 132 ? 'sctp' : 'ip';
}
