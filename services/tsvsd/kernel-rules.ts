// Kernel settings a userspace director needs: raw-table DROP rules that keep the kernel stack away from
// VIP and NAT-reply traffic (AF_PACKET taps still see it), bridge netfilter off, ip_forward on.
// Installed idempotently in a dedicated chain and removed exactly, restoring the sysctls it changed.
import { execFileSync } from 'node:child_process';

/** Runs a command (argv, optional stdin) and returns its stdout; throws on a non-zero exit. Injected for netns use and tests. */
export type Runner = (argv: readonly string[], input?: string) => string;

/** The default runner: execFileSync, optionally inside `ip netns exec NETNS`. */
export function commandRunner(netns?: string): Runner {
  return (argv, input) => {
    const full = netns ? ['ip', 'netns', 'exec', netns, ...argv] : [...argv];
    return execFileSync(full[0], full.slice(1), { encoding: 'utf8', input, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
  };
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
        throw new Error(`${ipt} ${args.join(' ')}: ${(e as { stderr?: string }).stderr?.trim() || String(e)}`);
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

/** What the director's kernel must ignore. */
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
   * chain `<chain>-LOCAL` (TSVS-RAW → TSVS-RAW-LOCAL), jumped from nat PREROUTING.
   */
  localNat?: { iface: string; proto: 'tcp' | 'udp'; vip: string; vport: number; rip: string; rport: number }[];
  /** Chain name in the raw table; default TSVS-RAW. */
  chain?: string;
  /** iptables binary; default `iptables` (legacy selected on these hosts). */
  iptables?: string;
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

const SYSCTLS_ON: Record<string, string> = { 'net.ipv4.ip_forward': '1' };
const BRIDGE_NF = ['net.bridge.bridge-nf-call-iptables', 'net.bridge.bridge-nf-call-ip6tables', 'net.bridge.bridge-nf-call-arptables'];

function sysctlGet(run: Runner, k: string): string | null {
  try {
    return run(['sysctl', '-n', k]).trim();
  } catch {
    return null;
  }
}

/**
 * Installs the rules: creates (or flushes) chain `chain` in the raw table, fills it, jumps to it from
 * PREROUTING once, turns ip_forward on and bridge-nf-call-* off where those sysctls exist (br_netfilter).
 * Idempotent: a second call leaves the same state. Throws Error naming the failing command.
 * `prev`: what an earlier call of this process installed with the same chain. The chain is then only refilled
 * (one iptables-restore): its jump and the sysctls are in place already. That keeps a table change to one
 * command, which matters for `tsvsadm -R` of many rules (each line is a table change).
 */
export function installDirectorRules(spec: DirectorRuleSpec, run: Runner = commandRunner(), prev?: RulesReport): RulesReport {
  const chain = spec.chain ?? 'TSVS-RAW';
  const ipt = spec.iptables ?? 'iptables';
  const changes: string[] = [];
  const { x, ok } = iptablesCalls(run, ipt);
  const again = prev !== undefined && prev.chain === chain && prev.iptables === ipt;
  if (!again && !ok(['-t', 'raw', '-n', '-L', chain])) changes.push(`created raw chain ${chain}`);
  const rules: string[][] = [];
  for (const a of spec.ownAddrs ?? []) rules.push(['-d', `${a}/32`, '-j', 'RETURN']);
  for (const v of spec.vips ?? []) for (const a of v.addrs) rules.push(['-i', v.iface, '-d', `${a}/32`, '-j', 'DROP']);
  for (const m of spec.matches ?? []) rules.push([...m, '-j', 'DROP']);
  for (const v of spec.services ?? []) rules.push(['-i', v.iface, '-d', `${v.addr}/32`, '-p', v.proto, ...(v.port ? ['--dport', String(v.port)] : []), '-j', 'DROP']);
  for (const r of spec.replies ?? []) {
    for (const proto of ['tcp', 'udp']) {
      const srcs = r.srcAddrs ?? [null];
      for (const p of r.srcPorts.length ? r.srcPorts : [0]) {
        for (const s of srcs) rules.push(['-i', r.iface, ...(s ? ['-s', `${s}/32`] : []), '-p', proto, ...(p ? ['--sport', String(p)] : []), '-j', 'DROP']);
      }
    }
  }
  // One atomic commit: the chain is (created,) emptied and refilled in a single table replacement, so no packet
  // ever meets a half-written chain (a gap would hand a service packet to the kernel, which answers RST).
  const text = `*raw\n:${chain} - [0:0]\n${rules.map((r) => `-A ${chain} ${r.join(' ')}`).join('\n')}\nCOMMIT\n`;
  try {
    run([`${ipt}-restore`, '-w', '--noflush'], text);
  } catch (e) {
    throw new Error(`${ipt}-restore --noflush (raw ${chain}): ${(e as { stderr?: string }).stderr?.trim() || String(e)}`);
  }
  changes.push(`raw ${chain}: ${rules.length} rule(s)`);
  let jumpAdded = again ? prev.jumpAdded : false;
  if (!again && !ok(['-t', 'raw', '-C', 'PREROUTING', '-j', chain])) {
    x(['-t', 'raw', '-I', 'PREROUTING', '1', '-j', chain]);
    jumpAdded = true;
    changes.push(`raw PREROUTING -j ${chain}`);
  }
  let natChain: string | null = null;
  if (spec.localNat?.length) {
    natChain = `${chain}-LOCAL`;
    const nat = spec.localNat.map((l) => ['-i', l.iface, '-p', l.proto, '-d', `${l.vip}/32`, '--dport', String(l.vport), '-j', 'DNAT', '--to-destination', `${l.rip}:${l.rport}`]);
    try {
      run([`${ipt}-restore`, '-w', '--noflush'], `*nat\n:${natChain} - [0:0]\n${nat.map((r) => `-A ${natChain} ${r.join(' ')}`).join('\n')}\nCOMMIT\n`);
    } catch (e) {
      throw new Error(`${ipt}-restore --noflush (nat ${natChain}): ${(e as { stderr?: string }).stderr?.trim() || String(e)}`);
    }
    if (!(again && prev.natChain === natChain) && !ok(['-t', 'nat', '-C', 'PREROUTING', '-j', natChain])) x(['-t', 'nat', '-I', 'PREROUTING', '1', '-j', natChain]);
    changes.push(`nat ${natChain}: ${nat.length} DNAT rule(s) for local real servers with another port`);
  } else if (again ? prev.natChain : ok(['-t', 'nat', '-n', '-L', `${chain}-LOCAL`])) {
    removeNatChain(ok, `${chain}-LOCAL`);
  }
  const sysctlsChanged: Record<string, string> = again ? { ...prev.sysctlsChanged } : {};
  const want: Record<string, string> = { ...SYSCTLS_ON };
  for (const k of BRIDGE_NF) want[k] = '0';
  for (const [k, v] of again ? [] : Object.entries(want)) {
    const cur = sysctlGet(run, k);
    if (cur === null || cur === v) continue;
    run(['sysctl', '-qw', `${k}=${v}`]);
    sysctlsChanged[k] = cur;
    changes.push(`${k}: ${cur} -> ${v}`);
  }
  return { chain, iptables: ipt, rules, jumpAdded, natChain, sysctlsChanged, changes };
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
  for (const [k, v] of Object.entries(r.sysctlsChanged)) {
    try {
      run(['sysctl', '-qw', `${k}=${v}`]);
    } catch {
      failed.push(`restore ${k}=${v}`);
    }
  }
  return failed;
}

/**
 * Removes the rules when the process exits normally or on SIGINT/SIGTERM (then exits with 130/143).
 * Returns a function that unregisters the hooks (after which removal is the caller's job).
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
