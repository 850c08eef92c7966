// telemetry metrics: the read model as Prometheus text, with node_exporter's IPVS names and labels.
import { describe, expect, it } from 'vitest';
import { formatMetrics, type MetricsInput } from '../../shared/telemetry/prometheus.ts';
import { sampleMetricsInput } from './telemetry-sample.ts';

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
    const m: MetricsInput = {
      ...base,
      cluster: { node: 'd1', leader: true, term: 4, peers: 2, vipsOwned: 1, syncSent: 10, syncReceived: 9, syncGaps: 1, resyncs: 0, syncLagSeconds: 0.004 },
      health: [{ proto: 'TCP', localAddress: '10.200.0.10', localPort: 80, localMark: 0, remoteAddress: '10.200.1.101', remotePort: 80, state: 'down', checkDurationSeconds: 0.012, checkFailures: 3, upTransitions: 1, downTransitions: 2 }],
    };
    const t = formatMetrics(m);
    expect(lines(t, 'tsvs_cluster_leader')).toEqual(['tsvs_cluster_leader{node="d1"} 1']);
    expect(lines(t, 'tsvs_sync_lag_seconds')).toEqual(['tsvs_sync_lag_seconds 0.004']);
    expect(lines(t, 'tsvs_backend_check_status').map((l) => l.replace(/.*state="(\w+)"} (\d)/, '$1=$2'))).toEqual(['up=0', 'down=1', 'unknown=0']);
  });

  it('telemetry prometheus: label values are escaped, huge counters stay exact', () => {
    const m = sampleMetricsInput();
    m.dataplane.events = { 'drop_we"ird\\x\n': 2 ** 53 - 1 };
    expect(lines(formatMetrics(m), 'tsvs_drops_total')).toEqual(['tsvs_drops_total{reason="we\\"ird\\\\x\\n"} 9007199254740991']);
  });
});
