// Building and removing the lab's network: namespaces, bridges in tsvs-lan, veth pairs, addresses, routes, sysctls.
import { LAN_NETNS, LANS, NEXTHOP_GROUP_ARGS } from './plan.ts';
import type { LabNode, LabPlan } from './plan.ts';
import { run } from './sh.ts';

/** Names of every network namespace on the host (`ip netns list`). */
export function listNetns(): string[] {
  return run(['ip', 'netns', 'list']).stdout.split('\n').map((l) => l.trim().split(/\s+/)[0]).filter(Boolean);
}

/** Creates a namespace with lo up. */
export function addNetns(name: string): void {
  run(['ip', 'netns', 'add', name]);
  run(['ip', '-n', name, 'link', 'set', 'lo', 'up']);
}

/** Deletes a namespace by name if it exists. */
export function delNetns(name: string): void {
  if (listNetns().includes(name)) run(['ip', 'netns', 'del', name]);
}

/** Pids of processes whose network namespace is `name` (`ip netns pids`). */
export function netnsPids(name: string): number[] {
  const r = run(['ip', 'netns', 'pids', name], { allowFail: true });
  return r.status === 0 ? r.stdout.split('\n').filter(Boolean).map(Number) : [];
}

/**
 * Writes sysctls inside a namespace in one process. Keys under net.bridge. are skipped where the knob does not
 * exist (br_netfilter absent); any other missing key is an error.
 */
export function applySysctls(netns: string, sysctls: [string, string][]): void {
  if (!sysctls.length) return;
  const lines = sysctls.map(([k, v]) => {
    const path = `/proc/sys/${k.replaceAll('.', '/')}`;
    return k.startsWith('net.bridge.') ? `if [ -e ${path} ]; then echo ${v} > ${path}; fi` : `echo ${v} > ${path} || { echo "cannot set ${k}" >&2; exit 1; }`;
  });
  run(['ip', 'netns', 'exec', netns, 'sh', '-ec', lines.join('\n')]);
}

/** tsvs-lan: bridges for every LAN in the plan, bridge netfilter off (pitfall 1: bridged frames must not meet iptables). */
export function buildLan(p: LabPlan): void {
  applySysctls(LAN_NETNS, [
    ['net.bridge.bridge-nf-call-iptables', '0'],
    ['net.bridge.bridge-nf-call-ip6tables', '0'],
    ['net.bridge.bridge-nf-call-arptables', '0'],
  ]);
  for (const br of p.bridges) {
    run(['ip', '-n', LAN_NETNS, 'link', 'add', br, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
    run(['ip', '-n', LAN_NETNS, 'link', 'set', br, 'up']);
  }
}

/** Links, addresses, non-ARP addresses, sysctls and routes of one node (its namespace exists already). */
export function buildNode(n: LabNode): void {
  for (const l of n.links) {
    run(['ip', 'link', 'add', l.peer, 'netns', LAN_NETNS, 'type', 'veth', 'peer', 'name', l.name, 'netns', n.netns]);
    run(['ip', '-n', LAN_NETNS, 'link', 'set', l.peer, 'master', LANS[l.lan].bridge, 'up']);
    for (const a of l.addresses) run(['ip', '-n', n.netns, 'addr', 'add', a, 'dev', l.name]);
    run(['ip', '-n', n.netns, 'link', 'set', l.name, 'up']);
  }
  // As the seeds do it: the VIP on a loopback alias, /32, never answered for in ARP (sysctls below).
  for (const a of n.loopbackAddresses) run(['ip', '-n', n.netns, 'addr', 'add', a, 'dev', 'lo', 'label', 'lo:0']);
  applySysctls(n.netns, n.sysctls);
  for (const r of n.routes) {
    if (r.group !== undefined) {
      const dev = n.links.find((l) => l.addresses.some((a) => sameSubnet24(a, r.via[0])))?.name;
      r.via.forEach((v, i) => run(['ip', '-n', n.netns, 'nexthop', 'add', 'id', String(r.group! + 1 + i), 'via', v, ...(dev ? ['dev', dev] : [])]));
      run(['ip', '-n', n.netns, 'nexthop', 'add', 'id', String(r.group), 'group', r.via.map((_, i) => r.group! + 1 + i).join('/'), ...NEXTHOP_GROUP_ARGS]);
      run(['ip', '-n', n.netns, 'route', 'add', r.dst, 'nhid', String(r.group)]);
      continue;
    }
    const via = r.via.length === 1 ? ['via', r.via[0]] : r.via.flatMap((v) => ['nexthop', 'via', v]);
    run(['ip', '-n', n.netns, 'route', 'add', r.dst, ...via]);
  }
}

/** True when `cidr` ("10.200.0.1/24") and `addr` share the first three octets (the lab's subnets are /24). */
function sameSubnet24(cidr: string, addr: string): boolean {
  return cidr.split('/')[0].split('.').slice(0, 3).join('.') === addr.split('.').slice(0, 3).join('.');
}
