// engine golden: the stored engine cases (test/fixtures/engine/*.json) replay on the real engine to exactly their
// verdicts, output bytes and counter deltas, step by step; the stored files are what the case definitions say.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CaseRun, ENGINE_CASES_DIR, expectedOutcome, loadEngineCases, replayCase } from '../../ops/bench/_engine-cases.ts';
import { engineGoldenCases } from '../support/engine-golden-cases.ts';
import { engineCaseText } from '../support/gen-engine-fixtures.ts';

const dir = join(import.meta.dirname, '../..', ENGINE_CASES_DIR);
const stored = loadEngineCases(dir);

describe('engine golden', () => {
  it('engine golden: the fixtures are the case definitions (regenerate with node test/support/gen-engine-fixtures.ts)', () => {
    const defs = engineGoldenCases();
    expect(stored.map((c) => c.name)).toEqual(defs.map((c) => c.name).sort());
    for (const c of defs) expect(readFileSync(join(dir, `${c.name}.json`), 'utf8'), c.name).toBe(engineCaseText(c));
  });

  it('engine golden: the cases cover forwarding both ways, DR, TUN, one-packet, port reuse, ICMP and the drop verdicts', () => {
    const verdicts = new Set(stored.flatMap((c) => c.steps.map((s) => s.verdict)));
    expect([...verdicts].sort()).toEqual(['DROP', 'FORWARD', 'NOT_OURS']);
    const events = new Set(stored.flatMap((c) => c.steps.flatMap((s) => Object.keys(s.events))));
    for (const e of ['forwarded_in', 'forwarded_out', 'conns_created', 'drop_no_conn', 'drop_no_dest', 'icmp_unreach_sent', 'not_ours', 'orphan_replies', 'net_drop_fragment']) expect(events, e).toContain(e);
  });

  for (const c of stored) {
    it(`engine golden: ${c.name}: ${c.description}`, () => {
      const run = new CaseRun(c);
      c.steps.forEach((s, i) => expect(run.step(s), `${c.name} step ${i + 1}: ${s.note}`).toEqual(expectedOutcome(s)));
    });
  }

  it('engine golden: a replay notices a changed output byte, a wrong verdict and a missing counter delta', () => {
    const base = stored.find((x) => x.name === 'nat-tcp-lifecycle')!;
    expect(replayCase(base)).toEqual(base.steps.map(expectedOutcome));
    const byte = structuredClone(base);
    const f = byte.steps[0].out[0].frame;
    byte.steps[0].out[0].frame = f.slice(0, -2) + (f.endsWith('00') ? '01' : '00');
    expect(replayCase(byte)[0]).not.toEqual(expectedOutcome(byte.steps[0]));
    const verdict = structuredClone(base);
    verdict.steps[6].verdict = 'FORWARD';
    expect(replayCase(verdict)[6]).not.toEqual(expectedOutcome(verdict.steps[6]));
    const counter = structuredClone(base);
    delete counter.steps[0].events.conns_created;
    expect(replayCase(counter)[0]).not.toEqual(expectedOutcome(counter.steps[0]));
  });
});
