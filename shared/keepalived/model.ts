// The typed model of a keepalived.conf for an LVS director: global_defs, virtual_server(_group), real_server and
// its checkers with keepalived's defaults, synonyms, inheritance and validation applied; VRRP kept as a tree.
import type { Af, FwdMethod, ProtocolName } from '../model/ipvs.ts';
import { SvcFlag } from '../model/ipvs.ts';
import { canonicalIpv6, formatIpv6, parseIpv6 } from '../ipvsadm/names.ts';
import type { KeepalivedProblem, KeepalivedWarning, SourcePos } from './errors.ts';
import { KeepalivedError, KeepalivedErrorCode as Code, problem, warning } from './errors.ts';
import type { KaNode } from './parse.ts';
import { ipv4FromText, ipv4ToText } from '../net/addr.ts';

/** keepalived's defaults (reference §1, check_data.c:815-845 and the checkers' own). Times in seconds. */
export const KeepalivedDefaults = {
  scheduler: 'wlc',
  method: 'masq' as FwdMethod,
  persistenceTimeout: 360,
  granularity4: '255.255.255.255',
  granularity6: '128',
  weight: 1,
  quorum: 1,
  hysteresis: 0,
  connectTimeout: 5,
  delayLoop: 60,
  retry: 1,
  delayBeforeRetry: 1,
  httpDelayBeforeRetry: 3,
  dnsRetry: 3,
  miscRetry: 0,
  dnsType: 'SOA',
  dnsName: '.',
} as const;

/** Upper bound of rise/fall counts (tsvs extension keywords). */
const MAX_COUNT = 1000;

/** Schedulers keepalived accepts for lvs_sched (check_parser.c:53). */
export const KEEPALIVED_SCHEDULERS = ['rr', 'wrr', 'lc', 'wlc', 'lblc', 'sh', 'mh', 'dh', 'fo', 'ovf', 'lblcr', 'sed', 'nq', 'twos'] as const;

/** An IP address in canonical text. */
export interface IpAddr {
  readonly af: Af;
  readonly addr: string;
}

/** What a virtual_server names: `IP PORT`, `fwmark N` or `group NAME`. */
export type VsAddress =
  | { readonly kind: 'ip'; readonly af: Af; readonly addr: string; readonly port: number }
  | { readonly kind: 'fwmark'; readonly af: Af; readonly fwmark: number }
  | { readonly kind: 'group'; readonly name: string };

/** One entry of a virtual_server_group: an address range (`first` to `last` in the last octet/group) or a fwmark. */
export type VsgEntry =
  | (SourcePos & { readonly kind: 'range'; readonly af: Af; readonly first: string; readonly last: string; readonly count: number; readonly port: number })
  | (SourcePos & { readonly kind: 'fwmark'; readonly fwmark: number });

export interface VirtualServerGroup extends SourcePos {
  readonly name: string;
  readonly entries: readonly VsgEntry[];
}

/** Settings every checker has, after inheritance (checker ← real_server ← virtual_server) and defaults. */
export interface CheckerBase extends SourcePos {
  /** connect_ip, or null for the real server's address. */
  readonly connectIp: IpAddr | null;
  /** connect_port, or null for the real server's port. */
  readonly connectPort: number | null;
  readonly bindTo: IpAddr | null;
  readonly bindPort: number | null;
  readonly bindIf: string | null;
  /** Mark set on the checker's packets, or null. */
  readonly fwmark: number | null;
  readonly connectTimeout: number;
  readonly retry: number;
  readonly delayBeforeRetry: number;
  readonly delayLoop: number;
  /** Random start delay bound; 0 disables. */
  readonly warmup: number;
  /** Starts down (the real server is not added until the checker succeeds). */
  readonly alpha: boolean;
  /**
   * tsvs extensions after HAProxy (null = not set, keepalived's behaviour): successes in a row to go up, failures in
   * a row to go down, the interval (s) while a server changes state, and the interval (s) while it is down.
   */
  readonly rise: number | null;
  readonly fall: number | null;
  readonly fastinter: number | null;
  readonly downinter: number | null;
}

/** An HTTP status code range, inclusive. */
export interface StatusRange {
  readonly from: number;
  readonly to: number;
}

export interface HttpUrl extends SourcePos {
  readonly path: string;
  /** MD5 of the body as 32 lower-case hex digits, or null. */
  readonly digest: string | null;
  /** Accepted codes; 200-299 when none was given. */
  readonly statusCodes: readonly StatusRange[];
  readonly virtualhost: string | null;
}

export type Checker =
  | (CheckerBase & { readonly kind: 'TCP_CHECK' })
  | (CheckerBase & { readonly kind: 'HTTP_GET' | 'SSL_GET'; readonly urls: readonly HttpUrl[]; readonly virtualhost: string | null; readonly fastRecovery: boolean })
  | (CheckerBase & { readonly kind: 'MISC_CHECK'; readonly path: string; readonly timeout: number; readonly dynamic: boolean; readonly user: string | null })
  | (CheckerBase & { readonly kind: 'DNS_CHECK'; readonly type: string; readonly name: string })
  | (CheckerBase & { readonly kind: 'SMTP_CHECK'; readonly heloName: string | null })
  | (CheckerBase & { readonly kind: 'PING_CHECK' })
  /**
   * `payload`/`require_reply` as lower-case hex (null when not given); without require_reply the check succeeds
   * unless an ICMP error (port unreachable) comes back within connect_timeout.
   */
  | (CheckerBase & { readonly kind: 'UDP_CHECK'; readonly payload: string | null; readonly requireReply: string | null; readonly minReplyLength: number; readonly maxReplyLength: number });
export type CheckerKind = Checker['kind'];

export interface RealServer extends SourcePos {
  readonly af: Af;
  readonly addr: string;
  readonly port: number;
  readonly weight: number;
  readonly method: FwdMethod;
  readonly inhibitOnFailure: boolean;
  readonly uThreshold: number;
  readonly lThreshold: number;
  readonly notifyUp: string | null;
  readonly notifyDown: string | null;
  /** No checker: always alive. */
  readonly checkers: readonly Checker[];
}

export interface SorryServer extends SourcePos {
  readonly af: Af;
  readonly addr: string;
  readonly port: number;
  readonly method: FwdMethod;
  readonly inhibit: boolean;
}

export interface VirtualServer extends SourcePos {
  readonly address: VsAddress;
  readonly protocol: ProtocolName;
  readonly scheduler: string;
  readonly method: FwdMethod;
  /** Seconds; null when not persistent. */
  readonly persistenceTimeout: number | null;
  /** Dotted quad for IPv4, prefix length for IPv6. */
  readonly persistenceGranularity: string;
  readonly persistenceEngine: string;
  /** SvcFlag bits beyond persistence: ONEPACKET (ops) and SCHED1..3. */
  readonly flags: number;
  readonly delayLoop: number;
  readonly alpha: boolean;
  readonly omega: boolean;
  readonly inhibitOnFailure: boolean;
  readonly haSuspend: boolean;
  readonly quorum: number;
  readonly hysteresis: number;
  readonly quorumUp: string | null;
  readonly quorumDown: string | null;
  readonly virtualhost: string | null;
  readonly sorryServer: SorryServer | null;
  readonly realServers: readonly RealServer[];
}

/** global_defs as plain data; every statement is also kept in `node`. */
export interface GlobalDefs {
  readonly routerId: string | null;
  readonly notificationEmail: readonly string[];
  readonly notificationEmailFrom: string | null;
  /** smtp_server words as given: address and optional port. */
  readonly smtpServer: readonly string[] | null;
  readonly smtpConnectTimeout: number | null;
  /** `lvs_sync_daemon INTERFACE VRRP_INSTANCE [options...]`. */
  readonly lvsSyncDaemon: { readonly interface: string; readonly vrrpInstance: string; readonly options: readonly string[] } | null;
  readonly node: KaNode | null;
}

/** A vrrp_instance: the fields the cluster work wants; everything is kept in `node`, not interpreted. */
export interface VrrpInstance extends SourcePos {
  readonly name: string;
  readonly state: string | null;
  readonly interface: string | null;
  readonly virtualRouterId: number | null;
  readonly priority: number | null;
  /** Seconds, as written (fractions allowed for VRRPv3). */
  readonly advertInt: number | null;
  /** Each virtual_ipaddress line's words (the address first, then `dev`, `label`, ...). */
  readonly virtualIpaddress: readonly (readonly string[])[];
  readonly lvsSyncDaemonInterface: string | null;
  readonly node: KaNode;
}

export interface VrrpSyncGroup extends SourcePos {
  readonly name: string;
  readonly group: readonly string[];
  readonly node: KaNode;
}

export interface VrrpScript extends SourcePos {
  readonly name: string;
  readonly node: KaNode;
}

export interface KeepalivedConfig {
  readonly globalDefs: GlobalDefs;
  readonly virtualServerGroups: readonly VirtualServerGroup[];
  readonly virtualServers: readonly VirtualServer[];
  readonly vrrpInstances: readonly VrrpInstance[];
  readonly vrrpSyncGroups: readonly VrrpSyncGroup[];
  readonly vrrpScripts: readonly VrrpScript[];
  /** Top-level blocks keepalived knows but tsvs does not interpret (static_ipaddress, bfd_instance, ...). */
  readonly other: readonly KaNode[];
  readonly warnings: readonly KeepalivedWarning[];
}

/** Collects problems and warnings while the tree is read. */
class Ctx {
  readonly problems: KeepalivedProblem[] = [];
  readonly warnings: KeepalivedWarning[];
  constructor(warnings: readonly KeepalivedWarning[]) {
    this.warnings = [...warnings];
  }
  err(at: SourcePos, text: string, token: string | null): undefined {
    this.problems.push(problem(Code.VALUE, at, text, token));
    return undefined;
  }
  unsupported(at: SourcePos, text: string, token: string | null): void {
    this.problems.push(problem(Code.UNSUPPORTED, at, text, token));
  }
  warn(at: SourcePos, text: string): void {
    this.warnings.push(warning(at, text));
  }
  unknown(n: KaNode): void {
    this.warn(n, `Unknown keyword '${n.keyword}'`);
  }
  /** The node's one argument, or a problem. */
  arg(n: KaNode): string | undefined {
    if (n.args.length === 0) return this.err(n, `${n.keyword}: missing value`, n.keyword);
    if (n.args.length > 1) this.warn(n, `${n.keyword}: extra words ignored: ${n.args.slice(1).join(' ')}`);
    return n.args[0];
  }
  /** A decimal integer in [min, max]. */
  int(n: KaNode, min: number, max: number, word = this.arg(n)): number | undefined {
    if (word === undefined) return undefined;
    if (!/^\d+$/.test(word) || Number(word) < min || Number(word) > max) return this.err(n, `${n.keyword}: bad number "${word}" (${min}..${max})`, word);
    return Number(word);
  }
  /** Seconds, fractions allowed. */
  secs(n: KaNode, word = this.arg(n)): number | undefined {
    if (word === undefined) return undefined;
    if (!/^\d+(\.\d+)?$/.test(word) || Number(word) > 86400 * 365) return this.err(n, `${n.keyword}: bad time "${word}"`, word);
    return Number(word);
  }
  ip(n: KaNode, word: string | undefined): IpAddr | undefined {
    if (word === undefined) return this.err(n, `${n.keyword}: missing address`, n.keyword);
    const v4 = ipv4FromText(word);
    if (v4 !== undefined) return { af: 4, addr: ipv4ToText(v4) };
    const v6 = canonicalIpv6(word);
    if (v6 !== undefined) return { af: 6, addr: v6 };
    return this.err(n, `${n.keyword}: bad address "${word}"`, word);
  }
  port(n: KaNode, word: string | undefined): number | undefined {
    return word === undefined ? this.err(n, `${n.keyword}: missing port`, n.keyword) : this.int(n, 0, 65535, word);
  }
  /** A statement that must have no block and a block that must be there. */
  block(n: KaNode): readonly KaNode[] {
    if (n.block === null) {
      this.err(n, `${n.keyword}: missing '{' block`, n.keyword);
      return [];
    }
    return n.block;
  }
}

const METHODS: Readonly<Record<string, FwdMethod>> = { NAT: 'masq', DR: 'route', TUN: 'tunnel' };
const PROTOCOLS: Readonly<Record<string, ProtocolName>> = { TCP: 'tcp', UDP: 'udp', SCTP: 'sctp' };
const SCHED_FLAG_KEYWORDS: Readonly<Record<string, number>> = {
  'flag-1': SvcFlag.SCHED1, 'flag-2': SvcFlag.SCHED2, 'flag-3': SvcFlag.SCHED3,
  'sh-fallback': SvcFlag.SCHED1, 'sh-port': SvcFlag.SCHED2, 'mh-fallback': SvcFlag.SCHED1, 'mh-port': SvcFlag.SCHED2,
};

function method(ctx: Ctx, n: KaNode): FwdMethod | undefined {
  const w = ctx.arg(n);
  if (w === undefined) return undefined;
  if (w === 'TUN' && n.args.length > 1) {
    ctx.unsupported(n, `${n.keyword}: TUN options (${n.args.slice(1).join(' ')}) are not supported; tunnels are ipip`, n.args[1]);
    return 'tunnel';
  }
  return METHODS[w] ?? ctx.err(n, `${n.keyword}: unknown forwarding method "${w}" (NAT, DR, TUN)`, w);
}

/** Timing settings that inherit checker ← real_server ← virtual_server; undefined = not set at this level. */
interface Timing {
  connectTimeout?: number;
  retry?: number;
  delayBeforeRetry?: number;
  delayLoop?: number;
  warmup?: number;
  alpha?: boolean;
  rise?: number;
  fall?: number;
  fastinter?: number;
  downinter?: number;
}

/** Reads a timing keyword into `t`; false when `n` is not one. */
function timing(ctx: Ctx, n: KaNode, t: Timing): boolean {
  switch (n.keyword) {
    case 'connect_timeout': t.connectTimeout = ctx.secs(n) ?? t.connectTimeout; return true;
    case 'retry': t.retry = ctx.int(n, 0, 0xffffffff) ?? t.retry; return true;
    case 'delay_before_retry': t.delayBeforeRetry = ctx.secs(n) ?? t.delayBeforeRetry; return true;
    case 'delay_loop': t.delayLoop = ctx.secs(n) ?? t.delayLoop; return true;
    case 'warmup': t.warmup = ctx.secs(n) ?? t.warmup; return true;
    case 'alpha': t.alpha = true; return true;
    case 'rise': t.rise = ctx.int(n, 1, MAX_COUNT) ?? t.rise; return true;
    case 'fall': t.fall = ctx.int(n, 1, MAX_COUNT) ?? t.fall; return true;
    case 'fastinter': t.fastinter = ctx.secs(n) ?? t.fastinter; return true;
    case 'downinter': t.downinter = ctx.secs(n) ?? t.downinter; return true;
    default: return false;
  }
}

const CHECKERS = new Set<string>(['TCP_CHECK', 'HTTP_GET', 'SSL_GET', 'MISC_CHECK', 'DNS_CHECK', 'SMTP_CHECK', 'PING_CHECK', 'UDP_CHECK']);
/** Checkers keepalived has that tsvs does not read yet: rejected, not misread. */
const UNSUPPORTED_CHECKERS = new Set<string>(['BFD_CHECK', 'FILE_CHECK']);

/** A hex string (`0a0b`, any case, optional `0x`), or a problem. */
function hexArg(ctx: Ctx, n: KaNode): string | null {
  const w = ctx.arg(n);
  if (w === undefined) return null;
  const h = w.replace(/^0x/i, '');
  if (!/^([0-9a-fA-F]{2})+$/.test(h)) return ctx.err(n, `${n.keyword}: not an even number of hex digits "${w}"`, w) ?? null;
  return h.toLowerCase();
}

function statusRanges(ctx: Ctx, n: KaNode): StatusRange[] {
  const out: StatusRange[] = [];
  if (n.args.length === 0) ctx.err(n, 'status_code: missing value', n.keyword);
  for (const w of n.args) {
    const m = /^(\d{3})(?:-(\d{3}))?$/.exec(w);
    const from = m ? Number(m[1]) : 0;
    const to = m?.[2] ? Number(m[2]) : from;
    if (!m || from < 100 || to > 599 || to < from) ctx.err(n, `status_code: bad status code "${w}"`, w);
    else out.push({ from, to });
  }
  return out;
}

function httpUrl(ctx: Ctx, n: KaNode): HttpUrl | undefined {
  let path: string | null = null;
  let digest: string | null = null;
  let codes: StatusRange[] = [];
  let virtualhost: string | null = null;
  for (const c of ctx.block(n)) {
    if (c.keyword === 'path') path = ctx.arg(c) ?? path;
    else if (c.keyword === 'digest') {
      const d = ctx.arg(c);
      if (d !== undefined && !/^[0-9a-fA-F]{32}$/.test(d)) ctx.err(c, `digest: not 32 hex digits "${d}"`, d);
      else if (d !== undefined) digest = d.toLowerCase();
    } else if (c.keyword === 'status_code') codes = codes.concat(statusRanges(ctx, c));
    else if (c.keyword === 'virtualhost') virtualhost = ctx.arg(c) ?? virtualhost;
    else ctx.unknown(c);
  }
  if (path === null) return ctx.err(n, 'url: missing path', 'url');
  return { file: n.file, line: n.line, path, digest, statusCodes: codes.length > 0 ? codes : [{ from: 200, to: 299 }], virtualhost };
}

/** Keywords of the connection part of a checker (not MISC_CHECK, which runs a program). */
const CONNECTION_KEYWORDS = new Set(['connect_ip', 'connect_port', 'bindto', 'bind_port', 'bind_if', 'fwmark']);

function checker(ctx: Ctx, n: KaNode, rs: Timing, vs: Timing, vsDelayLoop: number): Checker | undefined {
  const kind = n.keyword as CheckerKind;
  const t: Timing = {};
  const conn: { connectIp: IpAddr | null; connectPort: number | null; bindTo: IpAddr | null; bindPort: number | null; bindIf: string | null; fwmark: number | null } =
    { connectIp: null, connectPort: null, bindTo: null, bindPort: null, bindIf: null, fwmark: null };
  const urls: HttpUrl[] = [];
  let virtualhost: string | null = null;
  let fastRecovery = false;
  let miscPath: string | null = null;
  let miscTimeout: number | undefined;
  let dynamic = false;
  let user: string | null = null;
  let dnsType: string = KeepalivedDefaults.dnsType;
  let dnsName: string = KeepalivedDefaults.dnsName;
  let heloName: string | null = null;
  let payload: string | null = null;
  let requireReply: string | null = null;
  let minReplyLength = 0;
  let maxReplyLength = 0;
  const http = kind === 'HTTP_GET' || kind === 'SSL_GET';
  for (const c of ctx.block(n)) {
    if (timing(ctx, c, t)) continue;
    if (kind !== 'MISC_CHECK' && CONNECTION_KEYWORDS.has(c.keyword)) {
      if (c.keyword === 'connect_ip') conn.connectIp = ctx.ip(c, ctx.arg(c)) ?? null;
      else if (c.keyword === 'connect_port') conn.connectPort = ctx.port(c, ctx.arg(c)) ?? null;
      else if (c.keyword === 'bindto') conn.bindTo = ctx.ip(c, ctx.arg(c)) ?? null;
      else if (c.keyword === 'bind_port') conn.bindPort = ctx.port(c, ctx.arg(c)) ?? null;
      else if (c.keyword === 'bind_if') conn.bindIf = ctx.arg(c) ?? null;
      else conn.fwmark = ctx.int(c, 0, 0xffffffff) ?? null;
      continue;
    }
    if (c.keyword === 'log_all_failures') continue;
    if (http && c.keyword === 'nb_get_retry') {
      ctx.warn(c, "nb_get_retry is deprecated - please use 'retry'");
      t.retry = ctx.int(c, 0, 0xffffffff) ?? t.retry;
    } else if (http && c.keyword === 'url') {
      const u = httpUrl(ctx, c);
      if (u) urls.push(u);
    } else if (http && c.keyword === 'virtualhost') virtualhost = ctx.arg(c) ?? null;
    else if (http && c.keyword === 'fast_recovery') fastRecovery = true;
    else if (kind === 'MISC_CHECK' && c.keyword === 'misc_path') miscPath = c.args.length > 0 ? c.args.join(' ') : (ctx.err(c, 'misc_path: missing value', c.keyword) ?? null);
    else if (kind === 'MISC_CHECK' && c.keyword === 'misc_timeout') miscTimeout = ctx.secs(c);
    else if (kind === 'MISC_CHECK' && c.keyword === 'misc_dynamic') dynamic = true;
    else if (kind === 'MISC_CHECK' && c.keyword === 'user') user = c.args.length > 0 ? c.args.join(' ') : (ctx.err(c, 'user: missing value', c.keyword) ?? null);
    else if (kind === 'DNS_CHECK' && c.keyword === 'type') dnsType = ctx.arg(c)?.toUpperCase() ?? dnsType;
    else if (kind === 'DNS_CHECK' && c.keyword === 'name') dnsName = ctx.arg(c) ?? dnsName;
    else if (kind === 'SMTP_CHECK' && c.keyword === 'helo_name') heloName = ctx.arg(c) ?? null;
    else if (kind === 'UDP_CHECK' && c.keyword === 'payload') payload = hexArg(ctx, c);
    else if (kind === 'UDP_CHECK' && c.keyword === 'require_reply') requireReply = hexArg(ctx, c);
    else if (kind === 'UDP_CHECK' && c.keyword === 'min_reply_length') minReplyLength = ctx.int(c, 0, 65535) ?? minReplyLength;
    else if (kind === 'UDP_CHECK' && c.keyword === 'max_reply_length') maxReplyLength = ctx.int(c, 0, 65535) ?? maxReplyLength;
    else if (kind === 'SMTP_CHECK' && c.keyword === 'host') ctx.unsupported(c, 'SMTP_CHECK host blocks are not supported (deprecated in keepalived: use one SMTP_CHECK per host)', 'host');
    else ctx.unknown(c);
  }
  const delayLoop = t.delayLoop ?? rs.delayLoop ?? vs.delayLoop ?? KeepalivedDefaults.delayLoop;
  const defRetry = http ? KeepalivedDefaults.retry : kind === 'DNS_CHECK' ? KeepalivedDefaults.dnsRetry : kind === 'MISC_CHECK' ? KeepalivedDefaults.miscRetry : KeepalivedDefaults.retry;
  const defDelay = http ? KeepalivedDefaults.httpDelayBeforeRetry : kind === 'DNS_CHECK' ? delayLoop : KeepalivedDefaults.delayBeforeRetry;
  const base: CheckerBase = {
    file: n.file,
    line: n.line,
    ...conn,
    connectTimeout: t.connectTimeout ?? rs.connectTimeout ?? vs.connectTimeout ?? KeepalivedDefaults.connectTimeout,
    retry: t.retry ?? rs.retry ?? vs.retry ?? defRetry,
    delayBeforeRetry: t.delayBeforeRetry ?? rs.delayBeforeRetry ?? vs.delayBeforeRetry ?? defDelay,
    delayLoop,
    warmup: t.warmup ?? rs.warmup ?? vs.warmup ?? delayLoop,
    alpha: t.alpha ?? rs.alpha ?? vs.alpha ?? false,
    rise: t.rise ?? rs.rise ?? vs.rise ?? null,
    fall: t.fall ?? rs.fall ?? vs.fall ?? null,
    fastinter: t.fastinter ?? rs.fastinter ?? vs.fastinter ?? null,
    downinter: t.downinter ?? rs.downinter ?? vs.downinter ?? null,
  };
  switch (kind) {
    case 'TCP_CHECK': return { ...base, kind };
    case 'HTTP_GET':
    case 'SSL_GET':
      if (urls.length === 0) ctx.warn(n, `${kind}: no url configured`);
      return { ...base, kind, urls, virtualhost, fastRecovery };
    case 'MISC_CHECK':
      if (miscPath === null) return ctx.err(n, 'MISC_CHECK: missing misc_path', kind);
      return { ...base, kind, path: miscPath, timeout: miscTimeout ?? vsDelayLoop, dynamic, user };
    case 'DNS_CHECK': return { ...base, kind, type: dnsType, name: dnsName };
    case 'SMTP_CHECK': return { ...base, kind, heloName };
    case 'PING_CHECK': return { ...base, kind };
    case 'UDP_CHECK': return { ...base, kind, payload, requireReply, minReplyLength, maxReplyLength };
  }
}

function realServer(ctx: Ctx, n: KaNode, vs: { af: Af | null; weight: number; method: FwdMethod; inhibit: boolean; timing: Timing }, vsDelayLoop: number): RealServer | undefined {
  const ip = ctx.ip(n, n.args[0]);
  const port = n.args.length > 1 ? ctx.port(n, n.args[1]) : 0;
  if (n.args.length > 2) ctx.warn(n, `real_server: extra words ignored: ${n.args.slice(2).join(' ')}`);
  let weight = vs.weight;
  let m: FwdMethod | undefined;
  let inhibit = vs.inhibit;
  let uThreshold = 0;
  let lThreshold = 0;
  let notifyUp: string | null = null;
  let notifyDown: string | null = null;
  const t: Timing = {};
  const checkerNodes: KaNode[] = [];
  for (const c of ctx.block(n)) {
    if (timing(ctx, c, t)) continue;
    if (CHECKERS.has(c.keyword)) checkerNodes.push(c);
    else if (UNSUPPORTED_CHECKERS.has(c.keyword)) ctx.unsupported(c, `${c.keyword} is not supported by tsvs`, c.keyword);
    else if (c.keyword === 'weight') weight = ctx.int(c, 0, 65535) ?? weight;
    else if (c.keyword === 'lvs_method' || c.keyword === 'lb_kind') m = method(ctx, c) ?? m;
    else if (c.keyword === 'inhibit_on_failure') inhibit = true;
    else if (c.keyword === 'uthreshold') uThreshold = ctx.int(c, 0, 0xffffffff) ?? 0;
    else if (c.keyword === 'lthreshold') lThreshold = ctx.int(c, 0, 0xffffffff) ?? 0;
    else if (c.keyword === 'notify_up') notifyUp = c.args.join(' ') || null;
    else if (c.keyword === 'notify_down') notifyDown = c.args.join(' ') || null;
    else if (c.keyword === 'smtp_alert' || c.keyword === 'virtualhost') continue;
    else ctx.unknown(c);
  }
  const checkers: Checker[] = [];
  for (const c of checkerNodes) {
    const k = checker(ctx, c, t, vs.timing, vsDelayLoop);
    if (k) checkers.push(k);
  }
  if (!ip || port === undefined) return undefined;
  if (vs.af !== null && ip.af !== vs.af) return ctx.err(n, `real_server ${ip.addr}: address family differs from the virtual server's`, n.args[0]);
  return { file: n.file, line: n.line, ...ip, port, weight, method: m ?? vs.method, inhibitOnFailure: inhibit, uThreshold, lThreshold, notifyUp, notifyDown, checkers };
}

function vsAddress(ctx: Ctx, n: KaNode): VsAddress | undefined {
  const [a, b] = n.args;
  if (a === 'fwmark') {
    if (b === undefined) return ctx.err(n, 'virtual_server fwmark: missing mark', 'fwmark');
    const fw = ctx.int(n, 1, 0xffffffff, b);
    return fw === undefined ? undefined : { kind: 'fwmark', af: 4, fwmark: fw };
  }
  if (a === 'group') return b === undefined ? ctx.err(n, 'virtual_server group: missing group name', 'group') : { kind: 'group', name: b };
  const ip = ctx.ip(n, a);
  const port = b === undefined ? 0 : ctx.port(n, b);
  if (!ip || port === undefined) return undefined;
  return { kind: 'ip', ...ip, port };
}

/** keepalived's FMT_VS, near enough: `10.0.0.1:80`, `[ae00::1]:80`, `FWM 1`, `[GROUP]`. */
function vsName(a: VsAddress | undefined, n: KaNode): string {
  if (!a) return n.args.join(' ');
  if (a.kind === 'fwmark') return `FWM ${a.fwmark}`;
  if (a.kind === 'group') return `[${a.name}]`;
  return a.af === 6 ? `[${a.addr}]:${a.port}` : `${a.addr}:${a.port}`;
}

function hasKeyword(n: KaNode, ...keywords: string[]): boolean {
  return (n.block ?? []).some((c) => keywords.includes(c.keyword));
}

/**
 * Real server and sorry server ports as keepalived corrects them (check_data.c validate_check_config): NAT takes
 * the service port when none is given; DR/TUN take the service port (a different one is reset with a warning);
 * on a fwmark service DR/TUN ports are cleared. Group services are left as written.
 */
function fixPort(ctx: Ctx, at: SourcePos, what: string, vsn: string, a: VsAddress | undefined, port: number, m: FwdMethod): number {
  if (!a || a.kind === 'group') return port;
  if (m === 'masq') return a.kind === 'ip' && port === 0 ? a.port : port;
  if (a.kind === 'fwmark') {
    if (port !== 0) ctx.warn(at, `WARNING - fwmark virtual server ${vsn}, ${what} has port specified - clearing`);
    return 0;
  }
  if (port !== 0 && port !== a.port) ctx.warn(at, `WARNING - virtual server ${vsn} and ${what} ports don't match - resetting`);
  return a.port;
}

function virtualServer(ctx: Ctx, n: KaNode, groups: readonly VirtualServerGroup[]): VirtualServer | undefined {
  const address = vsAddress(ctx, n);
  let protocol: ProtocolName | null = null;
  let defaultWeight: number = KeepalivedDefaults.weight;
  let scheduler: string | undefined;
  let m: FwdMethod | undefined;
  let persistence: number | null = null;
  let granularity: string | null = null;
  let pe = '';
  let flags = 0;
  let omega = false;
  let inhibit = false;
  let haSuspend = false;
  let quorum: number = KeepalivedDefaults.quorum;
  let hysteresis: number = KeepalivedDefaults.hysteresis;
  let quorumUp: string | null = null;
  let quorumDown: string | null = null;
  let virtualhost: string | null = null;
  let family: Af | null = address?.kind === 'ip' ? address.af : null;
  let sorry: { node: KaNode; ip: IpAddr; port: number } | null = null;
  let sorryInhibit = false;
  let sorryMethod: FwdMethod | undefined;
  const t: Timing = {};
  const rsNodes: KaNode[] = [];
  for (const c of ctx.block(n)) {
    if (timing(ctx, c, t)) continue;
    switch (c.keyword) {
      case 'real_server': rsNodes.push(c); break;
      case 'weight': defaultWeight = ctx.int(c, 0, 65535) ?? defaultWeight; break;
      case 'lvs_sched':
      case 'lb_algo': {
        const s = ctx.arg(c);
        if (s !== undefined && !(KEEPALIVED_SCHEDULERS as readonly string[]).includes(s)) ctx.err(c, `${c.keyword}: unknown scheduler "${s}"`, s);
        else scheduler = s ?? scheduler;
        break;
      }
      case 'lvs_method':
      case 'lb_kind': m = method(ctx, c) ?? m; break;
      case 'protocol': {
        const p = ctx.arg(c);
        if (p !== undefined) protocol = PROTOCOLS[p] ?? ctx.err(c, `protocol: unknown protocol "${p}" (TCP, UDP, SCTP)`, p) ?? protocol;
        break;
      }
      case 'persistence_timeout': persistence = c.args.length === 0 ? KeepalivedDefaults.persistenceTimeout : (ctx.int(c, 1, 86400 * 31) ?? persistence); break;
      case 'persistence_granularity': granularity = ctx.arg(c) ?? granularity; break;
      case 'persistence_engine': pe = ctx.arg(c) ?? pe; break;
      case 'ops': flags |= SvcFlag.ONEPACKET; break;
      case 'omega': omega = true; break;
      case 'inhibit_on_failure': inhibit = true; break;
      case 'ha_suspend': haSuspend = true; break;
      case 'quorum': quorum = ctx.int(c, 1, 0xffffffff) ?? quorum; break;
      case 'hysteresis': hysteresis = ctx.int(c, 0, 0xffffffff) ?? hysteresis; break;
      case 'quorum_up': quorumUp = c.args.join(' ') || null; break;
      case 'quorum_down': quorumDown = c.args.join(' ') || null; break;
      case 'virtualhost': virtualhost = ctx.arg(c) ?? null; break;
      case 'ip_family': {
        const f = ctx.arg(c);
        if (f === 'inet' || f === 'inet6') family = f === 'inet' ? 4 : 6;
        else if (f !== undefined) ctx.err(c, `ip_family: expected inet or inet6, not "${f}"`, f);
        break;
      }
      case 'sorry_server': {
        const ip = ctx.ip(c, c.args[0]);
        const port = c.args.length > 1 ? ctx.port(c, c.args[1]) : 0;
        if (ip && port !== undefined) sorry = { node: c, ip, port };
        break;
      }
      case 'sorry_server_inhibit': sorryInhibit = true; break;
      case 'sorry_server_lvs_method': sorryMethod = method(ctx, c) ?? sorryMethod; break;
      case 'smtp_alert': break;
      default:
        if (c.keyword in SCHED_FLAG_KEYWORDS) flags |= SCHED_FLAG_KEYWORDS[c.keyword];
        else ctx.unknown(c);
    }
  }
  const vsn = vsName(address, n);
  const group = address?.kind === 'group' ? groups.find((g) => g.name === address.name) : undefined;
  if (address?.kind === 'group' && !group) ctx.err(n, `virtual_server group ${address.name}: no virtual_server_group of that name`, address.name);
  const byAddress = address?.kind === 'ip' || (group?.entries.some((e) => e.kind === 'range') ?? false);
  const groupFwmarks = group?.entries.some((e) => e.kind === 'fwmark') ?? false;
  if (rsNodes.length === 0) ctx.warn(n, `Virtual server ${vsn} has no real servers - ignoring`);
  if (haSuspend && (address?.kind === 'fwmark' || groupFwmarks)) {
    ctx.warn(n, `Virtual server ${vsn}: cannot use ha_suspend with fwmarks - clearing ha_suspend`);
    haSuspend = false;
  }
  if (byAddress) {
    if (protocol === null) {
      ctx.warn(n, `Virtual server ${vsn}: no protocol set - defaulting to UDP`);
      protocol = 'udp';
    }
    if (flags & SvcFlag.ONEPACKET && protocol !== 'udp') {
      ctx.warn(n, `Virtual server ${vsn}: one packet scheduling requires UDP - resetting`);
      flags &= ~SvcFlag.ONEPACKET;
    }
    const zeroPort = address?.kind === 'ip' ? address.port === 0 : (group?.entries.some((e) => e.kind === 'range' && e.port === 0) ?? false);
    if (persistence === null && zeroPort) {
      ctx.warn(n, `Virtual server ${vsn}: zero port only valid for persistent services - setting`);
      persistence = KeepalivedDefaults.persistenceTimeout;
    }
  } else if (protocol !== null && (address?.kind === 'fwmark' || groupFwmarks)) {
    ctx.warn(n, `Warning: Virtual server ${vsn}: protocol specified for fwmark - protocol will be ignored`);
    protocol = null;
  }
  if (scheduler === undefined) {
    ctx.warn(n, `Virtual server ${vsn}: no scheduler set, setting default 'wlc'`);
    scheduler = KeepalivedDefaults.scheduler;
  }
  if (m === undefined && (sorry !== null || rsNodes.some((r) => !hasKeyword(r, 'lvs_method', 'lb_kind')))) {
    ctx.warn(n, `Virtual server ${vsn}: no forwarding method set, setting default NAT`);
  }
  const vsMethod = m ?? KeepalivedDefaults.method;
  const delayLoop = t.delayLoop ?? KeepalivedDefaults.delayLoop;
  if (family === null) {
    const first = rsNodes.map((r) => r.args[0]).find((a) => a !== undefined);
    family = first !== undefined && canonicalIpv6(first) !== undefined ? 6 : 4;
  }
  const rsCtx = { af: family, weight: defaultWeight, method: vsMethod, inhibit, timing: t };
  const realServers: RealServer[] = [];
  for (const r of rsNodes) {
    const read = realServer(ctx, r, rsCtx, delayLoop);
    if (!read) continue;
    const rs = { ...read, port: fixPort(ctx, r, `real server ${read.addr}:${read.port}`, vsn, address, read.port, read.method) };
    if (realServers.some((o) => o.addr === rs.addr && o.port === rs.port)) {
      ctx.warn(r, `VS ${vsn}: real server ${rs.af === 6 ? `[${rs.addr}]` : rs.addr}:${rs.port} is duplicated - removing second rs`);
      continue;
    }
    realServers.push(rs);
  }
  if (granularity !== null) {
    if (family === 4 && ipv4FromText(granularity) === undefined) ctx.err(n, `persistence_granularity: bad netmask "${granularity}"`, granularity);
    if (family === 6 && !(/^\d+$/.test(granularity) && Number(granularity) >= 1 && Number(granularity) <= 128)) ctx.err(n, `persistence_granularity: bad IPv6 prefix length "${granularity}"`, granularity);
  }
  const total = realServers.reduce((s, r) => s + r.weight, 0);
  if (realServers.length > 0 && quorum > total) {
    ctx.warn(n, `Warning - quorum ${quorum} for ${vsn} exceeds total weight of real servers ${total}, reducing quorum to ${total}`);
    quorum = total;
  }
  if (hysteresis >= quorum && hysteresis > 0) {
    const to = Math.max(0, quorum - 1);
    ctx.warn(n, `Virtual server ${vsn}: hysteresis ${hysteresis} >= quorum ${quorum}; setting hysteresis to ${to}`);
    hysteresis = to;
  }
  if (realServers.length === 0) return undefined;
  if (!address) return undefined;
  const fixed: VsAddress = address.kind === 'fwmark' ? { ...address, af: family } : address;
  return {
    file: n.file,
    line: n.line,
    address: fixed,
    protocol: protocol ?? 'tcp',
    scheduler,
    method: vsMethod,
    persistenceTimeout: persistence,
    persistenceGranularity: granularity ?? (family === 6 ? KeepalivedDefaults.granularity6 : KeepalivedDefaults.granularity4),
    persistenceEngine: pe,
    flags,
    delayLoop,
    alpha: t.alpha ?? false,
    omega,
    inhibitOnFailure: inhibit,
    haSuspend,
    quorum,
    hysteresis,
    quorumUp,
    quorumDown,
    virtualhost,
    sorryServer: sorry ? sorryServer(ctx, sorry, sorryMethod ?? vsMethod, sorryInhibit, vsn, address) : null,
    realServers,
  };
}

function sorryServer(ctx: Ctx, s: { node: KaNode; ip: IpAddr; port: number }, m: FwdMethod, inhibit: boolean, vsn: string, a: VsAddress): SorryServer {
  const port = fixPort(ctx, s.node, 'sorry server', vsn, a, s.port, m);
  return { file: s.node.file, line: s.node.line, ...s.ip, port, method: m, inhibit };
}

/** `A.B.C.D-E` or `X::Y-Z` (last group, hex): the first and last address and how many. */
function vsgRange(ctx: Ctx, n: KaNode, word: string): { af: Af; first: string; last: string; count: number } | undefined {
  const dash = word.lastIndexOf('-');
  if (dash < 0) {
    const ip = ctx.ip(n, word);
    return ip && { ...ip, first: ip.addr, last: ip.addr, count: 1 };
  }
  const head = word.slice(0, dash);
  const end = word.slice(dash + 1);
  const v4 = ipv4FromText(head);
  if (v4 !== undefined) {
    const lo = v4 & 255;
    if (!/^\d{1,3}$/.test(end) || Number(end) > 255 || Number(end) < lo) return ctx.err(n, `virtual_server_group: bad address range "${word}"`, word);
    return { af: 4, first: ipv4ToText(v4), last: ipv4ToText(v4 - lo + Number(end)), count: Number(end) - lo + 1 };
  }
  const g = parseIpv6(head);
  if (g === undefined || !/^[0-9a-fA-F]{1,4}$/.test(end) || parseInt(end, 16) < g[7]) return ctx.err(n, `virtual_server_group: bad address range "${word}"`, word);
  return { af: 6, first: formatIpv6(g), last: formatIpv6([...g.slice(0, 7), parseInt(end, 16)]), count: parseInt(end, 16) - g[7] + 1 };
}

function virtualServerGroup(ctx: Ctx, n: KaNode): VirtualServerGroup | undefined {
  const name = n.args[0];
  const entries: VsgEntry[] = [];
  for (const c of ctx.block(n)) {
    const at = { file: c.file, line: c.line };
    if (c.keyword === 'fwmark') {
      const fw = ctx.int(c, 1, 0xffffffff);
      if (fw !== undefined) entries.push({ ...at, kind: 'fwmark', fwmark: fw });
      continue;
    }
    const r = vsgRange(ctx, c, c.keyword);
    const port = c.args.length > 0 ? ctx.port(c, c.args[0]) : 0;
    if (r && port !== undefined) entries.push({ ...at, kind: 'range', ...r, port });
  }
  if (name === undefined) return ctx.err(n, 'virtual_server_group: missing name', n.keyword);
  return { file: n.file, line: n.line, name, entries };
}

function globalDefs(ctx: Ctx, n: KaNode | null): GlobalDefs {
  let routerId: string | null = null;
  let email: string[] = [];
  let from: string | null = null;
  let smtp: string[] | null = null;
  let smtpTimeout: number | null = null;
  let sync: GlobalDefs['lvsSyncDaemon'] = null;
  for (const c of n ? ctx.block(n) : []) {
    if (c.keyword === 'router_id') routerId = ctx.arg(c) ?? null;
    else if (c.keyword === 'notification_email') email = email.concat((c.block ?? []).map((e) => e.keyword), c.args);
    else if (c.keyword === 'notification_email_from') from = ctx.arg(c) ?? null;
    else if (c.keyword === 'smtp_server') smtp = c.args.length > 0 ? [...c.args] : (ctx.err(c, 'smtp_server: missing value', c.keyword) ?? null);
    else if (c.keyword === 'smtp_connect_timeout') smtpTimeout = ctx.int(c, 1, 0xffffffff) ?? null;
    else if (c.keyword === 'lvs_sync_daemon') {
      if (c.args.length < 2) ctx.err(c, 'lvs_sync_daemon: needs an interface and a vrrp_instance name', c.keyword);
      else sync = { interface: c.args[0], vrrpInstance: c.args[1], options: c.args.slice(2) };
    }
  }
  return { routerId, notificationEmail: email, notificationEmailFrom: from, smtpServer: smtp, smtpConnectTimeout: smtpTimeout, lvsSyncDaemon: sync, node: n };
}

function vrrpInstance(ctx: Ctx, n: KaNode): VrrpInstance | undefined {
  const inst = {
    state: null as string | null, interface: null as string | null, virtualRouterId: null as number | null, priority: null as number | null,
    advertInt: null as number | null, virtualIpaddress: [] as string[][], lvsSyncDaemonInterface: null as string | null,
  };
  for (const c of ctx.block(n)) {
    if (c.keyword === 'state') inst.state = ctx.arg(c) ?? null;
    else if (c.keyword === 'interface') inst.interface = ctx.arg(c) ?? null;
    else if (c.keyword === 'virtual_router_id') inst.virtualRouterId = ctx.int(c, 1, 255) ?? null;
    else if (c.keyword === 'priority') inst.priority = ctx.int(c, 1, 255) ?? null;
    else if (c.keyword === 'advert_int') inst.advertInt = ctx.secs(c) ?? null;
    else if (c.keyword === 'virtual_ipaddress') inst.virtualIpaddress = (c.block ?? []).map((a) => [a.keyword, ...a.args]);
    else if (c.keyword === 'lvs_sync_daemon_interface') {
      ctx.warn(c, "lvs_sync_daemon_interface is deprecated - please use 'lvs_sync_daemon' in global_defs");
      inst.lvsSyncDaemonInterface = ctx.arg(c) ?? null;
    }
  }
  if (n.args[0] === undefined) return ctx.err(n, 'vrrp_instance: missing name', n.keyword);
  return { file: n.file, line: n.line, name: n.args[0], ...inst, node: n };
}

/** Top-level blocks keepalived knows that tsvs keeps without interpreting. */
const KEPT = new Set([
  'static_ipaddress', 'static_routes', 'static_rules', 'vrrp_track_process', 'vrrp_track_file', 'track_file', 'garp_group',
  'linkbeat_interfaces', 'bfd_instance', 'net_namespace', 'net_namespace_ipvs', 'instance', 'use_pid_dir', 'child_wait_time',
]);

/**
 * Interprets a keyword tree as keepalived does for an LVS director.
 *
 * @throws KeepalivedError (VALUE, UNSUPPORTED) listing every bad value, each with file:line and the word.
 */
export function buildKeepalivedConfig(nodes: readonly KaNode[], treeWarnings: readonly KeepalivedWarning[] = []): KeepalivedConfig {
  const ctx = new Ctx(treeWarnings);
  const groups: VirtualServerGroup[] = [];
  const servers: VirtualServer[] = [];
  const instances: VrrpInstance[] = [];
  const syncGroups: VrrpSyncGroup[] = [];
  const scripts: VrrpScript[] = [];
  const other: KaNode[] = [];
  let global: KaNode | null = null;
  const vsNodes: KaNode[] = [];
  for (const n of nodes) {
    switch (n.keyword) {
      case 'global_defs': global = n; break;
      case 'virtual_server_group': { const g = virtualServerGroup(ctx, n); if (g) groups.push(g); break; }
      case 'virtual_server': vsNodes.push(n); break;
      case 'vrrp_instance': { const v = vrrpInstance(ctx, n); if (v) instances.push(v); break; }
      case 'vrrp_sync_group':
        if (n.args[0] === undefined) ctx.err(n, 'vrrp_sync_group: missing name', n.keyword);
        else syncGroups.push({ file: n.file, line: n.line, name: n.args[0], group: ctx.block(n).flatMap((c) => (c.keyword === 'group' ? (c.block ?? []).map((g) => g.keyword) : [c.keyword])), node: n });
        break;
      case 'vrrp_script':
        if (n.args[0] === undefined) ctx.err(n, 'vrrp_script: missing name', n.keyword);
        else scripts.push({ file: n.file, line: n.line, name: n.args[0], node: n });
        break;
      default:
        if (!KEPT.has(n.keyword)) ctx.unknown(n);
        other.push(n);
    }
  }
  for (const n of vsNodes) {
    const v = virtualServer(ctx, n, groups);
    if (v) servers.push(v);
  }
  const globalDefsValue = globalDefs(ctx, global);
  if (ctx.problems.length > 0) throw new KeepalivedError(ctx.problems);
  return { globalDefs: globalDefsValue, virtualServerGroups: groups, virtualServers: servers, vrrpInstances: instances, vrrpSyncGroups: syncGroups, vrrpScripts: scripts, other, warnings: ctx.warnings };
}
