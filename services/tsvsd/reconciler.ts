// The reconciler: keeps the forwarding table, the kernel rules and the VIP set equal to the desired state
// compiled from the latest inputs (config, VIP grant, health view, own addresses), applying only differences.
import type { FwdTable } from '../../shared/fwd/table.ts';
import type { HostFacts } from '../../shared/rules/host.ts';
import type { DesiredCompiler, HealthView, VipGrant } from '../../shared/rules/desired.ts';
import type { ConfigChange } from './config-store.ts';
import type { Logger } from './log.ts';

/** Where the desired state goes. Each part is absent when tsvsd does not forward. */
export interface ReconcileTargets {
  /** Hands a new forwarding table to the workers. */
  publish(fwd: FwdTable): void;
  kernel: { apply(spec: ReturnType<DesiredCompiler['compile']>['kernel']): void };
  vips: { sync(want: readonly string[]): void };
  /** The director's own addresses now. */
  ownAddrs(): readonly string[];
  /** Table ids of deleted dests still in the trash. */
  trashDestIds(): Iterable<number>;
}

/** Every real server up: the health view until the health checker reports. */
export const allUp: HealthView = () => true;

/**
 * Holds the latest inputs and reconciles on each change. Until both the first config and the first VIP grant
 * are in, nothing is applied. `applied(seq)` resolves once config change `seq` (or a later one) is in force.
 */
export class Reconciler {
  readonly #compiler: DesiredCompiler;
  readonly #targets: ReconcileTargets | null;
  readonly #host: Omit<HostFacts, 'ownAddrs'>;
  readonly #log: Logger;
  #config: ConfigChange | null = null;
  #grant: VipGrant | null = null;
  #health: HealthView = allUp;
  #fwd: FwdTable | undefined;
  #fwdKey = '';
  #appliedSeq = -1;
  readonly #waiters: { seq: number; resolve: () => void }[] = [];
  /** Reconciliations done (for status and tests). */
  runs = 0;

  constructor(o: { compiler: DesiredCompiler; targets: ReconcileTargets | null; host: Omit<HostFacts, 'ownAddrs'>; log: Logger }) {
    this.#compiler = o.compiler;
    this.#targets = o.targets;
    this.#host = o.host;
    this.#log = o.log;
  }

  /** The forwarding table in force (undefined before the first reconcile). */
  fwd(): FwdTable | undefined {
    return this.#fwd;
  }

  setConfig(c: ConfigChange): void {
    this.#config = c;
    this.reconcile();
  }

  setGrant(g: VipGrant): void {
    this.#grant = g;
    this.reconcile();
  }

  setHealth(h: HealthView): void {
    this.#health = h;
    this.reconcile();
  }

  /** Compiles the desired state from the inputs and applies what differs. */
  reconcile(): void {
    const c = this.#config;
    if (c === null || this.#grant === null) return;
    const t = this.#targets;
    if (t) {
      try {
        this.#apply(t, c);
      } catch (e) {
        // A bug, not an operator error: logged; the inputs stay and the next change reconciles again.
        this.#log('reconcile: failed', { seq: c.seq, error: (e as Error).stack ?? String(e) });
      }
    }
    this.runs++;
    this.#markApplied(c.seq);
  }

  #apply(t: ReconcileTargets, c: ConfigChange): void {
    const d = this.#compiler.compile({
      table: c.table,
      trashDestIds: t.trashDestIds(),
      marks: c.marks,
      health: this.#health,
      grant: this.#grant!,
      host: { ...this.#host, ownAddrs: t.ownAddrs() },
      now: Date.now(),
    });
    const key = JSON.stringify(d.fwd);
    if (key !== this.#fwdKey) {
      this.#fwdKey = key;
      this.#fwd = d.fwd;
      t.publish(d.fwd);
    }
    t.kernel.apply(d.kernel);
    t.vips.sync(d.vips);
  }

  /** Resolves once config change `seq` (or a later one) has been reconciled. */
  applied(seq: number): Promise<void> {
    if (this.#appliedSeq >= seq) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ seq, resolve }));
  }

  #markApplied(seq: number): void {
    if (seq > this.#appliedSeq) this.#appliedSeq = seq;
    for (let i = this.#waiters.length - 1; i >= 0; i--) {
      if (this.#waiters[i].seq <= this.#appliedSeq) {
        this.#waiters[i].resolve();
        this.#waiters.splice(i, 1);
      }
    }
  }
}
