// The cluster and health seen from tsvsd, pure part: the agent's and the checker's status answers turned into the
// read model's views (shared/proto/stats.ts), and two successive views turned into control events (always-kept spans).
import type { ServiceKey } from '../model/ipvs.ts';
import type { VirtualServerStatus } from '../health/machine.ts';
import type { ClusterStatus, ClusterSyncStatus } from '../proto/cluster.ts';
import type { ClusterView, HealthServerView } from '../proto/stats.ts';
import type { ControlEvent } from '../proto/telemetry.ts';

/** Sync figures before the agent first answers. */
export function zeroSync(): ClusterSyncStatus {
  return { sent: 0, received: 0, gaps: 0, resyncs: 0, lost: 0, stale: 0, foreign: 0, malformed: 0, lag_p50_ms: 0, lag_p99_ms: 0, snapshot_entries: 0, snapshot_ms: 0 };
}

/** This director's role as the agent last reported it (tsvsd's ClusterLink keeps it). */
export interface RoleSeen {
  role: 'leader' | 'backup' | 'none';
  term: number;
  leader: string;
}

/**
 * The read model's cluster view from an agent status answer taken at `at` (wall-clock ms). The role is the one the
 * answer implies (leader when it names this director, else backup), so the view is one moment's; `role` (what the
 * link heard, which may lag an answer that overtook it in tsvsd's queue) is not used here.
 */
export function clusterView(s: ClusterStatus, _role: RoleSeen, at: number): ClusterView {
  return {
    self: s.self,
    cluster: s.cluster,
    role: s.leader !== '' && s.leader === s.self ? 'leader' : 'backup',
    leader: s.leader,
    // The agent's confirmed term (as `tsvsadm cluster` prints it), not a term it may be trying to take.
    term: s.term,
    nats: s.nats,
    natsServer: s.nats_server,
    ready: s.ready,
    members: s.members.map((m) => ({ name: m.name, state: m.state, priority: m.priority })),
    vips: [...s.vips],
    sync: { ...s.sync },
    statusAt: at,
    error: '',
  };
}

/**
 * The view when the agent did not answer (not running, timed out): the last good view's members and figures
 * are kept, but this director's own role, leader and term come from `role` and `error` says why.
 */
export function clusterUnavailable(self: string, role: RoleSeen, error: string, last: ClusterView | null): ClusterView {
  return {
    self,
    cluster: last?.cluster ?? '',
    role: role.role,
    leader: role.leader || (last?.leader ?? ''),
    term: Math.max(role.term, last?.term ?? 0),
    nats: last?.nats ?? 'down',
    natsServer: last?.natsServer ?? '',
    ready: false,
    members: last?.members ?? [],
    vips: [],
    sync: last?.sync ?? zeroSync(),
    statusAt: last?.statusAt ?? 0,
    error,
  };
}

function serviceLabels(k: ServiceKey): Pick<HealthServerView, 'proto' | 'localAddress' | 'localPort' | 'localMark'> {
  const fw = k.fwmark > 0;
  return { proto: fw ? 'FWM' : k.protocol.toUpperCase(), localAddress: fw ? '' : k.addr, localPort: fw ? 0 : k.port, localMark: k.fwmark };
}

/** "<vs> -> 10.0.1.2:80" or "<vs> -> [fd00::2]:80" → address and port. */
function remoteOf(rs: string): { address: string; port: number } {
  const hp = rs.slice(rs.lastIndexOf(' -> ') + 4);
  const i = hp.lastIndexOf(':');
  const host = hp.slice(0, i);
  return { address: host.startsWith('[') ? host.slice(1, -1) : host, port: Number(hp.slice(i + 1)) };
}

/**
 * One row per real server and IPVS service of its virtual server, from the checker's status (`tsvsadm health
 * --json`). A checker too old to report services, counters or transitions gives zeros and the virtual server's
 * id as the only service label it can (proto from the id's first word).
 */
export function healthServers(status: readonly VirtualServerStatus[]): HealthServerView[] {
  const out: HealthServerView[] = [];
  for (const vs of status) {
    for (const rs of vs.realServers) {
      const remote = remoteOf(rs.rs);
      const down = rs.checkers.find((c) => c.state === 'down');
      const decider = down ?? rs.checkers[0];
      let slowest: number | null = null;
      let checks = 0;
      let failures = 0;
      for (const c of rs.checkers) {
        if (c.lastDurationMs !== null && (slowest === null || c.lastDurationMs > slowest)) slowest = c.lastDurationMs;
        checks += c.checks ?? 0;
        failures += c.failures ?? 0;
      }
      const base = {
        vs: vs.vs,
        rs: rs.rs,
        remoteAddress: remote.address,
        remotePort: remote.port,
        state: rs.alive ? ('up' as const) : ('down' as const),
        tableWeight: rs.tableWeight,
        configuredWeight: rs.configuredWeight,
        lastCheckSeconds: slowest === null ? null : slowest / 1000,
        checks,
        failures,
        upTransitions: rs.ups ?? 0,
        downTransitions: rs.downs ?? 0,
        check: decider ? `${decider.kind} ${decider.target}` : '',
        lastError: decider?.lastError ?? null,
        lastChange: rs.lastChange,
      };
      const services = vs.services ?? [];
      if (services.length === 0) {
        out.push({ ...base, proto: vs.vs.split(' ')[0].toUpperCase(), localAddress: '', localPort: 0, localMark: 0 });
        continue;
      }
      for (const k of services) out.push({ ...base, ...serviceLabels(k) });
    }
  }
  return out;
}

/**
 * Health transitions between two polls of the checker, one `health-transition` event per real server whose state
 * changed or that went through transitions in between (a flap shorter than the poll: `lvs.health.transitions`
 * counts them). Nothing on the first poll (`prev` null): the starting states are not transitions.
 */
export function healthEvents(prev: readonly HealthServerView[] | null, next: readonly HealthServerView[], now: number): ControlEvent[] {
  if (prev === null) return [];
  const before = new Map<string, HealthServerView>();
  for (const h of prev) if (!before.has(h.rs)) before.set(h.rs, h);
  const seen = new Set<string>();
  const out: ControlEvent[] = [];
  for (const h of next) {
    if (seen.has(h.rs)) continue;
    seen.add(h.rs);
    const p = before.get(h.rs);
    if (!p) continue;
    const moved = h.upTransitions - p.upTransitions + (h.downTransitions - p.downTransitions);
    if (p.state === h.state && moved <= 0) continue;
    const attributes: Record<string, string | number | boolean> = {
      'lvs.virtual_server': h.vs,
      'lvs.real_server': h.rs,
      'lvs.dest.address': h.remoteAddress,
      'lvs.dest.port': h.remotePort,
      'lvs.health.from': p.state,
      'lvs.health.to': h.state,
      'lvs.health.check': h.check,
      'lvs.health.transitions': Math.max(1, moved),
      'lvs.health.failures': h.failures,
    };
    if (h.lastError !== null) attributes['lvs.health.error'] = h.lastError;
    if (h.tableWeight !== null) attributes['lvs.dest.weight'] = h.tableWeight;
    out.push({ name: 'health-transition', timeMs: h.lastChange ?? now, attributes, error: h.state === 'down' });
  }
  return out;
}

/**
 * Sync trouble between two polls of the agent: `sync-gap` when gaps were detected (NACKed ranges) and `resync`
 * when full resyncs were asked for, each with the count since the previous poll and the totals. A restarted agent
 * (counters went back) starts a new baseline without events.
 */
export function syncEvents(prev: ClusterView | null, next: ClusterView, now: number): ControlEvent[] {
  if (prev === null || next.statusAt === 0 || prev.statusAt === 0 || next.error !== '') return [];
  const a = prev.sync;
  const b = next.sync;
  if (b.gaps < a.gaps || b.resyncs < a.resyncs || b.received < a.received) return [];
  const common = { 'lvs.node': next.self, 'lvs.cluster.term': next.term, 'lvs.sync.records_received': b.received, 'lvs.sync.records_lost': b.lost };
  const out: ControlEvent[] = [];
  if (b.gaps > a.gaps) out.push({ name: 'sync-gap', timeMs: now, attributes: { ...common, 'lvs.sync.gaps': b.gaps - a.gaps, 'lvs.sync.gaps_total': b.gaps }, error: true });
  if (b.resyncs > a.resyncs) out.push({ name: 'resync', timeMs: now, attributes: { ...common, 'lvs.sync.resyncs': b.resyncs - a.resyncs, 'lvs.sync.resyncs_total': b.resyncs }, error: true });
  return out;
}
