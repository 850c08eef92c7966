// ipvsadm 1.31's text outputs byte for byte: -L and its variants, -S, -L -c, --timeout, --daemon, -h and -v, and libipvs sorting.
import type { Af, ConnSnapshot, DaemonConfig, DestSnapshot, FwdMethod, ProtocolName, ServiceSnapshot, TableSnapshot, Timeouts } from '../model/ipvs.ts';
import { Protocol, SvcFlag } from '../model/ipvs.ts';
import type { NameResolver } from './names.ts';
import { parseIpv6 } from './names.ts';
import type { ListFormat } from './parse.ts';
import { ipv4FromText } from '../net/addr.ts';

/** Program version line printed by -v and at the top of -h. */
export const VERSION_LINE = 'ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\n';

/** Schedulers named in the help text (ipvsadm's SCHEDULERS file). */
const HELP_SCHEDULERS = 'rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh';

const SCHED_MASK = SvcFlag.SCHED1 | SvcFlag.SCHED2 | SvcFlag.SCHED3;

/** Left-justify in a field (printf "%-Ns"): pads, never truncates. */
function left(s: string | number, w: number): string {
  return String(s).padEnd(w);
}

/** Right-justify in a field (printf "%Ns"). */
function right(s: string | number, w: number): string {
  return String(s).padStart(w);
}

/**
 * glibc qsort as used by libipvs (glibc ≤ 2.36 and ≥ 2.39 sort with this top-down merge sort). Reproducing the
 * algorithm matters because the libipvs comparators are not transitive when their int subtraction overflows.
 */
export function glibcMsort<T>(items: readonly T[], cmp: (a: T, b: T) => number): T[] {
  const a = [...items];
  const tmp: T[] = new Array(a.length);
  const sort = (lo: number, n: number): void => {
    if (n <= 1) return;
    const n1 = n >>> 1;
    const n2 = n - n1;
    sort(lo, n1);
    sort(lo + n1, n2);
    let i = lo;
    let j = lo + n1;
    let k = 0;
    let r1 = n1;
    let r2 = n2;
    while (r1 > 0 && r2 > 0) {
      if (cmp(a[i], a[j]) <= 0) {
        tmp[k++] = a[i++];
        r1--;
      } else {
        tmp[k++] = a[j++];
        r2--;
      }
    }
    while (r1-- > 0) tmp[k++] = a[i++];
    for (let m = 0; m < k; m++) a[lo + m] = tmp[m];
  };
  sort(0, a.length);
  return a;
}

/** An address as the 32-bit words the comparators subtract (one for IPv4, four for IPv6). */
function addrWords(af: Af, addr: string): number[] {
  if (af === 4) return [ipv4FromText(addr) ?? 0];
  const g = parseIpv6(addr) ?? new Array(8).fill(0);
  return [0, 1, 2, 3].map((i) => g[2 * i] * 65536 + g[2 * i + 1]);
}

/** C `(int)(a - b)` for unsigned 32-bit a and b. */
function intDiff(a: number, b: number): number {
  return (a - b) | 0;
}

function addrCmp(af: Af, a: string, b: string): number {
  const wa = addrWords(af, a);
  const wb = addrWords(af, b);
  let r = 0;
  for (let i = 0; r === 0 && i < wa.length; i++) r = intDiff(wa[i], wb[i] ?? 0);
  return r;
}

const AF_NUM: Record<Af, number> = { 4: 2, 6: 10 };

/** libipvs ipvs_cmp_services, including its int overflow: fwmark, af, protocol, address, port. */
export function cmpServices(s1: ServiceSnapshot, s2: ServiceSnapshot): number {
  let r = intDiff(s1.fwmark, s2.fwmark);
  if (r) return r;
  r = AF_NUM[s1.af] - AF_NUM[s2.af];
  if (r) return r;
  r = Protocol[s1.protocol] - Protocol[s2.protocol];
  if (r) return r;
  r = s1.fwmark ? 0 : addrCmp(s1.af, s1.addr, s2.addr);
  if (r) return r;
  return s1.port - s2.port;
}

/** libipvs ipvs_cmp_dests: address (in the first dest's family), then port, with the same overflow. */
export function cmpDests(d1: DestSnapshot, d2: DestSnapshot): number {
  const r = addrCmp(d1.af, d1.addr, d2.addr);
  if (r) return r;
  return d1.port - d2.port;
}

/**
 * print_largenum: `%9llu` below 10^8, then K/M/G/T scaled in `%8llu` plus the unit; with `exact`, the full value
 * right-aligned in 9 columns (or length + 1 when longer than 8 digits).
 */
export function printLargenum(n: number, exact: boolean): string {
  if (exact) {
    const s = String(n);
    return right(s, s.length <= 8 ? 9 : s.length + 1);
  }
  if (n < 1e8) return right(n, 9);
  if (n < 1e9) return right(Math.floor(n / 1e3), 8) + 'K';
  if (n < 1e11) return right(Math.floor(n / 1e6), 8) + 'M';
  if (n < 1e14) return right(Math.floor(n / 1e9), 8) + 'G';
  return right(Math.floor(n / 1e12), 8) + 'T';
}

/** addrport_to_anyname: `addr:port`, `[v6]:port`, resolved to names unless numeric; at most 59 characters. */
export function addrPortName(af: Af, addr: string, port: number, proto: ProtocolName | undefined, numeric: boolean, resolver: NameResolver): string {
  const host = numeric ? addr : (resolver.addrToHost(af, addr) ?? addr);
  const svc = numeric || !proto ? String(port) : (resolver.portToService(port, proto) ?? String(port));
  const s = af === 4 ? `${host}:${svc}` : `[${host}]:${svc}`;
  return s.slice(0, 59);
}

const FWD_NAME: Record<FwdMethod, string> = { masq: 'Masq', local: 'Local', tunnel: 'Tunnel', route: 'Route' };
const FWD_SWITCH: Record<FwdMethod, string> = { masq: '-m', local: '-g', tunnel: '-i', route: '-g' };
const PROTO_NAME: Record<ProtocolName, string> = { tcp: 'TCP', udp: 'UDP', sctp: 'SCTP' };
const PROTO_OPTION: Record<ProtocolName, string> = { tcp: '-t', udp: '-u', sctp: '--sctp-service' };

function tunFlagIndex(d: DestSnapshot): number {
  return d.tunCsum === 'csum' ? 1 : d.tunCsum === 'remcsum' ? 2 : 0;
}

function schedFlagsText(svc: ServiceSnapshot): string {
  const f = svc.flags;
  const names: string[] = [];
  if (svc.scheduler === 'sh' || svc.scheduler === 'mh') {
    if (f & SvcFlag.SCHED1) names.push(`${svc.scheduler}-fallback`);
    if (f & SvcFlag.SCHED2) names.push(`${svc.scheduler}-port`);
  } else {
    if (f & SvcFlag.SCHED1) names.push('flag-1');
    if (f & SvcFlag.SCHED2) names.push('flag-2');
    if (f & SvcFlag.SCHED3) names.push('flag-3');
  }
  return names.join(',');
}

/** Render flags for a listing (FMT_* as ListFormat plus the -S rule mode). */
interface Render extends ListFormat {
  rule: boolean;
}

function printTitle(f: Render): string {
  const tail = '  -> RemoteAddress:Port\n';
  const first = left('Prot LocalAddress:Port', 33);
  if (f.stats) return `${first} ${['Conns', 'InPkts', 'OutPkts', 'InBytes', 'OutBytes'].map((t) => right(t, 8)).join(' ')}\n${tail}`;
  if (f.rate) return `${first} ${['CPS', 'InPPS', 'OutPPS', 'InBPS', 'OutBPS'].map((t) => right(t, 8)).join(' ')}\n${tail}`;
  if (f.thresholds) return `${first} ${['Uthreshold', 'Lthreshold', 'ActiveConn', 'InActConn'].map((t) => left(t, 10)).join(' ')}\n${tail}`;
  if (f.persistentConn) return `${first} ${left('Weight', 9)} ${left('PersistConn', 11)} ${left('ActiveConn', 10)} ${left('InActConn', 10)}\n${tail}`;
  if (f.tunInfo) return 'Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n';
  if (!f.rule) return 'Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n';
  return '';
}

function serviceEntry(se: ServiceSnapshot, f: Render, resolver: NameResolver): string {
  let svcName: string;
  if (se.fwmark) {
    if (f.rule) svcName = se.af === 6 ? `-f ${se.fwmark} -6` : `-f ${se.fwmark}`;
    else svcName = se.af === 6 ? `FWM  ${se.fwmark} IPv6` : `FWM  ${se.fwmark}`;
  } else {
    const vname = addrPortName(se.af, se.addr, se.port, se.protocol, f.numeric, resolver);
    if (f.rule) svcName = `${PROTO_OPTION[se.protocol] ?? '--xxx-service'} ${vname}`;
    else {
      svcName = `${left(PROTO_NAME[se.protocol] ?? '?', 4)} ${vname}`;
      if (se.af !== 6) svcName = svcName.slice(0, 33);
    }
  }
  const persistent = (se.flags & SvcFlag.PERSISTENT) !== 0;
  const maskText = (prefix: string): string => {
    if (se.af === 4 && se.netmask !== '255.255.255.255') return `${prefix}${se.netmask}`;
    if (se.af === 6 && se.netmask !== '128') return `${prefix}${se.netmask}`;
    return '';
  };
  let out: string;
  if (f.rule) {
    out = `-A ${svcName} -s ${se.scheduler}`;
    if (persistent) out += ` -p ${se.timeout}` + maskText(' -M ');
    if (se.pe) out += ` --pe ${se.pe}`;
    if (se.flags & SvcFlag.ONEPACKET) out += ' -o';
    if (se.flags & SCHED_MASK) out += ` -b ${schedFlagsText(se)}`;
  } else if (f.stats) {
    const s = se.stats;
    out = left(svcName, 33) + [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes].map((n) => printLargenum(n, f.exact)).join('');
  } else if (f.rate) {
    const r = se.rate;
    out = left(svcName, 33) + [r.cps, r.inpps, r.outpps, r.inbps, r.outbps].map((n) => printLargenum(n, f.exact)).join('');
  } else {
    out = `${svcName} ${se.scheduler}`;
    if (se.flags & SCHED_MASK) out += ` (${schedFlagsText(se)})`;
    if (persistent) {
      out += ` persistent ${se.timeout}` + maskText(' mask ');
      if (se.pe) out += ` pe ${se.pe}`;
    }
    if (se.flags & SvcFlag.ONEPACKET) out += ' ops';
  }
  out += '\n';
  const dests = f.nosort ? se.dests : glibcMsort(se.dests, cmpDests);
  for (const e of dests) {
    let dname = addrPortName(e.af, e.addr, e.port, se.protocol, f.numeric, resolver);
    if (!f.rule && e.af !== 6) dname = dname.slice(0, 28);
    if (f.rule) out += destRule(svcName, dname, e);
    else if (f.stats) {
      const s = e.stats;
      out += `  -> ${left(dname, 28)}` + [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes].map((n) => printLargenum(n, f.exact)).join('') + '\n';
    } else if (f.rate) {
      const r = e.rate;
      out += `  -> ${left(dname, 28)} ${right(r.cps, 8)} ${right(r.inpps, 8)} ${right(r.outpps, 8)}` + printLargenum(r.inbps, f.exact) + printLargenum(r.outbps, f.exact) + '\n';
    } else if (f.thresholds) {
      out += `  -> ${left(dname, 28)} ${left(e.uThreshold, 10)} ${left(e.lThreshold, 10)} ${left(e.activeConns, 10)} ${left(e.inactConns, 10)}\n`;
    } else if (f.persistentConn) {
      out += `  -> ${left(dname, 28)} ${left(e.weight, 9)} ${left(e.persistConns, 11)} ${left(e.activeConns, 10)} ${left(e.inactConns, 10)}\n`;
    } else if (f.tunInfo) {
      out += `  -> ${left(dname, 28)} ${left(FWD_NAME[e.method], 7)} ${left(tunInfo(e), 13)} ${left(e.weight, 6)} ${left(e.activeConns, 10)} ${left(e.inactConns, 10)}\n`;
    } else {
      out += `  -> ${left(dname, 28)} ${left(FWD_NAME[e.method], 7)} ${left(e.weight, 6)} ${left(e.activeConns, 10)} ${left(e.inactConns, 10)}\n`;
    }
  }
  return out;
}

const TUN_FLAGS = ['-c', '+c', 'r+c'];
const TUN_FLAG_OPTS = ['--tun-nocsum', '--tun-csum', '--tun-remcsum'];

function tunInfo(e: DestSnapshot): string {
  if (e.method !== 'tunnel') return 'n/a';
  if (e.tunType === 'gue') return `gue:${e.tunPort}:${TUN_FLAGS[tunFlagIndex(e)]}`.slice(0, 15);
  if (e.tunType === 'gre') return `gre:${TUN_FLAGS[tunFlagIndex(e)]}`;
  return 'ipip';
}

function destRule(svcName: string, dname: string, e: DestSnapshot): string {
  const base = `-a ${svcName} -r ${dname} ${FWD_SWITCH[e.method]} -w ${e.weight}`;
  if (e.method !== 'tunnel') return base + '\n';
  if (e.tunType === 'gre') return `${base} --tun-type gre ${TUN_FLAG_OPTS[tunFlagIndex(e)]}\n`;
  if (e.tunType === 'gue') return `${base} --tun-type gue --tun-port ${e.tunPort} ${TUN_FLAG_OPTS[tunFlagIndex(e)]}\n`;
  return `${base} --tun-type ipip\n`;
}

function render(format: ListFormat, rule: boolean): Render {
  return { ...format, rule };
}

/** Services in listing order: libipvs order (with its overflow quirk) unless `nosort`. */
export function sortedServices(snap: TableSnapshot, nosort: boolean): ServiceSnapshot[] {
  return nosort ? snap.services : glibcMsort(snap.services, cmpServices);
}

/** `ipvsadm -L [options]` over the whole table: version header, title, every service with its destinations. */
export function formatList(snap: TableSnapshot, format: ListFormat, resolver: NameResolver): string {
  const f = render(format, false);
  let out = `IP Virtual Server version ${snap.version} (size=${snap.connTabSize})\n` + printTitle(f);
  for (const se of sortedServices(snap, f.nosort)) out += serviceEntry(se, f, resolver);
  return out;
}

/** `ipvsadm -L -t|-u|-f <svc> [options]`: title and the one service, no version header. */
export function formatServiceList(se: ServiceSnapshot, format: ListFormat, resolver: NameResolver): string {
  const f = render(format, false);
  return printTitle(f) + serviceEntry(se, f, resolver);
}

/** `ipvsadm -S [-n]`: one -A rule per service followed by its -a rules; thresholds and a non-persistent -M are not saved. */
export function formatSave(snap: TableSnapshot, format: ListFormat, resolver: NameResolver): string {
  const f = render(format, true);
  return sortedServices(snap, f.nosort).map((se) => serviceEntry(se, f, resolver)).join('');
}

/** `ipvsadm -L --timeout`. */
export function formatTimeout(t: Timeouts): string {
  return `Timeout (tcp tcpfin udp): ${t.tcp} ${t.tcpfin} ${t.udp}\n`;
}

/** `ipvsadm -L --daemon`: one line per running role, master first. */
export function formatDaemons(daemons: readonly DaemonConfig[]): string {
  const ordered = [...daemons.filter((d) => d.state === 'master'), ...daemons.filter((d) => d.state === 'backup')];
  return ordered
    .map((d) => {
      let s = `${d.state} sync daemon (mcast=${d.mcastIfn}, syncid=${d.syncid}`;
      if (d.maxlen) s += `, maxlen=${d.maxlen}`;
      if (d.group) s += `, group=${d.group}`;
      if (d.port) s += `, port=${d.port}`;
      if (d.ttl) s += `, ttl=${d.ttl}`;
      return s + ')\n';
    })
    .join('');
}

/** `ipvsadm -L -c [-n] [--persistent-conn]`: connection entries with mm:ss expiry. */
export function formatConns(conns: readonly ConnSnapshot[], format: ListFormat, resolver: NameResolver): string {
  let out = 'IPVS connection entries\n';
  out += format.persistentConn
    ? `pro expire ${left('state', 11)} ${left('source', 18)} ${left('virtual', 18)} ${left('destination', 18)} ${left('pe name', 16)} pe_data\n`
    : `pro expire ${left('state', 11)} ${left('source', 18)} ${left('virtual', 18)} destination\n`;
  for (const c of conns) {
    const proto = c.protocol === 'ip' ? undefined : c.protocol;
    const protoText = proto ? PROTO_NAME[proto] : 'IP';
    const cname = addrPortName(c.af, c.caddr, c.cport, proto, format.numeric, resolver);
    const vname = addrPortName(c.af, c.vaddr, c.vport, proto, format.numeric, resolver);
    const daf: Af = c.daddr.includes(':') ? 6 : 4;
    const dname = addrPortName(daf, c.daddr, c.dport, proto, format.numeric, resolver);
    const expire = `${String(Math.floor(c.expires / 60)).padStart(2, '0')}:${String(c.expires % 60).padStart(2, '0')}`;
    if (format.persistentConn && c.pe !== '' && c.peData !== '') {
      out += `${left(protoText, 3)} ${left(expire, 6)} ${left(c.state, 11)} ${left(cname, 18)} ${left(vname, 18)} ${left(dname, 16)} ${left(c.pe, 18)} ${c.peData}\n`;
    } else {
      out += `${left(protoText, 3)} ${left(expire, 6)} ${left(c.state, 11)} ${left(cname, 18)} ${left(vname, 18)} ${dname}\n`;
    }
  }
  return out;
}

/** `ipvsadm -h`: the version line and ipvsadm 1.31's usage text, with `program` as argv[0]. */
export function usageText(program: string): string {
  const p = program;
  return (
    VERSION_LINE +
    'Usage:\n' +
    `  ${p} -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [--pe persistence_engine] [-b sched-flags]\n` +
    `  ${p} -D virtual-service\n` +
    `  ${p} -C\n` +
    `  ${p} -R\n` +
    `  ${p} -S [-n]\n` +
    `  ${p} -a|e virtual-service -r server-address [options]\n` +
    `  ${p} -d virtual-service -r server-address\n` +
    `  ${p} -L|l [virtual-service] [options]\n` +
    `  ${p} -Z [virtual-service]\n` +
    `  ${p} --set tcp tcpfin udp\n` +
    `  ${p} --start-daemon {master|backup} [daemon-options]\n` +
    `  ${p} --stop-daemon {master|backup}\n` +
    `  ${p} -h\n\n` +
    'Commands:\n' +
    'Either long or short options are allowed.\n' +
    '  --add-service     -A        add virtual service with options\n' +
    '  --edit-service    -E        edit virtual service with options\n' +
    '  --delete-service  -D        delete virtual service\n' +
    '  --clear           -C        clear the whole table\n' +
    '  --restore         -R        restore rules from stdin\n' +
    '  --save            -S        save rules to stdout\n' +
    '  --add-server      -a        add real server with options\n' +
    '  --edit-server     -e        edit real server with options\n' +
    '  --delete-server   -d        delete real server\n' +
    '  --list            -L|-l     list the table\n' +
    '  --zero            -Z        zero counters in a service or all services\n' +
    '  --set tcp tcpfin udp        set connection timeout values\n' +
    '  --start-daemon              start connection sync daemon\n' +
    '  --stop-daemon               stop connection sync daemon\n' +
    '  --help            -h        display this help message\n\n' +
    'virtual-service:\n' +
    '  --tcp-service|-t  service-address   service-address is host[:port]\n' +
    '  --udp-service|-u  service-address   service-address is host[:port]\n' +
    '  --sctp-service    service-address   service-address is host[:port]\n' +
    '  --fwmark-service|-f fwmark          fwmark is an integer greater than zero\n' +
    '\n' +
    'Options:\n' +
    '  --ipv6         -6                   fwmark entry uses IPv6\n' +
    `  --scheduler    -s scheduler         one of ${HELP_SCHEDULERS},\n` +
    '                                      the default scheduler is wlc.\n' +
    '  --pe            engine              alternate persistence engine may be sip,\n' +
    '                                      not set by default.\n' +
    '  --persistent   -p [timeout]         persistent service\n' +
    '  --netmask      -M netmask           persistent granularity mask\n' +
    '  --real-server  -r server-address    server-address is host (and port)\n' +
    '  --gatewaying   -g                   gatewaying (direct routing) (default)\n' +
    '  --ipip         -i                   ipip encapsulation (tunneling)\n' +
    '  --masquerading -m                   masquerading (NAT)\n' +
    '  --tun-type      type                one of ipip|gue|gre,\n' +
    '                                      the default tunnel type is ipip.\n' +
    '  --tun-port      port                tunnel destination port\n' +
    '  --tun-nocsum                        tunnel encapsulation without checksum\n' +
    '  --tun-csum                          tunnel encapsulation with checksum\n' +
    '  --tun-remcsum                       tunnel encapsulation with remote checksum\n' +
    '  --weight       -w weight            capacity of real server\n' +
    '  --u-threshold  -x uthreshold        upper threshold of connections\n' +
    '  --l-threshold  -y lthreshold        lower threshold of connections\n' +
    '  --connection   -c                   output of current IPVS connections\n' +
    '  --timeout                           output of timeout (tcp tcpfin udp)\n' +
    '  --daemon                            output of daemon information\n' +
    '  --stats                             output of statistics information\n' +
    '  --rate                              output of rate information\n' +
    '  --exact                             expand numbers (display exact values)\n' +
    '  --thresholds                        output of thresholds information\n' +
    '  --persistent-conn                   output of persistent connection info\n' +
    '  --tun-info                          output of tunnel information\n' +
    '  --nosort                            disable sorting output of service/server entries\n' +
    '  --sort                              does nothing, for backwards compatibility\n' +
    '  --ops          -o                   one-packet scheduling\n' +
    '  --numeric      -n                   numeric output of addresses and ports\n' +
    '  --sched-flags  -b flags             scheduler flags (comma-separated)\n' +
    'Daemon Options:\n' +
    '  --syncid sid                        syncid for connection sync (default=255)\n' +
    '  --sync-maxlen length                Max sync message length (default=1472)\n' +
    '  --mcast-interface interface         multicast interface for connection sync\n' +
    '  --mcast-group address               IPv4/IPv6 group (default=224.0.0.81)\n' +
    '  --mcast-port port                   UDP port (default=8848)\n' +
    '  --mcast-ttl ttl                     Multicast TTL (default=1)\n'
  );
}
