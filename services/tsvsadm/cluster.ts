// `tsvsadm cluster [--json]`: the cluster as this director's agent sees it — this node, the leader and its term,
// every member with its state and priority, the VIPs this node owns (in active-active: forwards), NATS, and the sync
// figures. Not an ipvsadm command (ipvsadm rejects a first argument that is not an option, so no valid ipvsadm line
// changes meaning).
import type { ClusterStatus } from '../../shared/proto/cluster.ts';
import type { AdminClient } from './client.ts';

/** Renders the status for people. */
export function formatCluster(s: ClusterStatus): string {
  const aa = s.mode === 'active-active';
  const lines = [
    `cluster ${s.cluster}: this node ${s.self}, leader ${s.leader || '(none)'}, term ${s.term}${s.ready ? '' : ' (state not yet pulled)'}`,
    ...(aa ? ['mode: active-active (every ready director forwards the VIPs, held on lo behind the ECMP router; the leader coordinates)'] : []),
    `NATS ${s.nats}${s.nats_server ? ` (${s.nats_server})` : ''}`,
    aa ? `VIPs forwarded here: ${s.vips.length ? s.vips.join(' ') : 'none (not forwarding now)'}`
      : `VIPs owned here: ${s.vips.length ? s.vips.join(' ') : s.leader === s.self && s.term > 0 ? "the table's" : 'none'}`,
    'member                            state     priority',
  ];
  for (const m of [...s.members].sort((a, b) => b.priority - a.priority || a.name.localeCompare(b.name))) {
    lines.push(`${m.name.padEnd(32)}  ${m.state.padEnd(8)}  ${m.priority}`);
  }
  const y = s.sync;
  lines.push(`sync: sent ${y.sent}, received ${y.received}, gaps ${y.gaps}, resyncs ${y.resyncs}, lost ${y.lost}, stale ${y.stale}, foreign ${y.foreign}, malformed ${y.malformed}`);
  lines.push(`      lag p50 ${y.lag_p50_ms} ms, p99 ${y.lag_p99_ms} ms; last snapshot ${y.snapshot_entries} entries in ${y.snapshot_ms} ms`);
  const w = y.workers;
  if (w) {
    lines.push(`workers: wrote ${w.written} (ring full ${w.write_dropped}); installed ${w.created} new, ${w.updated} updated, ${w.removed} removed; pending ${w.pending} (dropped ${w.pending_dropped})`);
    lines.push(`         not installed: malformed ${w.malformed}, no service ${w.no_service}, no real server ${w.no_dest}, table full ${w.table_full}; held ${w.held} (sent on ${w.hold_released}, timed out ${w.hold_timeout})`);
  }
  return lines.join('\n') + '\n';
}

/** Runs `cluster`; returns the exit code (0; 1 when tsvsd or its agent does not answer, or it runs alone). */
export async function runCluster(args: readonly string[], connect: () => Promise<AdminClient>, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const json = args.includes('--json');
  const bad = args.find((a) => a !== '--json');
  if (bad !== undefined) {
    err(`tsvsadm cluster: unknown argument ${bad} (usage: tsvsadm cluster [--json])\n`);
    return 2;
  }
  let client: AdminClient;
  try {
    client = await connect();
  } catch (e) {
    err(`tsvsadm cluster: tsvsd does not answer: ${(e as Error).message}\n`);
    return 1;
  }
  try {
    const r = await client.request({ op: 'cluster' });
    if (!r.ok) {
      err(`tsvsadm cluster: ${r.detail ?? r.errno}\n`);
      return 1;
    }
    if (!r.cluster) {
      err('tsvsadm cluster: no cluster status in the reply\n');
      return 1;
    }
    out(json ? JSON.stringify(r.cluster) + '\n' : formatCluster(r.cluster));
    return 0;
  } finally {
    client.close();
  }
}
