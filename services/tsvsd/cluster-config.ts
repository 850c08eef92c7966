// tsvsd's cluster config store (with --nats): table edits go to the cluster's table in NATS KV through the agent
// (compare-and-set there, services/cluster/config-kv.ts) and come back as revisions that every director applies to
// its own table the same way; `-Z` counters and the mark rules stay local.
import { buildOps, docOfTable, isEmptyTable, sameConfig, syncOps } from '../../shared/cluster/config-doc.ts';
import type { MarkRule } from '../../shared/fwd/classifier.ts';
import type { TableOp } from '../../shared/model/ops.ts';
import type { IpvsTable } from '../../shared/model/table.ts';
import type { ConfigDoc, FromClusterAgentConfig, ToClusterAgent } from '../../shared/proto/cluster.ts';
import type { ConfigChange, ConfigStore, LocalConfigStore, StoreResult } from './config-store.ts';
import type { Logger } from './log.ts';
import { checkRequest } from './request.ts';

/** What the store needs from the daemon. */
export interface ClusterConfigDeps {
  /** Sends to the agent; false when it is not running. */
  send(m: ToClusterAgent): boolean;
  log: Logger;
  /** How long an edit waits for the agent's answer, ms (default 6000; the agent itself gives up after 3000). */
  answerTimeoutMs?: number;
}

const CONFIG_TYPES = new Set(['config-answer', 'config-revision', 'config-seed-request']);

/**
 * The {@link ConfigStore} of a director in a cluster. `apply` sends the operation to the agent, which replays it on
 * the cluster's latest table with the kernel's checks and writes it with compare-and-set (retried on conflict); the
 * answer is the table's errno on that latest table, or EAGAIN when the store is unreachable (nothing changed then,
 * and the table in force keeps forwarding). Revisions arrive from the agent (before the answer of an edit that made
 * one) and are applied here: when this director holds the revision the edit was made from, the edit is replayed (the
 * writer's exact table); otherwise only the differences are applied ({@link syncOps}), so untouched real servers keep
 * their ids, counters and connections. `zero` (-Z) and the mark rules are this director's alone.
 *
 * Start-up rule: the agent asks for a seed only when the bucket has no table; this director then offers the table
 * it loaded (--config, --keepalived), or nothing when that is empty. A bucket that has a table (even an empty one)
 * wins over the local file: the first revision replaces the loaded table.
 */
export class ClusterConfigStore implements ConfigStore {
  readonly name = 'cluster';
  readonly #local: LocalConfigStore;
  readonly #deps: ClusterConfigDeps;
  #inForce = false;
  #inForceWaiters: (() => void)[] = [];
  #rev = 0;
  #nextId = 1;
  readonly #waiting = new Map<number, { resolve: (r: StoreResult) => void; timer: NodeJS.Timeout }>();
  /** Revisions applied (replayed: the edit replayed; synced: differences applied; rebuilt: flushed and rebuilt) and refused. */
  readonly counts = { replayed: 0, synced: 0, rebuilt: 0, refused: 0 };

  constructor(local: LocalConfigStore, deps: ClusterConfigDeps) {
    this.#local = local;
    this.#deps = deps;
  }

  get table(): IpvsTable {
    return this.#local.table;
  }

  /** The cluster revision this director's table holds (0: none yet; the loaded file is in force). */
  get revision(): number {
    return this.#rev;
  }

  /**
   * Edits go to the agent one at a time: it runs them in order anyway, and the answer timeout is meant to catch an
   * agent that does not answer, not the edits queued before this one (20 tsvsadm at once on a loaded host once ran
   * past 6 s in total, and the last edits were told EAGAIN although they landed afterwards).
   */
  apply(op: TableOp): Promise<StoreResult> {
    if (op.op === 'zero') return this.#local.apply(op);
    const run = (): Promise<StoreResult> => this.#edit(op);
    const next = this.#queued === 0 ? run() : this.#edits.then(run);
    this.#queued++;
    this.#edits = next.finally(() => this.#queued--);
    return next;
  }

  /** The last edit sent or queued, and how many are sent or queued. */
  #edits: Promise<unknown> = Promise.resolve();
  #queued = 0;

  #edit(op: TableOp): Promise<StoreResult> {
    const id = this.#nextId++;
    return new Promise((resolve) => {
      if (!this.#deps.send({ type: 'config-edit', id, op })) {
        resolve({ ok: false, errno: 'EAGAIN', detail: 'cluster config store unreachable: the cluster agent is not running' });
        return;
      }
      const ms = this.#deps.answerTimeoutMs ?? 6000;
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        resolve({ ok: false, errno: 'EAGAIN', detail: `cluster config store unreachable: the cluster agent did not answer in ${ms} ms (if it is only slow, the edit may still land: tsvsadm -S shows the table in force)` });
      }, ms);
      this.#waiting.set(id, { resolve, timer });
    });
  }

  setMarks(text: string): Promise<StoreResult> {
    return this.#local.setMarks(text);
  }

  marks(): readonly MarkRule[] {
    return this.#local.marks();
  }

  onChange(listener: (c: ConfigChange) => void): void {
    this.#local.onChange(listener);
  }

  current(): ConfigChange {
    return this.#local.current();
  }

  /**
   * Takes the agent's config messages (answers, revisions, seed requests) out of its stream before the event queue:
   * an admin request waiting for its answer holds the queue. True when `m` was one of them.
   */
  intercept(m: unknown): boolean {
    if (m === null || typeof m !== 'object' || !CONFIG_TYPES.has((m as { type?: unknown }).type as string)) return false;
    const c = m as FromClusterAgentConfig;
    switch (c.type) {
      case 'config-answer': {
        const w = this.#waiting.get(c.id);
        if (!w) return true;
        clearTimeout(w.timer);
        this.#waiting.delete(c.id);
        if (c.ok) {
          if (this.#rev < c.rev) this.#deps.log('config: edit stored but its revision was not applied here', { rev: c.rev, have: this.#rev });
          w.resolve({ ok: true, seq: this.#local.current().seq });
        } else w.resolve({ ok: false, errno: c.errno, detail: c.detail });
        return true;
      }
      case 'config-revision':
        if (typeof c.rev === 'number' && c.doc !== null && typeof c.doc === 'object') this.#onRevision(c.rev, c.doc, c.initial === true);
        return true;
      case 'config-seed-request': {
        const t = this.table.compiled();
        const doc = isEmptyTable(t) ? null : docOfTable(t, { prev: 0, by: '', edit: '' });
        this.#deps.log(doc ? 'config: the cluster has no table: seeding it with this director\'s' : 'config: the cluster has no table, nor has this director');
        this.#deps.send({ type: 'config-seed', doc });
        if (!doc) this.#markInForce(); // the cluster has no table and neither has this director: the empty one is it
        return true;
      }
    }
  }

  /**
   * Calls `fn` once this director's table is the cluster's: a revision applied, or the cluster found to have no table
   * while this director has none either. At once when that already happened.
   */
  whenInForce(fn: () => void): void {
    if (this.#inForce) fn();
    else this.#inForceWaiters.push(fn);
  }

  #markInForce(): void {
    if (this.#inForce) return;
    this.#inForce = true;
    const w = this.#inForceWaiters;
    this.#inForceWaiters = [];
    for (const f of w) f();
  }

  /** The agent exited: edits waiting for it fail with EAGAIN (the restarted agent pushes the latest revision). */
  onAgentExit(): void {
    this.#failAll('cluster config store unreachable: the cluster agent exited');
  }

  stop(): void {
    this.#failAll('tsvsd is stopping');
  }

  #failAll(detail: string): void {
    for (const [id, w] of this.#waiting) {
      clearTimeout(w.timer);
      w.resolve({ ok: false, errno: 'EAGAIN', detail });
      this.#waiting.delete(id);
    }
  }

  #onRevision(rev: number, doc: ConfigDoc, initial: boolean): void {
    if (!initial && rev <= this.#rev) return;
    const bad = checkDoc(doc);
    if (bad) {
      this.counts.refused++;
      this.#deps.log('config: cluster revision refused, the table in force stays', { rev, problem: bad });
      return;
    }
    const replay = doc.op !== undefined && this.#rev > 0 && doc.prev === this.#rev;
    let how: 'replayed' | 'synced' | 'rebuilt' | 'unchanged' = 'unchanged';
    this.#local.change((table) => {
      if (replay) {
        table.apply(doc.op!);
        if (sameConfig(table.compiled(), doc)) {
          how = 'replayed';
          return;
        }
      }
      if (sameConfig(table.compiled(), doc)) return;
      for (const op of syncOps(table.compiled(), doc)) table.apply(op);
      how = 'synced';
      if (sameConfig(table.compiled(), doc)) return;
      // Not reachable by differences (a refusal on the way): flush and build the revision's table from scratch.
      table.flush();
      for (const op of buildOps(doc)) table.apply(op);
      how = 'rebuilt';
    }, doc.op?.op ?? 'revision');
    this.#rev = rev;
    this.#markInForce();
    if (how !== 'unchanged') this.counts[how]++;
    this.#deps.log('config: cluster revision applied', { rev, by: doc.by || undefined, op: doc.op?.op, how, epoch: this.table.epoch });
  }
}

/** The first problem of a revision's operations, checked like admin requests (shape, canonical addresses), or null. */
function checkDoc(doc: ConfigDoc): string | null {
  let ops: TableOp[];
  try {
    ops = buildOps(doc);
  } catch (e) {
    return (e as Error).message;
  }
  if (doc.op !== undefined) ops.push(doc.op);
  for (const op of ops) {
    const c = checkRequest(op);
    if (!c.ok) return `${op.op}: ${c.problems.join('; ')}`;
  }
  return null;
}
