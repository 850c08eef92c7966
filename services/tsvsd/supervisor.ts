// tsvsd's seam to the forwarding workers: what the control process asks of whoever runs them.
import type { CompiledTable } from '../../shared/model/table.ts';
import type { Logger } from './log.ts';

/**
 * Runs the forwarding workers and hands them the table. The control process calls `start` once, then
 * `publish` after every table change (epochs strictly increase), then `stop` on exit. A worker swaps
 * tables between batches; a supervisor may drop an epoch that a newer one replaced before delivery.
 */
export interface Supervisor {
  /** Short name for logs. */
  readonly name: string;
  start(table: CompiledTable, workers: number): Promise<void>;
  publish(table: CompiledTable): void;
  stop(): Promise<void>;
}

/**
 * The supervisor to use until the data plane exists: it starts no workers and forwards nothing. It only
 * logs what it was asked, so that a director running with it is never mistaken for one that forwards.
 */
export class NoWorkersSupervisor implements Supervisor {
  readonly name = 'no-workers';
  readonly #log: Logger;

  constructor(log: Logger) {
    this.#log = log;
  }

  async start(table: CompiledTable, workers: number): Promise<void> {
    this.#log('supervisor: no forwarding workers started (data plane not implemented yet); nothing is forwarded', {
      requested: workers,
      epoch: table.epoch,
    });
  }

  publish(_table: CompiledTable): void {}

  async stop(): Promise<void> {}
}
