// bench: the pure pieces behind the tracing-cost figures (per-round paired costs, /proc/PID/stat parsing, roles).
import { describe, expect, it } from 'vitest';
import { pairedCosts } from '../../ops/bench/cps.ts';
import { cpuByRole, roleOf, statTicks, type CpuSnapshot } from '../../ops/bench/_proc-cpu.ts';

describe('bench tracing cost', () => {
  it('bench cps: a traced run is compared with the untraced run of its own round', () => {
    expect(pairedCosts([10_000, 8_000, 12_000], [9_500, 8_400, 11_400]).map((x) => Number(x.toFixed(3)))).toEqual([5, -5, 5]);
    // Rounds missing on one side are left out, not paired across rounds.
    expect(pairedCosts([10_000, 10_000], [9_000]).map((x) => Number(x.toFixed(3)))).toEqual([10]);
  });

  it('bench proc cpu: utime + stime from /proc/PID/stat, whatever the command name holds', () => {
    const rest = 'S 1 2 3 0 -1 4194560 100 0 0 0 1234 567 0 0 20 0 5 0 100 0 0';
    expect(statTicks(`4242 (node) ${rest}`)).toBe(1801);
    expect(statTicks(`4242 (a) (b c) ${rest}`)).toBe(1801);
  });

  it('bench proc cpu: roles from command lines; CPU by role between two snapshots, newcomers from 0', () => {
    expect(roleOf(['/r/node_modules/.bin/node', '/r/services/telemetry/main.ts', '--ring-dir', '/dev/shm/x'])).toBe('telemetry');
    expect(roleOf(['/r/node', '/r/services/worker/main.ts', '--index', '0'])).toBe('worker');
    expect(roleOf(['/r/node', '/r/services/tsvsd/main.ts', '--http', '127.0.0.1:1'])).toBe('tsvsd');
    expect(roleOf(['/r/node', '-e', "require('node:http').createServer(() => {})"])).toBe('otlp-sink');
    expect(roleOf(['nginx: worker process'])).toBe('nginx');
    expect(roleOf(['/usr/sbin/haproxy', '-db'])).toBe('haproxy');
    const before: CpuSnapshot = new Map([[1, { role: 'worker', ticks: 100 }], [2, { role: 'tsvsd', ticks: 50 }]]);
    const after: CpuSnapshot = new Map([[1, { role: 'worker', ticks: 160 }], [2, { role: 'tsvsd', ticks: 51 }], [3, { role: 'worker', ticks: 20 }]]);
    expect(cpuByRole(before, after)).toEqual({ worker: 0.8, tsvsd: 0.01 });
  });
});
