// Address text codecs (inet_aton, inet_pton/ntop for IPv6) and the name resolver tsvsadm uses for hosts and ports.
import type { Af, ProtocolName } from '../model/ipvs.ts';
import { ipv4FromText, ipv4ToText } from '../net/addr.ts';

/**
 * Host and service name lookups, injected so the parser and formatter stay pure. Every method answers
 * synchronously and returns undefined when the name is unknown (ipvsadm then fails or prints numbers).
 */
export interface NameResolver {
  /** gethostbyname: an IPv4 dotted quad for a host name, first A record only. */
  hostToAddr(name: string): string | undefined;
  /** gethostbyaddr: the canonical host name of an address (canonical text as in the model). */
  addrToHost(af: Af, addr: string): string | undefined;
  /** getservbyname for the protocol. */
  serviceToPort(name: string, proto: ProtocolName): number | undefined;
  /** getservbyport for the protocol: the official service name. */
  portToService(port: number, proto: ProtocolName): string | undefined;
}

/** A resolver that knows no names: every lookup fails, so output is numeric. */
export const numericResolver: NameResolver = {
  hostToAddr: () => undefined,
  addrToHost: () => undefined,
  serviceToPort: () => undefined,
  portToService: () => undefined,
};

/** One /etc/services entry. */
export interface ServiceEntry {
  name: string;
  port: number;
  proto: string;
  aliases: string[];
}

/** One /etc/hosts entry (first name is the canonical one). */
export interface HostEntry {
  addr: string;
  af: Af;
  names: string[];
}

/** Services used when /etc/services cannot be read (tcp and udp unless noted). */
export const FALLBACK_SERVICES: readonly ServiceEntry[] = [
  ['ftp', 21], ['ssh', 22], ['telnet', 23], ['smtp', 25], ['domain', 53], ['http', 80], ['pop3', 110],
  ['ntp', 123], ['imap2', 143], ['snmp', 161], ['ldap', 389], ['https', 443], ['submission', 587],
  ['ldaps', 636], ['imaps', 993], ['pop3s', 995], ['mysql', 3306], ['postgresql', 5432], ['http-alt', 8080],
].flatMap(([name, port]) =>
  ['tcp', 'udp'].map((proto) => ({ name: name as string, port: port as number, proto, aliases: name === 'http' ? ['www'] : [] })),
);

/** Parses /etc/services text; malformed lines are skipped, '#' starts a comment. */
export function parseEtcServices(text: string): ServiceEntry[] {
  const out: ServiceEntry[] = [];
  for (const raw of text.split('\n')) {
    const words = raw.replace(/#.*/, '').trim().split(/\s+/).filter(Boolean);
    if (words.length < 2) continue;
    const m = /^(\d+)\/(\w+)$/.exec(words[1]);
    if (!m) continue;
    const port = Number(m[1]);
    if (port > 65535) continue;
    out.push({ name: words[0], port, proto: m[2], aliases: words.slice(2) });
  }
  return out;
}

/** Parses /etc/hosts text; lines with an address that is neither IPv4 nor IPv6 are skipped. */
export function parseEtcHosts(text: string): HostEntry[] {
  const out: HostEntry[] = [];
  for (const raw of text.split('\n')) {
    const words = raw.replace(/#.*/, '').trim().split(/\s+/).filter(Boolean);
    if (words.length < 2) continue;
    const v4 = ipv4FromText(words[0]);
    if (v4 !== undefined) {
      out.push({ addr: ipv4ToText(v4), af: 4, names: words.slice(1) });
      continue;
    }
    const v6 = parseIpv6(words[0]);
    if (v6) out.push({ addr: formatIpv6(v6), af: 6, names: words.slice(1) });
  }
  return out;
}

/**
 * A resolver over /etc/hosts and /etc/services contents (no DNS). This is the default tsvsadm resolver: glibc
 * with the usual `hosts: files dns` order answers the same for names in /etc/hosts; names only DNS knows fail.
 */
export function tableResolver(hosts: readonly HostEntry[], services: readonly ServiceEntry[]): NameResolver {
  return {
    hostToAddr: (name) => hosts.find((h) => h.af === 4 && h.names.includes(name))?.addr,
    addrToHost: (af, addr) => hosts.find((h) => h.af === af && h.addr === addr)?.names[0],
    serviceToPort: (name, proto) => services.find((s) => s.proto === proto && (s.name === name || s.aliases.includes(name)))?.port,
    portToService: (port, proto) => services.find((s) => s.proto === proto && s.port === port)?.name,
  };
}

/**
 * C strtol in base 10 (or base 0 when `base0`: 0x hex, leading-0 octal): skips leading white space, takes a sign,
 * returns the value and how many characters were consumed (0 when no digits).
 */
export function cStrtol(s: string, base0 = false): { value: number; end: number } {
  let i = 0;
  while (i < s.length && ' \t\n\v\f\r'.includes(s[i])) i++;
  let sign = 1;
  if (s[i] === '+' || s[i] === '-') {
    if (s[i] === '-') sign = -1;
    i++;
  }
  let base = 10;
  if (base0 && s[i] === '0') {
    if ((s[i + 1] === 'x' || s[i + 1] === 'X') && /[0-9a-fA-F]/.test(s[i + 2] ?? '')) {
      base = 16;
      i += 2;
    } else base = 8;
  }
  const digits = base === 16 ? /[0-9a-fA-F]/ : base === 8 ? /[0-7]/ : /[0-9]/;
  const start = i;
  let value = 0;
  while (i < s.length && digits.test(s[i])) value = value * base + parseInt(s[i++], base);
  if (i === start) return { value: 0, end: 0 };
  return { value: sign * value, end: i };
}

/** C atoi: leading integer of the text, 0 when none. */
export function cAtoi(s: string): number {
  const r = cStrtol(s);
  return r.end === 0 ? 0 : r.value;
}

/** glibc inet_aton: 1..4 parts in C number syntax ("10.1" is 10.0.0.1). Returns the address as an unsigned 32-bit number. */
export function inetAton(s: string): number | undefined {
  const parts = s.split('.');
  if (parts.length > 4 || s === '') return undefined;
  const vals: number[] = [];
  for (const p of parts) {
    const r = cStrtol(p, true);
    if (r.end === 0 || r.end !== p.length || !/^[0-9]/.test(p)) return undefined;
    vals.push(r.value);
  }
  const last = vals[vals.length - 1];
  const head = vals.slice(0, -1);
  if (head.some((v) => v > 255)) return undefined;
  const lastMax = [0xffffffff, 0xffffff, 0xffff, 0xff][head.length];
  if (last > lastMax) return undefined;
  let addr = 0;
  head.forEach((v, i) => (addr += v * 2 ** (24 - 8 * i)));
  return addr + last;
}

/** inet_pton AF_INET6: eight 16-bit groups, or undefined. Accepts '::' and a dotted-quad tail; no zone ids. */
export function parseIpv6(s: string): number[] | undefined {
  let text = s;
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (lastColon >= 0 && text.slice(lastColon + 1).includes('.')) {
    const v4 = ipv4FromText(text.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    tail = [v4 >>> 16, v4 & 0xffff];
    const prefix = text.slice(0, lastColon + 1);
    text = prefix.endsWith('::') ? prefix : prefix.slice(0, -1);
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const group = (h: string): number[] | undefined => {
    if (h === '') return [];
    const out: number[] = [];
    for (const g of h.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const left = group(halves[0]);
  const right = halves.length === 2 ? group(halves[1]) : [];
  if (!left || !right) return undefined;
  const want = 8 - tail.length;
  if (halves.length === 2) {
    if (left.length + right.length > want - 1) return undefined;
    return [...left, ...new Array(want - left.length - right.length).fill(0), ...right, ...tail];
  }
  if (left.length !== want) return undefined;
  return [...left, ...tail];
}

/** glibc inet_ntop AF_INET6: lower-case, longest zero run (two groups or more) as '::', IPv4-mapped tails dotted. */
export function formatIpv6(g: readonly number[]): string {
  let best = { base: -1, len: 0 };
  let cur = { base: -1, len: 0 };
  for (let i = 0; i < 8; i++) {
    if (g[i] === 0) {
      cur = cur.base < 0 ? { base: i, len: 1 } : { base: cur.base, len: cur.len + 1 };
      if (cur.len > best.len) best = { ...cur };
    } else cur = { base: -1, len: 0 };
  }
  if (best.len < 2) best = { base: -1, len: 0 };
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (best.base >= 0 && i >= best.base && i < best.base + best.len) {
      if (i === best.base) out += ':';
      continue;
    }
    if (i !== 0) out += ':';
    if (i === 6 && best.base === 0 && (best.len === 6 || (best.len === 5 && g[5] === 0xffff))) {
      out += ipv4ToText(((g[6] << 16) >>> 0) + g[7]);
      break;
    }
    out += g[i].toString(16);
  }
  if (best.base >= 0 && best.base + best.len === 8) out += ':';
  return out;
}

/** Canonical IPv6 text, or undefined when the text is not an IPv6 address. */
export function canonicalIpv6(s: string): string | undefined {
  const g = parseIpv6(s);
  return g ? formatIpv6(g) : undefined;
}
