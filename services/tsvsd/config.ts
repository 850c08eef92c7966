// tsvsd start-up rules: the seam between a rules file (ipvsadm-save format) and the table.
import type { AdminErrno } from '../../shared/proto/admin.ts';
import type { TableOp } from '../../shared/model/ops.ts';
import { isTableOp } from '../../shared/model/ops.ts';
import type { IpvsTable } from '../../shared/model/table.ts';
import { checkRequest } from './request.ts';

/** One parsed rule: the request and the 1-based line of the file it came from. */
export interface ParsedRule {
  line: number;
  request: TableOp;
}

/**
 * Turns the text of a rules file into requests, in file order. Throws an Error naming the line on a
 * syntax error. The real one is the ipvsadm grammar (shared/ipvsadm/parse.ts, written in parallel); the
 * integrator wires it in main.ts. Until then tsvsd refuses `--config` rather than guess the format.
 */
export type RulesParser = (text: string, file: string) => ParsedRule[];

/** Result of loading rules: how many applied, or the first rule that failed and why. */
export type LoadResult =
  | { ok: true; applied: number }
  | { ok: false; applied: number; line: number; errno: AdminErrno; detail: string };

/**
 * Applies rules to the table in order, each checked like an admin request (shape, canonical addresses)
 * and then by the table (kernel errno rules). Stops at the first failure; rules before it stay applied,
 * so callers loading at start-up should treat a failure as fatal.
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
