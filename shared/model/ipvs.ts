// The IPVS object model shared by tsvsadm, tsvsd, the schedulers and the workers: services, real servers, snapshots.

/** IP protocol numbers of the protocols a virtual service can carry. */
export const Protocol = { tcp: 6, udp: 17, sctp: 132 } as const;
export type ProtocolName = keyof typeof Protocol;

/** Forwarding methods, spelled as ipvsadm prints them in lower case (Masq, Local, Tunnel, Route). */
export type FwdMethod = 'masq' | 'local' | 'tunnel' | 'route';

/** Kernel IP_VS_CONN_F_FWD_MASK values (include/uapi/linux/ip_vs.h). */
export const FwdCode = { masq: 0, local: 1, tunnel: 2, route: 3, bypass: 4 } as const;

/** Service flag bits as the kernel keeps them (IP_VS_SVC_F_*). */
export const SvcFlag = {
  PERSISTENT: 0x0001,
  HASHED: 0x0002,
  ONEPACKET: 0x0004,
  /** flag-1 / sh-fallback / mh-fallback */
  SCHED1: 0x0008,
  /** flag-2 / sh-port / mh-port */
  SCHED2: 0x0010,
  /** flag-3 */
  SCHED3: 0x0020,
} as const;

/** Tunnel encapsulation types (IP_VS_CONN_F_TUNNEL_TYPE_*). */
export type TunType = 'ipip' | 'gue' | 'gre';
/** Tunnel checksum options; '' means none given. */
export type TunCsum = '' | 'nocsum' | 'csum' | 'remcsum';

/** Address family: 4 or 6. */
export type Af = 4 | 6;

/**
 * Identifies a virtual service. For fwmark services `fwmark > 0`, `addr` is '' and `port` 0;
 * otherwise `fwmark` is 0. Addresses are canonical text (dotted quad, or RFC 5952 IPv6).
 */
export interface ServiceKey {
  af: Af;
  protocol: ProtocolName;
  addr: string;
  port: number;
  fwmark: number;
}

/** A virtual service as ipvsadm -A/-E defines it. */
export interface ServiceConfig extends ServiceKey {
  /** Scheduler name as given to -s (wlc by default). */
  scheduler: string;
  /** SvcFlag bits: PERSISTENT, ONEPACKET and the SCHED1..3 scheduler flags. */
  flags: number;
  /** Persistence timeout in seconds (meaningful only with PERSISTENT). */
  timeout: number;
  /** Persistence netmask: dotted quad for IPv4 ("255.255.255.255"), prefix length for IPv6 ("128"). */
  netmask: string;
  /** Persistence engine name ('' for none). */
  pe: string;
}

/** Identifies a real server inside a service. */
export interface DestKey {
  af: Af;
  addr: string;
  port: number;
}

/** A real server as ipvsadm -a/-e defines it. */
export interface DestConfig extends DestKey {
  method: FwdMethod;
  /** 0..65535; 0 = quiescent. */
  weight: number;
  /** Upper connection threshold (-x), 0 = none. */
  uThreshold: number;
  /** Lower connection threshold (-y), 0 = none. */
  lThreshold: number;
  tunType: TunType;
  /** GUE destination port (0 unless tunType is gue). */
  tunPort: number;
  tunCsum: TunCsum;
}

/** Cumulative counters, as ipvsadm --stats shows them. */
export interface Stats {
  conns: number;
  inpkts: number;
  outpkts: number;
  inbytes: number;
  outbytes: number;
}

/** Estimated rates per second, as ipvsadm --rate shows them. */
export interface Rates {
  cps: number;
  inpps: number;
  outpps: number;
  inbps: number;
  outbps: number;
}

export interface DestSnapshot extends DestConfig {
  activeConns: number;
  inactConns: number;
  persistConns: number;
  /** Set while the upper threshold holds the dest out of scheduling. */
  overloaded: boolean;
  stats: Stats;
  rate: Rates;
}

export interface ServiceSnapshot extends ServiceConfig {
  /** Destinations in kernel list order: most recently added first. */
  dests: DestSnapshot[];
  stats: Stats;
  rate: Rates;
}

/** Timeouts settable with --set, in seconds. */
export interface Timeouts {
  tcp: number;
  tcpfin: number;
  udp: number;
}

/** A sync daemon as --start-daemon configures it. */
export interface DaemonConfig {
  state: 'master' | 'backup';
  mcastIfn: string;
  syncid: number;
  /** 0 when not given. */
  maxlen: number;
  /** '' when not given. */
  group: string;
  /** 0 when not given. */
  port: number;
  /** 0 when not given. */
  ttl: number;
}

/** The whole table as a director holds it; what tsvsadm -L and -S render. */
export interface TableSnapshot {
  /** IPVS version code shown in the list header ("1.2.1"). */
  version: string;
  /** Connection hash size shown in the list header (4096, as the kernel default). */
  connTabSize: number;
  /** Services in kernel order (creation order). */
  services: ServiceSnapshot[];
  timeouts: Timeouts;
  daemons: DaemonConfig[];
}

/** One connection or persistence template, as ipvsadm -L -c shows it. */
export interface ConnSnapshot {
  protocol: ProtocolName | 'ip';
  af: Af;
  caddr: string;
  cport: number;
  vaddr: string;
  vport: number;
  daddr: string;
  dport: number;
  /** State name as /proc/net/ip_vs_conn prints it (ESTABLISHED, SYN_RECV, UDP, NONE, ...). */
  state: string;
  /** Seconds until expiry. */
  expires: number;
  /** True for persistence templates. */
  template: boolean;
  /** Persistence engine name and data ('' when none). */
  pe: string;
  peData: string;
}

/** Kernel defaults. */
export const Defaults = {
  scheduler: 'wlc',
  persistTimeout: 360,
  weight: 1,
  method: 'route' as FwdMethod,
  timeouts: { tcp: 900, tcpfin: 120, udp: 300 } as Timeouts,
  version: '1.2.1',
  connTabSize: 4096,
} as const;

/** Scheduler names tsvs implements (the kernel's set plus twos). */
export const SCHEDULERS = ['rr', 'wrr', 'lc', 'wlc', 'lblc', 'lblcr', 'dh', 'sh', 'sed', 'nq', 'fo', 'ovf', 'mh', 'twos'] as const;
export type SchedulerName = (typeof SCHEDULERS)[number];

/** Persistence engines tsvs knows. */
export const PERSISTENCE_ENGINES = ['sip'] as const;

/** Stable text key of a service, for maps and logs: "tcp|4|10.0.0.1|80" or "fwm|4|1". */
export function serviceKeyString(k: ServiceKey): string {
  return k.fwmark > 0 ? `fwm|${k.af}|${k.fwmark}` : `${k.protocol}|${k.af}|${k.addr}|${k.port}`;
}

/** Stable text key of a real server within a service. */
export function destKeyString(d: DestKey): string {
  return `${d.af}|${d.addr}|${d.port}`;
}

export function zeroStats(): Stats {
  return { conns: 0, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0 };
}

export function zeroRates(): Rates {
  return { cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 };
}
