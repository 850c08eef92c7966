// The election's TermStore over a replicated NATS KV bucket (R3 by default): one key "term" holding
// {"term":N,"holder":"name"}; compare-and-set with kv.create (revision 0) and kv.update(rev). Per the NATS notes:
// the KV is built as `new Kvm(jetstream(nc, {timeout}))` (Kvm ignores its own timeout option), errors other than
// "wrong last sequence" (10071) are transient (a stream leader election answers "jetstream is not enabled").
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream, JetStreamApiError } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { TermRecord, TermStore } from '../../shared/cluster/election.ts';

const KEY = 'term';
const WRONG_LAST_SEQUENCE = 10071;

/** KV-backed term store. The bucket is created (or opened) lazily and retried until JetStream can answer. */
export class KvTermStore implements TermStore {
  readonly bucket: string;
  private readonly kvm: Kvm;
  private readonly replicas: number;
  private readonly deadlineMs: number;
  private kv: KV | null = null;
  private opening: Promise<KV> | null = null;

  constructor(nc: NatsConnection, cluster: string, replicas: number, timeoutMs: number) {
    this.bucket = `tsvs_${cluster}_term`;
    this.kvm = new Kvm(jetstream(nc, { timeout: timeoutMs }));
    this.replicas = replicas;
    this.deadlineMs = 2 * timeoutMs;
  }

  /** Opens (creating if needed) the bucket. Rejects while JetStream cannot answer; the caller retries. */
  async open(): Promise<KV> {
    if (this.kv) return this.kv;
    this.opening ??= this.kvm.create(this.bucket, { replicas: this.replicas, history: 1 }).finally(() => (this.opening = null));
    this.kv = await this.opening;
    return this.kv;
  }

  /**
   * Reads the term record. Rejects after 2 × the KV timeout at the latest: during a stream-leader outage a client
   * call was seen never to settle, which left the election waiting on it for good.
   */
  read(): Promise<TermRecord> {
    return deadline(this.readNow(), this.deadlineMs);
  }

  private async readNow(): Promise<TermRecord> {
    const kv = await this.open();
    const e = await kv.get(KEY);
    if (!e || e.operation !== 'PUT') return { term: 0, holder: '', rev: e?.revision ?? 0 };
    const v = JSON.parse(e.string()) as { term?: unknown; holder?: unknown };
    return { term: typeof v.term === 'number' ? v.term : 0, holder: typeof v.holder === 'string' ? v.holder : '', rev: e.revision };
  }

  /**
   * Compare-and-set, settled within 2 × the KV timeout (then: unavailable). A write that timed out may still be
   * applied; the next CAS then conflicts, the election re-reads and finds its own name (a higher term it may CAS over).
   */
  cas(expectRev: number, term: number, holder: string): Promise<{ ok: true; rev: number } | { ok: false; conflict: boolean; error?: string }> {
    return deadline(this.casNow(expectRev, term, holder), this.deadlineMs).catch((e: Error) => {
      this.kv = null;
      return { ok: false as const, conflict: false, error: e.message };
    });
  }

  private async casNow(expectRev: number, term: number, holder: string): Promise<{ ok: true; rev: number } | { ok: false; conflict: boolean; error?: string }> {
    try {
      const kv = await this.open();
      const data = JSON.stringify({ term, holder });
      const rev = expectRev === 0 ? await kv.create(KEY, data) : await kv.update(KEY, data, expectRev);
      return { ok: true, rev };
    } catch (e) {
      const conflict = e instanceof JetStreamApiError && e.code === WRONG_LAST_SEQUENCE;
      // Anything else: drop the KV handle, so the next attempt opens the bucket afresh (a handle that kept failing
      // after the stream had a new leader was seen once).
      if (!conflict) this.kv = null;
      return { ok: false, conflict, error: (e as Error).message };
    }
  }
}

/** `p`, or a rejection after `ms` (the late settlement of `p` is ignored). */
function deadline<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`KV operation did not settle within ${ms} ms`)), ms);
    p.then((v) => {
      clearTimeout(t);
      resolve(v);
    }, (e: unknown) => {
      clearTimeout(t);
      reject(e instanceof Error ? e : new Error(String(e)));
    });
  });
}
