// The receiving side of the checker's messages: folds `ready`, `transitions` and `view` into the dests each IPVS
// service should hold, notices gaps in the batch sequence, and answers the reconciler's questions. Pure.
import type { DestConfig } from '../model/ipvs.ts';
import { destKeyString, serviceKeyString } from '../model/ipvs.ts';
import type { HealthView } from './machine.ts';
import type { HealthTransition } from '../proto/health.ts';

/** What folding a message did: `resync` means a batch was missed and a `view-request` should be sent. */
export type FoldResult = 'applied' | 'stale' | 'resync';

/**
 * The checker's table as tsvsd sees it: per service (`serviceKeyString`), the dests health wants and their weight.
 * A service the checker does not know is not constrained by it.
 */
export class HealthTable {
  /** serviceKeyString → destKeyString → dest. */
  readonly services = new Map<string, Map<string, DestConfig>>();
  epoch = 0;
  seq = 0;

  /** Replaces everything with a full view (`ready`, or `view` with the batch seq it reflects). */
  reset(view: HealthView, epoch: number, seq = 0): void {
    this.services.clear();
    for (const v of view.virtualServers) {
      for (const k of v.services) this.services.set(serviceKeyString(k), new Map(v.dests.map((d) => [destKeyString(d), d])));
    }
    this.epoch = epoch;
    this.seq = seq;
  }

  /** Folds one `transitions` batch. Batches must come with seq = previous + 1; otherwise nothing is applied. */
  apply(epoch: number, seq: number, changes: readonly HealthTransition[]): FoldResult {
    if (seq <= this.seq) return 'stale';
    if (seq !== this.seq + 1) return 'resync';
    for (const c of changes) {
      for (const k of c.services) {
        const key = serviceKeyString(k);
        const m = this.services.get(key) ?? new Map<string, DestConfig>();
        this.services.set(key, m);
        if (c.dest) m.set(destKeyString(c.key), c.dest);
        else m.delete(destKeyString(c.key));
      }
    }
    this.epoch = epoch;
    this.seq = seq;
    return 'applied';
  }

  /** The dests health wants in a service, or undefined when the checker does not know the service. */
  dests(serviceKey: string): DestConfig[] | undefined {
    const m = this.services.get(serviceKey);
    return m ? [...m.values()] : undefined;
  }

  /**
   * The weight health gives a dest: its weight when listed, null when health has it out of the table, undefined
   * when the checker does not know the service.
   */
  weight(serviceKey: string, dest: { af: 4 | 6; addr: string; port: number }): number | null | undefined {
    const m = this.services.get(serviceKey);
    if (!m) return undefined;
    return m.get(destKeyString(dest))?.weight ?? null;
  }

  /**
   * A predicate for a consumer that only knows up/down (shared/fwd/table.ts `destUp`): up when the checker does not
   * know the service, or lists the dest with a weight above 0. Weight changes and sorry servers need {@link dests}.
   */
  destUp = (serviceKey: string, dest: Readonly<DestConfig>): boolean => {
    const w = this.weight(serviceKey, dest);
    return w === undefined || (w !== null && w > 0);
  };
}
