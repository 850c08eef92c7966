// The health checker's plan: a keepalived model flattened into virtual servers, real servers and checkers with
// stable ids, times in milliseconds, and a fingerprint per checker so a reload can keep unchanged checkers' state.
import type { DestConfig, ServiceKey } from '../model/ipvs.ts';
import type { Checker, KeepalivedConfig, RealServer, SorryServer, VirtualServer } from '../keepalived/model.ts';
import { serviceKeys } from '../keepalived/ipvs.ts';

/** Timing of one checker after inheritance and defaults, in milliseconds (counts are plain numbers). */
export interface CheckTiming {
  readonly delayLoopMs: number;
  /** The whole check (connect, request, reply, body) must finish within this; MISC_CHECK uses misc_timeout. */
  readonly timeoutMs: number;
  readonly retry: number;
  readonly delayBeforeRetryMs: number;
  readonly warmupMs: number;
  readonly alpha: boolean;
  /** Extension (HAProxy): null = keepalived's behaviour. */
  readonly rise: number | null;
  readonly fall: number | null;
  readonly fastinterMs: number | null;
  readonly downinterMs: number | null;
}

/** One checker to run: the model's checker with the address it talks to resolved. */
export interface CheckerPlan {
  /** `<rsId> <KIND>#<n>`: stable across reloads while the real server and the checker's position stay. */
  readonly id: string;
  readonly rsId: string;
  readonly vsId: string;
  readonly checker: Checker;
  /** connect_ip or the real server's address. */
  readonly host: string;
  readonly af: 4 | 6;
  /** connect_port or the real server's port. */
  readonly port: number;
  readonly timing: CheckTiming;
  /** Equal fingerprints mean the same check: a reload keeps its state. */
  readonly fingerprint: string;
}

export interface RealServerPlan {
  /** `<vsId> -> <addr>:<port>`. */
  readonly id: string;
  readonly vsId: string;
  /** The dest as configured (configured weight). */
  readonly dest: DestConfig;
  readonly inhibitOnFailure: boolean;
  readonly notifyUp: string | null;
  readonly notifyDown: string | null;
  readonly checkerIds: readonly string[];
}

export interface SorryPlan {
  readonly dest: DestConfig;
  readonly inhibit: boolean;
}

export interface VirtualServerPlan {
  /** `tcp 10.0.0.1:80`, `fwmark 1`, `group NAME`, with `#2`... appended for a repeated name. */
  readonly id: string;
  /** The IPVS services this virtual_server stands for (one, or one per group entry). */
  readonly services: readonly ServiceKey[];
  readonly quorum: number;
  readonly hysteresis: number;
  readonly quorumUp: string | null;
  readonly quorumDown: string | null;
  readonly omega: boolean;
  readonly sorry: SorryPlan | null;
  readonly rsIds: readonly string[];
}

/** Everything the checker runs, in configuration order. */
export interface HealthPlan {
  readonly virtualServers: readonly VirtualServerPlan[];
  readonly realServers: readonly RealServerPlan[];
  readonly checkers: readonly CheckerPlan[];
}

const ms = (s: number): number => Math.round(s * 1000);

function destOf(s: RealServer | SorryServer, weight: number, uThreshold = 0, lThreshold = 0): DestConfig {
  return { af: s.af, addr: s.addr, port: s.port, method: s.method, weight, uThreshold, lThreshold, tunType: 'ipip', tunPort: 0, tunCsum: '' };
}

function vsBaseId(vs: VirtualServer): string {
  const a = vs.address;
  if (a.kind === 'fwmark') return `fwmark ${a.fwmark}`;
  if (a.kind === 'group') return `group ${a.name} ${vs.protocol}`;
  return `${vs.protocol} ${a.af === 6 ? `[${a.addr}]` : a.addr}:${a.port}`;
}

function hostPort(af: 4 | 6, addr: string, port: number): string {
  return af === 6 ? `[${addr}]:${port}` : `${addr}:${port}`;
}

/** A checker's settings without its position in the file: what decides whether a reload keeps its state. */
function fingerprint(c: Checker, host: string, port: number, timing: CheckTiming): string {
  const { file: _f, line: _l, ...rest } = c;
  const urls = 'urls' in rest ? rest.urls.map(({ file: _uf, line: _ul, ...u }) => u) : undefined;
  return JSON.stringify({ ...rest, urls, host, port, timing });
}

function timingOf(c: Checker): CheckTiming {
  return {
    delayLoopMs: ms(c.delayLoop),
    timeoutMs: ms(c.kind === 'MISC_CHECK' ? c.timeout : c.connectTimeout),
    retry: c.retry,
    delayBeforeRetryMs: ms(c.delayBeforeRetry),
    warmupMs: ms(c.warmup),
    alpha: c.alpha,
    rise: c.rise,
    fall: c.fall,
    fastinterMs: c.fastinter === null ? null : ms(c.fastinter),
    downinterMs: c.downinter === null ? null : ms(c.downinter),
  };
}

/** Flattens a keepalived model into the checker's plan. Pure; ids are stable for unchanged configuration. */
export function healthPlan(cfg: KeepalivedConfig): HealthPlan {
  const vss: VirtualServerPlan[] = [];
  const rss: RealServerPlan[] = [];
  const cks: CheckerPlan[] = [];
  const seen = new Map<string, number>();
  for (const vs of cfg.virtualServers) {
    const base = vsBaseId(vs);
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    const vsId = n === 1 ? base : `${base}#${n}`;
    const rsIds: string[] = [];
    for (const rs of vs.realServers) {
      const rsId = `${vsId} -> ${hostPort(rs.af, rs.addr, rs.port)}`;
      rsIds.push(rsId);
      const perKind = new Map<string, number>();
      const checkerIds: string[] = [];
      for (const c of rs.checkers) {
        const k = (perKind.get(c.kind) ?? 0) + 1;
        perKind.set(c.kind, k);
        const id = `${rsId} ${c.kind}#${k}`;
        const host = c.kind !== 'MISC_CHECK' && c.connectIp ? c.connectIp.addr : rs.addr;
        const af = c.kind !== 'MISC_CHECK' && c.connectIp ? c.connectIp.af : rs.af;
        const port = c.kind !== 'MISC_CHECK' && c.connectPort !== null ? c.connectPort : rs.port;
        const timing = timingOf(c);
        checkerIds.push(id);
        cks.push({ id, rsId, vsId, checker: c, host, af, port, timing, fingerprint: fingerprint(c, host, port, timing) });
      }
      rss.push({ id: rsId, vsId, dest: destOf(rs, rs.weight, rs.uThreshold, rs.lThreshold), inhibitOnFailure: rs.inhibitOnFailure, notifyUp: rs.notifyUp, notifyDown: rs.notifyDown, checkerIds });
    }
    vss.push({
      id: vsId,
      services: serviceKeys(vs, cfg),
      quorum: vs.quorum,
      hysteresis: vs.hysteresis,
      quorumUp: vs.quorumUp,
      quorumDown: vs.quorumDown,
      omega: vs.omega,
      sorry: vs.sorryServer ? { dest: destOf(vs.sorryServer, 1), inhibit: vs.sorryServer.inhibit } : null,
      rsIds,
    });
  }
  return { virtualServers: vss, realServers: rss, checkers: cks };
}
