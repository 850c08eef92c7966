// The sync protocol's pure parts: the sender (batching with a bounded delay, per-sender sequence numbers, a bounded
// resend queue holding the latest state of each entry) and the receiver (gap detection, NACK of the missing range,
// resync when the range cannot be resent, counters). conntrackd's FT-FW is the model. No clock but `now` (ms).
import { RECORD_WORDS, recordProblem } from '../sync/record.ts';
import { ResendQueue } from './resend-queue.ts';

/** Sender settings. */
export interface SyncSenderOptions {
  /** Records per batch at most (a batch is sealed when full). 48 B each; keep ≤ 16k for NATS's 1 MB payload. */
  maxBatch: number;
  /** Longest time a record waits for its batch, ms. */
  maxDelayMs: number;
  /** Entries the resend queue keeps (latest state per entry; the oldest is evicted when full). */
  resendCapacity: number;
}

/** A sealed batch ready to publish. `words` belongs to the caller after {@link SyncSender.takeReady}. */
export interface SealedBatch {
  seq: number;
  /** Time the first record was queued, ms. */
  at: number;
  words: Uint32Array;
  count: number;
}

/** Answer to a NACK: the records to resend, or `ok: false` when the range is older than the queue keeps. */
export interface ResendAnswer {
  ok: boolean;
  words: Uint32Array;
  count: number;
}


/**
 * Sender side of one node. `add` copies records into the pending batch (no allocation per record beyond the resend
 * queue's key); a batch is sealed when full or when {@link flushDue} runs after its delay. Sequence numbers start
 * at 1 for each sender epoch and never repeat.
 */
export class SyncSender {
  readonly opts: SyncSenderOptions;
  private pending: Uint32Array;
  private count = 0;
  private firstAt = 0;
  private seq = 0;
  private ready: SealedBatch[] = [];
  private readonly queue: ResendQueue;
  /** Records queued, batches sealed. */
  sentRecords = 0;
  sentBatches = 0;

  constructor(opts: SyncSenderOptions) {
    if (opts.maxBatch < 1 || opts.resendCapacity < 1 || opts.maxDelayMs < 0) throw new RangeError('sync sender: bad options');
    this.opts = opts;
    this.pending = new Uint32Array(opts.maxBatch * RECORD_WORDS);
    this.queue = new ResendQueue(opts.resendCapacity);
  }

  /** Last sequence number sealed (0 before the first batch). */
  get lastSeq(): number {
    return this.seq;
  }

  /** Queues `count` records from `words` at word offset `off`. Sealed batches wait in {@link takeReady}. */
  add(words: Uint32Array, off: number, count: number, now: number): void {
    let i = 0;
    while (i < count) {
      if (this.count === 0) this.firstAt = now;
      const n = Math.min(count - i, this.opts.maxBatch - this.count);
      this.pending.set(words.subarray(off + i * RECORD_WORDS, off + (i + n) * RECORD_WORDS), this.count * RECORD_WORDS);
      this.count += n;
      i += n;
      if (this.count === this.opts.maxBatch) this.seal();
    }
  }

  /** Seals the pending batch if its first record has waited `maxDelayMs` (or `force`). */
  flushDue(now: number, force = false): void {
    if (this.count > 0 && (force || now - this.firstAt >= this.opts.maxDelayMs)) this.seal();
  }

  /** When {@link flushDue} should run next (ms), or -1 when nothing is pending. */
  nextDeadline(): number {
    return this.count > 0 ? this.firstAt + this.opts.maxDelayMs : -1;
  }

  /** The sealed batches, oldest first; the list is emptied. */
  takeReady(): SealedBatch[] {
    const r = this.ready;
    this.ready = [];
    return r;
  }

  /** Answers a NACK for sequences a..b: the latest state of every entry last sent in that range. */
  resend(a: number, b: number): ResendAnswer {
    if (a < this.queue.floor || a > b || b > this.seq) return { ok: false, words: new Uint32Array(0), count: 0 };
    const words = this.queue.range(a, b);
    return { ok: true, words, count: words.length / RECORD_WORDS };
  }

  /** Entries in the resend queue, and the oldest sequence it answers for. */
  queueStats(): { entries: number; floor: number } {
    return { entries: this.queue.size, floor: this.queue.floor };
  }

  private seal(): void {
    const seq = ++this.seq;
    const words = this.pending.slice(0, this.count * RECORD_WORDS);
    for (let i = 0; i < this.count; i++) this.queue.put(words, i * RECORD_WORDS, seq);
    this.ready.push({ seq, at: this.firstAt, words, count: this.count });
    this.sentRecords += this.count;
    this.sentBatches++;
    this.count = 0;
  }
}

/** Receiver settings. */
export interface SyncReceiverOptions {
  /** Time to wait for a resend before asking again, ms. */
  nackTimeoutMs: number;
  /** NACKs per gap before giving up and resyncing. */
  nackTries: number;
  /** A gap wider than this many batches is not NACKed: resync at once. */
  maxNackRange: number;
}

/** Receiver counters (cumulative). */
export interface SyncReceiverCounters {
  /** Batches accepted (in order, late, or resent). */
  batches: number;
  /** Records handed over for install. */
  records: number;
  /** Gaps detected. */
  gaps: number;
  /** Gaps repaired by a resend. */
  repaired: number;
  /** Full resyncs asked for. */
  resyncs: number;
  /** Batches missing from the stream that no resend repaired (recovered only by a resync). */
  lost: number;
  /** Batches from an older epoch or already seen. */
  stale: number;
  /** Records refused by the record check (the rest of their batch is kept). */
  malformedRecords: number;
}

/** What the caller must do after an input. */
export interface ReceiverEffects {
  /** Valid records to install (null = none). */
  install: Uint32Array | null;
  /** NACKs to send. */
  nacks: { to: string; te: number; a: number; b: number }[];
  /** Peers to pull a full snapshot from. */
  resyncs: string[];
}

interface Gap {
  a: number;
  b: number;
  askedAt: number;
  tries: number;
}

interface PeerStream {
  epoch: number;
  /** Next expected sequence. */
  next: number;
  gaps: Gap[];
}

/** Receiver side of one node: one stream per peer (sender name + epoch). */
export class SyncReceiver {
  readonly opts: SyncReceiverOptions;
  readonly counters: SyncReceiverCounters = { batches: 0, records: 0, gaps: 0, repaired: 0, resyncs: 0, lost: 0, stale: 0, malformedRecords: 0 };
  private readonly peers = new Map<string, PeerStream>();

  constructor(opts: SyncReceiverOptions) {
    this.opts = opts;
  }

  /** A batch `q` from `sender` at `epoch`. */
  onBatch(sender: string, epoch: number, q: number, words: Uint32Array, now: number): ReceiverEffects {
    const fx: ReceiverEffects = { install: null, nacks: [], resyncs: [] };
    let p = this.peers.get(sender);
    if (p && epoch < p.epoch) {
      this.counters.stale++;
      return fx;
    }
    if (!p || epoch > p.epoch) {
      // A new sender, or a restarted one: its stream starts here (what it sent before is covered by the snapshot).
      p = { epoch, next: q + 1, gaps: [] };
      this.peers.set(sender, p);
    } else if (q === p.next) {
      p.next++;
    } else if (q > p.next) {
      this.counters.gaps++;
      const gap: Gap = { a: p.next, b: q - 1, askedAt: now, tries: 1 };
      p.next = q + 1;
      if (gap.b - gap.a + 1 > this.opts.maxNackRange) {
        this.resync(sender, p, gap, fx);
      } else {
        p.gaps.push(gap);
        fx.nacks.push({ to: sender, te: epoch, a: gap.a, b: gap.b });
      }
    } else if (!this.fill(p, q, q)) {
      this.counters.stale++;
      return fx;
    }
    fx.install = this.valid(words);
    this.counters.batches++;
    return fx;
  }

  /** A resend of `a..b` (a gap, or a piece of one) from `sender` at `epoch` (ok false: the sender cannot, resync). */
  onResend(sender: string, epoch: number, a: number, b: number, ok: boolean, words: Uint32Array, now: number): ReceiverEffects {
    const fx: ReceiverEffects = { install: null, nacks: [], resyncs: [] };
    const p = this.peers.get(sender);
    if (!p || p.epoch !== epoch) {
      this.counters.stale++;
      return fx;
    }
    // A sender answers a wide gap in pieces (each under NATS's payload limit): a piece fills part of a gap.
    const gi = p.gaps.findIndex((g) => a >= g.a && b <= g.b);
    if (gi < 0) {
      this.counters.stale++;
      return fx;
    }
    const gap = p.gaps[gi];
    if (!ok) {
      this.resync(sender, p, gap, fx);
      return fx;
    }
    if (gap.a === a && gap.b === b) this.counters.repaired++;
    this.fill(p, a, b);
    this.counters.batches++;
    fx.install = this.valid(words);
    void now;
    return fx;
  }

  /** Re-asks overdue gaps, and turns gaps past their tries into resyncs. */
  tick(now: number): ReceiverEffects {
    const fx: ReceiverEffects = { install: null, nacks: [], resyncs: [] };
    for (const [sender, p] of this.peers) {
      for (const g of [...p.gaps]) {
        if (now - g.askedAt < this.opts.nackTimeoutMs) continue;
        if (g.tries >= this.opts.nackTries) {
          this.resync(sender, p, g, fx);
        } else {
          g.tries++;
          g.askedAt = now;
          fx.nacks.push({ to: sender, te: p.epoch, a: g.a, b: g.b });
        }
      }
    }
    return fx;
  }

  /**
   * A snapshot from `sender` (taken at its sequence `q`, epoch `epoch`) was installed: its stream continues after
   * `q`, and gaps at or below `q` are covered.
   */
  onSnapshot(sender: string, epoch: number, q: number): void {
    const p = this.peers.get(sender);
    if (!p || p.epoch !== epoch) {
      this.peers.set(sender, { epoch, next: q + 1, gaps: [] });
      return;
    }
    p.gaps = p.gaps.filter((g) => g.b > q);
    if (p.next <= q) p.next = q + 1;
  }

  /** Forgets a peer (it left). */
  forget(sender: string): void {
    this.peers.delete(sender);
  }

  /** Open gaps over all peers. */
  openGaps(): number {
    let n = 0;
    for (const p of this.peers.values()) n += p.gaps.length;
    return n;
  }

  private resync(sender: string, p: PeerStream, gap: Gap, fx: ReceiverEffects): void {
    const i = p.gaps.indexOf(gap);
    if (i >= 0) p.gaps.splice(i, 1);
    this.counters.lost += gap.b - gap.a + 1;
    this.counters.resyncs++;
    if (!fx.resyncs.includes(sender)) fx.resyncs.push(sender);
  }

  private fill(p: PeerStream, a: number, b: number): boolean {
    for (let i = 0; i < p.gaps.length; i++) {
      const g = p.gaps[i];
      if (a < g.a || b > g.b) continue;
      const parts: Gap[] = [];
      if (g.a < a) parts.push({ ...g, b: a - 1 });
      if (b < g.b) parts.push({ ...g, a: b + 1 });
      p.gaps.splice(i, 1, ...parts);
      return true;
    }
    return false;
  }

  private valid(words: Uint32Array): Uint32Array | null {
    const n = words.length / RECORD_WORDS;
    let bad = 0;
    for (let i = 0; i < n; i++) if (recordProblem(words, i * RECORD_WORDS) !== null) bad++;
    this.counters.malformedRecords += bad;
    this.counters.records += n - bad;
    if (n - bad === 0) return null;
    if (bad === 0) return words;
    const out = new Uint32Array((n - bad) * RECORD_WORDS);
    let k = 0;
    for (let i = 0; i < n; i++) {
      if (recordProblem(words, i * RECORD_WORDS) !== null) continue;
      out.set(words.subarray(i * RECORD_WORDS, (i + 1) * RECORD_WORDS), k);
      k += RECORD_WORDS;
    }
    return out;
  }
}

/** Latency histogram in 50 µs buckets up to 200 ms (beyond: one overflow bucket). */
export class LagHistogram {
  private readonly buckets = new Uint32Array(4001);
  count = 0;

  /** Records one lag in ms (negative clamps to 0). */
  add(ms: number): void {
    const i = ms <= 0 ? 0 : Math.min(4000, Math.floor(ms / 0.05));
    this.buckets[i]++;
    this.count++;
  }

  /** The q-quantile (0..1) in ms, upper edge of its bucket; 0 when empty. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const target = Math.ceil(q * this.count);
    let acc = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      acc += this.buckets[i];
      if (acc >= target) return Math.round((i + 1) * 0.05 * 1000) / 1000;
    }
    return 200;
  }

  reset(): void {
    this.buckets.fill(0);
    this.count = 0;
  }
}
