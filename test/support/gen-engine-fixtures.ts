// Writes the engine golden cases (engine-golden-cases.ts) to test/fixtures/engine/<name>.json, one file per case.
// Run after changing a case: node test/support/gen-engine-fixtures.ts
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { engineGoldenCases } from './engine-golden-cases.ts';

/** The stored text of a case: stable two-space JSON and a final newline. */
export function engineCaseText(c: object): string {
  return `${JSON.stringify(c, null, 2)}\n`;
}

if (import.meta.main) {
  const dir = join(import.meta.dirname, '../fixtures/engine');
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(dir)) if (f.endsWith('.json')) rmSync(join(dir, f));
  const cases = engineGoldenCases();
  for (const c of cases) writeFileSync(join(dir, `${c.name}.json`), engineCaseText(c));
  process.stdout.write(`wrote ${cases.length} engine cases to ${dir}\n`);
}
