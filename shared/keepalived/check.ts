// `keepalived -t` for tsvs: read a configuration and list every problem and warning with file:line; pure (the file
// system comes in as a KeepalivedFs).
import type { KeepalivedConfig } from './model.ts';
import type { KeepalivedFs, ParseTreeOptions } from './parse.ts';
import type { KeepalivedWarning } from './errors.ts';
import { KeepalivedError } from './errors.ts';
import { readKeepalivedConfig } from './index.ts';

/** The outcome of a configuration check. */
export interface KeepalivedCheck {
  /** The model, or null when there were errors. */
  readonly config: KeepalivedConfig | null;
  /** One line each: `file:line: error: ...` first, then `file:line: warning: ...`. */
  readonly lines: readonly string[];
  readonly errors: number;
  readonly warnings: number;
}

function tag(message: string, file: string, line: number, kind: 'error' | 'warning'): string {
  const head = `${file}:${line}: `;
  return message.startsWith(head) ? `${head}${kind}: ${message.slice(head.length)}` : `${kind}: ${message}`;
}

/** A warning as `--check` prints it: `file:line: warning: ...`. */
export function warningLine(w: KeepalivedWarning): string {
  return tag(w.message, w.file, w.line, 'warning');
}

/**
 * Reads `path` through `fs` and reports every problem. `extraWarnings` adds what the caller does not act on (the
 * health checker's {@link healthWarnings}). Never throws for a bad configuration; only bugs throw.
 */
export function checkKeepalivedConfig(path: string, fs: KeepalivedFs, opts: ParseTreeOptions = {}, extraWarnings: (c: KeepalivedConfig) => readonly KeepalivedWarning[] = () => []): KeepalivedCheck {
  let config: KeepalivedConfig;
  try {
    config = readKeepalivedConfig(path, undefined, fs, opts);
  } catch (e) {
    if (!(e instanceof KeepalivedError)) throw e;
    const lines = e.problems.map((p) => tag(p.message, p.file, p.line, 'error'));
    return { config: null, lines, errors: lines.length, warnings: 0 };
  }
  const warnings = [...config.warnings, ...extraWarnings(config)];
  return { config, lines: warnings.map((w) => tag(w.message, w.file, w.line, 'warning')), errors: 0, warnings: warnings.length };
}
