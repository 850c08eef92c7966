// classifier: iptables mangle MARK rules parsed, compiled and matched as netfilter would, for fwmark services.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { AddrMatch, MarkRule, PortMatch } from '../../shared/fwd/classifier.ts';
import { MarkRulesError, MarkRulesErrorCode, compileMarkRules } from '../../shared/fwd/classifier.ts';
import { formatMarkRules, parseMarkRules } from '../../shared/fwd/mark-rules.ts';
import { fwmarkVips, type FwdService } from '../../shared/fwd/table.ts';
import { mulberry32 } from '../support/sched.ts';
import { ipv4FromText, ipv4ToText, prefixToMask } from '../../shared/net/addr.ts';

const TCP = 6;
const UDP = 17;
const ICMP = 1;
const CLIENT = ip('198.51.100.7');

function ip(s: string): number {
  const v = ipv4FromText(s);
  if (v === undefined) throw new Error(`bad test address ${s}`);
  return v;
}

/** Compiles `text` and returns a (proto, daddr, dport, saddr?, sport?) → mark probe. */
function classifier(text: string): (proto: number, daddr: string, dport: number, saddr?: string, sport?: number) => number {
  const c = compileMarkRules(parseMarkRules(text));
  return (proto, daddr, dport, saddr, sport = 40000) => c.classify(proto, saddr === undefined ? CLIENT : ip(saddr), ip(daddr), sport, dport);
}

/** The problems of a text that must not parse. */
function problems(text: string): { at: number; token: string | null; message: string }[] {
  try {
    parseMarkRules(text, { source: 'rules.conf' });
  } catch (e) {
    expect(e).toBeInstanceOf(MarkRulesError);
    expect((e as MarkRulesError).code).toBe(MarkRulesErrorCode.SYNTAX);
    return (e as MarkRulesError).problems.map((p) => ({ ...p }));
  }
  throw new Error('parsed');
}

/** The naive reference: walk the rule objects in order, test each field literally, fold the MARK rewrites. */
function reference(rules: readonly MarkRule[], proto: number, saddr: number, daddr: number, sport: number, dport: number): number {
  const addrOk = (a: AddrMatch | null, v: number): boolean => a === null || (((v & a.mask) >>> 0) === a.addr) !== a.invert;
  const portOk = (p: PortMatch | null, v: number): boolean => p === null || p.ranges.some((g) => g.lo <= v && v <= g.hi) !== p.invert;
  let mark = 0;
  for (const r of rules) {
    if (r.protocol !== 0 && (r.protocol === proto) === r.protocolInvert) continue;
    if (!addrOk(r.src, saddr) || !addrOk(r.dst, daddr) || !portOk(r.sport, sport) || !portOk(r.dport, dport)) continue;
    if (r.target !== 'MARK') return mark;
    mark = ((mark & ~r.mask) ^ r.value) >>> 0;
  }
  return mark;
}

describe('classifier: behaviour', () => {
  it('classifier: ipvsadm(8) example 2 — -d 207.175.44.110/31 marks .110 and .111 and nothing else', () => {
    const file = readFileSync(resolve(import.meta.dirname, '../fixtures/ipvsadm/02-ipvsadm-man-example2-fwmark.txt'), 'utf8');
    const lines = file.split('\n').filter((l) => l.startsWith('iptables'));
    expect(lines).toEqual(['iptables  -A PREROUTING -t mangle -d 207.175.44.110/31 -j MARK --set-mark 1']);
    const mark = classifier(lines.join('\n'));
    for (const [proto, port] of [[TCP, 80], [UDP, 53], [TCP, 443], [ICMP, 0]]) {
      expect(mark(proto, '207.175.44.110', port)).toBe(1);
      expect(mark(proto, '207.175.44.111', port)).toBe(1);
      expect(mark(proto, '207.175.44.109', port)).toBe(0);
      expect(mark(proto, '207.175.44.112', port)).toBe(0);
    }
  });

  it('classifier: the seeds\' HTTP+HTTPS of one VIP get one mark (one persistent fwmark service), nothing else does', () => {
    const twoRules = classifier(`
# HTTP and HTTPS of the VIP are one service: -A -f 1 -s rr -p 600
iptables -t mangle -A PREROUTING -d 192.168.0.156 -p tcp --dport 80 -j MARK --set-mark 1
iptables -t mangle -A PREROUTING -d 192.168.0.156 -p tcp --dport 443 -j MARK --set-mark 1
`);
    const multiport = classifier('-A PREROUTING -t mangle -p tcp -d 192.168.0.156 -m multiport --dports 80,443 -j MARK --set-mark 1');
    for (const mark of [twoRules, multiport]) {
      expect(mark(TCP, '192.168.0.156', 80)).toBe(1);
      expect(mark(TCP, '192.168.0.156', 443)).toBe(1);
      expect(mark(TCP, '192.168.0.156', 22)).toBe(0);
      expect(mark(UDP, '192.168.0.156', 443)).toBe(0);
      expect(mark(TCP, '192.168.0.157', 80)).toBe(0);
    }
  });

  it('classifier: a later matching MARK rule overrides an earlier one, as netfilter does (MARK does not end the chain)', () => {
    const mark = classifier(`
-A PREROUTING -d 10.0.0.0/24 -j MARK --set-mark 1
-A PREROUTING -d 10.0.0.1 -p tcp --dport 22 -j MARK --set-mark 2
`);
    expect(mark(TCP, '10.0.0.1', 22)).toBe(2);
    expect(mark(TCP, '10.0.0.1', 80)).toBe(1);
    expect(mark(TCP, '10.0.0.2', 22)).toBe(1);
    expect(mark(TCP, '10.0.1.1', 22)).toBe(0);
  });

  it('classifier: first match wins when the script says so with -j ACCEPT (or RETURN) after its MARK', () => {
    const mark = classifier(`
-A PREROUTING -d 10.0.0.1 -p tcp --dport 22 -j MARK --set-mark 2
-A PREROUTING -d 10.0.0.1 -p tcp --dport 22 -j ACCEPT
-A PREROUTING -d 10.0.0.2 -j RETURN
-A PREROUTING -d 10.0.0.0/24 -j MARK --set-mark 1
`);
    expect(mark(TCP, '10.0.0.1', 22)).toBe(2);
    expect(mark(TCP, '10.0.0.1', 80)).toBe(1);
    expect(mark(TCP, '10.0.0.2', 80)).toBe(0);
    expect(mark(UDP, '10.0.0.3', 53)).toBe(1);
  });

  it('classifier: --set-mark 0 in a later rule unmarks (0 = no fwmark service)', () => {
    const mark = classifier('-A PREROUTING -d 10.0.0.0/24 -j MARK --set-mark 7\n-A PREROUTING -s 10.9.0.0/16 -j MARK --set-mark 0');
    expect(mark(TCP, '10.0.0.5', 80)).toBe(7);
    expect(mark(TCP, '10.0.0.5', 80, '10.9.1.1')).toBe(0);
  });

  it('classifier: negation of -d, -s, -p, --dport and --dports (both "! -d X" and the old "-d ! X")', () => {
    const mark = classifier(`
-A PREROUTING ! -d 10.0.0.0/8 -j MARK --set-mark 1
-A PREROUTING -d 10.0.0.1 -s ! 192.168.0.0/16 -j MARK --set-mark 2
-A PREROUTING -d 10.0.0.2 ! -p tcp -j MARK --set-mark 3
-A PREROUTING -d 10.0.0.3 -p tcp ! --dport 80 -j MARK --set-mark 4
-A PREROUTING -d 10.0.0.4 -p udp -m multiport ! --dports 53,123 -j MARK --set-mark 5
`);
    expect(mark(TCP, '11.0.0.1', 80)).toBe(1);
    expect(mark(TCP, '10.0.0.9', 80)).toBe(0);
    expect(mark(TCP, '10.0.0.1', 80)).toBe(2);
    expect(mark(TCP, '10.0.0.1', 80, '192.168.3.4')).toBe(0);
    expect(mark(UDP, '10.0.0.2', 80)).toBe(3);
    expect(mark(ICMP, '10.0.0.2', 0)).toBe(3);
    expect(mark(TCP, '10.0.0.2', 80)).toBe(0);
    expect(mark(TCP, '10.0.0.3', 81)).toBe(4);
    expect(mark(TCP, '10.0.0.3', 80)).toBe(0);
    expect(mark(UDP, '10.0.0.3', 81)).toBe(0);
    expect(mark(UDP, '10.0.0.4', 54)).toBe(5);
    expect(mark(UDP, '10.0.0.4', 53)).toBe(0);
    expect(mark(UDP, '10.0.0.4', 123)).toBe(0);
  });

  it('classifier: prefixes at the ends of the address space (an inverted /32 on .254 still matches .255 and 0.0.0.0)', () => {
    const mark = classifier('-A PREROUTING ! -d 255.255.255.254 -j MARK --set-mark 1\n-A PREROUTING -d 0.0.0.0/32 -j MARK --set-mark 2');
    expect(['255.255.255.253', '255.255.255.254', '255.255.255.255', '0.0.0.0', '0.0.0.1'].map((a) => mark(TCP, a, 80))).toEqual([1, 0, 1, 2, 1]);
  });

  it('classifier: port ranges are inclusive; ":N" and "N:" are open ends; --sport matches the client port', () => {
    const mark = classifier(`
-A PREROUTING -d 10.0.0.1 -p tcp --dport 1000:2000 -j MARK --set-mark 1
-A PREROUTING -d 10.0.0.2 -p tcp --dport :1024 -j MARK --set-mark 2
-A PREROUTING -d 10.0.0.3 -p udp --destination-port 60000: -j MARK --set-mark 3
-A PREROUTING -d 10.0.0.4 -p tcp --sport 1024:65535 -j MARK --set-mark 4
`);
    expect([999, 1000, 1500, 2000, 2001].map((p) => mark(TCP, '10.0.0.1', p))).toEqual([0, 1, 1, 1, 0]);
    expect([0, 1024, 1025].map((p) => mark(TCP, '10.0.0.2', p))).toEqual([2, 2, 0]);
    expect([59999, 60000, 65535].map((p) => mark(UDP, '10.0.0.3', p))).toEqual([0, 3, 3]);
    expect(mark(TCP, '10.0.0.4', 80, undefined, 1023)).toBe(0);
    expect(mark(TCP, '10.0.0.4', 80, undefined, 1024)).toBe(4);
  });

  it('classifier: multiport lists mix ports, ranges and service names', () => {
    const mark = classifier('-A PREROUTING -p tcp -d 10.0.0.1 -m multiport --dports http,443,8000:8080 -j MARK --set-mark 9');
    expect([80, 443, 8000, 8042, 8080, 8081, 444].map((p) => mark(TCP, '10.0.0.1', p))).toEqual([9, 9, 9, 9, 9, 0, 0]);
  });

  it('classifier: masks follow xt_MARK — mark = (mark & ~mask) ^ value; --set-mark V/M clears V|M, so from 0 it gives V', () => {
    const rules = parseMarkRules(`
-A PREROUTING -d 10.0.0.1 -j MARK --set-mark 0x40/0x32
-A PREROUTING -d 10.0.0.2 -j MARK --set-mark 0x1/0xf
-A PREROUTING -d 10.0.0.2 -j MARK --or-mark 0x100
-A PREROUTING -d 10.0.0.2 -p tcp -j MARK --set-xmark 0x2/0xf
-A PREROUTING -d 10.0.0.3 -j MARK --set-mark 0xff
-A PREROUTING -d 10.0.0.3 -j MARK --and-mark 0x0f
-A PREROUTING -d 10.0.0.3 -j MARK --xor-mark 0x3
`);
    expect(rules[0]).toMatchObject({ value: 0x40, mask: 0x72 });
    const c = compileMarkRules(rules);
    expect(c.classify(UDP, CLIENT, ip('10.0.0.1'), 1, 1)).toBe(0x40);
    expect(c.classify(UDP, CLIENT, ip('10.0.0.2'), 1, 1)).toBe(0x101);
    expect(c.classify(TCP, CLIENT, ip('10.0.0.2'), 1, 1)).toBe(0x102);
    expect(c.classify(TCP, CLIENT, ip('10.0.0.3'), 1, 1)).toBe(0x0c);
  });

  it('classifier: -I [N], -F, comma lists (source outer, destination inner), continuations, quotes and comments', () => {
    const rules = parseMarkRules(`
iptables -t mangle -A PREROUTING -d 10.0.0.9 -j MARK --set-mark 99
iptables -t mangle -F
iptables -w -t mangle -A PREROUTING -d 10.0.0.1 -j MARK --set-mark 1   # trailing comment
iptables -t mangle -A PREROUTING -s 1.1.1.1,2.2.2.2 \\
         -d 10.0.0.3,10.0.0.4 -j MARK --set-mark 3
iptables -t mangle -I PREROUTING -d 10.0.0.0 -j MARK --set-mark 5
iptables -t mangle -I PREROUTING 3 -d 10.0.0.2 -m comment --comment 'web "front"' -j MARK --set-mark 2
`);
    expect(rules.map((r) => r.value)).toEqual([5, 1, 2, 3, 3, 3, 3]);
    expect(rules.slice(3).map((r) => `${r.src?.addr}>${r.dst?.addr}`)).toEqual(
      [['1.1.1.1', '10.0.0.3'], ['1.1.1.1', '10.0.0.4'], ['2.2.2.2', '10.0.0.3'], ['2.2.2.2', '10.0.0.4']].map(([s, d]) => `${ip(s)}>${ip(d)}`),
    );
    expect(rules[2].comment).toBe('web "front"');
  });

  it('classifier: -i is kept for listing but not evaluated; host bits are masked off; /0 is no condition', () => {
    const [r, any] = parseMarkRules('-A PREROUTING -i eth0 -d 10.0.0.77/24 -j MARK --set-mark 1\n-A PREROUTING -d 0.0.0.0/0 -j MARK --set-mark 2');
    expect(r.inIface).toEqual({ name: 'eth0', invert: false });
    expect(r.dst).toEqual({ addr: ip('10.0.0.0'), mask: prefixToMask(24), invert: false });
    expect(any.dst).toBeNull();
  });

  it('classifier: bad lines are errors naming the file, line and token — every one of them, nothing skipped', () => {
    const text = [
      'iptables -t nat -A PREROUTING -d 10.0.0.1 -j MARK --set-mark 1',
      'iptables -t mangle -A PREROUTING -d 10.0.0.1 --dport 80 -j MARK --set-mark 1',
      '# a comment line is fine',
      '-A PREROUTING -d 10.0.0.1 -j CONNMARK --set-mark 1',
      '-A PREROUTING -d 10.0.0.1 -j MARK',
      '-A PREROUTING -d www.example.com -j MARK --set-mark 1',
      '-A PREROUTING -d 10.0.0.1 -m state --state NEW -j MARK --set-mark 1',
      '-A INPUT -d 10.0.0.1 -j MARK --set-mark 1',
      '-A PREROUTING -d 10.0.0.1 -p tcp --dport 2000:1000 -j MARK --set-mark 1',
      '-A PREROUTING -d 10.0.0.256 -j MARK --set-mark 1',
      '-A PREROUTING -d 10.0.0.1 -j MARK --set-mark 0x100000000',
      '-A PREROUTING -d 10.0.0.1 -p tcp --dports 80,443 -j MARK --set-mark 1',
      '-A PREROUTING -d 10.0.0.1 -x -j MARK --set-mark 1',
      '-A PREROUTING -d 10.0.0.1',
      '-A PREROUTING ! -d 10.0.0.1,10.0.0.2 -j MARK --set-mark 1',
      '-A PREROUTING -d 10.0.0.1 -d 10.0.0.2 -j MARK --set-mark 1',
      '-A PREROUTING -d 10.0.0.1 -p gre -j MARK --set-mark 1',
      '-A PREROUTING -d 10.0.0.1 -p tcp --dport 99999 -j MARK --set-mark 1',
      '-A PREROUTING -d 10.0.0.1 -p tcp --dport nosuchservice -j MARK --set-mark 1',
      '-A PREROUTING -o eth0 -j MARK --set-mark 1',
      '-A PREROUTING -d 10.0.0.1 ! -j MARK --set-mark 1',
      'ip6tables -t mangle -A PREROUTING -d ::1 -j MARK --set-mark 1',
      '-A PREROUTING -d 10.0.0.1 -j MARK --set-mark 1 --or-mark 2',
      '-A PREROUTING --comment "x" -j MARK --set-mark 1',
      '-A PREROUTING -d $VIP -j MARK --set-mark 1',
      '-I PREROUTING 5 -d 10.0.0.1 -j MARK --set-mark 1',
      '-A PREROUTING -m comment --comment "unterminated -j MARK --set-mark 1',
    ].join('\n');
    expect(problems(text).map((p) => [p.message, p.token])).toEqual([
      ['rules.conf:1: table "nat" not supported: MARK rules live in -t mangle', 'nat'],
      ['rules.conf:2: "--dport" needs -p tcp, -p udp or -p sctp', '--dport'],
      ['rules.conf:4: target "CONNMARK" not supported (only MARK, ACCEPT, RETURN)', 'CONNMARK'],
      ['rules.conf:5: MARK: One of the --set-xmark, --{and,or,xor,set}-mark options is required', 'MARK'],
      ['rules.conf:6: host name "www.example.com" for -d: tsvs does not resolve names, write the address', 'www.example.com'],
      ['rules.conf:7: match "state" not supported (only tcp, udp, sctp, multiport, comment)', 'state'],
      ['rules.conf:8: chain "INPUT" not supported: mark rules belong in PREROUTING', 'INPUT'],
      ['rules.conf:9: invalid port range "2000:1000" for --dport (min > max)', '2000:1000'],
      ['rules.conf:10: bad address "10.0.0.256" for -d', '10.0.0.256'],
      ['rules.conf:11: bad mark value "0x100000000" for --set-mark', '0x100000000'],
      ['rules.conf:12: "--dports" needs -m multiport before it', '--dports'],
      ['rules.conf:13: unknown option "-x"', '-x'],
      ['rules.conf:14: missing -j MARK', null],
      ['rules.conf:15: ! not allowed with multiple source or destination IP addresses', '10.0.0.1,10.0.0.2'],
      ['rules.conf:16: "-d" given twice', '-d'],
      ['rules.conf:17: unknown protocol "gre"', 'gre'],
      ['rules.conf:18: port "99999" out of range for --dport', '99999'],
      ['rules.conf:19: bad port "nosuchservice" for --dport', 'nosuchservice'],
      ['rules.conf:20: "-o" cannot be used with PREROUTING', '-o'],
      ['rules.conf:21: "!" cannot negate "-j"', '-j'],
      ['rules.conf:22: unexpected word "ip6tables"', 'ip6tables'],
      ['rules.conf:23: MARK: "--or-mark" given with "--set-mark"', '--or-mark'],
      ['rules.conf:24: "--comment" needs -m comment before it', '--comment'],
      ['rules.conf:25: bad address "$VIP" for -d', '$VIP'],
      ['rules.conf:26: index of insertion too big (5)', '5'],
      ['rules.conf:27: unterminated quote', 'unterminated -j MARK --set-mark 1'],
    ]);
    expect(problems(text).map((p) => p.at)).toEqual([1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27]);
  });

  it('classifier: the error message is every problem, one per line; the default source name is "mark-rules"', () => {
    expect(() => parseMarkRules('-A PREROUTING -j NOPE\n-A PREROUTING -y')).toThrow(
      'mark-rules:1: target "NOPE" not supported (only MARK, ACCEPT, RETURN)\nmark-rules:2: unknown option "-y"',
    );
  });

  it('classifier: compile rejects rule objects that break the invariants, listing each (code INVALID)', () => {
    const ok = parseMarkRules('-A PREROUTING -p tcp -d 10.0.0.1 --dport 80 -j MARK --set-mark 1')[0];
    const bad: MarkRule[] = [ok, { ...ok, protocol: 17 + 256 }, { ...ok, protocol: 1 }, { ...ok, dst: { addr: ip('10.0.0.1'), mask: prefixToMask(24), invert: false } }];
    try {
      compileMarkRules(bad);
      throw new Error('compiled');
    } catch (e) {
      expect(e).toBeInstanceOf(MarkRulesError);
      expect((e as MarkRulesError).code).toBe(MarkRulesErrorCode.INVALID);
      expect((e as MarkRulesError).message).toBe(
        ['mark rule 1: protocol 273 not in 0..255', 'mark rule 1: dport needs protocol tcp, udp or sctp', 'mark rule 2: dport needs protocol tcp, udp or sctp', 'mark rule 3: dst address has bits outside its mask'].join('\n'),
      );
    }
  });

  it('classifier: no rules mark nothing', () => {
    const c = compileMarkRules([]);
    expect(c.size).toBe(0);
    expect(c.classify(TCP, 1, 2, 3, 4)).toBe(0);
    expect(formatMarkRules([])).toBe('');
  });

  it('classifier: parse → format → parse gives the same rules, and format is a fixed point', () => {
    const text = `
iptables  -A PREROUTING -t mangle -d 207.175.44.110/31 -j MARK --set-mark 1
-A PREROUTING -t mangle -p tcp -d 10.0.0.1 -m multiport --dports 80,443 -j MARK --set-mark 5
-t mangle -A PREROUTING ! -s 10.1.0.0/255.255.0.0 -d 10.0.0.0/255.0.255.0 -p udp --sport :1023 ! --dport 53 -i eth+ -j MARK --set-xmark 0x10/0xf0
-A PREROUTING -p sctp -m multiport ! --sports 1,2:3 -m multiport --dports 9 -m comment --comment "it's \\"quoted\\"" -j MARK --and-mark 7
-A PREROUTING ! -p 47 -j RETURN
-A PREROUTING -p tcp -m tcp --dport 22 ! -i lo -j ACCEPT
-A PREROUTING -d 10.0.0.2 -j MARK --set-mark 4294967295
`;
    const rules = parseMarkRules(text);
    const out = formatMarkRules(rules);
    expect(out).toBe(
      [
        '-A PREROUTING -d 207.175.44.110/31 -j MARK --set-mark 1',
        '-A PREROUTING -d 10.0.0.1/32 -p tcp -m multiport --dports 80,443 -j MARK --set-mark 5',
        '-A PREROUTING ! -s 10.1.0.0/16 -d 10.0.0.0/255.0.255.0 -i eth+ -p udp -m udp --sport 0:1023 ! --dport 53 -j MARK --set-xmark 0x10/0xf0',
        '-A PREROUTING -p sctp -m multiport ! --sports 1,2:3 -m multiport --dports 9 -m comment --comment "it\'s \\"quoted\\"" -j MARK --set-xmark 0x0/0xfffffff8',
        '-A PREROUTING ! -p 47 -j RETURN',
        '-A PREROUTING ! -i lo -p tcp -m tcp --dport 22 -j ACCEPT',
        '-A PREROUTING -d 10.0.0.2/32 -j MARK --set-mark 4294967295',
        '',
      ].join('\n'),
    );
    expect(parseMarkRules(out)).toEqual(rules);
    expect(formatMarkRules(parseMarkRules(out))).toBe(out);
  });

  it('classifier: matches a naive reference matcher on random rule lists and packets (property, 400 lists × 300 packets)', () => {
    const rnd = mulberry32(0xf3a7c);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
    const int = (n: number): number => Math.floor(rnd() * n);
    // A small address and port world so that rules overlap and packets hit them.
    const bases = [ip('10.0.0.0'), ip('10.0.0.4'), ip('10.0.1.0'), ip('192.168.0.156'), ip('0.0.0.0'), ip('255.255.255.252')];
    const ports = [0, 22, 53, 80, 443, 1000, 1500, 2000, 65535];
    const randAddr = (): number => (pick(bases) + int(8)) >>> 0;
    const randMatch = (): AddrMatch | null => {
      if (rnd() < 0.3) return null;
      const mask = rnd() < 0.1 ? ip('255.255.0.255') : prefixToMask(pick([0, 8, 24, 29, 30, 31, 32]));
      const inv = rnd() < 0.2;
      if (mask === 0 && !inv) return null;
      return { addr: (randAddr() & mask) >>> 0, mask, invert: inv };
    };
    const randPorts = (): PortMatch | null => {
      if (rnd() < 0.5) return null;
      const multiport = rnd() < 0.5;
      const ranges = Array.from({ length: multiport ? 1 + int(3) : 1 }, () => {
        const a = pick(ports);
        const b = rnd() < 0.3 ? pick(ports) : a;
        return { lo: Math.min(a, b), hi: Math.max(a, b) };
      });
      return { ranges, invert: rnd() < 0.2, multiport };
    };
    const randRule = (): MarkRule => {
      const protocol = pick([0, TCP, TCP, UDP, 132, ICMP]);
      const protocolInvert = protocol !== 0 && rnd() < 0.15;
      const withPorts = (protocol === TCP || protocol === UDP || protocol === 132) && !protocolInvert;
      const target = rnd() < 0.85 ? 'MARK' : pick(['ACCEPT', 'RETURN'] as const);
      const full = rnd() < 0.7;
      const value = target !== 'MARK' ? 0 : full ? 1 + int(4) : int(0x100);
      const mask = target !== 'MARK' ? 0 : full ? 0xffffffff : pick([0, 0xf, 0xf0, 0xff, 0xfffffff0]);
      return {
        protocol,
        protocolInvert,
        src: rnd() < 0.3 ? randMatch() : null,
        dst: randMatch(),
        sport: withPorts && rnd() < 0.3 ? randPorts() : null,
        dport: withPorts ? randPorts() : null,
        inIface: null,
        comment: null,
        target,
        value,
        mask,
      };
    };
    for (let k = 0; k < 400; k++) {
      const rules = Array.from({ length: int(40) }, randRule);
      // The text form must carry exactly the same rules (parse ∘ format = id) …
      expect(parseMarkRules(formatMarkRules(rules))).toEqual(rules);
      const c = compileMarkRules(rules);
      for (let p = 0; p < 300; p++) {
        const proto = pick([TCP, UDP, 132, ICMP, 47]);
        const saddr = randAddr();
        const daddr = rnd() < 0.05 ? int(0x100000000) : randAddr();
        const sport = pick(ports) + (rnd() < 0.3 ? 1 : 0);
        const dport = pick(ports) + (rnd() < 0.3 ? 1 : 0);
        // … and the compiled matcher must agree with the literal reading of them.
        const want = reference(rules, proto, saddr, daddr, sport, dport);
        if (c.classify(proto, saddr, daddr, sport, dport) !== want) {
          expect({ rules: formatMarkRules(rules), proto, saddr, daddr, sport, dport, got: c.classify(proto, saddr, daddr, sport, dport) }).toEqual({ want });
        }
      }
    }
  });
});

describe('classifier: the VIPs of fwmark services', () => {
  const svc = (fwmark: number, vaddr = 0): FwdService => ({ id: 0, protocol: 0, vaddr, vport: 0, fwmark, scheduler: 'rr', flags: 0, persistMs: 0, netmask: 0xffffffff, dests: [] });
  it('classifier: hosts matched by the rules that set a used mark are VIPs; networks, negations and unused marks are not', () => {
    const rules = parseMarkRules([
      '-A PREROUTING -t mangle -p tcp -d 10.200.0.10 -m multiport --dports 80,443 -j MARK --set-mark 1',
      '-A PREROUTING -t mangle -p tcp -d 10.200.0.20/32 --dport 25 -j MARK --set-mark 1',
      '-A PREROUTING -t mangle -p udp -d 10.200.0.10 --dport 53 -j MARK --set-mark 1',
      '-A PREROUTING -t mangle -p tcp -d 10.200.3.0/24 -j MARK --set-mark 1',
      '-A PREROUTING -t mangle -p tcp ! -d 10.200.0.30 -j MARK --set-mark 1',
      '-A PREROUTING -t mangle -p tcp -d 10.200.0.40 -j MARK --set-mark 2',
      '-A PREROUTING -t mangle -p tcp -d 10.200.0.50 -j ACCEPT',
    ].join('\n'));
    expect(fwmarkVips([svc(1), svc(0, ipv4FromText('10.200.0.99') ?? 0)], rules).map(ipv4ToText)).toEqual(['10.200.0.10', '10.200.0.20']);
    expect(fwmarkVips([svc(2)], rules).map(ipv4ToText)).toEqual(['10.200.0.40']);
    expect(fwmarkVips([], rules)).toEqual([]);
  });
});
