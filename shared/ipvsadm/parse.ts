// The ipvsadm 1.31 command-line parser: popt-like option scanning, the command/option table, defaults and validation.
import type { Af, DaemonConfig, DestConfig, DestKey, FwdMethod, ProtocolName, ServiceConfig, ServiceKey, TunCsum, TunType } from '../model/ipvs.ts';
import { Defaults, SvcFlag } from '../model/ipvs.ts';
import type { NameResolver } from './names.ts';
import { cAtoi, cStrtol, formatIpv6, inetAton, parseIpv6 } from './names.ts';
import { ipv4FromText, ipv4ToText } from '../net/addr.ts';

/** How a listing is rendered (ipvsadm's FMT_* bits). */
export interface ListFormat {
  numeric: boolean;
  stats: boolean;
  rate: boolean;
  thresholds: boolean;
  persistentConn: boolean;
  nosort: boolean;
  exact: boolean;
  tunInfo: boolean;
}

/** What a -L/-l command lists. */
export type ListTarget =
  | { type: 'all' }
  | { type: 'service'; key: ServiceKey }
  | { type: 'conns' }
  | { type: 'timeout' }
  | { type: 'daemon' };

/** One parsed ipvsadm command line: the operation with every default already applied. */
export type Command =
  | { kind: 'add-service'; svc: ServiceConfig }
  | { kind: 'edit-service'; svc: ServiceConfig }
  | { kind: 'del-service'; key: ServiceKey }
  | { kind: 'flush' }
  | { kind: 'add-dest'; key: ServiceKey; dest: DestConfig }
  | { kind: 'edit-dest'; key: ServiceKey; dest: DestConfig }
  | { kind: 'del-dest'; key: ServiceKey; dest: DestKey }
  | { kind: 'list'; target: ListTarget; format: ListFormat }
  | { kind: 'save'; format: ListFormat }
  | { kind: 'zero'; key?: ServiceKey }
  | { kind: 'set-timeout'; tcp: number; tcpfin: number; udp: number }
  | { kind: 'start-daemon'; daemon: DaemonConfig }
  | { kind: 'stop-daemon'; state: 'master' | 'backup'; syncid?: number }
  | { kind: 'restore' }
  | { kind: 'help' }
  | { kind: 'version' };

/**
 * The outcome of parsing one argv:
 * - `command`: run it;
 * - `exit`: ipvsadm would print `stderr` and exit with `code` at once (fail() → 2, tryhelp → 255), even inside -R;
 * - `error`: a popt error after the command (`"<opt>: <reason>"`): the line fails with status 255, but -R goes on.
 */
export type ParseResult =
  | { kind: 'command'; command: Command }
  | { kind: 'exit'; code: number; stderr: string }
  | { kind: 'error'; stderr: string };

/** Parser inputs besides argv. */
export interface ParseOptions {
  resolver: NameResolver;
  /** argv[0] as printed by tryhelp ("ipvsadm" by default). */
  program?: string;
  /** True while running the lines of a -R stream (a nested -R is refused as ipvsadm does). */
  readingStdin?: boolean;
}

/** Longest persistence timeout / --set value: 31 days in seconds. */
export const MAX_TIMEOUT = 86400 * 31;

const CMD = ['add-service', 'edit-service', 'delete-service', 'flush', 'list', 'add-server', 'delete-server', 'edit-server', 'set', 'start-daemon', 'stop-daemon', 'restore', 'save', 'zero'] as const;
type CmdName = (typeof CMD)[number];

/** Option names in commands_v_options column order (ipvsadm optnames). */
const OPT = ['numeric', 'connection', 'service-address', 'scheduler', 'persistent', 'netmask', 'real-server', 'forwarding-method', 'weight', 'u-threshold', 'l-threshold', 'mcast-interface', 'timeout', 'daemon', 'stats', 'rate', 'thresholds', 'persistent-conn', 'nosort', 'syncid', 'exact', 'ops', 'pe', 'sched-flags', 'mcast-group', 'mcast-port', 'mcast-ttl', 'sync-maxlen', 'tun-info', 'tun-type', 'tun-port', 'tun-nocsum', 'tun-csum', 'tun-remcsum'] as const;
type OptName = (typeof OPT)[number];

/** commands_v_options: '+' required, 'x' illegal, '1' one of a group, ' ' optional; one row per CMD. */
const TABLE: Record<CmdName, string> = {
  'add-service': 'xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx',
  'edit-service': 'xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx',
  'delete-service': 'xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  flush: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  list: ' 11xxxxxxxxx11       xxxxxxx xxxxx',
  'add-server': 'xx+xxx+    xxxxxxxxxxxxxxxxxx     ',
  'delete-server': 'xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxx',
  'edit-server': 'xx+xxx+    xxxxxxxxxxxxxxxxxx     ',
  set: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  'start-daemon': 'xxxxxxxxxxx xxxxxxx xxxx    xxxxxx',
  'stop-daemon': 'xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxx',
  restore: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  save: ' xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  zero: 'xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
};

/** tunnel_types_v_options over (tun-port, tun-nocsum, tun-csum, tun-remcsum). */
const TUN_TABLE: Record<TunType, string> = { ipip: 'xxxx', gue: '+111', gre: 'x11x' };
const TUN_OPTS: readonly OptName[] = ['tun-port', 'tun-nocsum', 'tun-csum', 'tun-remcsum'];

type ArgKind = 'none' | 'required' | 'optional';
interface OptSpec {
  long: string;
  short?: string;
  arg: ArgKind;
  /** Tag passed to the handler: the short letter or a long name. */
  tag: string;
}

const SPECS: readonly OptSpec[] = [
  ['add-service', 'A'], ['edit-service', 'E'], ['delete-service', 'D'], ['clear', 'C'], ['list', 'L'], ['list', 'l'],
  ['zero', 'Z'], ['add-server', 'a'], ['edit-server', 'e'], ['delete-server', 'd'], ['set', ''], ['help', 'h'],
  ['version', 'v'], ['restore', 'R'], ['save', 'S'], ['start-daemon', '', 'r'], ['stop-daemon', '', 'r'],
  ['tcp-service', 't', 'r'], ['udp-service', 'u', 'r'], ['sctp-service', '', 'r'], ['fwmark-service', 'f', 'r'],
  ['scheduler', 's', 'r'], ['persistent', 'p', 'o'], ['netmask', 'M', 'r'], ['real-server', 'r', 'r'],
  ['masquerading', 'm'], ['ipip', 'i'], ['gatewaying', 'g'], ['weight', 'w', 'r'], ['u-threshold', 'x', 'r'],
  ['l-threshold', 'y', 'r'], ['numeric', 'n'], ['connection', 'c'], ['mcast-interface', '', 'r'], ['syncid', '', 'r'],
  ['timeout', ''], ['daemon', ''], ['stats', ''], ['rate', ''], ['thresholds', ''], ['persistent-conn', ''],
  ['nosort', ''], ['sort', ''], ['exact', 'X'], ['ipv6', '6'], ['ops', 'o'], ['pe', '', 'r'], ['sched-flags', 'b', 'r'],
  ['mcast-group', '', 'r'], ['mcast-port', '', 'r'], ['mcast-ttl', '', 'r'], ['sync-maxlen', '', 'r'], ['tun-info', ''],
  ['tun-type', '', 'r'], ['tun-port', '', 'r'], ['tun-nocsum', ''], ['tun-csum', ''], ['tun-remcsum', ''],
].map(([long, short, a]) => ({
  long: long!,
  short: short || undefined,
  arg: a === 'r' ? 'required' : a === 'o' ? 'optional' : 'none',
  tag: short || long!,
}));

/** Thrown inside the parser to stop at the first problem, as ipvsadm's fail() and tryhelp_exit() do. */
class Stop {
  result: ParseResult;
  constructor(result: ParseResult) {
    this.result = result;
  }
}

function fail(msg: string): never {
  throw new Stop({ kind: 'exit', code: 2, stderr: msg + '\n' });
}

/** One option occurrence as popt returns it. */
interface Occurrence {
  spec: OptSpec;
  arg: string | undefined;
  /** The argv element poptBadOption reports (the last one consumed). */
  token: string;
}

/** popt's scanner over argv[1..]: yields options in order, collects leftovers, reports popt errors. */
class Scanner {
  private argv: readonly string[];
  private next = 1;
  private bundle: { rest: string; token: string } | undefined;
  private restLeftover = false;
  readonly leftovers: string[] = [];

  constructor(argv: readonly string[]) {
    this.argv = argv;
  }

  /** Next option, undefined at the end, or a popt error string ("<token>: <reason>"). */
  nextOpt(): Occurrence | undefined | { error: string } {
    for (;;) {
      if (this.bundle && this.bundle.rest !== '') return this.shortOpt();
      this.bundle = undefined;
      if (this.next >= this.argv.length) return undefined;
      const tok = this.argv[this.next++];
      if (this.restLeftover || !tok.startsWith('-') || tok === '-') {
        this.leftovers.push(tok);
        continue;
      }
      if (tok === '--') {
        this.restLeftover = true;
        continue;
      }
      if (tok.startsWith('--')) return this.longOpt(tok);
      this.bundle = { rest: tok.slice(1), token: tok };
    }
  }

  private longOpt(tok: string): Occurrence | { error: string } {
    const body = tok.slice(2);
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    const spec = SPECS.find((s) => s.long === name);
    if (!spec) return { error: `${tok}: unknown option` };
    if (spec.arg === 'none') {
      if (eq >= 0) return { error: `${tok}: option does not take an argument` };
      return { spec, arg: undefined, token: tok };
    }
    if (eq >= 0) return { spec, arg: body.slice(eq + 1), token: tok };
    return this.takeArg(spec, tok);
  }

  private shortOpt(): Occurrence | { error: string } {
    const b = this.bundle!;
    const ch = b.rest[0];
    b.rest = b.rest.slice(1);
    const spec = SPECS.find((s) => s.short === ch);
    if (!spec) {
      this.bundle = undefined;
      return { error: `${b.token}: unknown option` };
    }
    if (spec.arg === 'none') return { spec, arg: undefined, token: b.token };
    if (b.rest !== '') {
      const arg = b.rest.startsWith('=') ? b.rest.slice(1) : b.rest;
      this.bundle = undefined;
      return { spec, arg, token: b.token };
    }
    this.bundle = undefined;
    return this.takeArg(spec, b.token);
  }

  private takeArg(spec: OptSpec, tok: string): Occurrence | { error: string } {
    if (this.next >= this.argv.length) {
      if (spec.arg === 'optional') return { spec, arg: undefined, token: tok };
      return { error: `${tok}: missing argument` };
    }
    const a = this.argv[this.next];
    if (spec.arg === 'optional' && a.startsWith('-')) return { spec, arg: undefined, token: tok };
    this.next++;
    return { spec, arg: a, token: a };
  }
}

/** C strtol-based string_to_number: the whole text must be a number in [min, max]. */
function toNumber(s: string, min: number, max: number): number | undefined {
  const r = cStrtol(s);
  if (r.end === 0 || r.end !== s.length) return undefined;
  return r.value >= min && r.value <= max ? r.value : undefined;
}

function parseTimeout(s: string | undefined, min: number, max: number): number {
  if (s === undefined) return Defaults.persistTimeout;
  const n = toNumber(s, min, max);
  if (n === undefined) fail(`invalid timeout value \`${s}' specified`);
  return n;
}

/** Mutable parse state: mirrors ipvsadm's ipvs_command_entry. */
interface State {
  cmd: CmdName | undefined;
  options: Set<OptName>;
  af: Af;
  protocol: ProtocolName | undefined;
  addr: string;
  port: number;
  fwmark: number;
  scheduler: string;
  flags: number;
  timeout: number;
  /** IPv4: unsigned mask value; IPv6: prefix length. */
  netmask: number;
  pe: string;
  destAf: Af | 0;
  destAddr: string;
  destPort: number;
  method: FwdMethod;
  weight: number;
  uThreshold: number;
  lThreshold: number;
  tunType: TunType;
  tunPort: number;
  tunCsum: TunCsum;
  daemon: DaemonConfig;
  setValues: [number, number, number] | undefined;
  format: ListFormat;
}

/**
 * parse_service: `host[:port]` or `[v6addr]:port`. Returns whether an address (and a port) was read, filling `out`.
 * The port keeps its previous value when none is given, as the C code leaves the struct field untouched.
 */
function parseService(
  buf: string,
  proto: ProtocolName | undefined,
  resolver: NameResolver,
  out: { af: Af; addr: string; port: number },
): 'none' | 'addr' | 'addr+port' {
  if (/^\d*$/.test(buf)) return 'none';
  let text = buf;
  let portText: string | undefined;
  let bracketed = false;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) return 'none';
    if (text[close + 1] !== ':') return 'none';
    portText = text.slice(close + 2);
    text = text.slice(1, close);
    bracketed = true;
  }
  const v6 = parseIpv6(text);
  if (v6) {
    out.af = 6;
    out.addr = formatIpv6(v6);
  } else {
    // A bracketed non-IPv6 address loses its port: the C code searches for ':' only inside the brackets.
    const colon = text.lastIndexOf(':');
    portText = bracketed ? undefined : colon >= 0 ? text.slice(colon + 1) : undefined;
    if (colon >= 0) text = text.slice(0, colon);
    const a = inetAton(text);
    const host = a === undefined ? resolver.hostToAddr(text) : undefined;
    const v4 = a ?? (host !== undefined ? ipv4FromText(host) : undefined);
    if (v4 === undefined) return 'none';
    out.af = 4;
    out.addr = ipv4ToText(v4);
  }
  if (portText === undefined) return 'addr';
  const n = toNumber(portText, 0, 65535);
  const p = n ?? (proto ? resolver.serviceToPort(portText, proto) : undefined);
  if (p === undefined) return 'none';
  out.port = p;
  return 'addr+port';
}

function parseSchedFlags(sched: string, arg: string): number {
  let flags = 0;
  const s = sched || Defaults.scheduler;
  const tokens = arg.split(',').filter((t) => t !== '');
  if (tokens.length === 0) fail("invalid scheduler flag `'");
  for (const f of tokens) {
    switch (f) {
      case 'flag-1': flags |= SvcFlag.SCHED1; break;
      case 'flag-2': flags |= SvcFlag.SCHED2; break;
      case 'flag-3': flags |= SvcFlag.SCHED3; break;
      case 'sh-fallback': case 'sh-port': case 'mh-fallback': case 'mh-port':
        flags |= f.endsWith('fallback') ? SvcFlag.SCHED1 : SvcFlag.SCHED2;
        if (s !== f.slice(0, 2)) fail(`incompatible scheduler flag \`${f}'`);
        break;
      default:
        fail(`invalid scheduler flag \`${f}'`);
    }
  }
  return flags;
}

function genericOptCheck(cmd: CmdName, options: Set<OptName>): void {
  const row = TABLE[cmd];
  let last = -1;
  OPT.forEach((name, j) => {
    const rule = row[j];
    if (!options.has(name)) {
      if (rule === '+') fail(`You need to supply the '${name}' option for the '${cmd}' command`);
      return;
    }
    if (rule === 'x') fail(`Illegal '${name}' option with the '${cmd}' command`);
    if (rule === '1') {
      if (last < 0) last = j;
      else fail(`The option '${name}' conflicts with the '${OPT[last]}' option in the '${cmd}' command`);
    }
  });
}

function tunnelOptCheck(type: TunType, options: Set<OptName>): void {
  const row = TUN_TABLE[type];
  let last: OptName | undefined;
  TUN_OPTS.forEach((name, j) => {
    const rule = row[j];
    if (!options.has(name)) {
      if (rule === '+') fail(`You need to supply the '${name}' option for the '${type}' tunnel type`);
      return;
    }
    if (rule === 'x') fail(`Illegal '${name}' option with the '${type}' tunnel type`);
    if (rule === '1') {
      if (last === undefined) last = name;
      else fail(`The option '${name}' conflicts with the '${last}' option in the '${type}' tunnel type`);
    }
  });
}

function emptyFormat(): ListFormat {
  return { numeric: false, stats: false, rate: false, thresholds: false, persistentConn: false, nosort: false, exact: false, tunInfo: false };
}

/**
 * Parses one ipvsadm argv (argv[0] is the program name and is ignored) exactly as ipvsadm 1.31's parse_options and
 * process_options do, up to the kernel call. Never throws for operator input; host and port names go through
 * `opts.resolver`. An argv of only the program name is the bare `ipvsadm` listing.
 */
export function parseArgs(argv: readonly string[], opts: ParseOptions): ParseResult {
  const program = opts.program ?? 'ipvsadm';
  if (argv.length <= 1) return { kind: 'command', command: { kind: 'list', target: { type: 'all' }, format: emptyFormat() } };
  try {
    return { kind: 'command', command: parseOrThrow(argv, opts, program) };
  } catch (e) {
    if (e instanceof Stop) return e.result;
    throw e;
  }
}

function tryhelp(program: string): never {
  throw new Stop({ kind: 'exit', code: 255, stderr: `Try \`${program} -h' or '${program} --help' for more information.\n` });
}

function parseOrThrow(argv: readonly string[], opts: ParseOptions, program: string): Command {
  const { resolver } = opts;
  const st: State = {
    cmd: undefined, options: new Set(), af: 4, protocol: undefined, addr: '0.0.0.0', port: 0, fwmark: 0, scheduler: '',
    flags: 0, timeout: 0, netmask: 0xffffffff, pe: '', destAf: 0, destAddr: '', destPort: 0, method: 'route',
    weight: Defaults.weight, uThreshold: 0, lThreshold: 0, tunType: 'ipip', tunPort: 0, tunCsum: '',
    daemon: { state: 'master', mcastIfn: '', syncid: 0, maxlen: 0, group: '', port: 0, ttl: 0 },
    setValues: undefined, format: emptyFormat(),
  };
  const sc = new Scanner(argv);
  const first = sc.nextOpt();
  if (first === undefined || 'error' in first) tryhelp(program);
  const daemonState = (arg: string, msg: string): 'master' | 'backup' => (arg === 'master' || arg === 'backup' ? arg : fail(msg));
  let stopSyncid: number | undefined;
  switch (first.spec.tag) {
    case 'A': st.cmd = 'add-service'; break;
    case 'E': st.cmd = 'edit-service'; break;
    case 'D': st.cmd = 'delete-service'; break;
    case 'a': st.cmd = 'add-server'; break;
    case 'e': st.cmd = 'edit-server'; break;
    case 'd': st.cmd = 'delete-server'; break;
    case 'C': st.cmd = 'flush'; break;
    case 'L': case 'l': st.cmd = 'list'; break;
    case 'Z': st.cmd = 'zero'; break;
    case 'set': st.cmd = 'set'; break;
    case 'R': st.cmd = 'restore'; break;
    case 'S': st.cmd = 'save'; break;
    case 'start-daemon':
      st.cmd = 'start-daemon';
      st.daemon.state = daemonState(first.arg!, 'illegal start-daemon parameter specified');
      break;
    case 'stop-daemon':
      st.cmd = 'stop-daemon';
      st.daemon.state = daemonState(first.arg!, 'illegal start_daemon specified');
      break;
    case 'h': return { kind: 'help' };
    case 'v': return { kind: 'version' };
    default: tryhelp(program);
  }
  const cmd = st.cmd;
  const setOpt = (o: OptName): void => {
    if (st.options.has(o)) fail(`multiple '${o}' options specified`);
    st.options.add(o);
  };
  let schedFlagsArg = '';
  for (;;) {
    const occ = sc.nextOpt();
    if (occ === undefined) break;
    if ('error' in occ) throw new Stop({ kind: 'error', stderr: occ.error + '\n' });
    const arg = occ.arg ?? '';
    switch (occ.spec.tag) {
      case 't': case 'u': case 'sctp-service': {
        setOpt('service-address');
        st.protocol = occ.spec.tag === 't' ? 'tcp' : occ.spec.tag === 'u' ? 'udp' : 'sctp';
        const out = { af: st.af, addr: st.addr, port: st.port };
        if (parseService(arg, st.protocol, resolver, out) === 'none') fail('illegal virtual server address[:port] specified');
        st.af = out.af;
        st.addr = out.addr;
        st.port = out.port;
        if (out.af === 6) st.netmask = 128;
        break;
      }
      case 'f': {
        setOpt('service-address');
        st.af = 4;
        st.protocol = 'tcp';
        const r = cStrtol(arg);
        if (r.end === 0 || r.end !== arg.length || r.value <= 0 || r.value > 0xffffffff) fail(`invalid fwmark value \`${arg}' specified`);
        st.fwmark = r.value;
        break;
      }
      case 's':
        setOpt('scheduler');
        st.scheduler = arg.slice(0, 15);
        break;
      case 'p':
        setOpt('persistent');
        st.flags |= SvcFlag.PERSISTENT;
        st.timeout = parseTimeout(occ.arg, 1, MAX_TIMEOUT);
        break;
      case 'M':
        setOpt('netmask');
        if (st.af !== 6) {
          const a = inetAton(arg);
          const host = a === undefined ? resolver.hostToAddr(arg) : undefined;
          const m = a ?? (host !== undefined ? ipv4FromText(host) : undefined);
          if (m === undefined) fail('illegal virtual server persistent mask specified');
          st.netmask = m;
        } else {
          st.netmask = cAtoi(arg);
          if (st.netmask < 1 || st.netmask > 128) fail('illegal ipv6 netmask specified');
        }
        break;
      case 'r': {
        setOpt('real-server');
        const out = { af: st.af, addr: st.addr, port: st.port };
        const r = parseService(arg, st.protocol, resolver, out);
        if (r === 'none') fail('illegal real server address[:port] specified');
        st.destAf = out.af;
        st.destAddr = out.addr;
        st.destPort = r === 'addr' ? st.port : out.port;
        break;
      }
      case 'i': setOpt('forwarding-method'); st.method = 'tunnel'; break;
      case 'g': setOpt('forwarding-method'); st.method = 'route'; break;
      case 'm': setOpt('forwarding-method'); st.method = 'masq'; break;
      case 'w': {
        setOpt('weight');
        const n = toNumber(arg, 0, 65535);
        if (n === undefined) fail('illegal weight specified');
        st.weight = n;
        break;
      }
      case 'x': case 'y': {
        const upper = occ.spec.tag === 'x';
        setOpt(upper ? 'u-threshold' : 'l-threshold');
        const n = toNumber(arg, 0, 0x7fffffff);
        if (n === undefined) fail(upper ? 'illegal u_threshold specified' : 'illegal l_threshold specified');
        if (upper) st.uThreshold = n;
        else st.lThreshold = n;
        break;
      }
      case 'c': setOpt('connection'); break;
      case 'n': setOpt('numeric'); st.format.numeric = true; break;
      case 'mcast-interface': setOpt('mcast-interface'); st.daemon.mcastIfn = arg.slice(0, 15); break;
      case 'syncid': {
        setOpt('syncid');
        const n = toNumber(arg, 0, 255);
        if (n === undefined) fail('illegal syncid specified');
        st.daemon.syncid = n;
        stopSyncid = n;
        break;
      }
      case 'timeout': setOpt('timeout'); break;
      case 'daemon': setOpt('daemon'); break;
      case 'stats': setOpt('stats'); st.format.stats = true; break;
      case 'rate': setOpt('rate'); st.format.rate = true; break;
      case 'thresholds': setOpt('thresholds'); st.format.thresholds = true; break;
      case 'persistent-conn': setOpt('persistent-conn'); st.format.persistentConn = true; break;
      case 'nosort': setOpt('nosort'); st.format.nosort = true; break;
      case 'sort': break;
      case 'X': setOpt('exact'); st.format.exact = true; break;
      case '6':
        if (!st.fwmark) fail('-6 used before -f\n');
        st.af = 6;
        st.netmask = 128;
        break;
      case 'o': setOpt('ops'); st.flags |= SvcFlag.ONEPACKET; break;
      case 'pe': setOpt('pe'); st.pe = arg.slice(0, 15); break;
      case 'b': setOpt('sched-flags'); schedFlagsArg = arg.slice(0, 127); break;
      case 'mcast-group': {
        setOpt('mcast-group');
        if (arg.includes(':')) {
          const g = parseIpv6(arg);
          if (!g || g[0] >>> 8 !== 0xff) fail(`invalid IPv6 mcast-group \`${arg}'`);
          st.daemon.group = formatIpv6(g);
        } else {
          const g = ipv4FromText(arg);
          if (g === undefined || g >>> 28 !== 0xe) fail(`invalid IPv4 mcast-group \`${arg}'`);
          st.daemon.group = ipv4ToText(g);
        }
        break;
      }
      case 'mcast-port': {
        setOpt('mcast-port');
        const n = toNumber(arg, 1, 65535);
        if (n === undefined) fail('illegal mcast-port specified');
        st.daemon.port = n;
        break;
      }
      case 'mcast-ttl': {
        setOpt('mcast-ttl');
        const n = toNumber(arg, 1, 255);
        if (n === undefined) fail('illegal mcast-ttl specified');
        st.daemon.ttl = n;
        break;
      }
      case 'sync-maxlen': {
        setOpt('sync-maxlen');
        const n = toNumber(arg, 1, 65535 - 20 - 8);
        if (n === undefined) fail('illegal sync-maxlen specified');
        st.daemon.maxlen = n;
        break;
      }
      case 'tun-info': setOpt('tun-info'); st.format.tunInfo = true; break;
      case 'tun-type':
        setOpt('tun-type');
        if (arg !== 'ipip' && arg !== 'gue' && arg !== 'gre') fail('illegal tunnel type specified');
        st.tunType = arg;
        break;
      case 'tun-port': {
        setOpt('tun-port');
        const n = toNumber(arg, 1, 65535);
        if (n === undefined) fail('illegal tunnel port specified');
        st.tunPort = n;
        break;
      }
      case 'tun-nocsum': setOpt('tun-nocsum'); st.tunCsum = 'nocsum'; break;
      case 'tun-csum': setOpt('tun-csum'); st.tunCsum = 'csum'; break;
      case 'tun-remcsum': setOpt('tun-remcsum'); st.tunCsum = 'remcsum'; break;
      default:
        // A second command option: ipvsadm's option loop has no case for it.
        fail(`invalid option \`${occ.token}'`);
    }
  }

  const left = [...sc.leftovers];
  if (cmd === 'set') {
    if (left.length < 3) fail('--set option requires 3 timeout values');
    const [a, b, c] = left.splice(0, 3);
    st.setValues = [parseTimeout(a, 0, MAX_TIMEOUT), parseTimeout(b, 0, MAX_TIMEOUT), parseTimeout(c, 0, MAX_TIMEOUT)];
  }
  if (left.length > 0) fail(`unexpected argument ${left[0]}`);
  if (schedFlagsArg !== '') {
    st.flags &= ~(SvcFlag.SCHED1 | SvcFlag.SCHED2 | SvcFlag.SCHED3);
    st.flags |= parseSchedFlags(st.scheduler, schedFlagsArg);
  }

  genericOptCheck(cmd, st.options);

  if (cmd === 'add-service' || cmd === 'edit-service') {
    if (!st.fwmark && !st.port && !(st.flags & SvcFlag.PERSISTENT)) fail('Zero port specified for non-persistent service');
    if (st.flags & SvcFlag.ONEPACKET && !st.fwmark && st.protocol !== 'udp') fail('One-Packet Scheduling is only for UDP virtual services');
    if (st.scheduler === '') st.scheduler = Defaults.scheduler;
  }
  if (cmd === 'start-daemon' && st.daemon.mcastIfn === '') st.daemon.mcastIfn = 'eth0';
  if (cmd === 'add-server' || cmd === 'edit-server') {
    if (!st.fwmark && (st.method === 'tunnel' || st.method === 'route')) st.destPort = st.port;
    if (st.destAf !== st.af && st.method !== 'tunnel') fail('Different address family is allowed only for tunneling servers');
    const tunOpts: OptName[] = ['tun-type', 'tun-port', 'tun-nocsum', 'tun-csum', 'tun-remcsum'];
    if (tunOpts.some((o) => st.options.has(o)) && st.method !== 'tunnel') fail('Tunnel options conflict with forward method');
    tunnelOptCheck(st.tunType, st.options);
  }
  if (cmd === 'list') {
    const o = st.options;
    if (((o.has('connection') || o.has('timeout') || o.has('daemon')) && (o.has('stats') || o.has('rate') || o.has('thresholds'))) ||
        ((o.has('timeout') || o.has('daemon')) && o.has('persistent-conn'))) {
      fail('options conflicts in the list command');
    }
  }
  return toCommand(cmd, st, opts, program, stopSyncid);
}

function serviceKey(st: State): ServiceKey {
  if (st.fwmark) return { af: st.af, protocol: 'tcp', addr: '', port: 0, fwmark: st.fwmark };
  return { af: st.af, protocol: st.protocol ?? 'tcp', addr: st.addr, port: st.port, fwmark: 0 };
}

function serviceConfig(st: State): ServiceConfig {
  return {
    ...serviceKey(st),
    scheduler: st.scheduler,
    flags: st.flags,
    timeout: st.timeout,
    netmask: st.af === 6 ? String(st.netmask) : ipv4ToText(st.netmask),
    pe: st.pe,
  };
}

function destConfig(st: State): DestConfig {
  return {
    af: st.destAf || st.af, addr: st.destAddr, port: st.destPort, method: st.method, weight: st.weight,
    uThreshold: st.uThreshold, lThreshold: st.lThreshold, tunType: st.tunType,
    tunPort: st.tunType === 'gue' ? st.tunPort : 0, tunCsum: st.tunCsum,
  };
}

function toCommand(cmd: CmdName, st: State, opts: ParseOptions, program: string, stopSyncid: number | undefined): Command {
  switch (cmd) {
    case 'add-service': return { kind: 'add-service', svc: serviceConfig(st) };
    case 'edit-service': return { kind: 'edit-service', svc: serviceConfig(st) };
    case 'delete-service': return { kind: 'del-service', key: serviceKey(st) };
    case 'flush': return { kind: 'flush' };
    case 'add-server': return { kind: 'add-dest', key: serviceKey(st), dest: destConfig(st) };
    case 'edit-server': return { kind: 'edit-dest', key: serviceKey(st), dest: destConfig(st) };
    case 'delete-server': return { kind: 'del-dest', key: serviceKey(st), dest: { af: st.destAf || st.af, addr: st.destAddr, port: st.destPort } };
    case 'list': {
      const o = st.options;
      const target: ListTarget = o.has('connection') ? { type: 'conns' }
        : o.has('service-address') ? { type: 'service', key: serviceKey(st) }
        : o.has('timeout') ? { type: 'timeout' }
        : o.has('daemon') ? { type: 'daemon' }
        : { type: 'all' };
      return { kind: 'list', target, format: st.format };
    }
    case 'save': return { kind: 'save', format: st.format };
    case 'zero': return st.options.has('service-address') ? { kind: 'zero', key: serviceKey(st) } : { kind: 'zero' };
    case 'set': {
      const [tcp, tcpfin, udp] = st.setValues!;
      return { kind: 'set-timeout', tcp, tcpfin, udp };
    }
    case 'start-daemon': return { kind: 'start-daemon', daemon: st.daemon };
    case 'stop-daemon':
      return stopSyncid === undefined ? { kind: 'stop-daemon', state: st.daemon.state } : { kind: 'stop-daemon', state: st.daemon.state, syncid: stopSyncid };
    case 'restore':
      if (opts.readingStdin) tryhelp(program);
      return { kind: 'restore' };
  }
}
