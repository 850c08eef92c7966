// tsvsd's side of connection sync: it owns every worker's pair of sync rings (shared/sync/ring.ts) in shared memory,
// drains what the workers wrote (to publish through the cluster agent), hands peers' records to the worker that owns
// each client (bounded pending queues when a ring is full), and reads the shards for a peer's snapshot.
import { ConnTable } from '../../shared/conntab/conn-table.ts';
import { Ev, type Counters } from '../../shared/fwd/counters.ts';
import type { FwdTable } from '../../shared/fwd/table.ts';
import type { WorkerSyncStatus } from '../../shared/proto/cluster.ts';
import { syncPath } from '../../shared/proto/worker.ts';
import { mapShared, type SharedSegment } from '../../shared/sys/shm.ts';
import { writeEntryRecord } from '../../shared/sync/conn-sync.ts';
import { RECORD_TEMPLATE_FLAG, RECORD_WORDS, RecordOp } from '../../shared/sync/record.ts';
import { workerSyncBytes, workerSyncRings, type SyncRing } from '../../shared/sync/ring.ts';
import { clientShard } from '../../shared/util/flowhash.ts';

/** Peers' records waiting for a full inbound ring, per worker, at most (48 B each: 96 MiB at 2^21). */
const MAX_PENDING = 1 << 21;

/** Figures of the rings (cumulative). */
export interface SyncRingsStats {
  /** Records drained from the workers' outbound rings. */
  drained: number;
  /** Records the workers could not write (outbound ring full). */
  outDropped: number;
  /** Peers' records handed to a worker's inbound ring. */
  delivered: number;
  /** Peers' records dropped because a worker's pending queue was full. */
  inDropped: number;
  /** Records waiting for a worker (pending queues plus unread inbound records). */
  waiting: number;
}

interface WorkerRings {
  seg: SharedSegment;
  outbound: SyncRing;
  inbound: SyncRing;
  /** Chunks of peers' records not yet in the inbound ring; `head` records of pending[0] are delivered. */
  pending: Uint32Array[];
  head: number;
  pendingRecords: number;
}

/**
 * The sync rings of one director's workers. Created (formatted) by tsvsd before the workers start; a restarted
 * worker attaches to its pair and continues. `steer` says how clients map to workers: 'client' (AF_PACKET: the
 * fanout's clientShard of the client's address) or 'all' (NFQUEUE: the kernel's HMARK hash is not reproduced here,
 * so every worker gets every record; the one that sees the flow uses it, the others' copies expire).
 */
export class SyncRings {
  readonly workers: number;
  readonly capacity: number;
  readonly #rings: WorkerRings[] = [];
  readonly #steer: 'client' | 'all';
  #drained = 0;
  #delivered = 0;
  #inDropped = 0;
  #waiters: (() => void)[] = [];
  #gated = false;

  /** Maps and formats `workers` segments of `capacity` records each way under `dir`. Throws SysError. */
  constructor(dir: string, workers: number, capacity: number, steer: 'client' | 'all') {
    this.workers = workers;
    this.capacity = capacity;
    this.#steer = steer;
    try {
      for (let k = 0; k < workers; k++) {
        const seg = mapShared(syncPath(dir, k), workerSyncBytes(capacity), { create: true, resize: true });
        const { outbound, inbound } = workerSyncRings(seg.buffer, capacity, true);
        this.#rings.push({ seg, outbound, inbound, pending: [], head: 0, pendingRecords: 0 });
      }
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /**
   * While gated, peers' records wait in the pending queues and nobody is told they are installed: a director whose
   * table is not in force yet (the cluster's table still on its way from KV) would drop them as unknown services.
   */
  set gated(g: boolean) {
    this.#gated = g;
    if (!g) this.pump();
  }

  get gated(): boolean {
    return this.#gated;
  }

  /** Everything the workers wrote since the last call, as one array of records (null when none). */
  drain(): Uint32Array | null {
    let n = 0;
    for (const r of this.#rings) n += r.outbound.available();
    if (n === 0) return null;
    const out = new Uint32Array(n * RECORD_WORDS);
    let at = 0;
    for (const r of this.#rings) at += r.outbound.drainInto(out, at * RECORD_WORDS, n - at);
    this.#drained += at;
    return at === n ? out : out.subarray(0, at * RECORD_WORDS);
  }

  /**
   * Peers' records for this director: each goes to the worker that owns its client (templates to every worker,
   * since the template of a client subnet serves connections on any of them). Returns how many were queued; the
   * rest were dropped because a pending queue was full (counted).
   */
  install(words: Uint32Array): number {
    const n = Math.floor(words.length / RECORD_WORDS);
    if (n === 0) return 0;
    const k = this.workers;
    if (k === 1 || this.#steer === 'all') {
      let took = n;
      for (const r of this.#rings) took = Math.min(took, this.#queue(r, words));
      this.pump();
      return took;
    }
    // Split by worker: count, then copy.
    const count = new Int32Array(k);
    const owner = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const off = i * RECORD_WORDS;
      const tpl = (words[off + 1] & RECORD_TEMPLATE_FLAG) !== 0;
      const w = tpl ? -1 : clientShard(words[off + 2] >>> 0, 0, k);
      owner[i] = w;
      if (w < 0) for (let j = 0; j < k; j++) count[j]++;
      else count[w]++;
    }
    const parts = Array.from({ length: k }, (_, j) => new Uint32Array(count[j] * RECORD_WORDS));
    const fill = new Int32Array(k);
    for (let i = 0; i < n; i++) {
      const src = words.subarray(i * RECORD_WORDS, (i + 1) * RECORD_WORDS);
      const w = owner[i];
      for (let j = w < 0 ? 0 : w; j < (w < 0 ? k : w + 1); j++) parts[j].set(src, fill[j]++ * RECORD_WORDS);
    }
    let dropped = 0;
    for (let j = 0; j < k; j++) if (count[j] > 0 && this.#queue(this.#rings[j], parts[j]) < count[j]) dropped += count[j];
    this.pump();
    return Math.max(0, n - dropped);
  }

  #queue(r: WorkerRings, words: Uint32Array): number {
    const n = words.length / RECORD_WORDS;
    if (r.pendingRecords + n > MAX_PENDING) {
      this.#inDropped += n;
      return 0;
    }
    r.pending.push(words);
    r.pendingRecords += n;
    return n;
  }

  /** Moves pending records into the inbound rings as far as they have room; wakes install waiters when all are read. */
  pump(): void {
    if (this.#gated) return;
    for (const r of this.#rings) {
      while (r.pending.length > 0) {
        const chunk = r.pending[0];
        const left = chunk.length / RECORD_WORDS - r.head;
        const put = r.inbound.pushWords(chunk, r.head * RECORD_WORDS, Math.min(left, r.inbound.capacity - r.inbound.stats().used));
        r.head += put;
        r.pendingRecords -= put;
        this.#delivered += put;
        if (r.head * RECORD_WORDS < chunk.length) break;
        r.pending.shift();
        r.head = 0;
      }
    }
    if (this.#waiters.length > 0 && this.waiting === 0) {
      const w = this.#waiters;
      this.#waiters = [];
      for (const f of w) f();
    }
  }

  /** Records not yet installed by their worker (pending here, or unread in an inbound ring). */
  get waiting(): number {
    let n = 0;
    for (const r of this.#rings) n += r.pendingRecords + r.inbound.stats().used;
    return n;
  }

  /** Calls `done` once every record handed over so far has been read by its worker, and not before the gate opens. */
  whenInstalled(done: () => void): void {
    if (!this.#gated && this.waiting === 0) done();
    else this.#waiters.push(done);
  }

  stats(): SyncRingsStats {
    let outDropped = 0;
    for (const r of this.#rings) outDropped += r.outbound.stats().dropped;
    return { drained: this.#drained, outDropped, delivered: this.#delivered, inDropped: this.#inDropped, waiting: this.waiting };
  }

  /**
   * This director's whole state for a peer's snapshot: every live connection and template of every shard, as
   * NEW records (remaining lifetimes at `nowMs`, the workers' clock: ms since 1970). `fwd` names the services'
   * fwmarks. Read-only beside the live workers; entries that change meanwhile are also in the sync stream.
   */
  static snapshot(buffers: readonly (ArrayBuffer | null)[], fwd: FwdTable | null, nowMs: number, onError?: (shard: number, e: Error) => void): Uint32Array {
    const marks = new Map<number, number>();
    for (const s of fwd?.services ?? []) if (s.fwmark > 0) marks.set(s.id, s.fwmark);
    const tables: ConnTable[] = [];
    let total = 0;
    buffers.forEach((b, k) => {
      if (!b) return;
      try {
        const t = ConnTable.attach(b, { readOnly: true });
        tables.push(t);
        total += t.size;
      } catch (e) {
        onError?.(k, e as Error);
      }
    });
    // Room for entries added while reading; what does not fit is in the sync stream anyway.
    const cap = total + 1024;
    const out = new Uint32Array(cap * RECORD_WORDS);
    let n = 0;
    tables.forEach((t, k) => {
      for (const info of t.entries(nowMs)) {
        if (n >= cap) break;
        if (info.expiresMs <= 0) continue;
        writeEntryRecord(out, n * RECORD_WORDS, t, info.index, RecordOp.NEW, k, marks.get(info.service) ?? 0, 0, nowMs);
        n++;
      }
    });
    return out.subarray(0, n * RECORD_WORDS);
  }

  /** Unmaps every segment (the directory is removed with the rest of the data plane's shared memory). */
  close(): void {
    for (const r of this.#rings) r.seg.unmap();
    this.#rings.length = 0;
  }
}

/** The workers' sync figures for `tsvsadm cluster`: their event counters summed, and the rings' own. */
export function workerSyncStatus(c: Counters, r: SyncRingsStats): WorkerSyncStatus {
  const sum = (ev: number): number => c.rows.reduce((n, row) => n + row.events[ev], 0);
  return {
    written: sum(Ev.sync_sent), write_dropped: sum(Ev.sync_out_dropped), created: sum(Ev.sync_created), updated: sum(Ev.sync_updated),
    removed: sum(Ev.sync_removed), malformed: sum(Ev.sync_malformed), no_service: sum(Ev.sync_no_service), no_dest: sum(Ev.sync_no_dest),
    table_full: sum(Ev.sync_table_full), pending: r.waiting, pending_dropped: r.inDropped, held: sum(Ev.sync_held),
    hold_released: sum(Ev.sync_hold_released), hold_timeout: sum(Ev.sync_hold_timeout),
  };
}
