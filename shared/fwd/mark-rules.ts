// The mark-rules file: iptables mangle MARK rule lines (as operators already write them for kernel IPVS fwmark
// services) parsed into the MarkRule list that classifier.ts compiles, and written back in the same syntax.
//
// Accepted, one rule per line (a trailing `\` continues a line; `#` starts a comment; quotes as in sh):
//   [iptables|/sbin/iptables|iptables-legacy|iptables-nft] [-w [N]] [-4] [-t mangle] [-A PREROUTING | -I PREROUTING [N]]
//   [!] -s ADDR[/LEN|/MASK][,ADDR...]   [!] -d ADDR[/LEN|/MASK][,ADDR...]   [!] -p tcp|udp|sctp|icmp|all|NUM
//   [!] -i IFACE (kept, not evaluated: see MarkRule.inIface)
//   -m tcp|udp|sctp   [!] --sport|--dport P[:P]   (P a number or a service name; `:P` and `P:` are open ranges)
//   -m multiport      [!] --sports|--dports P[,P|P:P...]
//   -m comment --comment TEXT
//   -j MARK --set-mark V[/M] | --set-xmark V[/M] | --and-mark B | --or-mark B | --xor-mark B
//   -j ACCEPT | -j RETURN   (end the chain: later rules do not touch the mark)
//   -F [PREROUTING]         (flush: forget the rules read so far, as a script that starts with a flush does)
// Long option spellings (--source, --destination, --protocol, --jump, --append, ...) and the old `-d ! ADDR`
// negation are accepted. Numbers are read as C's strtoul(base 0) reads them (0x.. hex, 0.. octal).
// Comma lists of addresses expand into one rule per (source, destination) pair, as iptables does.
// Anything else is an error naming the line and the token; nothing is silently skipped.
import { FALLBACK_SERVICES } from '../ipvsadm/names.ts';
import type { AddrMatch, IfaceMatch, MarkRule, MarkRuleProblem, PortMatch, PortRange } from './classifier.ts';
import { MarkRulesError, MarkRulesErrorCode, MarkTarget, isPrefixMask } from './classifier.ts';
import { ipv4FromText, ipv4ToText, prefixToMask } from '../net/addr.ts';

/** Transport protocols whose ports a rule may match. */
export type PortProtocol = 'tcp' | 'udp' | 'sctp';

/** Options of {@link parseMarkRules}. */
export interface ParseMarkRulesOptions {
  /** Name used in messages (`FILE:LINE: ...`); default `mark-rules`. */
  source?: string;
  /**
   * getservbyname for `--dport http`; undefined when unknown. Default: a small built-in table (http, https, ssh,
   * ... for tcp and udp); tsvsd may pass one built from /etc/services.
   */
  serviceToPort?: (name: string, proto: PortProtocol) => number | undefined;
}

const PROTO_NUM: Readonly<Record<string, number>> = { all: 0, icmp: 1, tcp: 6, udp: 17, sctp: 132 };
const PROTO_NAME: Readonly<Record<number, string>> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 132: 'sctp' };
const FULL = 0xffffffff;

function fallbackService(name: string, proto: PortProtocol): number | undefined {
  return FALLBACK_SERVICES.find((s) => s.proto === proto && (s.name === name || s.aliases.includes(name)))?.port;
}

/** A line's problem; thrown inside the line parser and collected per line. */
class LineError {
  readonly token: string | null;
  readonly text: string;
  constructor(text: string, token: string | null = null) {
    this.text = text;
    this.token = token;
  }
}

/** Splits one logical line into words as sh would (quotes, backslashes); `#` at a word start ends the line. */
function tokenize(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  const n = line.length;
  while (i < n) {
    while (i < n && (line[i] === ' ' || line[i] === '\t')) i++;
    if (i >= n || line[i] === '#') break;
    let w = '';
    while (i < n && line[i] !== ' ' && line[i] !== '\t') {
      const c = line[i];
      if (c === "'") {
        const e = line.indexOf("'", i + 1);
        if (e < 0) throw new LineError('unterminated quote', line.slice(i));
        w += line.slice(i + 1, e);
        i = e + 1;
      } else if (c === '"') {
        i++;
        while (i < n && line[i] !== '"') {
          if (line[i] === '\\' && i + 1 < n && '"\\$`'.includes(line[i + 1])) i++;
          w += line[i++];
        }
        if (i >= n) throw new LineError('unterminated quote', w);
        i++;
      } else if (c === '\\' && i + 1 < n) {
        w += line[i + 1];
        i += 2;
      } else {
        w += c;
        i++;
      }
    }
    out.push(w);
  }
  return out;
}

/** C strtoul(base 0) for a whole word, limited to uint32; undefined when it is not one. */
function parseU32(s: string): number | undefined {
  let v: number;
  if (/^0[xX][0-9a-fA-F]+$/.test(s)) v = parseInt(s.slice(2), 16);
  else if (/^0[0-7]*$/.test(s)) v = parseInt(s, 8);
  else if (/^[1-9][0-9]*$/.test(s)) v = Number(s);
  else return undefined;
  return v <= FULL ? v : undefined;
}

function parseAddr(text: string, opt: string, invert: boolean): AddrMatch {
  const slash = text.indexOf('/');
  const host = slash < 0 ? text : text.slice(0, slash);
  const addr = ipv4FromText(host);
  if (addr === undefined) {
    if (/^[A-Za-z]/.test(host)) throw new LineError(`host name "${host}" for ${opt}: tsvs does not resolve names, write the address`, text);
    throw new LineError(`bad address "${text}" for ${opt}`, text);
  }
  let mask = FULL;
  if (slash >= 0) {
    const m = text.slice(slash + 1);
    const dotted = ipv4FromText(m);
    if (dotted !== undefined) mask = dotted;
    else if (/^\d{1,2}$/.test(m) && Number(m) <= 32) mask = prefixToMask(Number(m));
    else throw new LineError(`bad mask "${m}" for ${opt}`, text);
  }
  return { addr: (addr & mask) >>> 0, mask, invert };
}

function parsePort(s: string, opt: string, proto: PortProtocol, resolve: (name: string, proto: PortProtocol) => number | undefined): number {
  if (/^\d+$/.test(s)) {
    const v = Number(s);
    if (v <= 65535) return v;
    throw new LineError(`port "${s}" out of range for ${opt}`, s);
  }
  const v = /^[A-Za-z][\w.+-]*$/.test(s) ? resolve(s, proto) : undefined;
  if (v === undefined) throw new LineError(`bad port "${s}" for ${opt}`, s);
  return v;
}

function parseRange(s: string, opt: string, proto: PortProtocol, resolve: (name: string, proto: PortProtocol) => number | undefined): PortRange {
  const c = s.indexOf(':');
  if (c < 0) {
    const p = parsePort(s, opt, proto, resolve);
    return { lo: p, hi: p };
  }
  const lo = c === 0 ? 0 : parsePort(s.slice(0, c), opt, proto, resolve);
  const hi = c === s.length - 1 ? 65535 : parsePort(s.slice(c + 1), opt, proto, resolve);
  if (lo > hi) throw new LineError(`invalid port range "${s}" for ${opt} (min > max)`, s);
  return { lo, hi };
}

/** Parses `V` or `V/M` (strtoul base 0 each); mask defaults to 0xffffffff. */
function parseMarkMask(s: string, opt: string, allowMask: boolean): { value: number; mask: number } {
  const slash = s.indexOf('/');
  const v = parseU32(slash < 0 ? s : s.slice(0, slash));
  const m = slash < 0 ? FULL : allowMask ? parseU32(s.slice(slash + 1)) : undefined;
  if (v === undefined || m === undefined) throw new LineError(`bad mark value "${s}" for ${opt}`, s);
  return { value: v, mask: m };
}

type Command = { kind: 'append' } | { kind: 'insert'; pos: number } | { kind: 'flush' };

interface LineResult {
  command: Command;
  rules: MarkRule[];
}

const OPT_ALIASES: Readonly<Record<string, string>> = {
  '--source': '-s', '--src': '-s', '--destination': '-d', '--dst': '-d', '--protocol': '-p', '--jump': '-j',
  '--table': '-t', '--append': '-A', '--insert': '-I', '--flush': '-F', '--in-interface': '-i', '--match': '-m',
  '--wait': '-w', '--ipv4': '-4', '--source-port': '--sport', '--destination-port': '--dport',
  '--source-ports': '--sports', '--destination-ports': '--dports', '--out-interface': '-o', '--ipv6': '-6',
};
const NEGATABLE = new Set(['-s', '-d', '-p', '-i', '--sport', '--dport', '--sports', '--dports']);
const MARK_OPTS = new Set(['--set-mark', '--set-xmark', '--and-mark', '--or-mark', '--xor-mark']);
const PORT_MODULES = new Set(['tcp', 'udp', 'sctp']);

function parseLine(words: string[], resolve: (name: string, proto: PortProtocol) => number | undefined): LineResult {
  let i = 0;
  if (i < words.length && /^(?:\S*\/)?iptables(?:-legacy|-nft)?$/.test(words[i])) i++;
  if (i >= words.length) throw new LineError('no command after "iptables"', words[0] ?? null);
  let command: Command | null = null;
  let table: string | null = null;
  let protocol: number | null = null;
  let protocolInvert = false;
  let srcText: string | null = null;
  let dstText: string | null = null;
  let srcInv = false;
  let dstInv = false;
  let iface: IfaceMatch | null = null;
  const modules = new Set<string>();
  let comment: string | null = null;
  let target: string | null = null;
  let mark: { value: number; mask: number } | null = null;
  let markOpt: string | null = null;
  const portWords = new Map<string, { text: string; invert: boolean }>();
  let neg: string | null = null;

  const seen = new Set<string>();
  const once = (opt: string, tok: string): void => {
    if (seen.has(opt)) throw new LineError(`"${tok}" given twice`, tok);
    seen.add(opt);
  };
  const value = (tok: string): string => {
    if (i >= words.length || (words[i].startsWith('-') && words[i].length > 1 && !/^-\d/.test(words[i]))) throw new LineError(`missing value for "${tok}"`, tok);
    return words[i++];
  };
  const setCommand = (c: Command, tok: string): void => {
    if (command !== null) throw new LineError(`more than one command ("${tok}")`, tok);
    command = c;
  };
  const chain = (tok: string): void => {
    const c = value(tok);
    if (c !== 'PREROUTING') throw new LineError(`chain "${c}" not supported: mark rules belong in PREROUTING`, c);
  };

  while (i < words.length) {
    const tok = words[i++];
    if (tok === '!') {
      if (neg !== null) throw new LineError('"!" given twice', tok);
      neg = tok;
      continue;
    }
    const opt = OPT_ALIASES[tok] ?? tok;
    let invert = false;
    if (neg !== null) {
      if (!NEGATABLE.has(opt)) throw new LineError(`"!" cannot negate "${tok}"`, tok);
      invert = true;
      neg = null;
    } else if (NEGATABLE.has(opt) && words[i] === '!') {
      invert = true; // old-style `-d ! ADDR`
      i++;
    }
    switch (opt) {
      case '-t': {
        once('-t', tok);
        table = value(tok);
        if (table !== 'mangle') throw new LineError(`table "${table}" not supported: MARK rules live in -t mangle`, table);
        break;
      }
      case '-A':
        setCommand({ kind: 'append' }, tok);
        chain(tok);
        break;
      case '-I': {
        setCommand({ kind: 'insert', pos: 1 }, tok);
        chain(tok);
        if (i < words.length && /^\d+$/.test(words[i])) {
          const pos = Number(words[i++]);
          if (pos < 1) throw new LineError(`bad rule number "${words[i - 1]}" for ${tok}`, words[i - 1]);
          command = { kind: 'insert', pos };
        }
        break;
      }
      case '-F':
        setCommand({ kind: 'flush' }, tok);
        if (i < words.length && !words[i].startsWith('-')) chain(tok);
        break;
      case '-w':
        if (i < words.length && /^\d+$/.test(words[i])) i++;
        break;
      case '-4':
        break;
      case '-6':
        throw new LineError('IPv6 rules are not supported (tsvs fwmark rules are IPv4)', tok);
      case '-s':
        once('-s', tok);
        srcText = value(tok);
        srcInv = invert;
        break;
      case '-d':
        once('-d', tok);
        dstText = value(tok);
        dstInv = invert;
        break;
      case '-p': {
        once('-p', tok);
        const p = value(tok);
        const num = PROTO_NUM[p.toLowerCase()] ?? (/^\d+$/.test(p) && Number(p) <= 255 ? Number(p) : undefined);
        if (num === undefined) throw new LineError(`unknown protocol "${p}"`, p);
        if (num === 0 && invert) throw new LineError('rule would never match protocol', p);
        protocol = num;
        protocolInvert = invert;
        break;
      }
      case '-i':
        once('-i', tok);
        iface = { name: value(tok), invert };
        break;
      case '-o':
        throw new LineError(`"${tok}" cannot be used with PREROUTING`, tok);
      case '-m': {
        const m = value(tok);
        if (!PORT_MODULES.has(m) && m !== 'multiport' && m !== 'comment') throw new LineError(`match "${m}" not supported (only tcp, udp, sctp, multiport, comment)`, m);
        modules.add(m);
        break;
      }
      case '--comment':
        if (!modules.has('comment')) throw new LineError(`"${tok}" needs -m comment before it`, tok);
        once(opt, tok);
        comment = value(tok);
        break;
      case '--sport':
      case '--dport':
      case '--sports':
      case '--dports':
        if (opt.endsWith('s') && !modules.has('multiport')) throw new LineError(`"${tok}" needs -m multiport before it`, tok);
        once(opt.slice(0, 7), tok);
        portWords.set(opt, { text: value(tok), invert });
        break;
      case '-j': {
        once('-j', tok);
        target = value(tok);
        if (target !== 'MARK' && target !== 'ACCEPT' && target !== 'RETURN') throw new LineError(`target "${target}" not supported (only MARK, ACCEPT, RETURN)`, target);
        break;
      }
      default: {
        if (MARK_OPTS.has(opt)) {
          if (target !== 'MARK') throw new LineError(`"${tok}" needs -j MARK before it`, tok);
          if (markOpt !== null) throw new LineError(`MARK: "${tok}" given with "${markOpt}"`, tok);
          markOpt = tok;
          const v = value(tok);
          if (opt === '--set-xmark') mark = parseMarkMask(v, tok, true);
          else if (opt === '--set-mark') {
            const m = parseMarkMask(v, tok, true);
            mark = { value: m.value, mask: (m.value | m.mask) >>> 0 };
          } else {
            const b = parseMarkMask(v, tok, false).value;
            mark = opt === '--and-mark' ? { value: 0, mask: ~b >>> 0 } : opt === '--or-mark' ? { value: b, mask: b } : { value: b, mask: 0 };
          }
          break;
        }
        throw new LineError(tok.startsWith('-') ? `unknown option "${tok}"` : `unexpected word "${tok}"`, tok);
      }
    }
  }
  if (neg !== null) throw new LineError('"!" not followed by an option', neg);
  const cmd: Command = (command as Command | null) ?? { kind: 'append' };
  if (cmd.kind === 'flush') {
    if ([...seen].some((o) => o !== '-t') || target !== null || modules.size > 0) throw new LineError('-F takes no rule', words[words.length - 1]);
    return { command: cmd, rules: [] };
  }
  if (target === null) throw new LineError('missing -j MARK', null);
  if (target === 'MARK' && mark === null) throw new LineError('MARK: One of the --set-xmark, --{and,or,xor,set}-mark options is required', target);
  const protoName = protocol === null ? null : PROTO_NAME[protocol];
  for (const m of modules) {
    if (PORT_MODULES.has(m) && (protoName !== m || protocolInvert)) throw new LineError(`-m ${m} needs -p ${m}`, m);
  }
  const ports: { sport: PortMatch | null; dport: PortMatch | null } = { sport: null, dport: null };
  for (const [opt, w] of portWords) {
    if (protoName === null || !PORT_MODULES.has(protoName) || protocolInvert) throw new LineError(`"${opt}" needs -p tcp, -p udp or -p sctp`, opt);
    const multiport = opt.endsWith('s');
    const parts = multiport ? w.text.split(',') : [w.text];
    const ranges = parts.map((p) => parseRange(p, opt, protoName as PortProtocol, resolve));
    ports[opt.startsWith('--s') ? 'sport' : 'dport'] = { ranges, invert: w.invert, multiport };
  }
  const srcs = srcText === null ? [null] : srcText.split(',');
  const dsts = dstText === null ? [null] : dstText.split(',');
  if ((srcs.length > 1 && srcInv) || (dsts.length > 1 && dstInv)) throw new LineError('! not allowed with multiple source or destination IP addresses', srcs.length > 1 && srcInv ? srcText : dstText);
  const addr = (t: string | null, opt: string, inv: boolean): AddrMatch | null => {
    if (t === null) return null;
    const a = parseAddr(t, opt, inv);
    return a.mask === 0 && !inv ? null : a;
  };
  const rules: MarkRule[] = [];
  for (const s of srcs) {
    for (const d of dsts) {
      rules.push({
        protocol: protocol ?? 0,
        protocolInvert,
        src: addr(s, '-s', srcInv),
        dst: addr(d, '-d', dstInv),
        sport: ports.sport,
        dport: ports.dport,
        inIface: iface,
        comment,
        target: target as MarkTarget,
        value: mark?.value ?? 0,
        mask: mark?.mask ?? 0,
      });
    }
  }
  return { command: cmd, rules };
}

/**
 * Parses a mark-rules text into the chain's rule list, applying `-A`, `-I [N]` and `-F` in file order exactly as
 * running the lines through iptables would.
 * @throws MarkRulesError (code SYNTAX) listing every bad line as `SOURCE:LINE: message`, each with its token.
 */
export function parseMarkRules(text: string, opts: ParseMarkRulesOptions = {}): MarkRule[] {
  const source = opts.source ?? 'mark-rules';
  const resolve = opts.serviceToPort ?? fallbackService;
  const problems: MarkRuleProblem[] = [];
  const chain: MarkRule[] = [];
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const first = n + 1;
    let line = lines[n].replace(/\r$/, '');
    while (/(?:^|[^\\])(?:\\\\)*\\$/.test(line) && n + 1 < lines.length) line = line.slice(0, -1) + ' ' + lines[++n].replace(/\r$/, '');
    try {
      const words = tokenize(line);
      if (words.length === 0) continue;
      const r = parseLine(words, resolve);
      if (r.command.kind === 'flush') chain.length = 0;
      else if (r.command.kind === 'append') chain.push(...r.rules);
      else {
        if (r.command.pos > chain.length + 1) throw new LineError(`index of insertion too big (${r.command.pos})`, String(r.command.pos));
        chain.splice(r.command.pos - 1, 0, ...r.rules);
      }
    } catch (e) {
      if (!(e instanceof LineError)) throw e;
      problems.push({ at: first, token: e.token, message: `${source}:${first}: ${e.text}` });
    }
  }
  if (problems.length > 0) throw new MarkRulesError(MarkRulesErrorCode.SYNTAX, problems);
  return chain;
}

function fmtAddr(a: AddrMatch): string {
  return `${ipv4ToText(a.addr)}/${isPrefixMask(a.mask) ? countOnes(a.mask) : ipv4ToText(a.mask)}`;
}

function countOnes(v: number): number {
  let c = 0;
  for (let x = v >>> 0; x !== 0; x = (x & (x - 1)) >>> 0) c++;
  return c;
}

function fmtPorts(p: PortMatch): string {
  return p.ranges.map((g) => (g.lo === g.hi ? String(g.lo) : `${g.lo}:${g.hi}`)).join(',');
}

function quote(s: string): string {
  return /^[\w.,:/@%+=-]+$/.test(s) ? s : `"${s.replace(/["\\$`]/g, '\\$&')}"`;
}

const hex = (v: number): string => `0x${(v >>> 0).toString(16)}`;

/**
 * One rule as an `-A PREROUTING ...` line in iptables-save order (-s -d -i -p, matches, -j); `--set-mark N` for a
 * full-mask MARK, `--set-xmark 0xV/0xM` otherwise. {@link parseMarkRules} reads it back to an equal rule.
 */
export function formatMarkRule(r: MarkRule): string {
  const w: string[] = ['-A', 'PREROUTING'];
  const not = (inv: boolean): void => {
    if (inv) w.push('!');
  };
  if (r.src !== null) {
    not(r.src.invert);
    w.push('-s', fmtAddr(r.src));
  }
  if (r.dst !== null) {
    not(r.dst.invert);
    w.push('-d', fmtAddr(r.dst));
  }
  if (r.inIface !== null) {
    not(r.inIface.invert);
    w.push('-i', quote(r.inIface.name));
  }
  if (r.protocol !== 0) {
    not(r.protocolInvert);
    w.push('-p', PROTO_NAME[r.protocol] ?? String(r.protocol));
  }
  const single = [['--sport', r.sport], ['--dport', r.dport]] as const;
  if (single.some(([, p]) => p !== null && !p.multiport)) w.push('-m', PROTO_NAME[r.protocol]);
  for (const [opt, p] of single) {
    if (p === null || p.multiport) continue;
    not(p.invert);
    w.push(opt, fmtPorts(p));
  }
  for (const [opt, p] of single) {
    if (p === null || !p.multiport) continue;
    w.push('-m', 'multiport');
    not(p.invert);
    w.push(`${opt}s`, fmtPorts(p));
  }
  if (r.comment !== null) w.push('-m', 'comment', '--comment', quote(r.comment));
  w.push('-j', r.target);
  if (r.target === MarkTarget.MARK) {
    if (r.mask === FULL) w.push('--set-mark', String(r.value));
    else w.push('--set-xmark', `${hex(r.value)}/${hex(r.mask)}`);
  }
  return w.join(' ');
}

/** The whole list, one {@link formatMarkRule} line each, newline-terminated (empty list: empty string). */
export function formatMarkRules(rules: readonly MarkRule[]): string {
  return rules.map((r) => formatMarkRule(r) + '\n').join('');
}
