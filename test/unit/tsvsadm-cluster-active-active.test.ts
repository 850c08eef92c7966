// tsvsadm-cluster-active-active: `tsvsadm cluster` of a director in active-active shows the mode and the VIPs it
// forwards (held on lo) instead of "VIPs owned here: none"; active-backup keeps its lines (services/tsvsadm/cluster.ts).
import { describe, expect, it } from 'vitest';
import type { ClusterStatus } from '../../shared/proto/cluster.ts';
import { formatCluster, runCluster } from '../../services/tsvsadm/cluster.ts';

const base: ClusterStatus = {
  self: 'd2', cluster: 'tsvs', leader: 'd1', term: 4, nats: 'up', nats_server: '10.200.2.1:4222', ready: true,
  members: [{ name: 'd1', state: 'leader', priority: 200 }, { name: 'd2', state: 'backup', priority: 190 }], vips: [],
  sync: { sent: 0, received: 0, gaps: 0, resyncs: 0, lost: 0, stale: 0, foreign: 0, malformed: 0, lag_p50_ms: 0, lag_p99_ms: 0, snapshot_entries: 0, snapshot_ms: 0 },
};

describe('tsvsadm-cluster: active-active', () => {
  it('tsvsadm-cluster: a backup in active-active forwarding the VIPs says so, with the mode line; --json has `mode` and `vips` (a string array)', async () => {
    const s: ClusterStatus = { ...base, mode: 'active-active', vips: ['10.200.0.10', '10.200.0.11'] };
    const text = formatCluster(s);
    expect(text.split('\n').slice(0, 4)).toEqual([
      'cluster tsvs: this node d2, leader d1, term 4',
      'mode: active-active (every ready director forwards the VIPs, held on lo behind the ECMP router; the leader coordinates)',
      'NATS up (10.200.2.1:4222)',
      'VIPs forwarded here: 10.200.0.10 10.200.0.11',
    ]);
    expect(text).not.toContain('VIPs owned here');
    let out = '';
    const client = async () => ({ request: async () => ({ id: 1, ok: true as const, cluster: s }), close: () => {} });
    expect(await runCluster(['--json'], client, (x) => void (out += x), () => {})).toBe(0);
    const j = JSON.parse(out) as ClusterStatus;
    expect(j.mode).toBe('active-active');
    expect(j.vips).toEqual(['10.200.0.10', '10.200.0.11']);
  });

  it('tsvsadm-cluster: a director in active-active not forwarding (not ready) shows none; active-backup keeps "VIPs owned here"', () => {
    expect(formatCluster({ ...base, ready: false, mode: 'active-active' })).toContain('VIPs forwarded here: none (not forwarding now)\n');
    const ab = formatCluster({ ...base, mode: 'active-backup' });
    expect(ab).not.toContain('mode:');
    expect(ab).toContain('VIPs owned here: none\n');
    expect(formatCluster({ ...base, self: 'd1', mode: 'active-backup' })).toContain("VIPs owned here: the table's\n");
  });
});
