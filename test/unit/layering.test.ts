// layering: imports flow services → shared; shared imports nothing outside shared; services never import
// each other; nothing imports test/.
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';

const root = resolve(import.meta.dirname, '../..');

function files(dir: string): string[] {
  const d = join(root, dir);
  try {
    return readdirSync(d, { recursive: true }).map(String).filter((f) => f.endsWith('.ts')).map((f) => join(d, f));
  } catch {
    return [];
  }
}

function relImports(file: string): string[] {
  const src = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of src.matchAll(/(?:import|export)[^'"`]*?from\s*['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g)) {
    const spec = m[1] ?? m[2];
    out.push(relative(root, resolve(dirname(file), spec)));
  }
  return out;
}

describe('layering', () => {
  it('layering: shared imports only shared', () => {
    const bad = files('shared').flatMap((f) => relImports(f).filter((t) => !t.startsWith('shared/')).map((t) => `${relative(root, f)} -> ${t}`));
    expect(bad).toEqual([]);
  });
  it('layering: a service imports shared or itself, never another service or test/', () => {
    const bad: string[] = [];
    for (const f of files('services')) {
      const own = relative(root, f).split('/').slice(0, 2).join('/');
      for (const t of relImports(f)) if (!t.startsWith('shared/') && !t.startsWith(own + '/')) bad.push(`${relative(root, f)} -> ${t}`);
    }
    expect(bad).toEqual([]);
  });
  it('layering: nothing outside test/ imports test/', () => {
    const bad = [...files('services'), ...files('shared'), ...files('ops')].flatMap((f) => relImports(f).filter((t) => t.startsWith('test/')).map((t) => `${relative(root, f)} -> ${t}`));
    expect(bad).toEqual([]);
  });
});
