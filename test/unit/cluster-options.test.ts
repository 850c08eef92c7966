// cluster options: argv parsing, defaults derived from the heartbeat, and every problem listed at once.
import { describe, expect, it } from 'vitest';
import { ClusterOptionsError, defaultIsolationMs, parseClusterArgs } from '../../shared/cluster/options.ts';

describe('cluster options', () => {
  it('options: parses every flag and derives isolation and startup wait from the heartbeat', () => {
    const o = parseClusterArgs(['--nats', 'nats://127.0.0.1:4222,nats://127.0.0.1:4223', '--node', 'd1', '--cluster', 'lab', '--priority', '150',
      '--nopreempt', '--preempt-delay', '5000', '--heartbeat', '20', '--vip', '10.0.0.10,10.0.0.11', '--vip', '10.0.0.12/24']);
    expect(o).toMatchObject({ node: 'd1', cluster: 'lab', priority: 150, nopreempt: true, preemptDelayMs: 5000, heartbeatMs: 20, missBeats: 7, isolationMs: 85, startupWaitMs: 280 });
    expect(o.nats).toHaveLength(2);
    expect(o.vips).toEqual(['10.0.0.10', '10.0.0.11', '10.0.0.12/24']);
  });

  it('options: collects every problem in one error', () => {
    try {
      parseClusterArgs(['--node', 'bad name', '--priority', '300', '--heartbeat', '50', '--isolation', '310', '--vip', 'x', '--bogus']);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ClusterOptionsError);
      const p = (e as ClusterOptionsError).problems.join('\n');
      for (const s of ['--priority', 'unknown option --bogus', '--nats is required', '--node must match', 'bad VIP x', '--isolation 310 plus one heartbeat (50) must be shorter than heartbeat × miss-beats (350)']) expect(p).toContain(s);
    }
  });

  it('options: the default isolation lets a cut-off leader go more than a heartbeat before detection; 50 ms × 3 is refused', () => {
    const o = parseClusterArgs(['--nats', 'nats://127.0.0.1:4222', '--node', 'd1']);
    expect(o).toMatchObject({ heartbeatMs: 25, missBeats: 7, isolationMs: 115 });
    for (const [h, m] of [[25, 6], [10, 10], [20, 8], [50, 5], [100, 4]]) {
      const i = defaultIsolationMs(h, m);
      expect(i, `${h} × ${m}`).toBeGreaterThanOrEqual(2 * h);
      expect(h * m - h - i, `${h} × ${m}: margin`).toBeGreaterThanOrEqual(Math.max(h, 35));
    }
    expect(() => parseClusterArgs(['--nats', 'nats://127.0.0.1:4222', '--node', 'd1', '--heartbeat', '50', '--miss-beats', '3'])).toThrow(/raise --miss-beats/);
  });
});
