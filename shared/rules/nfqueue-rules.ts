// The NFQUEUE backend's kernel rules as data: raw NOTRACK for VIP and NAT-reply traffic, mangle PREROUTING HMARK
// (client address only) + one NFQUEUE rule per queue, DR policy routes. Pure; shared/sys/iptables.ts installs them.
import type { FwdTable } from '../fwd/table.ts';
import { FwdCode } from '../model/ipvs.ts';
import { ipv4ToText as intToIpv4 } from '../net/addr.ts';
import { fwmarkMatches, ownNonVip, type HostFacts } from './host.ts';

/** A virtual service whose requests are queued: TCP/UDP to `vip:port` (every port when `port` is 0). */
export interface NfqService {
  proto: 'tcp' | 'udp';
  vip: string;
  port: number;
  /** Only packets arriving on this interface; default any. */
  iface?: string;
}

/** NAT replies to queue: TCP/UDP from real server `rip:port` (every port when `port` is 0). */
export interface NfqReply {
  proto: 'tcp' | 'udp';
  rip: string;
  port: number;
  iface?: string;
}

/** A DR destination: the k-th entry gets mark `drMarkBase + k`, routed by table `drTableBase + k` via `rip` on `dev`. */
export interface NfqDrDest {
  rip: string;
  dev: string;
}

/** What the NFQUEUE backend needs from the kernel. */
export interface NfqRuleSpec {
  /** Number of queues (workers), ≥ 1. Queue i is `queueBase + i`. */
  queues: number;
  /** First queue number. Default 0. */
  queueBase?: number;
  services: readonly NfqService[];
  replies?: readonly NfqReply[];
  /**
   * Requests given as iptables match arguments, queued like `services` (fwmark services: the operator's mark
   * rules' matches; the worker classifies them itself, since HMARK overwrites the packet's mark).
   */
  matches?: readonly (readonly string[])[];
  /**
   * The director's own addresses (not VIPs): packets to them RETURN first, so its own connections to real
   * servers (health checks, admin) are never taken for NAT replies.
   */
  ownAddrs?: readonly string[];
  dr?: readonly NfqDrDest[];
  /** First DR mark. Default 0x100. */
  drMarkBase?: number;
  /** First DR routing table, and the `ip rule` preference of the first fwmark rule. Default 100. */
  drTableBase?: number;
  /** Preference the `local` rule moves to when `dr` is non-empty; must exceed every fwmark rule's. Default 500. */
  localPref?: number;
  /** HMARK random seed (32 bits); every director of a cluster may use the same. Default 0x5eed. */
  hmarkRnd?: number;
  /** `--queue-bypass`: accept instead of drop when no process is bound to a queue. Default false. */
  bypass?: boolean;
  /** Chain name prefix: `<prefix>` in raw, `<prefix>`, `<prefix>-REQ`, `<prefix>-REP` in mangle. Default TSVS-NFQ. */
  chain?: string;
  /** iptables binary; default `iptables` (legacy selected on these hosts: no nft queue in this kernel). */
  iptables?: string;
}

/** The iptables rules of an {@link NfqRuleSpec}, as arguments after `-A CHAIN`, by `table/chain`. */
export interface NfqRules {
  chain: string;
  /** raw `<chain>`: own RETURNs, then CT --notrack for services, matches and replies. */
  raw: string[][];
  /** mangle `<chain>`: own RETURNs, then jumps to `-REQ` (services, matches) and `-REP` (replies). */
  dispatch: string[][];
  /** mangle `<chain>-REQ` / `<chain>-REP`: one NFQUEUE rule, or HMARK + one NFQUEUE rule per queue. */
  req: string[][];
  rep: string[][];
  /** Own-address RETURNs at the head of `raw` and `dispatch`. */
  own: number;
}

function sel(proto: string, addrOpt: '-d' | '-s', addr: string, portOpt: '--dport' | '--sport', port: number, iface?: string): string[] {
  return [...(iface ? ['-i', iface] : []), '-p', proto, addrOpt, `${addr}/32`, ...(port ? [portOpt, String(port)] : [])];
}

/** HMARK on the client's address only: requests hash their source, replies their destination (`side`). */
function hmark(side: 'src' | 'dst', n: number, rnd: number): string[] {
  return [
    '-j', 'HMARK', '--hmark-src-prefix', side === 'src' ? '32' : '0', '--hmark-dst-prefix', side === 'dst' ? '32' : '0',
    '--hmark-sport-mask', '0', '--hmark-dport-mask', '0', '--hmark-proto-mask', '0', '--hmark-rnd', `0x${(rnd >>> 0).toString(16)}`,
    '--hmark-mod', String(n), '--hmark-offset', '0',
  ];
}

/**
 * The rules for `spec`: own addresses first (`-d OWN -j RETURN`); raw CT --notrack for each service, match and
 * NAT reply, so conntrack never sees the rewritten flows; mangle dispatch to `-REQ`/`-REP`, which with one queue
 * hold a single NFQUEUE rule and with N > 1 HMARK on the client address only (requests: src /32; replies: dst
 * /32; ports and protocol masked) then `-m mark --mark i -j NFQUEUE --queue-num base+i` per queue.
 * Throws RangeError when `queues` is not an integer ≥ 1.
 */
export function nfqueueRules(spec: NfqRuleSpec): NfqRules {
  const chain = spec.chain ?? 'TSVS-NFQ';
  const n = spec.queues;
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`nfqueue rules: queues ${n} must be an integer ≥ 1`);
  const base = spec.queueBase ?? 0;
  const bypass = spec.bypass ? ['--queue-bypass'] : [];
  const queueTo = (i: number): string[] => ['-j', 'NFQUEUE', '--queue-num', String(base + i), ...bypass];
  const replies = spec.replies ?? [];
  const own = (spec.ownAddrs ?? []).map((o) => ['-d', `${o}/32`, '-j', 'RETURN']);
  const raw: string[][] = [...own];
  for (const s of spec.services) raw.push([...sel(s.proto, '-d', s.vip, '--dport', s.port, s.iface), '-j', 'CT', '--notrack']);
  for (const m of spec.matches ?? []) raw.push([...m, '-j', 'CT', '--notrack']);
  for (const r of replies) raw.push([...sel(r.proto, '-s', r.rip, '--sport', r.port, r.iface), '-j', 'CT', '--notrack']);
  const perQueue = (side: 'src' | 'dst'): string[][] => {
    if (n === 1) return [queueTo(0)];
    const out = [hmark(side, n, spec.hmarkRnd ?? 0x5eed)];
    for (let i = 0; i < n; i++) out.push(['-m', 'mark', '--mark', String(i), ...queueTo(i)]);
    return out;
  };
  const dispatch: string[][] = [...own];
  for (const s of spec.services) dispatch.push([...sel(s.proto, '-d', s.vip, '--dport', s.port, s.iface), '-j', `${chain}-REQ`]);
  for (const m of spec.matches ?? []) dispatch.push([...m, '-j', `${chain}-REQ`]);
  for (const r of replies) dispatch.push([...sel(r.proto, '-s', r.rip, '--sport', r.port, r.iface), '-j', `${chain}-REP`]);
  return { chain, raw, dispatch, req: perQueue('src'), rep: perQueue('dst'), own: own.length };
}

/** The options of {@link nfqueueSpec}. */
export interface NfqSpecOptions {
  queues: number;
  queueBase: number;
  /** DR real server address → routing mark (base 0x100), by mark. */
  drMarks: readonly (readonly [string, number])[];
}

/**
 * The NFQUEUE backend's spec for `fwd`: queue each service's requests (fwmark services: their mark rules'
 * matches) and its masq real servers' replies (from any port for port-0 and fwmark services), and one policy
 * route per DR mark. The k-th `dr` entry must be the real server with mark 0x100 + k: gaps (a freed mark) are
 * filled with a copy of the previous entry, which no packet is marked for.
 */
export function nfqueueSpec(fwd: FwdTable, host: HostFacts, o: NfqSpecOptions): NfqRuleSpec {
  const services: NfqService[] = [];
  const replies: NfqReply[] = [];
  for (const s of fwd.services) {
    if (s.dests.length === 0) continue;
    if (s.fwmark > 0) {
      for (const d of s.dests) if (d.method === FwdCode.masq) for (const proto of ['tcp', 'udp'] as const) replies.push({ proto, rip: d.addrText, port: 0, iface: host.serverIf });
      continue;
    }
    const proto = s.protocol === 17 ? 'udp' : 'tcp';
    services.push({ proto, vip: intToIpv4(s.vaddr), port: s.vport, iface: host.clientIf });
    for (const d of s.dests) if (d.method === FwdCode.masq) replies.push({ proto, rip: d.addrText, port: s.vport === 0 ? 0 : d.port || s.vport, iface: host.serverIf });
  }
  const dr: NfqDrDest[] = [];
  for (const [rip, mark] of o.drMarks) {
    while (dr.length < mark - 0x100) dr.push({ rip: dr.length ? dr[dr.length - 1].rip : rip, dev: host.serverIf });
    dr.push({ rip, dev: host.serverIf });
  }
  return { queues: o.queues, queueBase: o.queueBase, services, replies, matches: fwmarkMatches(fwd, host.clientIf), ownAddrs: ownNonVip(fwd, host.ownAddrs), dr };
}
