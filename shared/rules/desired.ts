// The director's desired state, compiled from its inputs: the table, the health view, the VIPs it may own, the
// mark rules and the host's own addresses → a whole forwarding table, the kernel rules, the VIP set. Pure; the
// reconciler in tsvsd applies only what differs from what is in force.
import type { MarkRule } from '../fwd/classifier.ts';
import { DrMarkAllocator, IdAllocator, Limits, compileFwdTable, type FwdTable } from '../fwd/table.ts';
import type { DestConfig } from '../model/ipvs.ts';
import type { CompiledTable } from '../model/table.ts';
import { ipv4ToText as intToIpv4 } from '../net/addr.ts';
import type { HostFacts } from './host.ts';
import { kernelRuleSpec, type KernelRuleSpec } from './kernel-rules.ts';

/**
 * Which VIPs this director may own: all of its table's (a director alone, or active-active behind ECMP), or only
 * those granted (the cluster agent's leader grant). Addresses as dotted quads.
 */
export type VipGrant = { kind: 'all' } | { kind: 'only'; vips: readonly string[] };

/** The health view: whether a real server of a service is up. Today every real server is. */
export type HealthView = (serviceKey: string, dest: Readonly<DestConfig>) => boolean;

/** Everything the desired state depends on. */
export interface DesiredInputs {
  table: CompiledTable;
  /** Table ids of deleted dests still in the trash (they keep their counter slots). */
  trashDestIds: Iterable<number>;
  marks: readonly MarkRule[];
  health: HealthView;
  grant: VipGrant;
  host: HostFacts;
  /** Wall-clock ms (slot reuse after the trash period). */
  now: number;
}

/** The desired state. */
export interface Desired {
  fwd: FwdTable;
  kernel: KernelRuleSpec;
  /** VIPs to hold on the client interface, sorted. */
  vips: string[];
}

/** The options of {@link DesiredCompiler}. */
export interface DesiredOptions {
  backend: 'afpacket' | 'nfqueue';
  /** Workers (NFQUEUE: one queue each). */
  workers: number;
  /** NFQUEUE: the first queue number. */
  queueBase?: number;
}

/**
 * Compiles desired states. Holds what must stay stable from one compile to the next: the counter slots of
 * services and real servers, and (NFQUEUE) the DR routing marks.
 */
export class DesiredCompiler {
  readonly svcSlots = new IdAllocator(Limits.services);
  readonly destSlots = new IdAllocator(Limits.dests);
  readonly #drMarks: DrMarkAllocator | undefined;
  readonly #o: DesiredOptions;

  constructor(o: DesiredOptions) {
    this.#o = o;
    this.#drMarks = o.backend === 'nfqueue' ? new DrMarkAllocator() : undefined;
  }

  compile(i: DesiredInputs): Desired {
    const fwd = compileFwdTable(i.table, i.trashDestIds, this.svcSlots, this.destSlots, i.now, { marks: i.marks, drMarks: this.#drMarks, destUp: i.health });
    const kernel = kernelRuleSpec(fwd, i.host, { backend: this.#o.backend, queues: this.#o.workers, queueBase: this.#o.queueBase, drMarks: this.#drMarks?.entries() });
    return { fwd, kernel, vips: ownedVips(fwd, i.grant) };
  }
}

/** The VIPs of `fwd` (service addresses and fwmark services' VIPs) this director may own, sorted. */
export function ownedVips(fwd: FwdTable, grant: VipGrant): string[] {
  const all = fwd.vips.map(intToIpv4);
  if (grant.kind === 'all') return all;
  const ok = new Set(grant.vips);
  return all.filter((v) => ok.has(v));
}

/** What to add and what to remove to go from `have` to `want`. */
export function setDiff<T>(have: Iterable<T>, want: Iterable<T>): { add: T[]; del: T[] } {
  const h = new Set(have);
  const w = new Set(want);
  return { add: [...w].filter((x) => !h.has(x)), del: [...h].filter((x) => !w.has(x)) };
}
