// telemetry metrics: what /metrics renders passes Debian's `promtool check metrics` (prometheus package; ops/setup.sh
// installs it), hooks included.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { formatMetrics } from '../../shared/telemetry/prometheus.ts';
import { sampleCluster, sampleHealth, sampleMetricsInput } from '../unit/telemetry-sample.ts';

const PROMTOOL = '/usr/bin/promtool';

function promtool(text: string): { status: number | null; out: string } {
  if (!existsSync(PROMTOOL)) throw new Error(`${PROMTOOL} is missing: this test needs Debian's prometheus package (bash ops/setup.sh installs it)`);
  const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('telemetry promtool', () => {
  it('telemetry promtool: the sample read model passes check metrics with no lint findings', () => {
    const r = promtool(formatMetrics(sampleMetricsInput()));
    expect(r.out).toBe('');
    expect(r.status).toBe(0);
  });

  it('telemetry promtool: with the cluster and health hooks filled it still passes', () => {
    const m = sampleMetricsInput();
    m.cluster = sampleCluster();
    m.health = sampleHealth();
    m.vipsHeld = ['10.200.0.10', '10.200.1.10'];
    const r = promtool(formatMetrics(m));
    expect(r.out).toBe('');
    expect(r.status).toBe(0);
  });

  it('telemetry promtool: promtool does reject a broken exposition (the check is real)', () => {
    const r = promtool('# TYPE x counter\nx{a="1"} 1\nx{a="1"} 2\nbroken line here\n');
    expect(r.status).not.toBe(0);
  });
});
