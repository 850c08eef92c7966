// The stats read model as Prometheus text (exposition format 0.0.4): node_exporter's IPVS collector names and
// labels first, so existing IPVS dashboards work unchanged, then tsvs_* metrics for everything IPVS has no name for.
import type { ServiceSnapshot, TableSnapshot } from '../model/ipvs.ts';
import type { TelemetryStats } from '../proto/telemetry.ts';
import type { ClusterView, DataplaneStatus, HealthServerView } from '../proto/stats.ts';

/** The data plane part of the read model. */
export type MetricsDataplane = DataplaneStatus;

/** Connection-table figures. */
export interface ConntabFigures {
  entries: number;
  capacity: number;
}

/**
 * What /metrics renders. `table` and `dataplane` are the stats read model (a shared/proto/stats.ts StatsView is one:
 * `{ ...reader.view(), telemetry, conntab }`); the rest are optional hooks that add their metrics when present.
 */
export interface MetricsInput {
  table: TableSnapshot;
  dataplane: MetricsDataplane;
  conntab?: ConntabFigures;
  telemetry?: TelemetryStats | null;
  cluster?: ClusterView | null;
  health?: HealthServerView[] | null;
  /** VIPs this director holds now: `tsvs_vip_owned{vip}` is 1 for them, 0 for the table's other VIPs. */
  vipsHeld?: string[];
  /** Floating addresses that follow the VIPs (the gateway): listed by `tsvs_vip_owned` whoever holds them. */
  floating?: string[];
}

/** States every health gauge family lists (one series per state, 1 for the current one). */
export const HEALTH_STATES = ['up', 'down'] as const;
/** Member states every `tsvs_cluster_members{state}` lists. */
export const MEMBER_STATES = ['leader', 'backup', 'dead', 'left', 'isolated'] as const;
/** This director's roles `tsvs_cluster_role{role}` lists. */
export const ROLES = ['leader', 'backup', 'none'] as const;

type Labels = Record<string, string | number>;

function escLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function num(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return Number.isInteger(v) && Math.abs(v) < 1e21 ? v.toFixed(0) : String(v);
}

/** Builds one exposition: families in order, each HELP and TYPE once, then its samples. */
class Exposition {
  private readonly out: string[] = [];
  private readonly seen = new Set<string>();

  family(name: string, type: 'counter' | 'gauge' | 'summary', help: string, samples: Array<[Labels, number]>): void {
    if (this.seen.has(name)) throw new Error(`metrics: family ${name} written twice (bug)`);
    this.seen.add(name);
    this.out.push(`# HELP ${name} ${escHelp(help)}`, `# TYPE ${name} ${type}`);
    for (const [labels, v] of samples) {
      const keys = Object.keys(labels);
      const ls = keys.length === 0 ? '' : `{${keys.map((k) => `${k}="${escLabel(String(labels[k]))}"`).join(',')}}`;
      this.out.push(`${name}${ls} ${num(v)}`);
    }
  }

  text(): string {
    return this.out.join('\n') + '\n';
  }
}

/** node_exporter's backend labels for a real server of `s`: /proc/net/ip_vs's view (FWM marks as 8 hex digits). */
function backendLabels(s: ServiceSnapshot, remoteAddress: string, remotePort: number): Labels {
  const fw = s.fwmark > 0;
  return {
    local_address: fw ? '' : s.addr,
    local_port: fw ? 0 : s.port,
    remote_address: remoteAddress,
    remote_port: remotePort,
    proto: fw ? 'FWM' : s.protocol.toUpperCase(),
    local_mark: fw ? s.fwmark.toString(16).toUpperCase().padStart(8, '0') : '',
  };
}

function serviceLabels(s: ServiceSnapshot): Labels {
  const b = backendLabels(s, '', 0);
  return { local_address: b.local_address, local_port: b.local_port, proto: b.proto, local_mark: b.local_mark, scheduler: s.scheduler };
}

const STAT_FIELDS = [
  ['conns', 'connections', 'Connections scheduled'],
  ['inpkts', 'incoming_packets', 'Packets received from clients'],
  ['outpkts', 'outgoing_packets', 'Packets sent toward clients'],
  ['inbytes', 'incoming_bytes', 'Bytes received from clients'],
  ['outbytes', 'outgoing_bytes', 'Bytes sent toward clients'],
] as const;
const RATE_FIELDS = [
  ['cps', 'connections_per_second', 'Connections per second (2 s estimator, as ipvsadm --rate)'],
  ['inpps', 'incoming_packets_per_second', 'Incoming packets per second (as ipvsadm --rate)'],
  ['outpps', 'outgoing_packets_per_second', 'Outgoing packets per second (as ipvsadm --rate)'],
  ['inbps', 'incoming_bytes_per_second', 'Incoming bytes per second (as ipvsadm --rate)'],
  ['outbps', 'outgoing_bytes_per_second', 'Outgoing bytes per second (as ipvsadm --rate)'],
] as const;

/** True for the worker events that are drops (their reason is the rest of the name). */
function dropReason(event: string): string | null {
  if (event.startsWith('drop_')) return event.slice(5);
  if (event.startsWith('net_') && event !== 'net_ok') return event;
  if (event === 'orphan_replies' || event === 'tx_errors') return event;
  return null;
}

/**
 * The Prometheus text of `m`. Counters are the read model's exact values (the same numbers as
 * `tsvsadm -L -n --stats --exact`); the node_ipvs_* totals sum the current services, as /proc/net/ip_vs_stats
 * sums the kernel's. Label values are escaped; every family has HELP and TYPE. Never throws on valid input.
 */
export function formatMetrics(m: MetricsInput): string {
  const x = new Exposition();
  const svcs = m.table.services;
  const totals = { conns: 0, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0 };
  for (const s of svcs) for (const k of Object.keys(totals) as Array<keyof typeof totals>) totals[k] += s.stats[k];
  x.family('node_ipvs_connections_total', 'counter', 'The total number of connections made.', [[{}, totals.conns]]);
  x.family('node_ipvs_incoming_packets_total', 'counter', 'The total number of incoming packets.', [[{}, totals.inpkts]]);
  x.family('node_ipvs_outgoing_packets_total', 'counter', 'The total number of outgoing packets.', [[{}, totals.outpkts]]);
  x.family('node_ipvs_incoming_bytes_total', 'counter', 'The total amount of incoming data.', [[{}, totals.inbytes]]);
  x.family('node_ipvs_outgoing_bytes_total', 'counter', 'The total amount of outgoing data.', [[{}, totals.outbytes]]);
  const backends = svcs.flatMap((s) => s.dests.map((d) => ({ s, d, l: backendLabels(s, d.addr, d.port) })));
  x.family('node_ipvs_backend_connections_active', 'gauge', 'The current active connections by local and remote address.', backends.map((b) => [b.l, b.d.activeConns]));
  x.family('node_ipvs_backend_connections_inactive', 'gauge', 'The current inactive connections by local and remote address.', backends.map((b) => [b.l, b.d.inactConns]));
  x.family('node_ipvs_backend_weight', 'gauge', 'The current backend weight by local and remote address.', backends.map((b) => [b.l, b.d.weight]));

  x.family('tsvs_services', 'gauge', 'Virtual services in the table.', [[{}, svcs.length]]);
  x.family('tsvs_backends', 'gauge', 'Real servers in the table, over all services.', [[{}, backends.length]]);
  for (const [k, name, help] of STAT_FIELDS) x.family(`tsvs_service_${name}_total`, 'counter', `${help}, per virtual service.`, svcs.map((s) => [serviceLabels(s), s.stats[k]]));
  for (const [k, name, help] of RATE_FIELDS) x.family(`tsvs_service_${name}`, 'gauge', `${help}, per virtual service.`, svcs.map((s) => [serviceLabels(s), s.rate[k]]));
  for (const [k, name, help] of STAT_FIELDS) x.family(`tsvs_backend_${name}_total`, 'counter', `${help}, per real server.`, backends.map((b) => [b.l, b.d.stats[k]]));
  for (const [k, name, help] of RATE_FIELDS) x.family(`tsvs_backend_${name}`, 'gauge', `${help}, per real server.`, backends.map((b) => [b.l, b.d.rate[k]]));
  x.family('tsvs_backend_connections_persistent', 'gauge', 'Persistence templates pointing at the real server.', backends.map((b) => [b.l, b.d.persistConns]));
  x.family('tsvs_backend_overloaded', 'gauge', '1 while the upper connection threshold holds the real server out of scheduling.', backends.map((b) => [b.l, b.d.overloaded ? 1 : 0]));

  const dp = m.dataplane;
  x.family('tsvs_dataplane_forwarding', 'gauge', '1 when the director forwards packets (tsvsd runs with --client-if).', [[{}, dp.forwarding ? 1 : 0]]);
  x.family('tsvs_table_epoch', 'gauge', 'Epoch of the forwarding table last published to the workers.', [[{}, dp.epoch]]);
  x.family('tsvs_workers', 'gauge', 'Forwarding workers configured.', [[{}, dp.workers.length]]);
  x.family('tsvs_worker_up', 'gauge', '1 while the worker process runs.', dp.workers.map((w) => [{ worker: w.index, cpu: w.cpu }, w.alive ? 1 : 0]));
  x.family('tsvs_worker_restarts_total', 'counter', 'Worker restarts since tsvsd started.', dp.workers.map((w) => [{ worker: w.index }, w.restarts]));
  x.family('tsvs_worker_table_epoch', 'gauge', 'Epoch of the forwarding table the worker last applied (-1 before its first).', dp.workers.map((w) => [{ worker: w.index }, w.appliedEpoch]));
  x.family('tsvs_worker_forwarded_packets_total', 'counter', 'Packets forwarded by the worker, both directions.', dp.forwardedByWorker.map((v, i) => [{ worker: i }, v]));
  x.family('tsvs_worker_orphan_replies_total', 'counter', 'Replies that reached a worker whose shard does not hold their flow.', dp.orphansByWorker.map((v, i) => [{ worker: i }, v]));
  const events = Object.entries(dp.events).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  x.family('tsvs_drops_total', 'counter', 'Packets dropped by the data plane, by reason.', events.filter(([e]) => dropReason(e) !== null).map(([e, v]) => [{ reason: dropReason(e)! }, v]));
  x.family('tsvs_dataplane_events_total', 'counter', 'Data-plane events other than drops (frames, batches, connections created and expired, ...).', events.filter(([e]) => dropReason(e) === null).map(([e, v]) => [{ event: e }, v]));

  if (m.conntab) {
    x.family('tsvs_conntab_entries', 'gauge', 'Connection-table entries in use (connections and templates), all workers.', [[{}, m.conntab.entries]]);
    x.family('tsvs_conntab_capacity', 'gauge', 'Connection-table capacity, all workers.', [[{}, m.conntab.capacity]]);
  }
  const t = m.telemetry;
  if (t) {
    x.family('tsvs_decisions_read_total', 'counter', 'Scheduling decision records read from the workers rings.', [[{}, t.decisionsRead]]);
    x.family('tsvs_decisions_traced_total', 'counter', 'Decisions turned into spans (sampled, or failed).', [[{}, t.decisionsTraced]]);
    x.family('tsvs_decisions_unsampled_total', 'counter', 'Decisions left out by ratio sampling.', [[{}, t.decisionsUnsampled]]);
    x.family('tsvs_decisions_dropped_total', 'counter', 'Decisions or spans lost, by reason.', [
      [{ reason: 'ring_overwritten' }, t.ringLost],
      [{ reason: 'ring_torn' }, t.ringTorn],
      [{ reason: 'queue_full' }, t.queueDropped],
      [{ reason: 'export_failed' }, t.exportFailed],
    ]);
    x.family('tsvs_trace_spans_exported_total', 'counter', 'Spans the OTLP endpoint accepted.', [[{}, t.exported]]);
    x.family('tsvs_control_events_total', 'counter', 'Control events exported as spans.', [[{}, t.controlEvents]]);
  }
  if (m.vipsHeld) {
    const held = new Set(m.vipsHeld);
    const vips = new Set<string>([...m.vipsHeld, ...(m.floating ?? [])]);
    for (const s of svcs) if (s.fwmark === 0) vips.add(s.addr);
    x.family('tsvs_vip_owned', 'gauge', '1 while this director holds the VIP on its interface (the table\'s VIPs and the ones it holds).', [...vips].sort().map((v) => [{ vip: v }, held.has(v) ? 1 : 0]));
  }
  const c = m.cluster;
  if (c) {
    const nodes = new Set<string>([c.self, ...c.members.map((p) => p.name)]);
    if (c.leader !== '') nodes.add(c.leader);
    x.family('tsvs_cluster_leader', 'gauge', 'Per director: 1 for the one this director sees as leader.', [...nodes].sort().map((n) => [{ node: n }, n === c.leader ? 1 : 0]));
    x.family('tsvs_cluster_role', 'gauge', 'This director\'s role: one series per role, 1 for the current one.', ROLES.map((r) => [{ role: r }, c.role === r ? 1 : 0]));
    x.family('tsvs_cluster_term', 'gauge', 'Current leadership term.', [[{}, c.term]]);
    x.family('tsvs_cluster_members', 'gauge', 'Directors of the cluster by state, as this director sees them.', MEMBER_STATES.map((st) => [{ state: st }, c.members.filter((p) => p.state === st).length]));
    x.family('tsvs_cluster_member_priority', 'gauge', 'Leadership priority of each director.', c.members.map((p) => [{ node: p.name }, p.priority]));
    x.family('tsvs_cluster_ready', 'gauge', '1 once the agent has installed its snapshot and may lead.', [[{}, c.ready ? 1 : 0]]);
    x.family('tsvs_cluster_nats_up', 'gauge', '1 while the cluster agent is connected to NATS.', [[{}, c.nats === 'up' ? 1 : 0]]);
    x.family('tsvs_cluster_status_up', 'gauge', '1 when the cluster agent answered tsvsd\'s last status poll.', [[{}, c.error === '' ? 1 : 0]]);
    x.family('tsvs_cluster_vips_granted', 'gauge', 'VIPs the cluster agent grants this director (the leader\'s).', [[{}, c.vips.length]]);
    const y = c.sync;
    x.family('tsvs_sync_records_sent_total', 'counter', 'Connection-sync records this director published.', [[{}, y.sent]]);
    x.family('tsvs_sync_records_received_total', 'counter', 'Connection-sync records received from peers.', [[{}, y.received]]);
    x.family('tsvs_sync_records_lost_total', 'counter', 'Connection-sync records known lost (gaps no resend could fill).', [[{}, y.lost]]);
    x.family('tsvs_sync_messages_dropped_total', 'counter', 'Sync messages dropped on receipt, by reason.', [[{ reason: 'stale' }, y.stale], [{ reason: 'foreign' }, y.foreign], [{ reason: 'malformed' }, y.malformed]]);
    x.family('tsvs_sync_gaps_total', 'counter', 'Sequence gaps detected in received sync.', [[{}, y.gaps]]);
    x.family('tsvs_sync_resyncs_total', 'counter', 'Full resyncs requested.', [[{}, y.resyncs]]);
    x.family('tsvs_sync_lag_seconds', 'summary', 'Sync lag (sender to installed) over recently received batches, by quantile (the agent keeps no sum or count).', [[{ quantile: '0.5' }, y.lag_p50_ms / 1000], [{ quantile: '0.99' }, y.lag_p99_ms / 1000]]);
    x.family('tsvs_sync_snapshot_entries', 'gauge', 'Entries in the last snapshot pulled from a peer.', [[{}, y.snapshot_entries]]);
    x.family('tsvs_sync_snapshot_seconds', 'gauge', 'Time the last snapshot pull took.', [[{}, y.snapshot_ms / 1000]]);
    const w = y.workers;
    if (w) {
      x.family('tsvs_sync_records_written_total', 'counter', 'Connection-sync records the workers wrote (new, changed, removed entries).', [[{}, w.written]]);
      x.family('tsvs_sync_records_write_dropped_total', 'counter', 'Connection-sync records a worker could not write (outbound ring full).', [[{}, w.write_dropped]]);
      x.family('tsvs_sync_records_installed_total', 'counter', 'Peers\' connection-sync records installed in the workers, by outcome.', [[{ outcome: 'created' }, w.created], [{ outcome: 'updated' }, w.updated], [{ outcome: 'removed' }, w.removed]]);
      x.family('tsvs_sync_records_refused_total', 'counter', 'Peers\' connection-sync records not installed, by reason.', [[{ reason: 'malformed' }, w.malformed], [{ reason: 'no_service' }, w.no_service], [{ reason: 'no_dest' }, w.no_dest], [{ reason: 'table_full' }, w.table_full], [{ reason: 'pending_full' }, w.pending_dropped]]);
      x.family('tsvs_sync_records_pending', 'gauge', 'Peers\' records waiting for a worker to install them.', [[{}, w.pending]]);
      x.family('tsvs_sync_segments_held_total', 'counter', 'Mid-flow segments held for their synced entry, by outcome.', [[{ outcome: 'held' }, w.held], [{ outcome: 'released' }, w.hold_released], [{ outcome: 'timeout' }, w.hold_timeout]]);
    }
  }
  const h = m.health;
  if (h) {
    const key = (f: HealthServerView): Labels => ({
      local_address: f.localAddress,
      local_port: f.localPort,
      remote_address: f.remoteAddress,
      remote_port: f.remotePort,
      proto: f.proto,
      local_mark: f.localMark > 0 ? f.localMark.toString(16).toUpperCase().padStart(8, '0') : '',
    });
    x.family('tsvs_backend_check_status', 'gauge', 'Health check state of the real server: one series per state, 1 for the current one.', h.flatMap((f) => HEALTH_STATES.map((st): [Labels, number] => [{ ...key(f), state: st }, f.state === st ? 1 : 0])));
    x.family('tsvs_backend_check_duration_seconds', 'gauge', 'Duration of the last health check (the slowest of the server\'s checkers).', h.filter((f) => f.lastCheckSeconds !== null).map((f) => [key(f), f.lastCheckSeconds!]));
    x.family('tsvs_backend_checks_total', 'counter', 'Health checks run.', h.map((f) => [key(f), f.checks]));
    x.family('tsvs_backend_check_failures_total', 'counter', 'Failed health checks.', h.map((f) => [key(f), f.failures]));
    x.family('tsvs_backend_check_up_transitions_total', 'counter', 'Transitions of the real server to up.', h.map((f) => [key(f), f.upTransitions]));
    x.family('tsvs_backend_check_down_transitions_total', 'counter', 'Transitions of the real server to down.', h.map((f) => [key(f), f.downTransitions]));
  }
  return x.text();
}
