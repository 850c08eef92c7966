// The kernel rules a userspace director needs, as data: built from the forwarding table and the host's facts
// (pure), turned into iptables-restore text (pure); shared/sys/iptables.ts installs and removes them.
import type { FwdTable } from '../fwd/table.ts';
import { FwdCode } from '../model/ipvs.ts';
import { ipv4ToText as intToIpv4 } from '../net/addr.ts';
import { fwmarkMatches, ownNonVip, type HostFacts } from './host.ts';
import { nfqueueSpec, type NfqRuleSpec } from './nfqueue-rules.ts';

/** What the director's kernel must ignore (AF_PACKET backend: the workers see the packets before netfilter). */
export interface DirectorRuleSpec {
  /** Traffic to these VIPs arriving on `iface` is dropped in raw PREROUTING (requests). */
  vips?: { iface: string; addrs: readonly string[] }[];
  /**
   * Virtual services: TCP/UDP to `addr:port` (every port when `port` is 0) arriving on `iface`. Narrower
   * than `vips`: the kernel still answers pings and anything else sent to the VIP, as it does beside IPVS.
   */
  services?: { iface: string; proto: 'tcp' | 'udp'; addr: string; port: number }[];
  /**
   * The director's own addresses (not VIPs): packets to them RETURN first, so its own connections (health
   * checks, admin) are never mistaken for NAT replies.
   */
  ownAddrs?: readonly string[];
  /** NAT replies: TCP/UDP from these source ports (every port when the list is empty) arriving on `iface`. */
  replies?: { iface: string; srcPorts: readonly number[]; srcAddrs?: readonly string[] }[];
  /** Extra DROP rules given as iptables match arguments (fwmark services: the mark rules' matches). */
  matches?: readonly (readonly string[])[];
  /**
   * NAT to a real server on the director itself with another port: the workers hand such packets to the local
   * stack unchanged (VIP:vport) through `iface` (the local TUN device), and a DNAT rule there maps them to
   * rip:rport, so that conntrack turns the local server's replies back into VIP:vport. Kept in the nat table's
   * chain `<chain>-LOCAL`, jumped from nat PREROUTING.
   */
  localNat?: { iface: string; proto: 'tcp' | 'udp'; vip: string; vport: number; rip: string; rport: number }[];
  /** Chain name in the raw table; default TSVS-RAW. */
  chain?: string;
  /** iptables binary; default `iptables` (legacy selected on these hosts). */
  iptables?: string;
}

/** The rules of a {@link DirectorRuleSpec}, as iptables arguments after `-A CHAIN`. */
export interface DirectorRules {
  chain: string;
  /** raw `<chain>`: own-address RETURNs first, then DROPs. */
  raw: string[][];
  /** nat `<chain>-LOCAL` (DNAT for local real servers on another port), or null when none is needed. */
  natChain: string | null;
  nat: string[][];
}

/** The kernel rules of one backend: what the reconciler diffs and the iptables runner installs. */
export type KernelRuleSpec = { backend: 'afpacket'; spec: DirectorRuleSpec } | { backend: 'nfqueue'; spec: NfqRuleSpec };

/**
 * The AF_PACKET backend's rules for `fwd`: DROP service traffic (TCP/UDP to each VIP:port with real servers) and
 * NAT replies (from each masq real server's address and source ports; every port for port-0 and fwmark
 * services) arriving on the client/server interface, DROP what the fwmark services' mark rules match, RETURN
 * for the director's own addresses, and DNAT for a masq real server on the director itself with another port.
 */
export function directorSpec(fwd: FwdTable, host: HostFacts): DirectorRuleSpec {
  const spec: DirectorRuleSpec = { services: [], replies: [], matches: fwmarkMatches(fwd, host.clientIf) };
  const natPorts = new Map<string, Set<number>>();
  for (const s of fwd.services) {
    if (s.dests.length === 0) continue;
    if (s.fwmark === 0) spec.services!.push({ iface: host.clientIf, proto: s.protocol === 17 ? 'udp' : 'tcp', addr: intToIpv4(s.vaddr), port: s.vport });
    for (const d of s.dests) {
      if (d.method !== FwdCode.masq) continue;
      const set = natPorts.get(d.addrText) ?? new Set<number>();
      set.add(s.fwmark > 0 || s.vport === 0 ? 0 : d.port || s.vport);
      natPorts.set(d.addrText, set);
    }
  }
  for (const [addr, ports] of natPorts) spec.replies!.push({ iface: host.serverIf, srcPorts: ports.has(0) ? [] : [...ports], srcAddrs: [addr] });
  spec.ownAddrs = ownNonVip(fwd, host.ownAddrs);
  const own = new Set(spec.ownAddrs);
  const localNat: NonNullable<DirectorRuleSpec['localNat']> = [];
  for (const s of fwd.services) {
    if (s.fwmark > 0 || s.vport === 0) continue;
    const d = s.dests.find((x) => x.method === FwdCode.masq && own.has(x.addrText) && x.port !== 0 && x.port !== s.vport);
    if (d) localNat.push({ iface: host.localTun, proto: s.protocol === 17 ? 'udp' : 'tcp', vip: intToIpv4(s.vaddr), vport: s.vport, rip: d.addrText, rport: d.port });
  }
  if (localNat.length) spec.localNat = localNat;
  return spec;
}

/** The rules of `spec`, in the order the chain holds them. */
export function directorRules(spec: DirectorRuleSpec): DirectorRules {
  const chain = spec.chain ?? 'TSVS-RAW';
  const raw: string[][] = [];
  for (const a of spec.ownAddrs ?? []) raw.push(['-d', `${a}/32`, '-j', 'RETURN']);
  for (const v of spec.vips ?? []) for (const a of v.addrs) raw.push(['-i', v.iface, '-d', `${a}/32`, '-j', 'DROP']);
  for (const m of spec.matches ?? []) raw.push([...m, '-j', 'DROP']);
  for (const v of spec.services ?? []) raw.push(['-i', v.iface, '-d', `${v.addr}/32`, '-p', v.proto, ...(v.port ? ['--dport', String(v.port)] : []), '-j', 'DROP']);
  for (const r of spec.replies ?? []) {
    for (const proto of ['tcp', 'udp']) {
      const srcs = r.srcAddrs ?? [null];
      for (const p of r.srcPorts.length ? r.srcPorts : [0]) {
        for (const s of srcs) raw.push(['-i', r.iface, ...(s ? ['-s', `${s}/32`] : []), '-p', proto, ...(p ? ['--sport', String(p)] : []), '-j', 'DROP']);
      }
    }
  }
  const nat = (spec.localNat ?? []).map((l) => ['-i', l.iface, '-p', l.proto, '-d', `${l.vip}/32`, '--dport', String(l.vport), '-j', 'DNAT', '--to-destination', `${l.rip}:${l.rport}`]);
  return { chain, raw, natChain: nat.length ? `${chain}-LOCAL` : null, nat };
}

/** The options of {@link kernelRuleSpec}. */
export interface KernelSpecOptions {
  backend: 'afpacket' | 'nfqueue';
  /** NFQUEUE: queues (one per worker) and the first queue number. */
  queues: number;
  queueBase?: number;
  /** NFQUEUE DR: address → routing mark, by mark (see DrMarkAllocator.entries). */
  drMarks?: readonly (readonly [string, number])[];
}

/** The kernel rules for `fwd` on this host, for either backend. */
export function kernelRuleSpec(fwd: FwdTable, host: HostFacts, o: KernelSpecOptions): KernelRuleSpec {
  if (o.backend === 'nfqueue') return { backend: 'nfqueue', spec: nfqueueSpec(fwd, host, { queues: o.queues, queueBase: o.queueBase ?? 0, drMarks: o.drMarks ?? [] }) };
  return { backend: 'afpacket', spec: directorSpec(fwd, host) };
}
