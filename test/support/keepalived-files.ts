// Helpers for the keepalived unit tests: the compat fixtures without their provenance header, and an in-memory fs.
import { readdirSync, readFileSync } from 'node:fs';
import { posix, resolve } from 'node:path';
import type { KeepalivedFs } from '../../shared/keepalived/parse.ts';

/** Copies of /work/shared/compat/keepalived (4-line provenance header kept). */
export const keepalivedCompatDir = resolve(import.meta.dirname, '../fixtures/keepalived');

const MARKER = '# ---- verbatim below ----\n';

/** The compat file names, sorted (files only: vrrp-pair/ holds tsvs's own samples). */
export function keepalivedCompatFiles(): string[] {
  return readdirSync(keepalivedCompatDir, { withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name).sort();
}

/** A compat file's verbatim part (everything after the marker line). */
export function keepalivedCompatText(name: string): string {
  const text = readFileSync(resolve(keepalivedCompatDir, name), 'utf8');
  const at = text.indexOf(MARKER);
  if (at < 0) throw new Error(`${name}: no '${MARKER.trim()}' line`);
  return text.slice(at + MARKER.length);
}

/** A read-only fs over a path → text map; directories are implied by the paths. */
export function memoryFs(files: Record<string, string>): KeepalivedFs {
  const norm = new Map(Object.entries(files).map(([p, t]) => [posix.normalize(p), t]));
  return {
    readFile: (p) => norm.get(posix.normalize(p)),
    listDir: (dir) => {
      const d = posix.normalize(dir);
      const names = new Set<string>();
      for (const p of norm.keys()) {
        const parent = posix.dirname(p);
        if (parent === d) names.add(posix.basename(p));
        else if (parent.startsWith(d === '/' ? '/' : d + '/')) names.add(parent.slice(d === '/' ? 1 : d.length + 1).split('/')[0]);
      }
      return names.size > 0 ? [...names] : undefined;
    },
  };
}
