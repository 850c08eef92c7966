// The lab's address plan: a pure function from options to the topology `up` builds (nodes, links, routes, sysctls).
// Other engineers code against these addresses; changing them breaks their tests.

/** Forwarding method the real servers are prepared for (ipvsadm -m / -g / -i). */
export const LAB_MODES = ['nat', 'dr', 'tun'] as const;
/** One of {@link LAB_MODES}. */
export type LabMode = (typeof LAB_MODES)[number];

/** What `up` builds. Every field has a default ({@link DEFAULT_OPTIONS}). */
export interface LabOptions {
  /** Directors d1..dN, 1..9. */
  directors: number;
  /** Real servers rs1..rsN, 1..50. */
  servers: number;
  /** How real servers are set up: nat (gateway = d1), dr/tun (VIP on lo, ARP sysctls). */
  mode: LabMode;
  /** A router namespace in front: client LAN 10.200.9.0/24, ECMP route for the VIP over every director. */
  router: boolean;
  /** A 3-node nats-server cluster on the mgmt LAN 10.200.2.0/24. */
  nats: boolean;
  /** Forwarding workers per director (tsvsd --workers); absent = tsvsd's default (one per core less one). */
  workers?: number;
  /** tsvsd's packet I/O backend (tsvsd --backend); absent = afpacket. */
  backend?: 'afpacket' | 'nfqueue';
  /** CPUs for the workers (tsvsd --cpus, e.g. "1" or "0,1"); absent = tsvsd's default (worker i on CPU i). */
  cpus?: string;
  /** Extra arguments for tsvsd, split on spaces (e.g. "--busy-poll" or "--spin-us 0"). */
  tsvsdArgs?: string;
}

/** 1 director, 2 real servers, nat, no router, no NATS. */
export const DEFAULT_OPTIONS: Readonly<LabOptions> = Object.freeze({ directors: 1, servers: 2, mode: 'nat', router: false, nats: false });

/** The one virtual address, for now. The lab never configures it on a director: tsvsd does. */
export const VIP = '10.200.0.10';
/** The namespace that holds the L2 switches (bridges). */
export const LAN_NETNS = 'tsvs-lan';
/** Every lab namespace starts with this. */
export const NETNS_PREFIX = 'tsvs-';

/** A switched segment: a bridge in {@link LAN_NETNS}. */
export const LANS = {
  client: { bridge: 'br-client', subnet: '10.200.9.0/24' },
  front: { bridge: 'br-front', subnet: '10.200.0.0/24' },
  back: { bridge: 'br-back', subnet: '10.200.1.0/24' },
  mgmt: { bridge: 'br-mgmt', subnet: '10.200.2.0/24' },
} as const;
/** Name of a segment in {@link LANS}. */
export type LanName = keyof typeof LANS;

/** Role of a node; decides what runs in it. */
export type NodeRole = 'client' | 'router' | 'director' | 'server' | 'nats';

/** One veth pair: `name` inside the node, `peer` inside tsvs-lan enslaved to the segment's bridge. */
export interface LabLink {
  lan: LanName;
  name: string;
  peer: string;
  /** CIDR addresses on `name`, e.g. "10.200.0.11/24". */
  addresses: string[];
}

/** A route added in the node: `ip route add <dst> via <via...>` (several vias = multipath). */
export interface LabRoute {
  dst: string;
  via: string[];
  /**
   * Multipath through a resilient nexthop group (`ip nexthop ... type resilient`) of this id; the i-th via is
   * nexthop `group + 1 + i`. Removing a nexthop moves only its own flows (hash-threshold multipath would move
   * others' too); the nexthop watcher edits the group's members (ops/lab/nexthops.ts).
   */
  group?: number;
}

/** Nexthop group of the router's VIP route (members 101.., one per director). */
export const VIP_NEXTHOP_GROUP = 100;
/** Nexthop group of a NAT real server's default route with a router (members 201.., one per director's DIP). */
export const RS_NEXTHOP_GROUP = 200;
/**
 * Resilient group settings: 128 buckets; a bucket idle for 2 s may move to a returning nexthop (the kernel's default
 * 120 s would keep a healed director without new flows for minutes); a busy bucket never is (unbalanced_timer 0).
 */
export const NEXTHOP_GROUP_ARGS = ['type', 'resilient', 'buckets', '128', 'idle_timer', '2', 'unbalanced_timer', '0'] as const;

/** A namespace of the lab and everything `up` configures in it. */
export interface LabNode {
  name: string;
  netns: string;
  role: NodeRole;
  /** 1-based index within the role (d2 → 2); 0 for client and router. */
  index: number;
  links: LabLink[];
  routes: LabRoute[];
  /** Addresses on a non-ARP device (dr/tun real servers: the VIP /32 on lo). */
  loopbackAddresses: string[];
  /** sysctl key → value, applied in order after the links exist. */
  sysctls: [string, string][];
}

/** The whole topology. */
export interface LabPlan {
  options: LabOptions;
  vips: string[];
  /** Node order is creation order: client, router, d1..dN, rs1..rsN, nats1..3. */
  nodes: LabNode[];
  /** Bridges to create in {@link LAN_NETNS}. */
  bridges: string[];
}

/** The `plan --json` contract: what tests, benchmarks and people read. */
export interface PlanJson {
  nodes: Record<string, { netns: string; addresses: string[] }>;
  vips: string[];
}

/** Raised for a bad option; the CLI prints `message` and exits 2. */
export class LabUsageError extends Error {
  override name = 'LabUsageError';
}

/** Director d_i's address on the front LAN. */
export function directorFrontIp(i: number): string {
  return `10.200.0.${10 + i}`;
}
/** Director d_i's DIP on the back LAN. */
/**
 * The real servers' gateway when there is more than one director: a floating inside address the cluster's leader
 * owns on `back` (tsvsd --gateway-vip; keepalived's gateway-VIP pattern), so NAT replies follow the leader.
 */
export const GATEWAY_VIP = '10.200.1.10';

/** The real servers' default gateway in a lab of `directors` directors (no router): d1's DIP alone, else {@link GATEWAY_VIP}. */
export function directorsGateway(directors: number): string {
  return directors > 1 ? GATEWAY_VIP : directorDip(1);
}

export function directorDip(i: number): string {
  return `10.200.1.${10 + i}`;
}
/** Director d_i's address on the mgmt LAN. */
export function directorMgmtIp(i: number): string {
  return `10.200.2.${10 + i}`;
}
/** Real server rs_j's RIP on the back LAN. */
export function realServerIp(j: number): string {
  return `10.200.1.${100 + j}`;
}
/** nats_k's address on the mgmt LAN (k = 1..3). */
export function natsIp(k: number): string {
  return `10.200.2.${k}`;
}
/** The namespace of a node name ("d1" → "tsvs-d1"). */
export function netnsOf(node: string): string {
  return NETNS_PREFIX + node;
}

/** Checks ranges; throws {@link LabUsageError} listing every problem. */
export function validateOptions(o: LabOptions): LabOptions {
  const problems: string[] = [];
  if (!Number.isInteger(o.directors) || o.directors < 1 || o.directors > 9) problems.push(`--directors must be 1..9, got ${o.directors}`);
  if (!Number.isInteger(o.servers) || o.servers < 1 || o.servers > 50) problems.push(`--servers must be 1..50, got ${o.servers}`);
  if (!(LAB_MODES as readonly string[]).includes(o.mode)) problems.push(`--mode must be one of ${LAB_MODES.join('|')}, got ${String(o.mode)}`);
  if (o.workers !== undefined && (!Number.isInteger(o.workers) || o.workers < 1 || o.workers > 16)) problems.push(`--workers must be 1..16, got ${o.workers}`);
  if (o.backend !== undefined && o.backend !== 'afpacket' && o.backend !== 'nfqueue') problems.push(`--backend must be afpacket or nfqueue, got ${String(o.backend)}`);
  if (o.cpus !== undefined && !/^\d+(,\d+)*$/.test(o.cpus)) problems.push(`--cpus must be CPU numbers separated by commas, got '${o.cpus}'`);
  if (problems.length) throw new LabUsageError(problems.join('; '));
  return o;
}

/**
 * Parses `[--directors N] [--servers N] [--mode nat|dr|tun] [--router] [--nats] [--workers N] [--backend B] [--cpus LIST] [--tsvsd-args STR] [--json]` (also
 * `--opt=value`).
 * Unknown flags are an error; `--json` is returned as a flag for `plan`.
 */
export function parseLabArgs(argv: readonly string[]): { options: LabOptions; json: boolean } {
  const o: LabOptions = { ...DEFAULT_OPTIONS };
  let json = false;
  const args = argv.flatMap((a) => (a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a]));
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = (): string => {
      const v = args[++i];
      if (v === undefined) throw new LabUsageError(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '--directors': o.directors = Number(value()); break;
      case '--servers': o.servers = Number(value()); break;
      case '--mode': o.mode = value() as LabMode; break;
      case '--router': o.router = true; break;
      case '--nats': o.nats = true; break;
      case '--workers': o.workers = Number(value()); break;
      case '--backend': o.backend = value() as LabOptions['backend']; break;
      case '--cpus': o.cpus = value(); break;
      case '--tsvsd-args': o.tsvsdArgs = value(); break;
      case '--json': json = true; break;
      default: throw new LabUsageError(`unknown option ${a}`);
    }
  }
  return { options: validateOptions(o), json };
}

/** True when two option sets build the same lab. */
export function sameOptions(a: LabOptions, b: LabOptions): boolean {
  return a.directors === b.directors && a.servers === b.servers && a.mode === b.mode && a.router === b.router && a.nats === b.nats && a.workers === b.workers && a.backend === b.backend && a.cpus === b.cpus && a.tsvsdArgs === b.tsvsdArgs;
}

/** Options written as CLI flags, e.g. "--directors 1 --servers 2 --mode nat". */
export function formatOptions(o: LabOptions): string {
  return `--directors ${o.directors} --servers ${o.servers} --mode ${o.mode}${o.router ? ' --router' : ''}${o.nats ? ' --nats' : ''}${o.workers !== undefined ? ` --workers ${o.workers}` : ''}${o.backend !== undefined ? ` --backend ${o.backend}` : ''}${o.cpus !== undefined ? ` --cpus ${o.cpus}` : ''}${o.tsvsdArgs !== undefined ? ` --tsvsd-args '${o.tsvsdArgs}'` : ''}`;
}

function link(node: string, lan: LanName, name: string, addresses: string[]): LabLink {
  return { lan, name, peer: `${node}-${name}`, addresses };
}

const FORWARDING: [string, string][] = [['net.ipv4.ip_forward', '1']];
const NO_RP_FILTER: [string, string][] = [
  ['net.ipv4.conf.all.rp_filter', '0'],
  ['net.ipv4.conf.default.rp_filter', '0'],
];

/**
 * The topology `up` builds for `options` (see DESIGN.md §5 and ops/lab/README.md). Pure: no I/O.
 * Interface sysctls name the node's interfaces, so they are applied after the links are created.
 */
export function plan(options: LabOptions): LabPlan {
  const o = validateOptions({ ...options });
  const nodes: LabNode[] = [];
  const add = (name: string, role: NodeRole, index: number, links: LabLink[], routes: LabRoute[], sysctls: [string, string][], loopbackAddresses: string[] = []): void => {
    const ifaceRp = links.map((l): [string, string] => [`net.ipv4.conf.${l.name}.rp_filter`, '0']);
    nodes.push({ name, netns: netnsOf(name), role, index, links, routes, loopbackAddresses, sysctls: [...NO_RP_FILTER, ...sysctls, ...ifaceRp] });
  };

  if (o.router) {
    add('client', 'client', 0, [link('client', 'client', 'eth0', ['10.200.9.100/24'])], [{ dst: 'default', via: ['10.200.9.1'] }], []);
    add(
      'router', 'router', 0,
      [link('router', 'client', 'client', ['10.200.9.1/24']), link('router', 'front', 'front', ['10.200.0.1/24']), link('router', 'back', 'back', ['10.200.1.1/24'])],
      [{ dst: `${VIP}/32`, via: Array.from({ length: o.directors }, (_, k) => directorFrontIp(k + 1)), group: VIP_NEXTHOP_GROUP }],
      [...FORWARDING, ['net.ipv4.conf.all.send_redirects', '0'], ['net.ipv4.fib_multipath_hash_policy', '1']],
    );
  } else {
    add('client', 'client', 0, [link('client', 'front', 'eth0', ['10.200.0.100/24'])], [{ dst: 'default', via: [directorFrontIp(1)] }], []);
  }

  for (let i = 1; i <= o.directors; i++) {
    const name = `d${i}`;
    const links = [link(name, 'front', 'front', [`${directorFrontIp(i)}/24`]), link(name, 'back', 'back', [`${directorDip(i)}/24`])];
    if (o.nats) links.push(link(name, 'mgmt', 'mgmt', [`${directorMgmtIp(i)}/24`]));
    const sysctls: [string, string][] = [
      ...FORWARDING,
      ['net.ipv4.conf.all.send_redirects', '0'],
      ['net.ipv4.conf.default.send_redirects', '0'],
      ...links.map((l): [string, string] => [`net.ipv4.conf.${l.name}.send_redirects`, '0']),
      // DR/TUN replies from real servers whose gateway is d1 carry the VIP as source: not martians.
      ['net.ipv4.conf.all.accept_local', '1'],
      ['net.ipv4.conf.back.accept_local', '1'],
      ['net.bridge.bridge-nf-call-iptables', '0'],
      ['net.bridge.bridge-nf-call-ip6tables', '0'],
      ['net.bridge.bridge-nf-call-arptables', '0'],
    ];
    add(name, 'director', i, links, o.router ? [{ dst: 'default', via: ['10.200.0.1'] }] : [], sysctls);
  }

  const rsGateway = o.mode !== 'nat' && o.router ? '10.200.1.1' : directorsGateway(o.directors);
  // Active-active NAT (a router, several directors): the replies go back over every director, flow by flow.
  const rsRoute: LabRoute = o.mode === 'nat' && o.router && o.directors > 1
    ? { dst: 'default', via: Array.from({ length: o.directors }, (_, k) => directorDip(k + 1)), group: RS_NEXTHOP_GROUP }
    : { dst: 'default', via: [rsGateway] };
  for (let j = 1; j <= o.servers; j++) {
    const name = `rs${j}`;
    const hash: [string, string][] = rsRoute.group !== undefined ? [['net.ipv4.fib_multipath_hash_policy', '1']] : [];
    const arp: [string, string][] = o.mode === 'nat' ? hash : [
      ['net.ipv4.conf.all.arp_ignore', '1'],
      ['net.ipv4.conf.all.arp_announce', '2'],
      ['net.ipv4.conf.lo.arp_ignore', '1'],
      ['net.ipv4.conf.lo.arp_announce', '2'],
      ['net.ipv4.conf.eth0.arp_ignore', '1'],
      ['net.ipv4.conf.eth0.arp_announce', '2'],
      ['net.ipv4.conf.lo.rp_filter', '0'],
    ];
    add(name, 'server', j, [link(name, 'back', 'eth0', [`${realServerIp(j)}/24`])], [{ ...rsRoute, via: [...rsRoute.via] }], arp, o.mode === 'nat' ? [] : [`${VIP}/32`]);
  }

  if (o.nats) {
    for (let k = 1; k <= 3; k++) add(`nats${k}`, 'nats', k, [link(`nats${k}`, 'mgmt', 'eth0', [`${natsIp(k)}/24`])], [], []);
  }

  const lans = new Set<LanName>(nodes.flatMap((n) => n.links.map((l) => l.lan)));
  const bridges = (Object.keys(LANS) as LanName[]).filter((l) => lans.has(l)).map((l) => LANS[l].bridge);
  return { options: o, vips: [VIP], nodes, bridges };
}

/** The `plan --json` view of a plan: node → netns and its LAN addresses (the VIP is listed in `vips`, not on real servers). */
export function planJson(p: LabPlan): PlanJson {
  const nodes: PlanJson['nodes'] = {};
  for (const n of p.nodes) nodes[n.name] = { netns: n.netns, addresses: n.links.flatMap((l) => l.addresses) };
  return { nodes, vips: [...p.vips] };
}

/** Finds a node by name; throws {@link LabUsageError} naming the nodes that exist. */
export function nodeOf(p: LabPlan, name: string): LabNode {
  const n = p.nodes.find((x) => x.name === name);
  if (!n) throw new LabUsageError(`no node "${name}" in this lab (nodes: ${p.nodes.map((x) => x.name).join(', ')})`);
  return n;
}
