// tsvsd observer: the cluster link's role/grant/release events become failover and VIP control events with term
// and reason; the poller keeps the latest cluster and health views and emits health-transition and sync events.
import { describe, expect, it } from 'vitest';
import { ClusterLink, type ClusterLinkEvent } from '../../services/tsvsd/cluster.ts';
import { clusterControlEvent, Observer } from '../../services/tsvsd/observer.ts';
import { directorName } from '../../services/tsvsd/daemon.ts';
import type { VirtualServerStatus } from '../../shared/health/machine.ts';
import type { ClusterStatus } from '../../shared/proto/cluster.ts';
import type { ControlEvent } from '../../shared/proto/telemetry.ts';

const quiet = (): void => {};

function rsStatus(alive: boolean, ups: number, downs: number): VirtualServerStatus[] {
  return [{
    vs: 'TCP 10.0.0.1:80', quorumUp: true, liveWeight: 1, quorum: 1, hysteresis: 0, sorryActive: false,
    services: [{ af: 4, protocol: 'tcp', addr: '10.0.0.1', port: 80, fwmark: 0 }],
    realServers: [{
      vs: 'TCP 10.0.0.1:80', rs: 'TCP 10.0.0.1:80 -> 10.0.1.2:80', alive, tableWeight: alive ? 1 : null, configuredWeight: 1, lastChange: 77, ups, downs,
      checkers: [{ vs: 'v', rs: 'r', checker: 'c', kind: 'TCP_CHECK', target: '10.0.1.2:80', state: alive ? 'up' : 'down', running: false, okInRow: 0, failInRow: 0, lastError: alive ? null : 'refused', lastChange: 77, lastResult: 77, lastDurationMs: 1, checks: 5, failures: downs }],
    }],
  }];
}

describe('tsvsd observer', () => {
  it('tsvsd observer: the link reports a role change, a grant with its term and a release with its reason', () => {
    const events: ClusterLinkEvent[] = [];
    const link = new ClusterLink({ send: () => true, log: quiet, event: (e) => void events.push(e) });
    link.start(quiet);
    link.onMessage({ type: 'role', role: 'backup', term: 3, leader: 'd1' });
    link.onMessage({ type: 'role', role: 'backup', term: 3, leader: 'd1' });
    link.onMessage({ type: 'vip-grant', vips: ['10.0.0.1'], term: 4 });
    link.onMessage({ type: 'vip-release', vips: ['10.0.0.1'], reason: 'isolated from NATS' });
    link.onAgentExit('killed by SIGKILL');
    expect(events.map((e) => (e.kind === 'role' ? `role ${e.from.role}>${e.to.role}@${e.to.term}` : e.kind === 'grant' ? `grant@${e.term} ${e.vips}` : `release@${e.term} ${e.reason}`))).toEqual([
      'role none>backup@3',
      'role backup>leader@4',
      'grant@4 10.0.0.1',
      'release@4 isolated from NATS',
      'role leader>none@4',
    ]);
    const c = clusterControlEvent(events[1], 'd2', 123);
    expect(c).toEqual({ name: 'failover', timeMs: 123, error: false, attributes: { 'lvs.node': 'd2', 'lvs.cluster.role.from': 'backup', 'lvs.cluster.role.to': 'leader', 'lvs.cluster.term': 4, 'lvs.cluster.leader': 'd2' } });
    expect(clusterControlEvent(events[2], 'd2', 1).attributes).toMatchObject({ 'lvs.vips': '10.0.0.1', 'lvs.cluster.term': 4 });
    expect(clusterControlEvent(events[3], 'd2', 1)).toMatchObject({ name: 'vip-release', error: true, attributes: { 'lvs.reason': 'isolated from NATS', 'lvs.cluster.term': 4 } });
    expect(clusterControlEvent(events[4], 'd2', 1)).toMatchObject({ name: 'failover', error: true });
  });

  it('tsvsd observer: polls keep the latest views; a health state change and new sync gaps become control events', async () => {
    const sent: ControlEvent[] = [];
    let health = rsStatus(true, 1, 0);
    let gaps = 0;
    let answer = true;
    const status = (): ClusterStatus => ({
      self: 'd2', cluster: 'c', leader: 'd1', term: 2, nats: 'up', nats_server: 'n', ready: true, members: [{ name: 'd1', state: 'leader', priority: 200 }, { name: 'd2', state: 'backup', priority: 190 }], vips: [],
      sync: { sent: 0, received: 10, gaps, resyncs: 0, lost: 0, stale: 0, foreign: 0, malformed: 0, lag_p50_ms: 1, lag_p99_ms: 2, snapshot_entries: 0, snapshot_ms: 0 },
    });
    const o = new Observer({
      node: 'd2',
      cluster: { status: () => (answer ? Promise.resolve(status()) : Promise.reject(new Error('the cluster agent is not running'))), role: { role: 'backup', term: 2, leader: 'd1' } },
      health: () => Promise.resolve(health),
      control: (e) => void sent.push(e),
      log: quiet,
      now: () => 1000,
    });
    expect(o.cluster()).toMatchObject({ self: 'd2', role: 'backup', error: 'no status yet' });
    expect(o.health()).toBeNull();
    await o.poll();
    expect(o.cluster()).toMatchObject({ leader: 'd1', term: 2, members: [{ name: 'd1' }, { name: 'd2' }], error: '' });
    expect(o.health()?.map((h) => h.state)).toEqual(['up']);
    expect(sent).toEqual([]);
    health = rsStatus(false, 1, 1);
    gaps = 3;
    await o.poll();
    expect(sent.map((e) => [e.name, e.attributes?.['lvs.health.to'] ?? e.attributes?.['lvs.sync.gaps']]).sort()).toEqual([['health-transition', 'down'], ['sync-gap', 3]]);
    answer = false;
    await o.poll();
    expect(o.cluster()).toMatchObject({ error: 'the cluster agent is not running', members: [{ name: 'd1' }, { name: 'd2' }], ready: false });
    o.stop();
  });

  it('tsvsd observer: the director is named by --node in a cluster, else $TSVS_DIRECTOR, else the host name', () => {
    const cluster = { nats: 'nats://x:1', node: 'd7', nopreempt: false };
    expect(directorName({ cluster }, { TSVS_DIRECTOR: 'other' })).toBe('d7');
    expect(directorName({}, { TSVS_DIRECTOR: 'other' })).toBe('other');
    expect(directorName({}, {})).toMatch(/\S/);
  });
});
