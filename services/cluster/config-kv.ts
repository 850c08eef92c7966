// The cluster's table in NATS KV, agent side: bucket `tsvs_<cluster>_config`, key `table`, the whole table as one
// JSON document (shared/cluster/config-doc.ts). An edit is read latest → apply the op with the kernel's checks →
// compare-and-set on that revision, retried on conflict; revisions are watched (and polled) and pushed to tsvsd.
//
// The compare-and-set is on the *stream's* last sequence (Nats-Expected-Last-Sequence), not the key's
// (kv.update's Nats-Expected-Last-Subject-Sequence): on nats-server 2.9.x a clustered stream checks the key's
// sequence before the raft proposal only, so concurrent updates on the same revision can all be accepted
// (nats-server#4320; measured here: 3 writers × 100 updates, R3, 72 of 300 accepted updates lost), while the stream
// sequence check counts proposals in flight (0 lost in the same run). The bucket holds this one key, so the stream's
// last sequence is the key's revision. The very first write into an empty bucket is the same check on sequence 0
// (2.9.10 checks a present header when the proposal is applied, 0 included), and a deleted key's revision is its
// marker's: no write takes kv.create's path, whose fallback for a deleted key is the subject-level check above.
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream, JetStreamApiError, type JetStreamClient } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { docIncludesEdit, editDoc, encodeDoc, parseDoc } from '../../shared/cluster/config-doc.ts';
import type { TableOp } from '../../shared/model/ops.ts';
import type { ConfigDoc, ConfigEditErrno, FromClusterAgent } from '../../shared/proto/cluster.ts';
import { deadline } from './deadline.ts';

/** The key holding the table. */
export const CONFIG_KEY = 'table';
const WRONG_LAST_SEQUENCE = 10071;
/** An edit fails at once when the NATS connection has been down this long, ms. */
const FAIL_FAST_AFTER_MS = 1000;

/** The KV as an edit needs it (the NATS bucket in production, a map in unit tests). */
export interface ConfigBackend {
  /**
   * The latest value and its revision; `text` null when the key is absent or deleted (rev: the delete marker's, 0 when
   * the bucket never held the key). Every write is conditional on this revision.
   */
  read(): Promise<{ rev: number; text: string | null }>;
  /** Compare-and-set on `expectRev` (0: the bucket is empty). `conflict` when another write came first. */
  write(text: string, expectRev: number): Promise<{ ok: true; rev: number } | { ok: false; conflict: boolean; error: string }>;
}

/** The outcome of one edit. */
export type EditOutcome =
  | { ok: true; rev: number; doc: ConfigDoc; conflicts: number }
  | { ok: false; errno: ConfigEditErrno; detail: string; conflicts: number };

/** How an edit waits and gives up. */
export interface EditTiming {
  /** Give up (EAGAIN) after this many ms without a successful compare-and-set. */
  deadlineMs: number;
  /** Pause after a store error before trying again, ms. */
  retryMs: number;
  now(): number;
  sleep(ms: number): Promise<void>;
}

/**
 * One edit of the cluster's table: reads the latest revision, replays `op` on it with the kernel's checks (a refusal
 * there is the answer: the errno ipvsadm would get on that table), and writes the result with compare-and-set on
 * that revision. A conflict (another director wrote first) starts over on the newer revision, so two concurrent
 * edits both land or one is refused on the table that includes the other; nothing is lost. A write that timed out
 * but was applied is recognised on the retry by its edit id, in the latest revision's `edit` or `recent` list (CI
 * once answered "Destination already exists" to an add whose timed-out write had landed under another director's).
 * Store errors are retried until `deadlineMs`, then the edit fails with EAGAIN and nothing changed as far as this
 * edit can tell.
 */
export async function runEdit(store: ConfigBackend, op: TableOp, meta: { by: string; edit: string }, timing: EditTiming): Promise<EditOutcome> {
  const t0 = timing.now();
  let conflicts = 0;
  let lastError = '';
  for (;;) {
    if (timing.now() - t0 >= timing.deadlineMs) {
      const why = lastError ? `; last error: ${lastError}` : conflicts ? `; ${conflicts} conflicting writes` : '';
      return { ok: false, errno: 'EAGAIN', detail: `cluster config store unreachable: no compare-and-set in ${timing.deadlineMs} ms${why}; the table in force is unchanged`, conflicts };
    }
    let cur: { rev: number; text: string | null };
    try {
      cur = await store.read();
    } catch (e) {
      lastError = (e as Error).message;
      await timing.sleep(timing.retryMs);
      continue;
    }
    let base: ConfigDoc | null = null;
    if (cur.text !== null) {
      const p = parseDoc(cur.text);
      if (!p.ok) return { ok: false, errno: 'EINVAL', detail: `cluster table revision ${cur.rev} is not valid (${p.detail}): fix or delete key ${CONFIG_KEY}`, conflicts };
      // Landed already: a write that timed out had been applied (other directors' edits may have landed on top).
      if (docIncludesEdit(p.doc, meta.edit)) return { ok: true, rev: cur.rev, doc: p.doc, conflicts };
      base = p.doc;
    }
    const r = editDoc(base, op, { prev: cur.rev, by: meta.by, edit: meta.edit });
    if (!r.ok) return { ...r, conflicts };
    const w = await store.write(encodeDoc(r.doc), cur.rev);
    if (w.ok) return { ok: true, rev: w.rev, doc: r.doc, conflicts };
    if (w.conflict) {
      conflicts++;
      continue;
    }
    lastError = w.error;
    await timing.sleep(timing.retryMs);
  }
}

/** What the agent gives the config side. */
export interface ConfigKvOptions {
  cluster: string;
  node: string;
  /** Bucket replicas (the term bucket's --kv-replicas). */
  replicas: number;
  /** JetStream request timeout, ms. */
  timeoutMs: number;
  /** An edit gives up after this long, ms (default 3000). */
  editDeadlineMs?: number;
  /** How often the key is read besides the watch, ms (default 1000). */
  pollMs?: number;
  /** Whether tsvsd listens (it seeds an empty bucket). */
  attached: boolean;
  /** Unique per agent process (its start time): edit ids stay unique across restarts. */
  epoch: number;
}

/**
 * The agent's side of the cluster-wide configuration. Opens (creating) the bucket, retrying until JetStream
 * answers; asks tsvsd for a seed when the key is absent; watches the key and polls it (a watch can miss events
 * across reconnects on 2.9), pushing every newer revision to tsvsd; runs tsvsd's edits ({@link runEdit}).
 */
export class ConfigKv {
  readonly bucket: string;
  readonly #opts: ConfigKvOptions;
  readonly #kvm: Kvm;
  readonly #js: JetStreamClient;
  readonly #send: (m: FromClusterAgent) => void;
  readonly #log: (line: string) => void;
  #kv: KV | null = null;
  #opening: Promise<KV> | null = null;
  #pushed = 0;
  #initialSent = false;
  #badRev = 0;
  #seedAsked = false;
  #edits = 0;
  #stopped = false;
  #poll: NodeJS.Timeout | null = null;
  #watching = false;
  /** Edits run one after the other: this agent never conflicts with itself, contention is between directors only. */
  #queue: Promise<void> = Promise.resolve();
  readonly #nc: NatsConnection;
  /** When the NATS connection went down (performance.now ms), null while up. */
  #downSince: number | null = null;

  constructor(nc: NatsConnection, opts: ConfigKvOptions, send: (m: FromClusterAgent) => void, log: (line: string) => void) {
    this.bucket = `tsvs_${opts.cluster}_config`;
    this.#opts = opts;
    // Kvm ignores its own timeout option: the JetStream context's is the one used (reference/nats-otel-notes.md).
    this.#nc = nc;
    this.#js = jetstream(nc, { timeout: opts.timeoutMs });
    this.#kvm = new Kvm(this.#js);
    this.#send = send;
    this.#log = log;
  }

  /** Starts polling (which opens the bucket, reads the key, and starts the watch once it can). */
  start(): void {
    void this.#followStatus();
    const tick = (): void => {
      if (this.#stopped) return;
      void this.#check().finally(() => {
        if (!this.#stopped) this.#poll = setTimeout(tick, this.#kv === null ? 250 : (this.#opts.pollMs ?? 1000));
      });
    };
    tick();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#poll) clearTimeout(this.#poll);
  }

  /** tsvsd's seed (its --config table, or null): stored only if the key is still absent; else the stored one wins. */
  async seed(doc: ConfigDoc | null): Promise<void> {
    if (doc === null) return;
    const text = encodeDoc({ ...doc, prev: 0, by: this.#opts.node, edit: this.#editId() });
    const w = await this.#seedWrite(text);
    if (w.ok) {
      this.#log(`config: seeded the empty cluster table from this director's (revision ${w.rev})`);
      this.#offer(w.rev, text);
    } else if (w.conflict) this.#log('config: the cluster already has a table: taking it');
    else this.#log(`config: seeding failed (${w.error}); the next poll asks again`);
    if (!w.ok) this.#seedAsked = false;
    await this.#check();
  }

  /** Writes the seed only over an absent (or deleted) key, conditionally on the revision read; `conflict` when a table is there. */
  async #seedWrite(text: string): Promise<{ ok: true; rev: number } | { ok: false; conflict: boolean; error: string }> {
    const store = this.#backend();
    let cur: { rev: number; text: string | null };
    try {
      cur = await store.read();
    } catch (e) {
      return { ok: false, conflict: false, error: (e as Error).message };
    }
    if (cur.text !== null) return { ok: false, conflict: true, error: `revision ${cur.rev} holds a table` };
    return store.write(text, cur.rev);
  }

  /** Queues one edit from tsvsd (edits run in order, one at a time) and answers it; on success the new revision is pushed first. */
  edit(id: number, op: TableOp): Promise<void> {
    this.#queue = this.#queue.then(() => this.#runOne(id, op));
    return this.#queue;
  }

  async #runOne(id: number, op: TableOp): Promise<void> {
    // Cut off from NATS for more than a reconnect takes: fail at once rather than after the deadline (tsvsd's queue
    // waits for the answer). A reconnect to another server (tens of ms) still gets the whole deadline.
    const down = this.#downSince === null ? 0 : performance.now() - this.#downSince;
    if (down > FAIL_FAST_AFTER_MS) {
      this.#send({ type: 'config-answer', id, ok: false, errno: 'EAGAIN', detail: `cluster config store unreachable: no NATS connection for ${Math.round(down)} ms; the table in force is unchanged` });
      return;
    }
    const r = await runEdit(this.#backend(), op, { by: this.#opts.node, edit: this.#editId() }, {
      deadlineMs: this.#opts.editDeadlineMs ?? 3000, retryMs: 100, now: () => performance.now(), sleep: (ms) => new Promise((res) => setTimeout(res, ms)),
    });
    if (r.ok) {
      if (r.conflicts) this.#log(`config: ${op.op} landed at revision ${r.rev} after ${r.conflicts} conflicting write(s)`);
      this.#push(r.rev, r.doc);
      this.#send({ type: 'config-answer', id, ok: true, rev: r.rev });
    } else {
      this.#send({ type: 'config-answer', id, ok: false, errno: r.errno, detail: r.detail });
    }
  }

  async #followStatus(): Promise<void> {
    for await (const s of this.#nc.status()) {
      if (this.#stopped) return;
      if (s.type === 'disconnect') this.#downSince ??= performance.now();
      else if (s.type === 'reconnect') this.#downSince = null;
    }
  }

  #editId(): string {
    return `${this.#opts.node}/${this.#opts.epoch}/${++this.#edits}`;
  }

  #open(): Promise<KV> {
    if (this.#kv) return Promise.resolve(this.#kv);
    this.#opening ??= deadline(this.#kvm.create(this.bucket, { replicas: this.#opts.replicas, history: 16, allow_direct: false }), 2 * this.#opts.timeoutMs)
      .then((kv) => (this.#kv = kv))
      .finally(() => (this.#opening = null));
    return this.#opening;
  }

  #backend(): ConfigBackend {
    const limit = 2 * this.#opts.timeoutMs;
    return {
      read: () => deadline((async () => {
        const kv = await this.#open();
        const e = await kv.get(CONFIG_KEY).catch((err: unknown) => {
          this.#kv = null; // reopened on the next try (a handle that kept failing after a stream-leader change was seen)
          throw err;
        });
        if (!e) return { rev: 0, text: null };
        return { rev: e.revision, text: e.operation === 'PUT' ? e.string() : null };
      })(), limit),
      write: (text, expectRev) => deadline((async () => {
        try {
          await this.#open();
          // expectRev 0 too: the header is sent (`typeof === 'number'`) and an empty stream is checked like any other
          const ack = await this.#js.publish(`$KV.${this.bucket}.${CONFIG_KEY}`, text, { expect: { lastSequence: expectRev } });
          return { ok: true as const, rev: ack.seq };
        } catch (e) {
          const conflict = e instanceof JetStreamApiError && e.code === WRONG_LAST_SEQUENCE;
          if (!conflict) this.#kv = null;
          return { ok: false as const, conflict, error: (e as Error).message };
        }
      })(), limit).catch((e: Error) => ({ ok: false as const, conflict: false, error: e.message })),
    };
  }

  /** Reads the key; pushes it when newer; asks for a seed when absent; starts the watch once the bucket opened. */
  async #check(): Promise<void> {
    let cur: { rev: number; text: string | null };
    try {
      cur = await this.#backend().read();
    } catch {
      return; // JetStream not answering (yet): the next poll tries again
    }
    if (!this.#watching) void this.#watch();
    if (cur.text === null) {
      if (this.#opts.attached && !this.#seedAsked && this.#pushed === 0) {
        this.#seedAsked = true;
        this.#send({ type: 'config-seed-request' });
      }
      return;
    }
    this.#offer(cur.rev, cur.text);
  }

  async #watch(): Promise<void> {
    const kv = this.#kv;
    if (!kv || this.#watching || this.#stopped) return;
    this.#watching = true;
    try {
      const it = await kv.watch({ key: CONFIG_KEY });
      for await (const e of it) {
        if (this.#stopped) {
          it.stop();
          break;
        }
        if (e.operation === 'PUT') this.#offer(e.revision, e.string());
      }
    } catch {
      // watch creation needs the JetStream meta leader; the poll carries on meanwhile and restarts the watch
    } finally {
      this.#watching = false;
    }
  }

  #offer(rev: number, text: string): void {
    if (rev <= this.#pushed && this.#initialSent) return;
    const p = parseDoc(text);
    if (!p.ok) {
      if (rev !== this.#badRev) this.#log(`config: revision ${rev} of ${this.bucket}/${CONFIG_KEY} refused: ${p.detail}`);
      this.#badRev = rev;
      return;
    }
    this.#push(rev, p.doc);
  }

  #push(rev: number, doc: ConfigDoc): void {
    if (rev <= this.#pushed && this.#initialSent) return;
    this.#send({ type: 'config-revision', rev, doc, initial: !this.#initialSent });
    this.#initialSent = true;
    this.#pushed = Math.max(this.#pushed, rev);
  }
}
