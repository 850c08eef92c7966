// A small read model (two services, three real servers, two workers) for the metrics and monitor tests.
import type { MetricsInput } from '../../shared/telemetry/prometheus.ts';
import type { DestSnapshot, ServiceSnapshot } from '../../shared/model/ipvs.ts';
import type { ClusterView, HealthServerView } from '../../shared/proto/stats.ts';

function dest(addr: string, port: number, weight: number, act: number, ina: number, conns: number, inpkts: number): DestSnapshot {
  return {
    af: 4, addr, port, method: 'masq', weight, uThreshold: 0, lThreshold: 0, tunType: 'ipip', tunPort: 0, tunCsum: '',
    activeConns: act, inactConns: ina, persistConns: 0, overloaded: false,
    stats: { conns, inpkts, outpkts: inpkts - 2, inbytes: inpkts * 60, outbytes: inpkts * 61 },
    rate: { cps: conns, inpps: inpkts, outpps: inpkts, inbps: 1234, outbps: 1000 },
  };
}

function svc(over: Partial<ServiceSnapshot>, dests: DestSnapshot[]): ServiceSnapshot {
  const stats = { conns: 0, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0 };
  for (const d of dests) for (const k of Object.keys(stats) as Array<keyof typeof stats>) stats[k] += d.stats[k];
  return { af: 4, protocol: 'tcp', addr: '10.200.0.10', port: 80, fwmark: 0, scheduler: 'wrr', flags: 0, timeout: 0, netmask: '255.255.255.255', pe: '', dests, stats, rate: { cps: 5, inpps: 30, outpps: 20, inbps: 1234, outbps: 2000 }, ...over };
}

/** Conns 6 + 4 + 3 = 13, inpkts 24 + 16 + 23 = 63 (outbytes 61 per packet: 3843). */
export function sampleMetricsInput(): MetricsInput {
  return {
    table: {
      version: '1.2.1',
      connTabSize: 4096,
      timeouts: { tcp: 900, tcpfin: 120, udp: 300 },
      daemons: [],
      services: [
        svc({}, [dest('10.200.1.101', 80, 3, 2, 5, 6, 24), dest('10.200.1.102', 8080, 1, 1, 0, 4, 16)]),
        svc({ protocol: 'tcp', addr: '', port: 0, fwmark: 42, scheduler: 'rr' }, [dest('10.200.1.103', 0, 0, 0, 0, 3, 23)]),
      ],
    },
    dataplane: {
      forwarding: true,
      epoch: 5,
      workers: [
        { index: 0, cpu: 0, pid: 100, alive: true, restarts: 0, appliedEpoch: 5 },
        { index: 1, cpu: 1, pid: 0, alive: false, restarts: 2, appliedEpoch: 4 },
      ],
      events: { rx_frames: 100, conns_created: 13, drop_no_dest: 2, net_bad_csum: 1, orphan_replies: 4 },
      orphansByWorker: [4, 0],
      forwardedByWorker: [70, 30],
    },
    conntab: { entries: 17, capacity: 2 << 20 },
    telemetry: { decisionsRead: 13, decisionsTraced: 2, decisionsUnsampled: 11, ringLost: 0, ringTorn: 0, controlEvents: 1, queueDropped: 7, exportFailed: 0, exported: 3 },
  };
}

/** A cluster of two directors seen from d1, the leader (term 4), with some sync figures. */
export function sampleCluster(): ClusterView {
  return {
    self: 'd1', cluster: 'tsvs', role: 'leader', leader: 'd1', term: 4, nats: 'up', natsServer: 'nats://10.200.2.1:4222', ready: true,
    members: [{ name: 'd1', state: 'leader', priority: 200 }, { name: 'd2', state: 'backup', priority: 190 }],
    vips: ['10.200.0.10'],
    sync: { sent: 10, received: 9, gaps: 1, resyncs: 0, lost: 0, stale: 2, foreign: 0, malformed: 0, lag_p50_ms: 3, lag_p99_ms: 12.5, snapshot_entries: 42, snapshot_ms: 250,
      workers: { written: 11, write_dropped: 0, created: 5, updated: 3, removed: 1, malformed: 0, no_service: 0, no_dest: 0, table_full: 0, pending: 2, pending_dropped: 0, held: 4, hold_released: 4, hold_timeout: 0 } },
    statusAt: 1_700_000_000_000, error: '',
  };
}

/** rs1 of the TCP service, down after 3 failed checks (up once, down twice). */
export function sampleHealth(): HealthServerView[] {
  return [{
    vs: 'TCP 10.200.0.10:80', rs: 'TCP 10.200.0.10:80 -> 10.200.1.101:80', proto: 'TCP', localAddress: '10.200.0.10', localPort: 80, localMark: 0,
    remoteAddress: '10.200.1.101', remotePort: 80, state: 'down', tableWeight: null, configuredWeight: 3, lastCheckSeconds: 0.012,
    checks: 40, failures: 3, upTransitions: 1, downTransitions: 2, check: 'TCP_CHECK 10.200.1.101:80', lastError: 'connection refused', lastChange: 1_700_000_000_000,
  }];
}
