// The iptables runner: installs and removes the kernel rules of shared/rules (raw/nat/mangle chains through
// iptables-restore, policy routes through ip, sysctls), idempotently, and undoes exactly what it changed.
import { execFileSync } from 'node:child_process';
import { directorRules, type DirectorRuleSpec } from '../rules/kernel-rules.ts';
import { restoreText } from '../rules/host.ts';
import { nfqueueRules, type NfqRuleSpec } from '../rules/nfqueue-rules.ts';

/** Runs a command (argv, optional stdin) and returns its stdout; throws on a non-zero exit. Injected for netns use and tests. */
export type Runner = (argv: readonly string[], input?: string) => string;

/** The default runner: execFileSync, optionally inside `ip netns exec NETNS`. */
export function commandRunner(netns?: string): Runner {
  return (argv, input) => {
    const full = netns ? ['ip', 'netns', 'exec', netns, ...argv] : [...argv];
    return execFileSync(full[0], full.slice(1), { encoding: 'utf8', input, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
  };
}

/** The stderr of a failed command, or the error's text. */
function why(e: unknown): string {
  return (e as { stderr?: string }).stderr?.trim() || String(e);
}

/**
 * iptables through `run`: `x` returns stdout and throws an Error naming the command on failure; `ok` says
 * whether the command succeeded (for checks such as -C and -L).
 */
export function iptablesCalls(run: Runner, ipt: string): { x: (args: string[]) => string; ok: (args: string[]) => boolean } {
  return {
    x: (args) => {
      try {
        return run([ipt, '-w', ...args]);
      } catch (e) {
        throw new Error(`${ipt} ${args.join(' ')}: ${why(e)}`);
      }
    },
    ok: (args) => {
      try {
        run([ipt, '-w', ...args]);
        return true;
      } catch {
        return false;
      }
    },
  };
}

function restore(run: Runner, ipt: string, table: string, chains: readonly (readonly [string, readonly (readonly string[])[]])[]): void {
  try {
    run([`${ipt}-restore`, '-w', '--noflush'], restoreText(table, chains));
  } catch (e) {
    throw new Error(`${ipt}-restore --noflush (${table} ${chains.map(([c]) => c).join(' ')}): ${why(e)}`);
  }
}

const BRIDGE_NF = ['net.bridge.bridge-nf-call-iptables', 'net.bridge.bridge-nf-call-ip6tables', 'net.bridge.bridge-nf-call-arptables'];
/** What both backends need: forwarding on, bridged frames not handed to iptables (br_netfilter is built in here). */
const SYSCTLS: Record<string, string> = { 'net.ipv4.ip_forward': '1', ...Object.fromEntries(BRIDGE_NF.map((k) => [k, '0'])) };

/** Sets each sysctl of `want` that exists and differs; returns key → previous value for those it changed. */
function setSysctls(run: Runner, want: Record<string, string>, changes: string[]): Record<string, string> {
  const changed: Record<string, string> = {};
  for (const [k, v] of Object.entries(want)) {
    let cur: string | null;
    try {
      cur = run(['sysctl', '-n', k]).trim();
    } catch {
      cur = null;
    }
    if (cur === null || cur === v) continue;
    try {
      run(['sysctl', '-qw', `${k}=${v}`]);
    } catch (e) {
      throw new Error(`sysctl -w ${k}=${v}: ${why(e)}`);
    }
    changed[k] = cur;
    changes.push(`${k}: ${cur} -> ${v}`);
  }
  return changed;
}

function restoreSysctls(run: Runner, changed: Record<string, string>, failed: string[]): void {
  for (const [k, v] of Object.entries(changed)) {
    try {
      run(['sysctl', '-qw', `${k}=${v}`]);
    } catch {
      failed.push(`restore ${k}=${v}`);
    }
  }
}

/** What `installDirectorRules` changed, and what `removeDirectorRules` needs to undo it. */
export interface RulesReport {
  chain: string;
  iptables: string;
  /** The rules in the chain, as iptables arguments (after `-A CHAIN`). */
  rules: string[][];
  /** True when the PREROUTING jump was added by this call (false: it was already there). */
  jumpAdded: boolean;
  /** The nat chain of `localNat` (`<chain>-LOCAL`), or null when none was installed. */
  natChain?: string | null;
  /** sysctl key → value before this call, for keys this call changed. */
  sysctlsChanged: Record<string, string>;
  /** Human-readable list of changes. */
  changes: string[];
}

/**
 * Installs the AF_PACKET backend's rules: creates (or refills) chain `chain` in the raw table in one atomic
 * commit, jumps to it from PREROUTING once, keeps the nat `<chain>-LOCAL` chain in step, turns ip_forward on
 * and bridge-nf-call-* off where those sysctls exist. Idempotent. Throws Error naming the failing command.
 * `prev`: what an earlier call of this process installed with the same chain. The chain is then only refilled
 * (one iptables-restore): its jump and the sysctls are in place already, which keeps a table change to one
 * command (`tsvsadm -R` of many rules makes one table change per line).
 */
export function installDirectorRules(spec: DirectorRuleSpec, run: Runner = commandRunner(), prev?: RulesReport): RulesReport {
  const built = directorRules(spec);
  const { chain } = built;
  const ipt = spec.iptables ?? 'iptables';
  const changes: string[] = [];
  const { x, ok } = iptablesCalls(run, ipt);
  const again = prev !== undefined && prev.chain === chain && prev.iptables === ipt;
  if (!again && !ok(['-t', 'raw', '-n', '-L', chain])) changes.push(`created raw chain ${chain}`);
  restore(run, ipt, 'raw', [[chain, built.raw]]);
  changes.push(`raw ${chain}: ${built.raw.length} rule(s)`);
  let jumpAdded = again ? prev.jumpAdded : false;
  if (!again && !ok(['-t', 'raw', '-C', 'PREROUTING', '-j', chain])) {
    x(['-t', 'raw', '-I', 'PREROUTING', '1', '-j', chain]);
    jumpAdded = true;
    changes.push(`raw PREROUTING -j ${chain}`);
  }
  const natChain = built.natChain;
  if (natChain !== null) {
    restore(run, ipt, 'nat', [[natChain, built.nat]]);
    if (!(again && prev.natChain === natChain) && !ok(['-t', 'nat', '-C', 'PREROUTING', '-j', natChain])) x(['-t', 'nat', '-I', 'PREROUTING', '1', '-j', natChain]);
    changes.push(`nat ${natChain}: ${built.nat.length} DNAT rule(s) for local real servers with another port`);
  } else if (again ? prev.natChain : ok(['-t', 'nat', '-n', '-L', `${chain}-LOCAL`])) {
    removeNatChain(ok, `${chain}-LOCAL`);
  }
  const sysctlsChanged = again ? { ...prev.sysctlsChanged } : setSysctls(run, SYSCTLS, changes);
  return { chain, iptables: ipt, rules: built.raw, jumpAdded, natChain, sysctlsChanged, changes };
}

/** Removes every nat PREROUTING jump to `natChain` and the chain; false when the chain could not go. */
function removeNatChain(ok: (args: string[]) => boolean, natChain: string): boolean {
  for (let i = 0; i < 16 && ok(['-t', 'nat', '-D', 'PREROUTING', '-j', natChain]); i++);
  if (!ok(['-t', 'nat', '-n', '-L', natChain])) return true;
  return ok(['-t', 'nat', '-F', natChain]) && ok(['-t', 'nat', '-X', natChain]);
}

/**
 * Removes what `installDirectorRules` installed: every PREROUTING jump to the chain, the chain itself, and
 * restores the sysctls it changed. Idempotent; never throws (returns the list of what it could not undo).
 */
export function removeDirectorRules(r: Pick<RulesReport, 'chain' | 'iptables' | 'sysctlsChanged' | 'natChain'>, run: Runner = commandRunner()): string[] {
  const failed: string[] = [];
  const { ok } = iptablesCalls(run, r.iptables);
  if (r.natChain && !removeNatChain(ok, r.natChain)) failed.push(`remove nat chain ${r.natChain}`);
  for (let i = 0; i < 16 && ok(['-t', 'raw', '-D', 'PREROUTING', '-j', r.chain]); i++);
  if (ok(['-t', 'raw', '-n', '-L', r.chain])) {
    if (!ok(['-t', 'raw', '-F', r.chain]) || !ok(['-t', 'raw', '-X', r.chain])) failed.push(`remove raw chain ${r.chain}`);
  }
  restoreSysctls(run, r.sysctlsChanged, failed);
  return failed;
}

/**
 * Removes the rules when the process exits normally or on SIGINT/SIGTERM (then exits with 130/143). For
 * tools and tests that install rules without a daemon. Returns a function that unregisters the hooks.
 */
export function removeOnExit(r: RulesReport, run: Runner = commandRunner()): () => void {
  let done = false;
  const remove = (): void => {
    if (done) return;
    done = true;
    removeDirectorRules(r, run);
  };
  const onSig = (sig: NodeJS.Signals): void => {
    remove();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.on('exit', remove);
  process.on('SIGINT', onSig);
  process.on('SIGTERM', onSig);
  return () => {
    process.off('exit', remove);
    process.off('SIGINT', onSig);
    process.off('SIGTERM', onSig);
  };
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

interface IpRule {
  priority: number;
  table?: string;
  fwmark?: string;
}

function ipRules(run: Runner): IpRule[] {
  return JSON.parse(run(['ip', '-4', '-j', 'rule', 'show']) || '[]') as IpRule[];
}

/**
 * Installs the NFQUEUE backend's rules for `spec` (see shared/rules/nfqueue-rules.ts nfqueueRules): raw and
 * mangle chains each table in one atomic commit, jumped from PREROUTING once; DR: `ip rule add pref T+k fwmark
 * M+k lookup T+k`, `ip route replace default via RIP dev DEV onlink table T+k`, and the `local` rule moved from
 * pref 0 to `localPref` so marked packets to a local VIP are forwarded; sysctls ip_forward=1,
 * bridge-nf-call-*=0 where present. Idempotent. Throws Error naming the failing command; what was already
 * installed stays (remove it with `removeNfqueueRules`).
 */
export function installNfqueueRules(spec: NfqRuleSpec, run: Runner = commandRunner()): NfqRulesReport {
  const built = nfqueueRules(spec);
  const { chain } = built;
  const ipt = spec.iptables ?? 'iptables';
  const changes: string[] = [];
  const { x, ok } = iptablesCalls(run, ipt);
  const cmd = (argv: string[]): string => {
    try {
      return run(argv);
    } catch (e) {
      throw new Error(`${argv.join(' ')}: ${why(e)}`);
    }
  };
  const fill = (table: string, chains: [string, string[][]][]): void => {
    for (const [name] of chains) if (!ok(['-t', table, '-n', '-L', name])) changes.push(`created ${table} chain ${name}`);
    restore(run, ipt, table, chains);
  };
  const rules: Record<string, string[][]> = {
    [`raw/${chain}`]: built.raw,
    [`mangle/${chain}-REQ`]: built.req,
    [`mangle/${chain}-REP`]: built.rep,
    [`mangle/${chain}`]: built.dispatch,
  };
  fill('raw', [[chain, built.raw]]);
  fill('mangle', [[`${chain}-REQ`, built.req], [`${chain}-REP`, built.rep], [chain, built.dispatch]]);
  const n = spec.queues;
  changes.push(`raw ${chain}: ${built.raw.length - built.own} notrack rule(s); mangle ${chain}: ${built.dispatch.length - built.own} dispatch rule(s), ${built.own} own-address RETURN(s), ${n} queue(s) from ${spec.queueBase ?? 0}${n > 1 ? ' via HMARK on the client address' : ''}`);
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
  const sysctlsChanged = setSysctls(run, SYSCTLS, changes);
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
  restoreSysctls(run, r.sysctlsChanged, failed);
  return failed;
}
