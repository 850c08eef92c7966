// The election's TermStore over a replicated NATS KV bucket (R3 by default): one key "term" holding
// {"term":N,"holder":"name"}; compare-and-set with kv.create (revision 0), else a publish that expects the stream's
// last sequence to be `rev` (not kv.update, whose key-sequence check a clustered stream on nats-server 2.9.x makes
// before the raft proposal only: two candidates CASing on one revision could both win — nats-server#4320; the
// bucket holds one key, so the stream's last sequence is the key's revision). Per the NATS notes:
// the KV is built over `jetstream(nc, {timeout})` (Kvm ignores its own timeout option), errors other than
// "wrong last sequence" (10071) are transient (a stream leader election answers "jetstream is not enabled").
//
// Why the handle is bound once and reads go to the stream leader (measured on nats-server 2.9.10, the term
// stream's leader server SIGSTOPped): a frozen server keeps its subscriptions in its peers' route tables until
// the route fails (minutes: loopback buffers do not fill, route pings are slow). Direct gets (`allow_direct`, a
// queue group over every replica) then go to the frozen replica a third of the time and time out, long after
// the stream has a new leader; reopening the bucket (`kvm.create`: account info + stream info, which need the
// JetStream meta leader — often on the same frozen server) failed for the same seconds. Writes, and reads of
// `$JS.API.STREAM.MSG.GET` (answered by the stream leader only), succeed as soon as a new leader is elected.
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream, JetStreamApiError, type JetStreamClient } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { TermRecord, TermStore } from '../../shared/cluster/election.ts';
import { deadline } from './deadline.ts';

const KEY = 'term';
const WRONG_LAST_SEQUENCE = 10071;

/** KV-backed term store: the bucket is created once in the background; reads and CAS use a bound handle. */
export class KvTermStore implements TermStore {
  readonly bucket: string;
  private readonly kvm: Kvm;
  private readonly js: JetStreamClient;
  private readonly replicas: number;
  private readonly timeoutMs: number;
  private readonly deadlineMs: number;
  private kv: KV | null = null;
  private created = false;
  private creating: Promise<void> | null = null;

  /** `timeoutMs`: every KV request's timeout; an operation settles within 2 × that at the latest. */
  constructor(nc: NatsConnection, cluster: string, replicas: number, timeoutMs: number) {
    this.bucket = `tsvs_${cluster}_term`;
    this.js = jetstream(nc, { timeout: timeoutMs });
    this.kvm = new Kvm(this.js);
    this.replicas = replicas;
    this.timeoutMs = timeoutMs;
    this.deadlineMs = 2 * timeoutMs;
  }

  /** The stream behind the bucket. */
  get stream(): string {
    return `KV_${this.bucket}`;
  }

  /**
   * Creates the bucket if it does not exist (R`replicas`, history 1); resolves when it exists. Rejects while
   * JetStream cannot answer (the caller retries). Only needed once: reads and writes do not wait for it.
   */
  async ensure(): Promise<void> {
    if (this.created) return;
    this.creating ??= this.kvm.create(this.bucket, { replicas: this.replicas, history: 1 }).then(() => {
      this.created = true;
    }).finally(() => (this.creating = null));
    await this.creating;
  }

  /** Reads the term record (from the stream leader). Rejects after 2 × the KV timeout at the latest. */
  read(): Promise<TermRecord> {
    return deadline(this.readNow(), this.deadlineMs);
  }

  private async handle(): Promise<KV> {
    // Bound without a request: no account or stream info, so it works whenever the stream has a leader.
    this.kv ??= await this.kvm.open(this.bucket, { allow_direct: false });
    return this.kv;
  }

  private async readNow(): Promise<TermRecord> {
    const kv = await this.handle();
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
    return deadline(this.casNow(expectRev, term, holder), this.deadlineMs).catch((e: Error) => ({ ok: false as const, conflict: false, error: e.message }));
  }

  private async casNow(expectRev: number, term: number, holder: string): Promise<{ ok: true; rev: number } | { ok: false; conflict: boolean; error?: string }> {
    try {
      const kv = await this.handle();
      const data = JSON.stringify({ term, holder });
      if (expectRev === 0) return { ok: true, rev: await kv.create(KEY, data) };
      const ack = await this.js.publish(`$KV.${this.bucket}.${KEY}`, data, { expect: { lastSequence: expectRev } });
      return { ok: true, rev: ack.seq };
    } catch (e) {
      const conflict = e instanceof JetStreamApiError && e.code === WRONG_LAST_SEQUENCE;
      return { ok: false, conflict, error: (e as Error).message };
    }
  }

  /**
   * The server name holding the term stream's raft leader ('' when unknown: no leader, or no answer in time).
   * Asked of the stream leader itself (`$JS.API.STREAM.INFO`) over `admin`: nats-server 2.9 serves JetStream API
   * requests in the requesting connection's read loop, and a leader step-down held that loop for over 125 ms —
   * long enough for the agent's own heartbeats on that connection to miss their echo (isolation). So the
   * agent sends these on a connection of their own.
   */
  async streamLeader(admin: NatsConnection): Promise<string> {
    try {
      const r = await admin.request(`$JS.API.STREAM.INFO.${this.stream}`, undefined, { timeout: this.timeoutMs });
      const j = r.json<{ cluster?: { leader?: string } }>();
      return j.cluster?.leader ?? '';
    } catch {
      return '';
    }
  }

  /** Asks the term stream's leader to hand its raft leadership to another replica. Resolves true when accepted. */
  async stepDownStreamLeader(admin: NatsConnection): Promise<boolean> {
    try {
      const r = await admin.request(`$JS.API.STREAM.LEADER.STEPDOWN.${this.stream}`, undefined, { timeout: this.timeoutMs });
      return r.json<{ success?: boolean }>().success === true;
    } catch {
      return false;
    }
  }
}
