// Regenerates test/fixtures/packets/*.hex from golden-cases.ts: `node test/support/gen-packet-fixtures.ts`.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { goldenCases } from './golden-cases.ts';
import { toHex } from './packet-ref.ts';

const dir = join(import.meta.dirname, '../fixtures/packets');
for (const c of goldenCases()) {
  writeFileSync(join(dir, `${c.name}.hex`), `# ${c.name}: ${c.description}\nop ${c.op}\nin ${toHex(c.input)}\nout ${toHex(c.expected)}\n`);
}
