// layering: imports flow services → shared; shared/ is pure except shared/sys (no koffi, no fs/net/dgram/
// child_process/os/timers/process state); services never import each other; nothing imports test/.
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { layeringViolations, specifiers, type SourceFile } from '../support/layering.ts';

const root = resolve(import.meta.dirname, '../..');

function tree(dir: string): SourceFile[] {
  return readdirSync(join(root, dir), { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => ({ path: `${dir}/${f}`, src: readFileSync(join(root, dir, f), 'utf8') }));
}

const show = (v: ReturnType<typeof layeringViolations>): string[] => v.map((x) => `${x.file} -> ${x.detail} (${x.rule})`);

describe('layering', () => {
  it('layering: the tree keeps every rule (shared pure but shared/sys, services apart, test/ unimported)', () => {
    const files = [...tree('shared'), ...tree('services'), ...tree('ops')];
    expect(files.length).toBeGreaterThan(50);
    expect(show(layeringViolations(files))).toEqual([]);
  });
  it('layering: the check fails on impure imports in shared/, and allows them in shared/sys', () => {
    const bad: SourceFile[] = [
      { path: 'shared/net/bad.ts', src: "import { readFileSync } from 'node:fs';\nimport koffi from 'koffi';\nimport * as os from 'os';\n" },
      { path: 'shared/util/bad2.ts', src: "export { x } from 'node:child_process';\nconst m = await import('node:dgram');\nimport 'node:timers';\n" },
      { path: 'shared/model/bad3.ts', src: "// process.exit in a comment is fine\nexport const pid = process.pid;\nsetTimeout(() => 0, 1);\n" },
      { path: 'shared/sys/ok.ts', src: "import { readFileSync } from 'node:fs';\nimport koffi from 'koffi';\nsetTimeout(() => 0, 1);\n" },
      { path: 'shared/net/ok2.ts', src: "import { join } from 'node:path';\nimport { createHash } from 'node:crypto';\nimport { pack } from 'msgpackr';\n" },
    ];
    expect(show(layeringViolations(bad))).toEqual([
      'shared/net/bad.ts -> node:fs (shared-impure)',
      'shared/net/bad.ts -> koffi (shared-impure)',
      'shared/net/bad.ts -> os (shared-impure)',
      'shared/util/bad2.ts -> node:child_process (shared-impure)',
      'shared/util/bad2.ts -> node:timers (shared-impure)',
      'shared/util/bad2.ts -> node:dgram (shared-impure)',
      'shared/model/bad3.ts -> process.pid (shared-process-state)',
      'shared/model/bad3.ts -> setTimeout( (shared-process-state)',
    ]);
  });
  it('layering: the check fails when a service imports another, shared imports a service, or anything imports test/', () => {
    const bad: SourceFile[] = [
      { path: 'services/tsvsd/a.ts', src: "import { Engine } from '../worker/engine.ts';\nimport { x } from '../../shared/net/parse.ts';\nimport { y } from './b.ts';\n" },
      { path: 'shared/net/c.ts', src: "import type { Engine } from '../../services/worker/engine.ts';\n" },
      { path: 'ops/bench/d.ts', src: "import { fake } from '../../test/support/engine-fakes.ts';\n" },
    ];
    expect(show(layeringViolations(bad))).toEqual([
      'services/tsvsd/a.ts -> services/worker/engine.ts (service-imports-service)',
      'shared/net/c.ts -> services/worker/engine.ts (shared-relative)',
      'ops/bench/d.ts -> test/support/engine-fakes.ts (imports-test)',
    ]);
  });
  it('layering: specifiers are read from static, re-export, side-effect and dynamic imports, not from comments', () => {
    expect(specifiers("import a from 'a';\nimport type { B } from \"b\";\nexport * from './c.ts';\nimport 'd';\n// import x from 'x';\nawait import('e');\n")).toEqual(['a', 'b', './c.ts', 'd', 'e']);
  });
});
