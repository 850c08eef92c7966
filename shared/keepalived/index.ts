// Entry points of the keepalived.conf reader: text or file in, typed model (and warnings) out.
import type { KeepalivedConfig } from './model.ts';
import { buildKeepalivedConfig } from './model.ts';
import type { KeepalivedFs, ParseTreeOptions } from './parse.ts';
import { parseKeepalivedTree } from './parse.ts';

export type { KeepalivedConfig } from './model.ts';
export type { KeepalivedFs, ParseTreeOptions } from './parse.ts';
export { KeepalivedError, KeepalivedErrorCode } from './errors.ts';

/** An fs with nothing in it: for a configuration given as text that must not include other files. */
export const emptyKeepalivedFs: KeepalivedFs = { readFile: () => undefined, listDir: () => undefined };

/**
 * Reads a keepalived configuration: `text` is the content of `path` (read through `fs` when undefined), includes
 * are read through `fs`. Warnings (unknown keywords, defaults applied, values adjusted) are in the result.
 *
 * @throws KeepalivedError with every problem, each naming file:line and the offending word.
 */
export function readKeepalivedConfig(path: string, text: string | undefined, fs: KeepalivedFs = emptyKeepalivedFs, opts: ParseTreeOptions = {}): KeepalivedConfig {
  const tree = parseKeepalivedTree(path, text, fs, opts);
  return buildKeepalivedConfig(tree.nodes, tree.warnings);
}
