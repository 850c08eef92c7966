// Kernel rules for the NFQUEUE backend: raw NOTRACK for VIP and NAT-reply traffic, mangle PREROUTING HMARK
// (client address only) + one NFQUEUE rule per queue, and DR policy routing (fwmark rules and tables, the
// `local` rule moved after them). Installed idempotently in dedicated chains; removed exactly.
import { commandRunner, iptablesCalls, type Runner } from './kernel-rules.ts';

export { commandRunner };
export type { Runner };

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

/** What `installNfqueueRules` set up, and what `removeNfqueueRules` needs to undo it. */
export interface NfqRulesReport {
  chain: string;
  iptables: string;
  /** Rules per `table/chain`, as iptables arguments after `-A CHAIN`. */
  rules: Record<string, string[][]>;
  /** DR: the `ip rule` preferences and routing tables installed. */
  drRules: { pref: number; mark: number; table: number; rip: string; dev: string }[];
  /** The `local` rule's new preference when this or an earlier install moved it from 0, else null. */
  localMovedTo: number | null;
  /** sysctl key → value before this call, for keys this call changed. */
  sysctlsChanged: Record<string, string>;
  /** Human-readable list of changes. */
  changes: string[];
}

const BRIDGE_NF = ['net.bridge.bridge-nf-call-iptables', 'net.bridge.bridge-nf-call-ip6tables', 'net.bridge.bridge-nf-call-arptables'];

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

interface IpRule {
  priority: number;
  table?: string;
  fwmark?: string;
}

function ipRules(run: Runner): IpRule[] {
  return JSON.parse(run(['ip', '-4', '-j', 'rule', 'show']) || '[]') as IpRule[];
}

/**
 * Installs the rules for `spec`:
 * - own addresses first: `-d OWN -j RETURN` in both chains below;
 * - raw `<chain>` (jumped from PREROUTING): `-j CT --notrack` for each service and each NAT reply, so
 *   conntrack never sees the rewritten flows (packet-io-notes pitfall 4);
 * - mangle `<chain>` (jumped from PREROUTING): services → `<chain>-REQ`, replies → `<chain>-REP`. With one
 *   queue those chains hold a single NFQUEUE rule. With N > 1: HMARK on the client address only (requests:
 *   src /32, dst /0; replies: src /0, dst /32; every port and protocol mask 0), so every packet of a client,
 *   and every persistence template, lands on one worker, then `-m mark --mark i -j NFQUEUE --queue-num
 *   base+i` per queue. HMARK overwrites skb->mark, so fwmark services are queued by their mark rules' matches
 *   (`spec.matches`) and the worker classifies the packet itself;
 * - DR (`spec.dr`): `ip rule add pref T+k fwmark M+k lookup T+k`, `ip route replace default via RIP dev DEV
 *   onlink table T+k`, and the `local` rule moved from pref 0 to `localPref` so marked packets to a local VIP
 *   are forwarded (pitfall 3);
 * - sysctls: ip_forward=1, bridge-nf-call-*=0 where present (pitfall 1).
 * Idempotent: chains are flushed and refilled, jumps and ip rules added only when missing. Throws Error
 * naming the failing command; what was already installed stays (remove it with `removeNfqueueRules`).
 */
export function installNfqueueRules(spec: NfqRuleSpec, run: Runner = commandRunner()): NfqRulesReport {
  const chain = spec.chain ?? 'TSVS-NFQ';
  const ipt = spec.iptables ?? 'iptables';
  const n = spec.queues;
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`nfqueue rules: queues ${n} must be an integer ≥ 1`);
  const base = spec.queueBase ?? 0;
  const changes: string[] = [];
  const { x, ok } = iptablesCalls(run, ipt);
  const cmd = (argv: string[]): string => {
    try {
      return run(argv);
    } catch (e) {
      throw new Error(`${argv.join(' ')}: ${(e as { stderr?: string }).stderr?.trim() || String(e)}`);
    }
  };
  const bypass = spec.bypass ? ['--queue-bypass'] : [];
  const queueTo = (i: number): string[] => ['-j', 'NFQUEUE', '--queue-num', String(base + i), ...bypass];
  // Each table's chains are (created,) emptied and refilled in one atomic commit: no packet ever meets a
  // half-written chain (a gap would let service traffic reach the kernel unqueued, and a TCP RST come back).
  const fill = (table: string, chains: [string, string[][]][]): void => {
    for (const [name] of chains) if (!ok(['-t', table, '-n', '-L', name])) changes.push(`created ${table} chain ${name}`);
    const decl = chains.map(([name]) => `:${name} - [0:0]`).join('\n');
    const body = chains.flatMap(([name, rs]) => rs.map((r) => `-A ${name} ${r.join(' ')}`)).join('\n');
    try {
      run([`${ipt}-restore`, '-w', '--noflush'], `*${table}\n${decl}\n${body}\nCOMMIT\n`);
    } catch (e) {
      throw new Error(`${ipt}-restore --noflush (${table}): ${(e as { stderr?: string }).stderr?.trim() || String(e)}`);
    }
  };
  const rules: Record<string, string[][]> = {};
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

  rules[`raw/${chain}`] = raw;
  rules[`mangle/${chain}-REQ`] = perQueue('src');
  rules[`mangle/${chain}-REP`] = perQueue('dst');
  rules[`mangle/${chain}`] = dispatch;
  fill('raw', [[chain, raw]]);
  fill('mangle', [[`${chain}-REQ`, rules[`mangle/${chain}-REQ`]], [`${chain}-REP`, rules[`mangle/${chain}-REP`]], [chain, dispatch]]);
  changes.push(`raw ${chain}: ${raw.length - own.length} notrack rule(s); mangle ${chain}: ${dispatch.length - own.length} dispatch rule(s), ${own.length} own-address RETURN(s), ${n} queue(s) from ${base}${n > 1 ? ' via HMARK on the client address' : ''}`);
  for (const table of ['raw', 'mangle']) {
    if (!ok(['-t', table, '-C', 'PREROUTING', '-j', chain])) {
      x(['-t', table, '-I', 'PREROUTING', '1', '-j', chain]);
      changes.push(`${table} PREROUTING -j ${chain}`);
    }
  }

  const drRules: NfqRulesReport['drRules'] = [];
  let localMovedTo: number | null = null;
  const dr = spec.dr ?? [];
  if (dr.length > 0) {
    const markBase = spec.drMarkBase ?? 0x100;
    const tableBase = spec.drTableBase ?? 100;
    const localPref = spec.localPref ?? 500;
    if (tableBase + dr.length > localPref) throw new RangeError(`nfqueue rules: fwmark rule prefs ${tableBase}..${tableBase + dr.length - 1} must stay below the local rule's ${localPref}`);
    const have = ipRules(run);
    for (const [k, d] of dr.entries()) {
      const r = { pref: tableBase + k, mark: markBase + k, table: tableBase + k, rip: d.rip, dev: d.dev };
      drRules.push(r);
      cmd(['ip', '-4', 'route', 'replace', 'default', 'via', d.rip, 'dev', d.dev, 'onlink', 'table', String(r.table)]);
      const mark = `0x${r.mark.toString(16)}`;
      const exists = have.some((h) => h.priority === r.pref && h.table === String(r.table) && h.fwmark === mark);
      if (!exists) {
        if (have.some((h) => h.priority === r.pref)) cmd(['ip', '-4', 'rule', 'del', 'pref', String(r.pref)]);
        cmd(['ip', '-4', 'rule', 'add', 'pref', String(r.pref), 'fwmark', mark, 'lookup', String(r.table)]);
        changes.push(`ip rule pref ${r.pref} fwmark ${mark} lookup ${r.table}`);
      }
      changes.push(`table ${r.table}: default via ${d.rip} dev ${d.dev} onlink`);
    }
    const now = ipRules(run);
    if (!now.some((h) => h.priority === localPref && h.table === 'local')) {
      cmd(['ip', '-4', 'rule', 'add', 'pref', String(localPref), 'lookup', 'local']);
      changes.push(`ip rule pref ${localPref} lookup local`);
    }
    if (now.some((h) => h.priority === 0 && h.table === 'local')) {
      cmd(['ip', '-4', 'rule', 'del', 'pref', '0', 'lookup', 'local']);
      changes.push('ip rule pref 0 lookup local removed');
    }
    localMovedTo = localPref;
  }

  const sysctlsChanged: Record<string, string> = {};
  const want: Record<string, string> = { 'net.ipv4.ip_forward': '1' };
  for (const k of BRIDGE_NF) want[k] = '0';
  for (const [k, v] of Object.entries(want)) {
    let cur: string | null = null;
    try {
      cur = run(['sysctl', '-n', k]).trim();
    } catch {
      cur = null;
    }
    if (cur === null || cur === v) continue;
    cmd(['sysctl', '-qw', `${k}=${v}`]);
    sysctlsChanged[k] = cur;
    changes.push(`${k}: ${cur} -> ${v}`);
  }
  return { chain, iptables: ipt, rules, drRules, localMovedTo, sysctlsChanged, changes };
}

/**
 * Removes what `installNfqueueRules` installed: the PREROUTING jumps and the chains (raw `<chain>`, mangle
 * `<chain>`, `<chain>-REQ`, `<chain>-REP`), the DR fwmark rules and the routes of their tables, puts the
 * `local` rule back at pref 0 and deletes the moved one, and restores the sysctls it changed. Idempotent;
 * never throws: returns what it could not undo.
 */
export function removeNfqueueRules(r: Pick<NfqRulesReport, 'chain' | 'iptables' | 'drRules' | 'localMovedTo' | 'sysctlsChanged'>, run: Runner = commandRunner()): string[] {
  const failed: string[] = [];
  const ok = (argv: string[]): boolean => {
    try {
      run(argv);
      return true;
    } catch {
      return false;
    }
  };
  const ipt = (args: string[]): boolean => ok([r.iptables, '-w', ...args]);
  for (const table of ['raw', 'mangle']) {
    for (let i = 0; i < 16 && ipt(['-t', table, '-D', 'PREROUTING', '-j', r.chain]); i++);
  }
  const chains: [string, string][] = [['raw', r.chain], ['mangle', r.chain], ['mangle', `${r.chain}-REQ`], ['mangle', `${r.chain}-REP`]];
  for (const [table, name] of chains) ipt(['-t', table, '-F', name]);
  for (const [table, name] of chains) {
    if (ipt(['-t', table, '-n', '-L', name]) && !ipt(['-t', table, '-X', name])) failed.push(`remove ${table} chain ${name}`);
  }
  for (const d of r.drRules) {
    for (let i = 0; i < 4 && ok(['ip', '-4', 'rule', 'del', 'pref', String(d.pref), 'fwmark', `0x${d.mark.toString(16)}`, 'lookup', String(d.table)]); i++);
    ok(['ip', '-4', 'route', 'flush', 'table', String(d.table)]);
  }
  if (r.localMovedTo !== null) {
    let rules: IpRule[] = [];
    try {
      rules = ipRules(run);
    } catch {
      failed.push('ip rule show');
    }
    if (!rules.some((h) => h.priority === 0 && h.table === 'local') && !ok(['ip', '-4', 'rule', 'add', 'pref', '0', 'lookup', 'local'])) {
      failed.push('restore ip rule pref 0 lookup local');
    } else {
      for (let i = 0; i < 4 && ok(['ip', '-4', 'rule', 'del', 'pref', String(r.localMovedTo), 'lookup', 'local']); i++);
    }
  }
  for (const [k, v] of Object.entries(r.sysctlsChanged)) {
    if (!ok(['sysctl', '-qw', `${k}=${v}`])) failed.push(`restore ${k}=${v}`);
  }
  return failed;
}
