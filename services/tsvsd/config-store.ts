// tsvsd's config store: where table changes and mark rules are kept. A request goes to the store; the daemon
// applies the store's change events. The local store is the IPVS table + the rules file loaded at start; with
// --nats the cluster store (cluster-config.ts, NATS KV) wraps it, so every director applies the same table.
import { readFileSync } from 'node:fs';
import type { MarkRule } from '../../shared/fwd/classifier.ts';
import { parseMarkRules } from '../../shared/fwd/mark-rules.ts';
import type { TableErrno, TableOp } from '../../shared/model/ops.ts';
import { isTableOp } from '../../shared/model/ops.ts';
import type { CompiledTable, IpvsTable } from '../../shared/model/table.ts';
import { checkRequest } from './request.ts';

/** One change of the stored config: the table of the new epoch and the mark rules in force. */
export interface ConfigChange {
  /** Sequence number of the change in this store, from 1. */
  seq: number;
  table: CompiledTable;
  marks: readonly MarkRule[];
  /** What changed: a table operation, the mark rules, the initial load, or a cluster revision taken whole. */
  cause: TableOp['op'] | 'marks' | 'load' | 'revision';
}

/**
 * A stored change's sequence number, or why the store refused it (nothing changed then): the table's errno, or
 * EAGAIN when the store cannot be reached (the cluster store without NATS).
 */
export type StoreResult = { ok: true; seq: number } | { ok: false; errno: TableErrno | 'EAGAIN'; detail: string };

/**
 * Where the config lives. `apply` and `setMarks` resolve once the change is stored; every stored change is then
 * announced to the `onChange` listener (in order, once each), and only then does anything act on it.
 */
export interface ConfigStore {
  /** Short name for logs ("local", "cluster"). */
  readonly name: string;
  /** The table as this director knows it: the read side for listings (snapshots, counters merged in). */
  readonly table: IpvsTable;
  /** Applies one table operation; a refused one changes nothing and announces nothing. */
  apply(op: TableOp): Promise<StoreResult>;
  /** Replaces the mark rules (iptables MARK syntax); a text that does not parse is refused with EINVAL. */
  setMarks(text: string): Promise<StoreResult>;
  /** The mark rules in force. */
  marks(): readonly MarkRule[];
  /** Registers the one listener for stored changes. */
  onChange(listener: (c: ConfigChange) => void): void;
}

/** One parsed rule: the request and the 1-based line of the file it came from. */
export interface ParsedRule {
  line: number;
  request: TableOp;
}

/** Turns the text of a rules file into requests, in file order. Throws an Error naming the line on a syntax error. */
export type RulesParser = (text: string, file: string) => ParsedRule[];

/** Result of loading rules: how many applied, or the first rule that failed and why. */
export type LoadResult = { ok: true; applied: number } | { ok: false; applied: number; line: number; errno: TableErrno; detail: string };

/**
 * Applies rules to the table in order, each checked like an admin request (shape, canonical addresses) and then
 * by the table (kernel errno rules). Stops at the first failure; rules before it stay applied, so callers
 * loading at start-up should treat a failure as fatal.
 */
export function applyRules(table: IpvsTable, rules: readonly ParsedRule[]): LoadResult {
  let applied = 0;
  for (const { line, request } of rules) {
    const c = checkRequest(request);
    if (!c.ok) return { ok: false, applied, line, errno: 'EINVAL', detail: c.problems.join('; ') };
    if (!isTableOp(c.value)) return { ok: false, applied, line, errno: 'EINVAL', detail: `${c.value.op} is not a table operation` };
    const r = table.apply(c.value);
    if (!r.ok) return { ok: false, applied, line, errno: r.errno, detail: r.detail };
    applied++;
  }
  return { ok: true, applied };
}

/** Why the local store could not load its files. */
export class ConfigLoadError extends Error {
  override readonly name = 'ConfigLoadError';
}

/** The local store: the table in memory, loaded from a rules file and a mark-rules file at start. */
export class LocalConfigStore implements ConfigStore {
  readonly name = 'local';
  readonly table: IpvsTable;
  #marks: readonly MarkRule[] = [];
  #listener: ((c: ConfigChange) => void) | null = null;
  #seq = 0;

  constructor(table: IpvsTable) {
    this.table = table;
  }

  /**
   * Loads `--config` (ipvsadm-save format, through `parse`) and `--mark-rules` before anything listens.
   * Throws ConfigLoadError naming the file (and line) on the first problem. Returns how many rules applied.
   */
  load(files: { config?: string; markRules?: string }, parse?: RulesParser): number {
    let applied = 0;
    if (files.markRules !== undefined) {
      try {
        this.#marks = parseMarkRules(readFileSync(files.markRules, 'utf8'), { source: files.markRules });
      } catch (e) {
        throw new ConfigLoadError(`--mark-rules ${files.markRules}: ${(e as Error).message}`);
      }
    }
    if (files.config !== undefined) {
      if (!parse) throw new ConfigLoadError('--config: no rules parser given');
      let res: LoadResult;
      try {
        res = applyRules(this.table, parse(readFileSync(files.config, 'utf8'), files.config));
      } catch (e) {
        throw new ConfigLoadError(`--config ${files.config}: ${(e as Error).message}`);
      }
      if (!res.ok) throw new ConfigLoadError(`--config ${files.config}:${res.line}: ${res.errno}: ${res.detail}`);
      applied = res.applied;
    }
    return applied;
  }

  async apply(op: TableOp): Promise<StoreResult> {
    const r = this.table.apply(op);
    return r.ok ? { ok: true, seq: this.#emit(op.op) } : r;
  }

  async setMarks(text: string): Promise<StoreResult> {
    try {
      this.#marks = parseMarkRules(text, { source: 'marks' });
    } catch (e) {
      return { ok: false, errno: 'EINVAL', detail: (e as Error).message };
    }
    return { ok: true, seq: this.#emit('marks') };
  }

  marks(): readonly MarkRule[] {
    return this.#marks;
  }

  onChange(listener: (c: ConfigChange) => void): void {
    this.#listener = listener;
  }

  /**
   * Changes the table by `edit` (several operations, e.g. a cluster revision) and announces one change if the table's
   * epoch moved. Returns the sequence number of that change (or of the last one when nothing changed).
   */
  change(edit: (table: IpvsTable) => void, cause: ConfigChange['cause']): number {
    const before = this.table.epoch;
    edit(this.table);
    return this.table.epoch === before ? this.#seq : this.#emit(cause);
  }

  /** The current state as a change (the daemon's first reconcile). */
  current(): ConfigChange {
    return { seq: this.#seq, table: this.table.compiled(), marks: this.#marks, cause: 'load' };
  }

  #emit(cause: ConfigChange['cause']): number {
    this.#seq++;
    this.#listener?.({ seq: this.#seq, table: this.table.compiled(), marks: this.#marks, cause });
    return this.#seq;
  }
}
