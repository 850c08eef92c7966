// The monitor page's data: a compact frame per tick built from the stats read model and the latest decisions, and
// a bounded history of the figures the page plots (rates and connection counts per real server over the last minutes).
import type { TableSnapshot } from '../model/ipvs.ts';
import { serviceKeyString } from '../model/ipvs.ts';
import type { TelemetryStats } from '../proto/telemetry.ts';
import type { ClusterView, HealthServerView } from '../proto/stats.ts';
import type { MetricsInput } from './prometheus.ts';
import type { DecisionRecord } from './decision-ring.ts';
import { serviceLabel } from './attributes.ts';

export interface MonitorDest {
  /** Unique over the table: service key + ">" + address:port. */
  key: string;
  address: string;
  port: number;
  method: string;
  weight: number;
  active: number;
  inactive: number;
  persistent: number;
  overloaded: boolean;
  conns: number;
  cps: number;
  inpps: number;
  outpps: number;
  /** Health state from the health hook, or null when nothing checks this server. */
  health: string | null;
  /** The deciding checker and its last error, with the check counts ("TCP_CHECK 10.0.1.2:80: refused, 3 of 40 failed"). */
  healthDetail: string;
}

export interface MonitorService {
  key: string;
  /** "TCP 10.0.0.1:80" or "FWM 5". */
  label: string;
  scheduler: string;
  persistent: boolean;
  conns: number;
  cps: number;
  inpps: number;
  outpps: number;
  inbps: number;
  outbps: number;
  dests: MonitorDest[];
}

export interface MonitorDecision {
  seq: number;
  timeMs: number;
  worker: number;
  director: string;
  client: string;
  service: string;
  scheduler: string;
  outcome: string;
  template: string;
  /** "10.0.0.2:80", or '' when none. */
  dest: string;
  /** One line per candidate: "10.0.0.2:80 w=1 a=0 i=3 o=3". */
  candidates: string[];
}

/** A checked real server as the page's health panel lists it (also when the checker took it out of the table). */
export interface MonitorCheck {
  /** The keepalived virtual server id and the real server's address:port. */
  vs: string;
  server: string;
  state: string;
  /** Weight in the table now, null when the checker took it out. */
  weight: number | null;
  check: string;
  lastError: string | null;
  checks: number;
  failures: number;
  ups: number;
  downs: number;
  /** Wall-clock ms of the last state change, null if never. */
  lastChange: number | null;
}

/** One tick of the monitor: everything the page shows. */
export interface MonitorFrame {
  t: number;
  director: string;
  forwarding: boolean;
  epoch: number;
  workers: Array<{ index: number; cpu: number; alive: boolean; restarts: number }>;
  services: MonitorService[];
  drops: Array<{ reason: string; count: number }>;
  decisions: MonitorDecision[];
  cluster: ClusterView | null;
  /** The VIPs and who holds them as this director sees it: itself when it holds one, else the cluster's leader. */
  vips: Array<{ vip: string; owner: string }>;
  /** Every checked real server (one per keepalived real_server), null without a checker. */
  checks: MonitorCheck[] | null;
  telemetry: TelemetryStats | null;
}

/** One history point: per real server [cps, active, inactive, inpps], per service [cps, inpps]. */
export interface HistoryPoint {
  t: number;
  d: Record<string, [number, number, number, number]>;
  s: Record<string, [number, number]>;
}

const METHOD_LABEL: Record<string, string> = { masq: 'Masq', route: 'Route', tunnel: 'Tunnel', local: 'Local' };

function healthKey(proto: string, laddr: string, lport: number, mark: number, raddr: string, rport: number): string {
  return `${proto}|${laddr}|${lport}|${mark}|${raddr}|${rport}`;
}

function healthDetail(h: HealthServerView): string {
  return `${h.check}${h.lastError !== null ? `: ${h.lastError}` : ''}, ${h.failures} of ${h.checks} failed, ${h.upTransitions} up / ${h.downTransitions} down`;
}

function services(table: TableSnapshot, health: HealthServerView[] | null | undefined): MonitorService[] {
  const hmap = new Map<string, HealthServerView>();
  for (const h of health ?? []) hmap.set(healthKey(h.proto.toUpperCase(), h.localAddress, h.localPort, h.localMark, h.remoteAddress, h.remotePort), h);
  return table.services.map((s) => {
    const key = serviceKeyString(s);
    const fw = s.fwmark > 0;
    const proto = fw ? 'FWM' : s.protocol.toUpperCase();
    return {
      key,
      label: fw ? `FWM ${s.fwmark}` : `${proto} ${s.af === 6 ? `[${s.addr}]` : s.addr}:${s.port}`,
      scheduler: s.scheduler,
      persistent: (s.flags & 1) !== 0,
      conns: s.stats.conns,
      cps: s.rate.cps,
      inpps: s.rate.inpps,
      outpps: s.rate.outpps,
      inbps: s.rate.inbps,
      outbps: s.rate.outbps,
      dests: s.dests.map((d) => {
        const h = hmap.get(healthKey(proto, fw ? '' : s.addr, fw ? 0 : s.port, s.fwmark, d.addr, d.port));
        return {
          key: `${key}>${d.addr}:${d.port}`,
          address: d.addr,
          port: d.port,
          method: METHOD_LABEL[d.method] ?? d.method,
          weight: d.weight,
          active: d.activeConns,
          inactive: d.inactConns,
          persistent: d.persistConns,
          overloaded: d.overloaded,
          conns: d.stats.conns,
          cps: d.rate.cps,
          inpps: d.rate.inpps,
          outpps: d.rate.outpps,
          health: h?.state ?? null,
          healthDetail: h ? healthDetail(h) : '',
        };
      }),
    };
  });
}

/** A decision as the page lists it. */
export function decisionSummary(r: DecisionRecord): MonitorDecision {
  return {
    seq: r.seq,
    timeMs: r.timeMs,
    worker: r.worker,
    director: r.director,
    client: `${r.clientAddress}:${r.clientPort}`,
    service: serviceLabel(r),
    scheduler: r.scheduler,
    outcome: r.outcome,
    template: r.template,
    dest: r.dest === null ? '' : `${r.dest.address}:${r.dest.port}`,
    candidates: r.candidates.map((c) => `${c.address}:${c.port} w=${c.weight} a=${c.active} i=${c.inactive} o=${c.overhead}${c.chosen ? ' *' : ''}`),
  };
}

/** Builds the frame of one tick. `decisions` newest first (at most what the page lists). */
export function monitorFrame(t: number, director: string, m: MetricsInput, decisions: DecisionRecord[]): MonitorFrame {
  const drops = Object.entries(m.dataplane.events)
    .filter(([e, v]) => v > 0 && (e.startsWith('drop_') || (e.startsWith('net_') && e !== 'net_ok') || e === 'orphan_replies'))
    .map(([e, v]) => ({ reason: e.startsWith('drop_') ? e.slice(5) : e, count: v }))
    .sort((a, b) => b.count - a.count);
  return {
    t,
    director,
    forwarding: m.dataplane.forwarding,
    epoch: m.dataplane.epoch,
    workers: m.dataplane.workers.map((w) => ({ index: w.index, cpu: w.cpu, alive: w.alive, restarts: w.restarts })),
    services: services(m.table, m.health),
    drops,
    decisions: decisions.map(decisionSummary),
    cluster: m.cluster ?? null,
    vips: vipOwners(director, m),
    checks: m.health ? checks(m.health) : null,
    telemetry: m.telemetry ?? null,
  };
}

function checks(h: HealthServerView[]): MonitorCheck[] {
  const seen = new Set<string>();
  const out: MonitorCheck[] = [];
  for (const x of h) {
    if (seen.has(x.rs)) continue;
    seen.add(x.rs);
    out.push({
      vs: x.vs, server: `${x.remoteAddress.includes(':') ? `[${x.remoteAddress}]` : x.remoteAddress}:${x.remotePort}`, state: x.state, weight: x.tableWeight,
      check: x.check, lastError: x.lastError, checks: x.checks, failures: x.failures, ups: x.upTransitions, downs: x.downTransitions, lastChange: x.lastChange,
    });
  }
  return out;
}

/** Every VIP of the table (and any other held) with its holder: this director, the leader, or '' when unknown. */
function vipOwners(director: string, m: MetricsInput): Array<{ vip: string; owner: string }> {
  const held = new Set(m.vipsHeld ?? []);
  const vips = new Set<string>([...held, ...(m.floating ?? [])]);
  for (const s of m.table.services) if (s.fwmark === 0) vips.add(s.addr);
  const other = m.cluster && m.cluster.leader !== m.cluster.self ? m.cluster.leader : '';
  return [...vips].sort().map((vip) => ({ vip, owner: held.has(vip) ? director : m.vipsHeld === undefined ? '' : other }));
}

/** The plotted figures of a frame. */
export function historyPoint(f: MonitorFrame): HistoryPoint {
  const d: HistoryPoint['d'] = {};
  const s: HistoryPoint['s'] = {};
  for (const svc of f.services) {
    s[svc.key] = [svc.cps, svc.inpps];
    for (const x of svc.dests) d[x.key] = [x.cps, x.active, x.inactive, x.inpps];
  }
  return { t: f.t, d, s };
}

/** A bounded history: keeps the points of the last `windowMs`, and at most `maxPoints`. */
export class History {
  private points: HistoryPoint[] = [];
  private readonly windowMs: number;
  private readonly maxPoints: number;

  constructor(windowMs = 5 * 60_000, maxPoints = 600) {
    this.windowMs = windowMs;
    this.maxPoints = maxPoints;
  }

  add(p: HistoryPoint): void {
    this.points.push(p);
    const cut = p.t - this.windowMs;
    let drop = 0;
    while (drop < this.points.length && this.points[drop].t < cut) drop++;
    if (this.points.length - drop > this.maxPoints) drop = this.points.length - this.maxPoints;
    if (drop > 0) this.points = this.points.slice(drop);
  }

  all(): HistoryPoint[] {
    return this.points.slice();
  }
}
