// Facts and helpers every backend's kernel rules share: the host's interfaces and own addresses, the mark
// rules' iptables matches, iptables-restore text. Pure.
import type { FwdTable } from '../fwd/table.ts';
import { MarkTarget, type AddrMatch, type MarkRule, type PortMatch } from '../fwd/classifier.ts';
import { ipv4ToText as intToIpv4 } from '../net/addr.ts';

/** The host facts the rule builders need besides the forwarding table. */
export interface HostFacts {
  /** Interface where clients' packets arrive. */
  clientIf: string;
  /** Interface toward the real servers. */
  serverIf: string;
  /** The director's own IPv4 addresses (VIPs and 127/8 are left out by the builders). */
  ownAddrs: readonly string[];
  /** The local TUN device through which workers hand packets to the director's own stack. */
  localTun: string;
}

/** iptables match arguments of a mark rule (protocol, addresses, ports), for the kernel-side mirror. */
export function markRuleMatch(r: MarkRule): string[] {
  const a: string[] = [];
  const addr = (flag: string, m: AddrMatch): void => {
    a.push(...(m.invert ? ['!'] : []), flag, `${intToIpv4(m.addr)}/${intToIpv4(m.mask >>> 0)}`);
  };
  if (r.protocol !== 0) a.push(...(r.protocolInvert ? ['!'] : []), '-p', String(r.protocol));
  if (r.src) addr('-s', r.src);
  if (r.dst) addr('-d', r.dst);
  const ports = (dir: 'sport' | 'dport', m: PortMatch): void => {
    const list = m.ranges.map((x) => (x.lo === x.hi ? String(x.lo) : `${x.lo}:${x.hi}`));
    if (m.multiport || list.length > 1) a.push('-m', 'multiport', ...(m.invert ? ['!'] : []), `--${dir}s`, list.join(','));
    else a.push(...(m.invert ? ['!'] : []), `--${dir}`, list[0]);
  };
  if (r.sport) ports('sport', r.sport);
  if (r.dport) ports('dport', r.dport);
  return a;
}

/** The matches (with `-i clientIf`) of the mark rules that feed a fwmark service of `fwd`. */
export function fwmarkMatches(fwd: FwdTable, clientIf: string): string[][] {
  const marks = new Set<number>();
  for (const s of fwd.services) if (s.dests.length > 0 && s.fwmark > 0) marks.add(s.fwmark);
  const out: string[][] = [];
  for (const r of fwd.marks ?? []) if (r.target === MarkTarget.MARK && marks.has(r.value)) out.push(['-i', clientIf, ...markRuleMatch(r)]);
  return out;
}

/** The director's own addresses that are not VIPs nor loopback: its own traffic must reach its stack. */
export function ownNonVip(fwd: FwdTable, own: readonly string[]): string[] {
  const vips = new Set(fwd.vips.map(intToIpv4));
  return own.filter((a) => !vips.has(a) && !a.startsWith('127.'));
}

/**
 * iptables-restore input (for `--noflush`) that creates, empties and refills `chains` of `table` in one atomic
 * commit: no packet ever meets a half-written chain.
 */
export function restoreText(table: string, chains: readonly (readonly [string, readonly (readonly string[])[]])[]): string {
  const decl = chains.map(([name]) => `:${name} - [0:0]`).join('\n');
  const body = chains.flatMap(([name, rs]) => rs.map((r) => `-A ${name} ${r.join(' ')}`)).join('\n');
  return `*${table}\n${decl}\n${body}\nCOMMIT\n`;
}
