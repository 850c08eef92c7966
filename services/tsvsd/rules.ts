// tsvsd's rules files: the ipvsadm-save format (`-A …` and `-a …` lines, as `tsvsadm -S` writes them),
// read with the same grammar as tsvsadm. Lines starting with '#' are comments, as ipvsadm-restore strips them.
import type { NameResolver } from '../../shared/ipvsadm/names.ts';
import { parseArgs } from '../../shared/ipvsadm/parse.ts';
import { toRequest, type KernelCommand } from '../../shared/ipvsadm/request.ts';
import { tokenizeRestoreStream } from '../../shared/ipvsadm/restore.ts';
import type { ParsedRule, RulesParser } from './config-store.ts';

const NOT_RULES = new Set(['list', 'save', 'restore', 'help', 'version']);

/**
 * A RulesParser over the ipvsadm grammar. Every line must be a table command (-A -E -D -C -a -e -d -Z --set
 * --start-daemon --stop-daemon); a line ipvsadm would reject throws an Error naming the file, the line and
 * ipvsadm's message.
 */
export function ipvsadmRulesParser(resolver: NameResolver): RulesParser {
  return (text: string, file: string): ParsedRule[] => {
    const rules: ParsedRule[] = [];
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      if (/^\s*#/.test(line)) continue;
      const argvs = tokenizeRestoreStream(line, 'ipvsadm');
      if (argvs.length === 0) continue;
      const r = parseArgs(argvs[0], { resolver, readingStdin: true });
      if (r.kind !== 'command') throw new Error(`${file}:${i + 1}: ${r.stderr.trim() || 'invalid rule'}`);
      if (NOT_RULES.has(r.command.kind)) throw new Error(`${file}:${i + 1}: '${line.trim()}' is not a rule (-A, -a, -E, -e, -D, -d, -C, --set)`);
      rules.push({ line: i + 1, request: toRequest(r.command as KernelCommand)[1] });
    }
    return rules;
  };
}
