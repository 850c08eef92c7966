// The cluster's wire messages (schema version 1) and their msgpackr codec with pre-shared structures: every
// message carries its kind, the schema version, the cluster name, the sender and the sender's epoch (incarnation).
// Records travel as raw bytes: n × 48-byte sync records (shared/sync/record.ts), little-endian words.
//
// Shared structures are a wire contract (nats-otel-notes gotcha 10): both ends build the Packr from STRUCTURES
// below, in this order, with maxSharedStructures = its length. Changing a key list means a new SCHEMA_VERSION
// (it is also in the NATS subject, see subjects()), so old and new agents never decode each other's records.
import { Packr } from 'msgpackr';
import { RECORD_BYTES } from '../sync/record.ts';

/** Wire schema version, in every message and in every subject. */
export const SCHEMA_VERSION = 1;

/** Message kinds. */
export const MsgKind = {
  HEARTBEAT: 1, BATCH: 2, NACK: 3, RESEND: 4, SNAP_REQUEST: 5, SNAP_CHUNK: 6, BYE: 7,
} as const;
export type MsgKindValue = (typeof MsgKind)[keyof typeof MsgKind];

/** Role a node announces. */
export const Role = { BACKUP: 0, LEADER: 1 } as const;
export type RoleValue = (typeof Role)[keyof typeof Role];

interface Base {
  /** Kind. */ k: MsgKindValue;
  /** Schema version. */ v: number;
  /** Cluster name. */ c: string;
  /** Sender node name. */ s: string;
  /** Sender epoch: a number fixed for the life of the sender's process (ms start time), new after a restart. */ e: number;
}

/** Heartbeat, published every interval on the heartbeat subject (core NATS). */
export interface Heartbeat extends Base {
  k: typeof MsgKind.HEARTBEAT;
  /** Heartbeat counter. */ n: number;
  /** Role. */ r: RoleValue;
  /** Term the sender knows (the leader: its own). */ t: number;
  /** KV revision of the term record for term `t` (0 = unknown). */ rv: number;
  /** Leader the sender follows ('' = none). */ l: string;
  /** Priority 1..255. */ p: number;
  /** Snapshot installed: may lead. */ rd: boolean;
  /** Wants to preempt the current leader (its preempt_delay has passed). */ pp: boolean;
  /** Sender's clock when sent, ms. */ at: number;
}

/** A batch of sync records with a per-sender sequence number (1, 2, … per epoch). */
export interface Batch extends Base {
  k: typeof MsgKind.BATCH;
  /** Sequence number. */ q: number;
  /** Sender's clock when the first record of the batch was queued, ms (lag = receive time − this). */ at: number;
  /** Records: n × 48 bytes. */ w: Uint8Array;
}

/** A receiver asks a sender (`to`, epoch `te`) to resend the batches `a..b`. */
export interface Nack extends Base {
  k: typeof MsgKind.NACK;
  to: string;
  te: number;
  a: number;
  b: number;
}

/** The answer to a NACK: latest state of every entry last sent in `a..b`; `ok` false = cannot (resync instead). */
export interface Resend extends Base {
  k: typeof MsgKind.RESEND;
  /** The receiver that asked. */ to: string;
  a: number;
  b: number;
  ok: boolean;
  w: Uint8Array;
}

/** Request for chunk `i` of snapshot `id` (id 0: start a new snapshot). */
export interface SnapRequest extends Base {
  k: typeof MsgKind.SNAP_REQUEST;
  id: number;
  i: number;
}

/** One chunk of a snapshot. `q` is the sender's sync sequence when the snapshot was taken. */
export interface SnapChunk extends Base {
  k: typeof MsgKind.SNAP_CHUNK;
  id: number;
  i: number;
  /** Number of chunks. */ nc: number;
  /** Entries in the whole snapshot. */ n: number;
  q: number;
  w: Uint8Array;
}

/** A node leaves gracefully (after releasing its VIPs). */
export interface Bye extends Base {
  k: typeof MsgKind.BYE;
  t: number;
  rv: number;
}

export type ClusterMsg = Heartbeat | Batch | Nack | Resend | SnapRequest | SnapChunk | Bye;

/** Key lists in the order the builders below create them: the pre-shared structures. */
const STRUCTURES: readonly (readonly string[])[] = [
  ['k', 'v', 'c', 's', 'e', 'n', 'r', 't', 'rv', 'l', 'p', 'rd', 'pp', 'at'],
  ['k', 'v', 'c', 's', 'e', 'q', 'at', 'w'],
  ['k', 'v', 'c', 's', 'e', 'to', 'te', 'a', 'b'],
  ['k', 'v', 'c', 's', 'e', 'to', 'a', 'b', 'ok', 'w'],
  ['k', 'v', 'c', 's', 'e', 'id', 'i'],
  ['k', 'v', 'c', 's', 'e', 'id', 'i', 'nc', 'n', 'q', 'w'],
  ['k', 'v', 'c', 's', 'e', 't', 'rv'],
];

/** Why a message was refused. */
export const DropReason = { MALFORMED: 'malformed', FOREIGN: 'foreign', VERSION: 'version', SELF: 'self' } as const;
export type DropReasonValue = (typeof DropReason)[keyof typeof DropReason];

/** Result of {@link ClusterCodec.decode}. */
export type Decoded = { ok: true; msg: ClusterMsg } | { ok: false; reason: DropReasonValue; detail: string };

/** Encoder/decoder for one node of one cluster. One instance per process (a Packr keeps state). */
export class ClusterCodec {
  readonly cluster: string;
  readonly node: string;
  readonly epoch: number;
  private readonly packr: Packr;

  constructor(cluster: string, node: string, epoch: number) {
    this.cluster = cluster;
    this.node = node;
    this.epoch = epoch;
    this.packr = new Packr({ structures: STRUCTURES.map((s) => s.slice()), maxSharedStructures: STRUCTURES.length, useRecords: true, moreTypes: false, mapsAsObjects: true });
  }

  encode(msg: ClusterMsg): Uint8Array {
    return this.packr.pack(msg);
  }

  heartbeat(n: number, r: RoleValue, t: number, rv: number, l: string, p: number, rd: boolean, pp: boolean, at: number): Heartbeat {
    return { k: MsgKind.HEARTBEAT, v: SCHEMA_VERSION, c: this.cluster, s: this.node, e: this.epoch, n, r, t, rv, l, p, rd, pp, at };
  }
  batch(q: number, at: number, w: Uint8Array): Batch {
    return { k: MsgKind.BATCH, v: SCHEMA_VERSION, c: this.cluster, s: this.node, e: this.epoch, q, at, w };
  }
  nack(to: string, te: number, a: number, b: number): Nack {
    return { k: MsgKind.NACK, v: SCHEMA_VERSION, c: this.cluster, s: this.node, e: this.epoch, to, te, a, b };
  }
  resend(to: string, a: number, b: number, ok: boolean, w: Uint8Array): Resend {
    return { k: MsgKind.RESEND, v: SCHEMA_VERSION, c: this.cluster, s: this.node, e: this.epoch, to, a, b, ok, w };
  }
  snapRequest(id: number, i: number): SnapRequest {
    return { k: MsgKind.SNAP_REQUEST, v: SCHEMA_VERSION, c: this.cluster, s: this.node, e: this.epoch, id, i };
  }
  snapChunk(id: number, i: number, nc: number, n: number, q: number, w: Uint8Array): SnapChunk {
    return { k: MsgKind.SNAP_CHUNK, v: SCHEMA_VERSION, c: this.cluster, s: this.node, e: this.epoch, id, i, nc, n, q, w };
  }
  bye(t: number, rv: number): Bye {
    return { k: MsgKind.BYE, v: SCHEMA_VERSION, c: this.cluster, s: this.node, e: this.epoch, t, rv };
  }

  /**
   * Decodes and validates a message: shape and field types per kind, schema version, cluster name, record bytes a
   * multiple of 48. Own messages come back as `self`. Never throws.
   */
  decode(data: Uint8Array): Decoded {
    let m: unknown;
    try {
      m = this.packr.unpack(data);
    } catch (e) {
      return { ok: false, reason: DropReason.MALFORMED, detail: `msgpack: ${(e as Error).message}` };
    }
    if (typeof m !== 'object' || m === null) return bad('not a map');
    const o = m as Record<string, unknown>;
    if (typeof o.v !== 'number' || typeof o.k !== 'number') return bad('no kind or version');
    if (o.v !== SCHEMA_VERSION) return { ok: false, reason: DropReason.VERSION, detail: `schema ${String(o.v)}` };
    if (typeof o.c !== 'string') return bad('no cluster');
    if (o.c !== this.cluster) return { ok: false, reason: DropReason.FOREIGN, detail: `cluster ${o.c.slice(0, 64)}` };
    if (typeof o.s !== 'string' || o.s.length === 0 || o.s.length > 64 || !isU(o.e, 2 ** 53)) return bad('sender');
    if (o.s === this.node && o.e === this.epoch) return { ok: false, reason: DropReason.SELF, detail: '' };
    switch (o.k) {
      case MsgKind.HEARTBEAT:
        return isU(o.n, 2 ** 53) && (o.r === Role.BACKUP || o.r === Role.LEADER) && isU(o.t, 2 ** 53) && isU(o.rv, 2 ** 53) && typeof o.l === 'string'
          && isU(o.p, 255) && typeof o.rd === 'boolean' && typeof o.pp === 'boolean' && typeof o.at === 'number'
          ? ok(o) : bad('heartbeat fields');
      case MsgKind.BATCH:
        return isU(o.q, 2 ** 53) && o.q !== 0 && typeof o.at === 'number' && isRecords(o.w) ? ok(o) : bad('batch fields');
      case MsgKind.NACK:
        return typeof o.to === 'string' && isU(o.te, 2 ** 53) && isU(o.a, 2 ** 53) && isU(o.b, 2 ** 53) && o.a !== 0 && o.a <= o.b ? ok(o) : bad('nack fields');
      case MsgKind.RESEND:
        return typeof o.to === 'string' && isU(o.a, 2 ** 53) && isU(o.b, 2 ** 53) && typeof o.ok === 'boolean' && isRecords(o.w) ? ok(o) : bad('resend fields');
      case MsgKind.SNAP_REQUEST:
        return isU(o.id, 2 ** 53) && isU(o.i, 2 ** 32) ? ok(o) : bad('snapshot request fields');
      case MsgKind.SNAP_CHUNK:
        return isU(o.id, 2 ** 53) && isU(o.i, 2 ** 32) && isU(o.nc, 2 ** 32) && isU(o.n, 2 ** 32) && isU(o.q, 2 ** 53) && isRecords(o.w) ? ok(o) : bad('snapshot chunk fields');
      case MsgKind.BYE:
        return isU(o.t, 2 ** 53) && isU(o.rv, 2 ** 53) ? ok(o) : bad('bye fields');
      default:
        return bad(`kind ${String(o.k)}`);
    }
  }
}

function ok(o: Record<string, unknown>): Decoded {
  return { ok: true, msg: o as unknown as ClusterMsg };
}
function bad(detail: string): Decoded {
  return { ok: false, reason: DropReason.MALFORMED, detail };
}
function isU(x: unknown, max: number): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= max;
}
function isRecords(x: unknown): x is Uint8Array {
  return x instanceof Uint8Array && x.byteLength % RECORD_BYTES === 0;
}

/** The record words of a decoded `w` field, as an aligned Uint32Array (a view when aligned, else a copy). */
export function recordWords(w: Uint8Array): Uint32Array {
  if (w.byteOffset % 4 === 0) return new Uint32Array(w.buffer, w.byteOffset, w.byteLength / 4);
  const copy = new Uint8Array(w.byteLength); // Buffer#slice is a view, not a copy
  copy.set(w);
  return new Uint32Array(copy.buffer);
}

/** Bytes of `count` records at word offset `off` of `words` (a view, no copy). */
export function recordBytes(words: Uint32Array, off: number, count: number): Uint8Array {
  return new Uint8Array(words.buffer, words.byteOffset + off * 4, count * RECORD_BYTES);
}

/** NATS subjects of a cluster (names are checked by parseClusterOptions: [A-Za-z0-9_-]). */
export function subjects(cluster: string): {
  heartbeat: string; sync: string; nack: (node: string) => string; resend: (node: string) => string; snapshot: (node: string) => string;
} {
  const p = `tsvs.${cluster}.v${SCHEMA_VERSION}`;
  return { heartbeat: `${p}.hb`, sync: `${p}.sync`, nack: (n) => `${p}.nack.${n}`, resend: (n) => `${p}.resend.${n}`, snapshot: (n) => `${p}.snap.${n}` };
}
