// telemetry observe: the agent's and the checker's status answers as the read model's views, and the control events
// two successive polls give (health transitions, sync gaps and resyncs).
import { describe, expect, it } from 'vitest';
import type { VirtualServerStatus } from '../../shared/health/machine.ts';
import type { ClusterStatus } from '../../shared/proto/cluster.ts';
import { clusterUnavailable, clusterView, healthEvents, healthServers, syncEvents } from '../../shared/telemetry/observe.ts';

function vsStatus(alive: boolean, ups: number, downs: number, extra: Partial<VirtualServerStatus> = {}): VirtualServerStatus[] {
  return [{
    vs: 'TCP 10.200.0.10:80', quorumUp: true, liveWeight: 1, quorum: 1, hysteresis: 0, sorryActive: false,
    services: [{ af: 4, protocol: 'tcp', addr: '10.200.0.10', port: 80, fwmark: 0 }],
    realServers: [{
      vs: 'TCP 10.200.0.10:80', rs: 'TCP 10.200.0.10:80 -> 10.200.1.102:80', alive, tableWeight: alive ? 1 : null, configuredWeight: 1, lastChange: 5000, ups, downs,
      checkers: [
        { vs: 'TCP 10.200.0.10:80', rs: 'r', checker: 'c1', kind: 'HTTP_GET', target: '10.200.1.102:80', state: 'up', running: false, okInRow: 1, failInRow: 0, lastError: null, lastChange: null, lastResult: 4000, lastDurationMs: 2.5, checks: 10, failures: 1 },
        { vs: 'TCP 10.200.0.10:80', rs: 'r', checker: 'c2', kind: 'TCP_CHECK', target: '10.200.1.102:80', state: alive ? 'up' : 'down', running: false, okInRow: 0, failInRow: alive ? 0 : 2, lastError: alive ? null : 'connection refused', lastChange: 5000, lastResult: 5000, lastDurationMs: 0.8, checks: 10, failures: 2 },
      ],
    }],
    ...extra,
  }];
}

const status: ClusterStatus = {
  self: 'd2', cluster: 'tsvs', leader: 'd1', term: 3, nats: 'up', nats_server: 'nats://10.200.2.2:4222', ready: true,
  members: [{ name: 'd1', state: 'leader', priority: 200 }, { name: 'd2', state: 'backup', priority: 190 }], vips: [],
  sync: { sent: 0, received: 100, gaps: 0, resyncs: 0, lost: 0, stale: 0, foreign: 0, malformed: 0, lag_p50_ms: 3, lag_p99_ms: 9, snapshot_entries: 5, snapshot_ms: 40 },
};

describe('telemetry observe', () => {
  it('telemetry observe: a checked real server becomes one row per service with HAProxy-style figures', () => {
    expect(healthServers(vsStatus(false, 1, 2))).toEqual([{
      vs: 'TCP 10.200.0.10:80', rs: 'TCP 10.200.0.10:80 -> 10.200.1.102:80', proto: 'TCP', localAddress: '10.200.0.10', localPort: 80, localMark: 0,
      remoteAddress: '10.200.1.102', remotePort: 80, state: 'down', tableWeight: null, configuredWeight: 1, lastCheckSeconds: 0.0025,
      checks: 20, failures: 3, upTransitions: 1, downTransitions: 2, check: 'TCP_CHECK 10.200.1.102:80', lastError: 'connection refused', lastChange: 5000,
    }]);
    const fwm = healthServers(vsStatus(true, 0, 0, { services: [{ af: 4, protocol: 'tcp', addr: '', port: 0, fwmark: 5 }] }))[0];
    expect([fwm.proto, fwm.localAddress, fwm.localPort, fwm.localMark, fwm.check]).toEqual(['FWM', '', 0, 5, 'HTTP_GET 10.200.1.102:80']);
  });

  it('telemetry observe: a state change between polls is a health-transition event (server, from, to, check); the first poll is none', () => {
    const up = healthServers(vsStatus(true, 1, 0));
    const down = healthServers(vsStatus(false, 1, 1));
    expect(healthEvents(null, up, 1)).toEqual([]);
    expect(healthEvents(up, up, 1)).toEqual([]);
    const [e] = healthEvents(up, down, 9999);
    expect(e).toMatchObject({ name: 'health-transition', timeMs: 5000, error: true });
    expect(e.attributes).toMatchObject({
      'lvs.real_server': 'TCP 10.200.0.10:80 -> 10.200.1.102:80', 'lvs.dest.address': '10.200.1.102', 'lvs.dest.port': 80,
      'lvs.health.from': 'up', 'lvs.health.to': 'down', 'lvs.health.check': 'TCP_CHECK 10.200.1.102:80', 'lvs.health.error': 'connection refused', 'lvs.health.transitions': 1,
    });
    // Down and up again between two polls: same state, but the counters moved.
    const flapped = healthServers(vsStatus(true, 2, 1));
    expect(healthEvents(up, flapped, 1).map((x) => [x.attributes?.['lvs.health.from'], x.attributes?.['lvs.health.to'], x.attributes?.['lvs.health.transitions'], x.error])).toEqual([['up', 'up', 2, false]]);
  });

  it('telemetry observe: the cluster view keeps the agent figures; an agent that does not answer keeps the last members and says why', () => {
    const v = clusterView(status, { role: 'backup', term: 3, leader: 'd1' }, 1000);
    expect(v).toMatchObject({ self: 'd2', role: 'backup', leader: 'd1', term: 3, natsServer: 'nats://10.200.2.2:4222', statusAt: 1000, error: '' });
    const u = clusterUnavailable('d2', { role: 'none', term: 3, leader: '' }, 'the cluster agent is not running', v);
    expect(u).toMatchObject({ self: 'd2', role: 'none', leader: 'd1', ready: false, members: v.members, vips: [], error: 'the cluster agent is not running' });
    expect(clusterUnavailable('d9', { role: 'none', term: 0, leader: '' }, 'x', null)).toMatchObject({ members: [], nats: 'down', statusAt: 0 });
  });

  it('telemetry observe: new sync gaps and resyncs between polls are events; a restarted agent (counters back to 0) is a new baseline', () => {
    const a = clusterView(status, { role: 'backup', term: 3, leader: 'd1' }, 1000);
    const b = clusterView({ ...status, sync: { ...status.sync, received: 200, gaps: 2, resyncs: 1 } }, { role: 'backup', term: 3, leader: 'd1' }, 2000);
    const ev = syncEvents(a, b, 2000);
    expect(ev.map((e) => [e.name, e.error])).toEqual([['sync-gap', true], ['resync', true]]);
    expect(ev[0].attributes).toMatchObject({ 'lvs.node': 'd2', 'lvs.sync.gaps': 2, 'lvs.sync.gaps_total': 2, 'lvs.cluster.term': 3 });
    expect(ev[1].attributes).toMatchObject({ 'lvs.sync.resyncs': 1 });
    expect(syncEvents(null, b, 1)).toEqual([]);
    expect(syncEvents(b, a, 1)).toEqual([]);
  });
});
