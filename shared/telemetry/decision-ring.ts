// Decision records: a fixed-size ring per worker in shared memory where the packet path writes one compact
// record per scheduling decision (no allocation, never blocks, overwrites the oldest), and a reader for the
// control side that detects records overwritten or torn while it copied them (per-slot sequence numbers).
import type { DestView } from '../sched/types.ts';
import { SCHEDULERS } from '../model/ipvs.ts';

/**
 * Why a decision ended as it did. `scheduled`: the scheduler picked a dest; `persistent`: a persistence
 * template named the dest (no scheduler run). The rest are failures (no dest for the new connection):
 * `no-dest` (no available dest), `overloaded` (every candidate over its upper threshold), `quiescent`
 * (every candidate at weight 0), `table-full` (a dest was chosen but the connection table had no room).
 */
export const Outcome = { scheduled: 0, persistent: 1, noDest: 2, overloaded: 3, quiescent: 4, tableFull: 5 } as const;
export type OutcomeCode = (typeof Outcome)[keyof typeof Outcome];
/** Outcome names as they appear in attributes (`lvs.outcome`, `error.type`), indexed by code. */
export const OUTCOME_NAMES = ['scheduled', 'persistent', 'no-dest', 'overloaded', 'quiescent', 'table-full'] as const;
export type OutcomeName = (typeof OUTCOME_NAMES)[number];

/** Persistence template use: `none` (service not persistent), `hit` (template found), `miss` (created or none). */
export const TemplateUse = { none: 0, hit: 1, miss: 2 } as const;
export const TEMPLATE_NAMES = ['none', 'hit', 'miss'] as const;

/** Forwarding method names by FwdCode value (masq 0, local 1, tunnel 2, route 3, bypass 4). */
export const METHOD_NAMES = ['masq', 'local', 'tunnel', 'route', 'bypass'] as const;

/** Candidates kept per record; a service with more dests keeps the first ones in list order and the chosen one. */
export const MAX_CANDIDATES = 8;

/** Bytes of one record slot. */
export const RECORD_BYTES = 256;
/** Bytes of the ring header. */
export const RING_HEADER_BYTES = 128;
/**
 * Default records per ring: 16384 (4 MiB per worker, touched as written). At 10k new connections/s per worker that
 * keeps the last 1.6 s for "why did this go there" and gives the exporter that long to catch up before it loses any.
 */
export const DEFAULT_RING_RECORDS = 16384;
const MAGIC = 0x74736472; // "tsdr"
const VERSION = 1;
const DIRECTOR_MAX = 64;

// Header layout (little endian).
const H_MAGIC = 0;
const H_VERSION = 4;
const H_CAPACITY = 8;
const H_RECORD = 12;
const H_WORKER = 16;
/** Last committed sequence number (uint32, 0 = none yet); written with Atomics after the record. */
const H_HEAD = 20;
/** Wall-clock ms of the writer's time 0 (records hold ms relative to it). */
const H_EPOCH = 24;
const H_DIRLEN = 32;
const H_DIRECTOR = 36;
/**
 * The consumer's words, owned by the one exporting reader (never the writer, which only zeroes them when it
 * formats the ring): {@link CONSUMER_MAGIC} once a consumer has committed, then the last sequence number it consumed.
 */
const H_CONSUMER = 104;
const H_CONSUMED = 108;
const CONSUMER_MAGIC = 0x74736463; // "tsdc"

// Record layout.
const R_SEQ = 0; // uint32: 0 while being written, else the record's sequence number
const R_TIME = 8; // f64 ms relative to the header epoch
const R_PROTO = 16; // u8 IP protocol
const R_OUTCOME = 17; // u8
const R_SCHED = 18; // u8 index into SCHEDULERS, 255 = none
const R_METHOD = 19; // u8 FwdCode, 255 = none
const R_TEMPLATE = 20; // u8
const R_NCAND = 21; // u8 candidates stored
const R_TOTAL = 22; // u16 dests in the service
const R_CADDR = 24; // u32 host order
const R_VADDR = 28;
const R_CPORT = 32; // u16
const R_VPORT = 34;
const R_FWMARK = 36; // u32
const R_SVC = 40; // u32 service id
const R_DEST = 44; // i32 dest id, -1 = none
const R_DADDR = 48; // u32
const R_DPORT = 52; // u16
const R_CAND = 56;
const C_BYTES = 24;
const C_ADDR = 0;
const C_PORT = 4;
const C_FLAGS = 6; // bit0 chosen, bit1 overloaded, bit2 unavailable
const C_WEIGHT = 8;
const C_ACTIVE = 12;
const C_INACTIVE = 16;
const C_OVERHEAD = 20;
const CF_CHOSEN = 1;
const CF_OVERLOADED = 2;
const CF_UNAVAILABLE = 4;

/** Bytes of a ring segment holding `records` records (a power of two). */
export function decisionRingBytes(records: number = DEFAULT_RING_RECORDS): number {
  return RING_HEADER_BYTES + records * RECORD_BYTES;
}

/** The ring segment of worker `index` in a director's shared-memory directory (see shared/proto/worker.ts). */
export function decisionRingPath(dir: string, index: number): string {
  return `${dir}/decisions-${index}`;
}

/** Thrown when a buffer is not a decision ring this code can read. */
export class DecisionRingError extends Error {
  readonly code = 'ERR_DECISION_RING' as const;
  constructor(message: string) {
    super(message);
    this.name = 'DecisionRingError';
  }
}

/** Scheduler index in SCHEDULERS, or 255 for an unknown name. */
export function schedulerIndex(name: string): number {
  const i = (SCHEDULERS as readonly string[]).indexOf(name);
  return i < 0 ? 255 : i;
}

/**
 * The figure a scheduler compares for a dest (reference ipvs-semantics §1.3): the classic connection overhead
 * `(active << 8) + inactive` for lc, wlc, lblc, lblcr, twos and ovf's siblings; `active + 1` for sed and nq
 * (which weigh only active connections); 0 for schedulers that compare no load (rr, wrr, dh, sh, mh, fo).
 */
export function overheadFor(sched: number, active: number, inactive: number): number {
  switch (SCHEDULERS[sched]) {
    case 'lc':
    case 'wlc':
    case 'lblc':
    case 'lblcr':
    case 'twos':
      return active * 256 + inactive;
    case 'sed':
    case 'nq':
      return active + 1;
    case 'ovf':
      return active;
    default:
      return 0;
  }
}

/**
 * Why a scheduler found nothing, judged from the views it was given: `quiescent` when every available dest has
 * weight 0, `overloaded` when every available dest with weight is over its threshold, otherwise `no-dest`
 * (no dest at all, none available, or the scheduler's own reason such as an empty hash slot).
 */
export function noneReason(views: readonly DestView[]): OutcomeCode {
  let avail = 0;
  let weighted = 0;
  let over = 0;
  for (let i = 0; i < views.length; i++) {
    const v = views[i];
    if (!v.available) continue;
    avail++;
    if (v.weight > 0) {
      weighted++;
      if (v.overloaded) over++;
    }
  }
  if (avail === 0) return Outcome.noDest;
  if (weighted === 0) return Outcome.quiescent;
  if (over === weighted) return Outcome.overloaded;
  return Outcome.noDest;
}

/**
 * The writer side, used by one worker on its packet path. Single writer per ring. A record is written in three
 * steps — {@link begin}, the setters, {@link commit} — all on numbers at fixed offsets: nothing allocates and
 * nothing blocks; the oldest record is overwritten when the ring is full.
 */
export class DecisionWriter {
  private readonly dv: DataView;
  private readonly u32: Uint32Array;
  private readonly mask: number;
  private seq: number;
  private off = 0;

  /**
   * Formats `buffer` as a ring (when `init`) or attaches to an existing one (a restarted worker goes on from
   * the last committed sequence number). Throws DecisionRingError when the buffer is too small, its size is not
   * header + a power of two records, or (attach) the header is not a ring.
   */
  constructor(buffer: ArrayBuffer, opts: { init: boolean; worker: number; director: string; epochMs: number }) {
    const records = (buffer.byteLength - RING_HEADER_BYTES) / RECORD_BYTES;
    if (!Number.isInteger(records) || records < 2 || (records & (records - 1)) !== 0) throw new DecisionRingError(`decision ring: ${buffer.byteLength} bytes is not a header and a power of two records`);
    this.dv = new DataView(buffer);
    this.u32 = new Uint32Array(buffer, 0, buffer.byteLength >>> 2);
    this.mask = records - 1;
    const dv = this.dv;
    if (opts.init || dv.getUint32(H_MAGIC, true) !== MAGIC) {
      new Uint8Array(buffer).fill(0);
      dv.setUint32(H_VERSION, VERSION, true);
      dv.setUint32(H_CAPACITY, records, true);
      dv.setUint32(H_RECORD, RECORD_BYTES, true);
      dv.setUint32(H_MAGIC, MAGIC, true);
    } else if (dv.getUint32(H_VERSION, true) !== VERSION || dv.getUint32(H_CAPACITY, true) !== records) {
      throw new DecisionRingError('decision ring: header does not match this version or size');
    }
    dv.setUint32(H_WORKER, opts.worker, true);
    dv.setFloat64(H_EPOCH, opts.epochMs, true);
    const name = new TextEncoder().encode(opts.director).subarray(0, DIRECTOR_MAX);
    dv.setUint32(H_DIRLEN, name.length, true);
    new Uint8Array(buffer, H_DIRECTOR, DIRECTOR_MAX).set(name);
    this.seq = Atomics.load(this.u32, H_HEAD >>> 2);
  }

  /** Sequence number of the last committed record (0 before the first). */
  get head(): number {
    return this.seq;
  }

  /**
   * Starts the next record: marks its slot as being written and fills the flow. Addresses are IPv4 host order.
   * `time` is ms relative to the epoch given at construction.
   */
  begin(time: number, proto: number, caddr: number, cport: number, vaddr: number, vport: number, fwmark: number, svc: number): void {
    let n = (this.seq + 1) >>> 0;
    if (n === 0) n = 1;
    this.seq = n;
    const off = RING_HEADER_BYTES + (n & this.mask) * RECORD_BYTES;
    this.off = off;
    Atomics.store(this.u32, (off + R_SEQ) >>> 2, 0);
    const dv = this.dv;
    dv.setFloat64(off + R_TIME, time, true);
    dv.setUint8(off + R_PROTO, proto);
    dv.setUint32(off + R_CADDR, caddr >>> 0, true);
    dv.setUint16(off + R_CPORT, cport, true);
    dv.setUint32(off + R_VADDR, vaddr >>> 0, true);
    dv.setUint16(off + R_VPORT, vport, true);
    dv.setUint32(off + R_FWMARK, fwmark >>> 0, true);
    dv.setUint32(off + R_SVC, svc >>> 0, true);
    dv.setUint8(off + R_NCAND, 0);
    dv.setUint16(off + R_TOTAL, 0, true);
    dv.setUint8(off + R_SCHED, 255);
    dv.setUint8(off + R_METHOD, 255);
    dv.setUint8(off + R_TEMPLATE, 0);
    dv.setInt32(off + R_DEST, -1, true);
    dv.setUint32(off + R_DADDR, 0, true);
    dv.setUint16(off + R_DPORT, 0, true);
  }

  /**
   * Copies the candidates the scheduler saw (its dest views, in list order): up to {@link MAX_CANDIDATES}, the
   * chosen one (`chosen`, a position or -1) always among them. `sched` is a {@link schedulerIndex}.
   */
  candidates(sched: number, views: readonly DestView[], chosen: number): void {
    const dv = this.dv;
    const off = this.off;
    const n = views.length;
    const keep = n < MAX_CANDIDATES ? n : MAX_CANDIDATES;
    dv.setUint8(off + R_SCHED, sched);
    dv.setUint16(off + R_TOTAL, n > 0xffff ? 0xffff : n, true);
    dv.setUint8(off + R_NCAND, keep);
    for (let k = 0; k < keep; k++) {
      const i = k === keep - 1 && chosen >= keep ? chosen : k;
      const v = views[i];
      const c = off + R_CAND + k * C_BYTES;
      dv.setUint32(c + C_ADDR, v.addr >>> 0, true);
      dv.setUint16(c + C_PORT, v.port, true);
      dv.setUint8(c + C_FLAGS, (i === chosen ? CF_CHOSEN : 0) | (v.overloaded ? CF_OVERLOADED : 0) | (v.available ? 0 : CF_UNAVAILABLE));
      dv.setUint32(c + C_WEIGHT, v.weight >>> 0, true);
      dv.setUint32(c + C_ACTIVE, v.activeConns >>> 0, true);
      dv.setUint32(c + C_INACTIVE, v.inactConns >>> 0, true);
      dv.setUint32(c + C_OVERHEAD, overheadFor(sched, v.activeConns, v.inactConns) >>> 0, true);
    }
  }

  /**
   * Finishes the record and publishes it. `dest` is the chosen dest id (-1 for none) with its address and
   * port, `method` its FwdCode (or 255), `template` a {@link TemplateUse}.
   */
  commit(outcome: number, template: number, dest: number, daddr: number, dport: number, method: number): void {
    const dv = this.dv;
    const off = this.off;
    dv.setUint8(off + R_OUTCOME, outcome);
    dv.setUint8(off + R_TEMPLATE, template);
    dv.setInt32(off + R_DEST, dest, true);
    dv.setUint32(off + R_DADDR, daddr >>> 0, true);
    dv.setUint16(off + R_DPORT, dport, true);
    dv.setUint8(off + R_METHOD, method);
    Atomics.store(this.u32, (off + R_SEQ) >>> 2, this.seq);
    Atomics.store(this.u32, H_HEAD >>> 2, this.seq);
  }
}

/** One candidate dest as the scheduler saw it. */
export interface DecisionCandidate {
  address: string;
  port: number;
  weight: number;
  active: number;
  inactive: number;
  /** The figure compared (see {@link overheadFor}). */
  overhead: number;
  overloaded: boolean;
  available: boolean;
  chosen: boolean;
}

/** A decoded decision record (control side; allocates). */
export interface DecisionRecord {
  seq: number;
  /** Wall-clock ms. */
  timeMs: number;
  worker: number;
  director: string;
  /** 'tcp', 'udp', 'sctp' or the protocol number as text. */
  protocol: string;
  clientAddress: string;
  clientPort: number;
  vip: string;
  vport: number;
  fwmark: number;
  serviceId: number;
  /** Scheduler name, or '' when none ran (template hit). */
  scheduler: string;
  outcome: OutcomeName;
  template: (typeof TEMPLATE_NAMES)[number];
  /** The chosen dest, or null. */
  dest: { id: number; address: string; port: number; method: string } | null;
  /** Dests in the service (candidates holds at most MAX_CANDIDATES of them). */
  candidateCount: number;
  candidates: DecisionCandidate[];
}

/** True for outcomes that left a new connection without a real server. */
export function isFailure(o: OutcomeName): boolean {
  return o !== 'scheduled' && o !== 'persistent';
}

function ipv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

function protoName(p: number): string {
  return p === 6 ? 'tcp' : p === 17 ? 'udp' : p === 132 ? 'sctp' : String(p);
}

/** What a {@link DecisionReader.poll} found. */
export interface PollResult {
  records: DecisionRecord[];
  /** Records overwritten before this reader got to them. */
  lost: number;
  /** Records skipped because they changed while being copied (overwritten mid-read). */
  torn: number;
  /** Intact records that `keep` turned down (not decoded). */
  skipped: number;
}

/**
 * The reader side (control process; any number of readers per ring). Copies a slot, then checks its sequence
 * number before and after: a record the writer touched meanwhile is counted as torn, never returned half-made.
 */
export class DecisionReader {
  private readonly dv: DataView;
  private readonly u32: Uint32Array;
  private readonly records: number;
  private readonly scratch = new Uint8Array(RECORD_BYTES);
  private readonly sdv = new DataView(this.scratch.buffer);
  private readonly bytes: Uint8Array;
  private dirName = '';
  private dirLen = -1;
  private workerIdx = 0;
  private epochMs = 0;
  /** Last sequence number consumed by {@link poll}. */
  cursor: number;

  /**
   * Throws DecisionRingError when `buffer` holds no ring. By default starts at the current head (only new records:
   * a tail, a "where did this go" lookup). With `from: 'consumer'` it is the ring's consumer (one per ring: the
   * exporter): it resumes after the last sequence a consumer {@link commit}ted to the ring's header, or, when none
   * ever did, from the oldest record the ring still holds, so a decision written before the exporter attached is
   * still exported, and one exported before a restart is not exported again.
   */
  constructor(buffer: ArrayBuffer, opts: { from?: 'head' | 'consumer' } = {}) {
    this.dv = new DataView(buffer);
    if (buffer.byteLength < RING_HEADER_BYTES || this.dv.getUint32(H_MAGIC, true) !== MAGIC) throw new DecisionRingError('decision ring: no ring header (magic) in this segment');
    if (this.dv.getUint32(H_VERSION, true) !== VERSION) throw new DecisionRingError(`decision ring: version ${this.dv.getUint32(H_VERSION, true)}, this reader knows ${VERSION}`);
    this.records = this.dv.getUint32(H_CAPACITY, true);
    if (RING_HEADER_BYTES + this.records * RECORD_BYTES > buffer.byteLength) throw new DecisionRingError('decision ring: header capacity exceeds the segment');
    this.u32 = new Uint32Array(buffer, 0, buffer.byteLength >>> 2);
    this.bytes = new Uint8Array(buffer);
    const head = this.head;
    if (opts.from !== 'consumer') this.cursor = head;
    else if (Atomics.load(this.u32, H_CONSUMER >>> 2) === CONSUMER_MAGIC) this.cursor = Atomics.load(this.u32, H_CONSUMED >>> 2);
    else this.cursor = head > this.records - 1 ? head - (this.records - 1) : 0;
    this.refresh();
  }

  /** The sequence a consumer last committed to the header, or null when none has. */
  get consumed(): number | null {
    return Atomics.load(this.u32, H_CONSUMER >>> 2) === CONSUMER_MAGIC ? Atomics.load(this.u32, H_CONSUMED >>> 2) : null;
  }

  /**
   * Records in the ring's header that everything up to {@link cursor} is consumed (the consumer calls it after
   * handing a poll's records on): the next consumer to attach resumes after it. Only the consumer may call it.
   */
  commit(): void {
    Atomics.store(this.u32, H_CONSUMED >>> 2, this.cursor);
    Atomics.store(this.u32, H_CONSUMER >>> 2, CONSUMER_MAGIC);
  }

  /** Re-reads the header's worker, director and epoch (a restarted writer may change them). */
  private refresh(): void {
    this.workerIdx = this.dv.getUint32(H_WORKER, true);
    this.epochMs = this.dv.getFloat64(H_EPOCH, true);
    const n = Math.min(this.dv.getUint32(H_DIRLEN, true), DIRECTOR_MAX);
    if (n !== this.dirLen || n === 0 || this.dirName === '') {
      this.dirLen = n;
      this.dirName = new TextDecoder().decode(this.bytes.slice(H_DIRECTOR, H_DIRECTOR + n));
    }
  }

  /** Last committed sequence number. */
  get head(): number {
    return Atomics.load(this.u32, H_HEAD >>> 2);
  }

  get capacity(): number {
    return this.records;
  }

  get worker(): number {
    return this.workerIdx;
  }

  get director(): string {
    return this.dirName;
  }

  /** Reads record `seq` if the slot still holds it intact; null when overwritten, torn or not yet written. */
  read(seq: number): DecisionRecord | null {
    return this.copy(seq) ? this.decode(seq) : null;
  }

  /** Copies slot `seq` into the scratch record; false when it is not (or no longer) record `seq`. */
  private copy(seq: number): boolean {
    const off = RING_HEADER_BYTES + (seq & (this.records - 1)) * RECORD_BYTES;
    const s1 = Atomics.load(this.u32, (off + R_SEQ) >>> 2);
    if (s1 !== seq) return false;
    this.scratch.set(this.bytes.subarray(off, off + RECORD_BYTES));
    return Atomics.load(this.u32, (off + R_SEQ) >>> 2) === seq;
  }

  /**
   * Every record committed since the last poll, oldest first, at most `max`. Records the writer overwrote
   * before they were read are counted in `lost`; records overwritten during the copy in `torn`. With `keep`, a
   * record is copied and decoded only when `keep(outcome code)` says so (sampling without the cost of copying or
   * decoding: the outcome byte is read in place, checked against the slot's sequence number before and after); the
   * others are counted in `skipped`. `keep` is called once per intact record, in sequence order.
   */
  poll(max = this.records, keep?: (outcome: number) => boolean): PollResult {
    this.refresh();
    const head = this.head;
    let pending = (head - this.cursor) >>> 0;
    // The ring was formatted anew (head went back): start over from its beginning.
    if (pending >= 0x80000000) {
      this.cursor = 0;
      pending = head;
    }
    let lost = 0;
    let torn = 0;
    let skipped = 0;
    // Keep a margin of one slot: the writer may be filling the slot after head right now.
    if (pending > this.records - 1) {
      lost = pending - (this.records - 1);
      this.cursor = (this.cursor + lost) >>> 0;
      pending = this.records - 1;
    }
    const out: DecisionRecord[] = [];
    const u32 = this.u32;
    const bytes = this.bytes;
    const mask = this.records - 1;
    while (pending > 0 && out.length < max) {
      let next = (this.cursor + 1) >>> 0;
      if (next === 0) next = 1;
      this.cursor = next;
      pending--;
      if (keep !== undefined) {
        // Sample on the outcome byte read in place, between two checks of the slot's sequence number: a record
        // turned down is neither copied nor decoded.
        const off = RING_HEADER_BYTES + (next & mask) * RECORD_BYTES;
        const at = (off + R_SEQ) >>> 2;
        if (Atomics.load(u32, at) !== next) {
          torn++;
          continue;
        }
        const outcome = bytes[off + R_OUTCOME];
        if (Atomics.load(u32, at) !== next) {
          torn++;
          continue;
        }
        if (!keep(outcome)) {
          skipped++;
          continue;
        }
      }
      if (!this.copy(next)) torn++;
      else out.push(this.decode(next));
    }
    return { records: out, lost, torn, skipped };
  }

  /** The intact records currently in the ring, newest first, that pass `filter` (for "why did this go there"). */
  recent(filter: (r: DecisionRecord) => boolean = () => true, max = this.records): DecisionRecord[] {
    this.refresh();
    const out: DecisionRecord[] = [];
    let seq = this.head;
    for (let k = 0; k < this.records - 1 && seq !== 0 && out.length < max; k++) {
      const r = this.read(seq);
      if (r === null) break;
      if (filter(r)) out.push(r);
      seq = (seq - 1) >>> 0;
    }
    return out;
  }

  private decode(seq: number): DecisionRecord {
    const dv = this.sdv;
    const nc = Math.min(dv.getUint8(R_NCAND), MAX_CANDIDATES);
    const candidates: DecisionCandidate[] = [];
    for (let k = 0; k < nc; k++) {
      const c = R_CAND + k * C_BYTES;
      const f = dv.getUint8(c + C_FLAGS);
      candidates.push({
        address: ipv4(dv.getUint32(c + C_ADDR, true)),
        port: dv.getUint16(c + C_PORT, true),
        weight: dv.getUint32(c + C_WEIGHT, true),
        active: dv.getUint32(c + C_ACTIVE, true),
        inactive: dv.getUint32(c + C_INACTIVE, true),
        overhead: dv.getUint32(c + C_OVERHEAD, true),
        overloaded: (f & CF_OVERLOADED) !== 0,
        available: (f & CF_UNAVAILABLE) === 0,
        chosen: (f & CF_CHOSEN) !== 0,
      });
    }
    const sched = dv.getUint8(R_SCHED);
    const method = dv.getUint8(R_METHOD);
    const destId = dv.getInt32(R_DEST, true);
    const outcome = OUTCOME_NAMES[dv.getUint8(R_OUTCOME)] ?? 'no-dest';
    return {
      seq,
      timeMs: this.epochMs + dv.getFloat64(R_TIME, true),
      worker: this.workerIdx,
      director: this.dirName,
      protocol: protoName(dv.getUint8(R_PROTO)),
      clientAddress: ipv4(dv.getUint32(R_CADDR, true)),
      clientPort: dv.getUint16(R_CPORT, true),
      vip: ipv4(dv.getUint32(R_VADDR, true)),
      vport: dv.getUint16(R_VPORT, true),
      fwmark: dv.getUint32(R_FWMARK, true),
      serviceId: dv.getUint32(R_SVC, true),
      scheduler: sched < SCHEDULERS.length ? SCHEDULERS[sched] : '',
      outcome,
      template: TEMPLATE_NAMES[dv.getUint8(R_TEMPLATE)] ?? 'none',
      dest: destId < 0 ? null : { id: destId, address: ipv4(dv.getUint32(R_DADDR, true)), port: dv.getUint16(R_DPORT, true), method: METHOD_NAMES[method] ?? '' },
      candidateCount: dv.getUint16(R_TOTAL, true),
      candidates,
    };
  }
}
