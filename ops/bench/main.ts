// npm run bench -- <name> [args]: runs ops/bench/<name>.ts, which prints a table for people and ends with
// one line of JSON holding its figures.
import { readdirSync } from 'node:fs';

const here = new URL('.', import.meta.url).pathname;
const names = readdirSync(here).filter((f) => f.endsWith('.ts') && f !== 'main.ts' && !f.startsWith('_')).map((f) => f.slice(0, -3));
const [name, ...args] = process.argv.slice(2);
if (!name || !names.includes(name)) {
  process.stderr.write(`usage: npm run bench -- <${names.join('|')}> [options]\n`);
  process.exit(2);
}
const mod = (await import(`./${name}.ts`)) as { main: (args: string[]) => Promise<void> | void };
await mod.main(args);
