// VIP ownership as an input of the reconciler: which VIPs this director may hold. Today a director alone owns
// every VIP of its table; the cluster agent's leader grant will be another OwnershipSource.
import type { VipGrant } from '../../shared/rules/desired.ts';

/** Tells the daemon which VIPs it may own, at start and on every change. */
export interface OwnershipSource {
  readonly name: string;
  /** Starts; `emit` is called with the first grant and then on every change. */
  start(emit: (g: VipGrant) => void): void;
  stop(): void;
}

/** A director alone: it owns every VIP of its table, from the start, for ever. */
export class AllTableVips implements OwnershipSource {
  readonly name = 'all-table-vips';

  start(emit: (g: VipGrant) => void): void {
    emit({ kind: 'all' });
  }

  stop(): void {}
}
