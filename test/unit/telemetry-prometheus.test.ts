// telemetry metrics: the read model as Prometheus text, with node_exporter's IPVS names and labels.
import { describe, expect, it } from 'vitest';
import { formatMetrics, type MetricsInput } from '../../shared/telemetry/prometheus.ts';
import { sampleCluster, sampleHealth, sampleMetricsInput } from './telemetry-sample.ts';

function lines(text: string, prefix: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(prefix + '{') || l.startsWith(prefix + ' '));
}

describe('telemetry prometheus', () => {
  const text = formatMetrics(sampleMetricsInput());

  it('telemetry prometheus: node_ipvs totals sum the services', () => {
    expect(lines(text, 'node_ipvs_connections_total')).toEqual(['node_ipvs_connections_total 13']);
    expect(lines(text, 'node_ipvs_incoming_packets_total')).toEqual(['node_ipvs_incoming_packets_total 63']);
    expect(lines(text, 'node_ipvs_outgoing_bytes_total')).toEqual(['node_ipvs_outgoing_bytes_total 3843']);
    expect(text).toContain('# HELP node_ipvs_connections_total The total number of connections made.\n# TYPE node_ipvs_connections_total counter\n');
  });

  it('telemetry prometheus: backend gauges carry node_exporter labels, FWM services as /proc/net/ip_vs shows them', () => {
    expect(lines(text, 'node_ipvs_backend_weight')).toEqual([
      'node_ipvs_backend_weight{local_address="10.200.0.10",local_port="80",remote_address="10.200.1.101",remote_port="80",proto="TCP",local_mark=""} 3',
      'node_ipvs_backend_weight{local_address="10.200.0.10",local_port="80",remote_address="10.200.1.102",remote_port="8080",proto="TCP",local_mark=""} 1',
      'node_ipvs_backend_weight{local_address="",local_port="0",remote_address="10.200.1.103",remote_port="0",proto="FWM",local_mark="0000002A"} 0',
    ]);
    expect(lines(text, 'node_ipvs_backend_connections_active')[0]).toMatch(/ 2$/);
    expect(lines(text, 'node_ipvs_backend_connections_inactive')[0]).toMatch(/ 5$/);
  });

  it('telemetry prometheus: tsvs_* per service and real server, drops by reason, workers, decisions', () => {
    expect(lines(text, 'tsvs_service_connections_total')).toEqual([
      'tsvs_service_connections_total{local_address="10.200.0.10",local_port="80",proto="TCP",local_mark="",scheduler="wrr"} 10',
      'tsvs_service_connections_total{local_address="",local_port="0",proto="FWM",local_mark="0000002A",scheduler="rr"} 3',
    ]);
    expect(lines(text, 'tsvs_service_incoming_bytes_per_second')[0]).toMatch(/ 1234$/);
    expect(lines(text, 'tsvs_backend_connections_total')[1]).toMatch(/remote_address="10.200.1.102".* 4$/);
    expect(lines(text, 'tsvs_drops_total')).toEqual(['tsvs_drops_total{reason="no_dest"} 2', 'tsvs_drops_total{reason="net_bad_csum"} 1', 'tsvs_drops_total{reason="orphan_replies"} 4']);
    expect(lines(text, 'tsvs_dataplane_events_total')).toEqual(['tsvs_dataplane_events_total{event="conns_created"} 13', 'tsvs_dataplane_events_total{event="rx_frames"} 100']);
    expect(lines(text, 'tsvs_worker_restarts_total')).toEqual(['tsvs_worker_restarts_total{worker="0"} 0', 'tsvs_worker_restarts_total{worker="1"} 2']);
    expect(lines(text, 'tsvs_worker_up')).toEqual(['tsvs_worker_up{worker="0",cpu="0"} 1', 'tsvs_worker_up{worker="1",cpu="1"} 0']);
    expect(lines(text, 'tsvs_decisions_dropped_total')).toContain('tsvs_decisions_dropped_total{reason="queue_full"} 7');
    expect(lines(text, 'tsvs_conntab_entries')).toEqual(['tsvs_conntab_entries 17']);
    expect(text.endsWith('\n')).toBe(true);
  });

  it('telemetry prometheus: hooks for cluster and health add their families only when present', () => {
    const base = sampleMetricsInput();
    expect(formatMetrics(base)).not.toContain('tsvs_cluster_leader');
    expect(formatMetrics(base)).not.toContain('tsvs_vip_owned');
    const m: MetricsInput = { ...base, cluster: sampleCluster(), health: sampleHealth(), vipsHeld: ['10.200.0.10'] };
    const t = formatMetrics(m);
    expect(lines(t, 'tsvs_cluster_leader')).toEqual(['tsvs_cluster_leader{node="d1"} 1', 'tsvs_cluster_leader{node="d2"} 0']);
    expect(lines(t, 'tsvs_cluster_role')).toEqual(['tsvs_cluster_role{role="leader"} 1', 'tsvs_cluster_role{role="backup"} 0', 'tsvs_cluster_role{role="none"} 0']);
    expect(lines(t, 'tsvs_cluster_term')).toEqual(['tsvs_cluster_term 4']);
    expect(lines(t, 'tsvs_cluster_members')).toEqual(['leader', 'backup', 'dead', 'left', 'isolated'].map((s, i) => `tsvs_cluster_members{state="${s}"} ${i < 2 ? 1 : 0}`));
    expect(lines(t, 'tsvs_cluster_member_priority')).toEqual(['tsvs_cluster_member_priority{node="d1"} 200', 'tsvs_cluster_member_priority{node="d2"} 190']);
    expect(lines(t, 'tsvs_vip_owned')).toEqual(['tsvs_vip_owned{vip="10.200.0.10"} 1']);
    expect(lines(t, 'tsvs_sync_records_sent_total')).toEqual(['tsvs_sync_records_sent_total 10']);
    expect(lines(t, 'tsvs_sync_records_received_total')).toEqual(['tsvs_sync_records_received_total 9']);
    expect(lines(t, 'tsvs_sync_gaps_total')).toEqual(['tsvs_sync_gaps_total 1']);
    expect(lines(t, 'tsvs_sync_resyncs_total')).toEqual(['tsvs_sync_resyncs_total 0']);
    expect(lines(t, 'tsvs_sync_lag_seconds')).toEqual(['tsvs_sync_lag_seconds{quantile="0.5"} 0.003', 'tsvs_sync_lag_seconds{quantile="0.99"} 0.0125']);
    expect(lines(t, 'tsvs_sync_snapshot_entries')).toEqual(['tsvs_sync_snapshot_entries 42']);
    expect(lines(t, 'tsvs_sync_records_written_total')).toEqual(['tsvs_sync_records_written_total 11']);
    expect(lines(t, 'tsvs_sync_records_installed_total')).toEqual(['tsvs_sync_records_installed_total{outcome="created"} 5', 'tsvs_sync_records_installed_total{outcome="updated"} 3', 'tsvs_sync_records_installed_total{outcome="removed"} 1']);
    const b = 'local_address="10.200.0.10",local_port="80",remote_address="10.200.1.101",remote_port="80",proto="TCP",local_mark=""';
    expect(lines(t, 'tsvs_backend_check_status')).toEqual([`tsvs_backend_check_status{${b},state="up"} 0`, `tsvs_backend_check_status{${b},state="down"} 1`]);
    expect(lines(t, 'tsvs_backend_check_duration_seconds')).toEqual([`tsvs_backend_check_duration_seconds{${b}} 0.012`]);
    expect(lines(t, 'tsvs_backend_check_failures_total')).toEqual([`tsvs_backend_check_failures_total{${b}} 3`]);
    expect(lines(t, 'tsvs_backend_check_up_transitions_total')).toEqual([`tsvs_backend_check_up_transitions_total{${b}} 1`]);
    expect(lines(t, 'tsvs_backend_check_down_transitions_total')).toEqual([`tsvs_backend_check_down_transitions_total{${b}} 2`]);
  });

  it('telemetry prometheus: a VIP of the table this director does not hold is 0 (a backup)', () => {
    const t = formatMetrics({ ...sampleMetricsInput(), vipsHeld: [] });
    expect(lines(t, 'tsvs_vip_owned')).toEqual(['tsvs_vip_owned{vip="10.200.0.10"} 0']);
  });

  it('telemetry prometheus: label values are escaped, huge counters stay exact', () => {
    const m = sampleMetricsInput();
    m.dataplane.events = { 'drop_we"ird\\x\n': 2 ** 53 - 1 };
    expect(lines(formatMetrics(m), 'tsvs_drops_total')).toEqual(['tsvs_drops_total{reason="we\\"ird\\\\x\\n"} 9007199254740991']);
  });
});
