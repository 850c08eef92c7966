// A keepalived model as the IPVS table keepalived programs at startup (reference §6): services, and each real
// server with the weight it starts with; printable as an ipvsadm-save stream with shared/ipvsadm/format.ts.
import type { DestConfig, ServiceConfig, ServiceKey, TableSnapshot } from '../model/ipvs.ts';
import { Defaults, SvcFlag, zeroRates, zeroStats } from '../model/ipvs.ts';
import { formatIpv6, parseIpv6 } from '../ipvsadm/names.ts';
import type { KeepalivedConfig, RealServer, SorryServer, VirtualServer } from './model.ts';
import { ipv4FromText, ipv4ToText } from '../net/addr.ts';

/** One IPVS service with the dests keepalived adds at startup. */
export interface KeepalivedService {
  readonly svc: ServiceConfig;
  readonly dests: readonly DestConfig[];
  /** The virtual_server it comes from. */
  readonly from: VirtualServer;
}

/** Startup state of a real server: alive unless one of its checkers is in alpha mode (starts down). */
export function initiallyAlive(rs: RealServer): boolean {
  return rs.checkers.every((c) => !c.alpha);
}

/** The service keys a virtual_server stands for: one, or one per address / fwmark of its group. */
export function serviceKeys(vs: VirtualServer, cfg: KeepalivedConfig): ServiceKey[] {
  const a = vs.address;
  if (a.kind === 'ip') return [{ af: a.af, protocol: vs.protocol, addr: a.addr, port: a.port, fwmark: 0 }];
  if (a.kind === 'fwmark') return [{ af: a.af, protocol: 'tcp', addr: '', port: 0, fwmark: a.fwmark }];
  const group = cfg.virtualServerGroups.find((g) => g.name === a.name);
  const af = vs.realServers[0]?.af ?? 4;
  const keys: ServiceKey[] = [];
  for (const e of group?.entries ?? []) {
    if (e.kind === 'fwmark') {
      keys.push({ af, protocol: 'tcp', addr: '', port: 0, fwmark: e.fwmark });
      continue;
    }
    for (let i = 0; i < e.count; i++) keys.push({ af: e.af, protocol: vs.protocol, addr: nthAddr(e.af, e.first, i), port: e.port, fwmark: 0 });
  }
  return keys;
}

/** `first` plus `i` in the last octet (IPv4) or last 16-bit group (IPv6). */
function nthAddr(af: 4 | 6, first: string, i: number): string {
  if (af === 4) return ipv4ToText((ipv4FromText(first) as number) + i);
  const g = parseIpv6(first) as number[];
  return formatIpv6([...g.slice(0, 7), g[7] + i]);
}

function dest(s: RealServer | SorryServer, weight: number, uThreshold: number, lThreshold: number): DestConfig {
  return { af: s.af, addr: s.addr, port: s.port, method: s.method, weight, uThreshold, lThreshold, tunType: 'ipip', tunPort: 0, tunCsum: '' };
}

/**
 * The dests keepalived adds to one service at startup: alive real servers at their weight, inhibited dead ones at
 * weight 0, dead ones not at all. When the live weight does not reach quorum + hysteresis and a sorry_server is
 * configured, the sorry server (weight 1) stands in for the live real servers; with sorry_server_inhibit it is
 * otherwise listed at weight 0 (as the health checker's view keeps it).
 */
function startupDests(vs: VirtualServer): DestConfig[] {
  const alive = vs.realServers.filter(initiallyAlive);
  const weightSum = alive.reduce((s, r) => s + r.weight, 0);
  const quorumUp = weightSum >= vs.quorum + vs.hysteresis;
  const out: DestConfig[] = [];
  for (const rs of vs.realServers) {
    const up = alive.includes(rs);
    if (up && (quorumUp || vs.sorryServer === null)) out.push(dest(rs, rs.weight, rs.uThreshold, rs.lThreshold));
    else if (!up && rs.inhibitOnFailure) out.push(dest(rs, 0, rs.uThreshold, rs.lThreshold));
  }
  if (!quorumUp && vs.sorryServer) out.push(dest(vs.sorryServer, 1, 0, 0));
  else if (vs.sorryServer?.inhibit && !out.some((d) => d.addr === vs.sorryServer?.addr && d.port === vs.sorryServer.port)) out.push(dest(vs.sorryServer, 0, 0, 0));
  return out;
}

/** Every IPVS service keepalived would create from `cfg`, in configuration order, with its startup dests. */
export function keepalivedToIpvs(cfg: KeepalivedConfig): KeepalivedService[] {
  const out: KeepalivedService[] = [];
  for (const vs of cfg.virtualServers) {
    for (const key of serviceKeys(vs, cfg)) {
      const persistent = vs.persistenceTimeout !== null;
      const svc: ServiceConfig = {
        ...key,
        scheduler: vs.scheduler,
        flags: vs.flags | (persistent ? SvcFlag.PERSISTENT : 0),
        timeout: vs.persistenceTimeout ?? 0,
        netmask: key.af === 6 ? (vs.persistenceGranularity.includes('.') ? '128' : vs.persistenceGranularity) : vs.persistenceGranularity.includes('.') ? vs.persistenceGranularity : '255.255.255.255',
        pe: vs.persistenceEngine,
      };
      out.push({ svc, dests: startupDests(vs), from: vs });
    }
  }
  return out;
}

/**
 * The services as a table snapshot (zero counters, kernel default timeouts, no sync daemon) for the ipvsadm
 * formatters: `formatSave(ipvsSnapshot(keepalivedToIpvs(cfg)), format, resolver)` is `ipvsadm -S` after startup.
 * Dests are listed most recently added first, as the kernel keeps them.
 */
export function ipvsSnapshot(services: readonly KeepalivedService[]): TableSnapshot {
  return {
    version: Defaults.version,
    connTabSize: Defaults.connTabSize,
    services: services.map((s) => ({
      ...s.svc,
      dests: [...s.dests].reverse().map((d) => ({ ...d, activeConns: 0, inactConns: 0, persistConns: 0, overloaded: false, stats: zeroStats(), rate: zeroRates() })),
      stats: zeroStats(),
      rate: zeroRates(),
    })),
    timeouts: { ...Defaults.timeouts },
    daemons: [],
  };
}
