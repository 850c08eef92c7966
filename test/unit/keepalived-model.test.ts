// keepalived model: the compat files, defaults, synonyms, inheritance, quorum/hysteresis adjustment, duplicates, errors.
import { describe, expect, it } from 'vitest';
import { readKeepalivedConfig } from '../../shared/keepalived/index.ts';
import type { Checker, KeepalivedConfig, VirtualServer } from '../../shared/keepalived/model.ts';
import { KeepalivedError, KeepalivedErrorCode } from '../../shared/keepalived/errors.ts';
import { SvcFlag } from '../../shared/model/ipvs.ts';
import { keepalivedCompatFiles, keepalivedCompatText } from '../support/keepalived-files.ts';

function read(text: string): KeepalivedConfig {
  return readKeepalivedConfig('k.conf', text);
}

function warnings(c: KeepalivedConfig): string[] {
  return c.warnings.map((w) => w.message);
}

function error(text: string): KeepalivedError {
  try {
    read(text);
  } catch (e) {
    if (e instanceof KeepalivedError) return e;
    throw e;
  }
  throw new Error('no error');
}

/** A virtual_server block with the given body; lb_algo, lb_kind, protocol and a real server added unless the body has them. */
function vs(body: string, head = '10.0.0.1 80'): VirtualServer {
  const algo = /lb_algo|lvs_sched/.test(body) ? '' : 'lb_algo rr\n';
  const kind = /lb_kind|lvs_method/.test(body) ? '' : 'lb_kind DR\n';
  const proto = /protocol/.test(body) ? '' : 'protocol TCP\n';
  const rs = /real_server/.test(body) ? '' : `\nreal_server ${head.includes(':') ? '2001:db8::99' : '10.0.0.99'} {\n}`;
  return read(`virtual_server ${head} {\n${algo}${kind}${proto}${body}${rs}\n}\n`).virtualServers[0];
}

function firstChecker(v: VirtualServer): Checker {
  return v.realServers[0].checkers[0];
}

/** Warnings keepalived logs for each compat file (beyond none). */
const COMPAT_WARNINGS: Record<string, string[]> = {
  '01-acassen-keepalived.conf.sample': [],
  '02-acassen-keepalived.conf.inhibit': [],
  '03-acassen-keepalived.conf.quorum': [],
  '04-acassen-keepalived.conf.misc_check': [],
  '05-acassen-keepalived.conf.fwmark': ['05-acassen-keepalived.conf.fwmark:7: Warning: Virtual server FWM 1: protocol specified for fwmark - protocol will be ignored'],
  '06-acassen-keepalived.conf.virtual_server_group': [],
  '07-acassen-keepalived.conf.vrrp.lvs_syncd': ["07-acassen-keepalived.conf.vrrp.lvs_syncd:11: lvs_sync_daemon_interface is deprecated - please use 'lvs_sync_daemon' in global_defs"],
  '08-acassen-keepalived.conf.IPv6': [],
  '09-acassen-keepalived.conf': [],
};

describe('keepalived model', () => {
  it('compat: all nine files are read without errors, with the warnings keepalived gives', () => {
    expect(keepalivedCompatFiles()).toEqual(Object.keys(COMPAT_WARNINGS));
    for (const [f, w] of Object.entries(COMPAT_WARNINGS)) expect(warnings(readKeepalivedConfig(f, keepalivedCompatText(f))), f).toEqual(w);
  });

  it('compat 01: global_defs as data, VRRP fields, HTTP_GET url with digest, sorry_server, checker timings', () => {
    const c = readKeepalivedConfig('01', keepalivedCompatText('01-acassen-keepalived.conf.sample'));
    expect(c.globalDefs).toMatchObject({ routerId: 'LVS_DEVEL', notificationEmail: ['acassen'], notificationEmailFrom: 'Alexandre.Cassen@firewall.loc', smtpServer: ['192.168.200.1'], smtpConnectTimeout: 30, lvsSyncDaemon: null });
    expect(c.vrrpInstances[0]).toMatchObject({ name: 'VI_1', interface: 'eth0', virtualRouterId: 50, priority: 100, advertInt: 1, state: null, virtualIpaddress: [['192.168.200.11'], ['192.168.200.12'], ['192.168.200.13']] });
    expect(c.vrrpInstances[0].node.block?.map((n) => n.keyword)).toContain('nopreempt');
    const v = c.virtualServers[0];
    expect(v).toMatchObject({ address: { kind: 'ip', af: 4, addr: '10.10.10.2', port: 1358 }, scheduler: 'rr', method: 'masq', persistenceTimeout: 50, protocol: 'tcp', delayLoop: 6, quorum: 1, hysteresis: 0 });
    expect(v.sorryServer).toMatchObject({ addr: '192.168.200.200', port: 1358, method: 'masq', inhibit: false });
    expect(firstChecker(v)).toMatchObject({
      kind: 'HTTP_GET', connectTimeout: 3, retry: 3, delayBeforeRetry: 3, delayLoop: 6, warmup: 6, alpha: false,
      urls: [{ path: '/testurl3/test.jsp', digest: '640205b7b0fc66c1ea91c463fac6334d', statusCodes: [{ from: 200, to: 299 }] }],
    });
  });

  it('compat 03-09: quorum sample, MISC_CHECK, fwmark, groups with ranges, sync daemon interface, IPv6 SMTP_CHECK, SSL_GET', () => {
    const q = readKeepalivedConfig('03', keepalivedCompatText('03-acassen-keepalived.conf.quorum')).virtualServers[0];
    expect(q).toMatchObject({ alpha: true, omega: true, quorum: 7, hysteresis: 2, quorumUp: '/usr/local/sbin/quorum-up.sh', quorumDown: '/usr/local/sbin/quorum-down.sh' });
    expect(q.realServers).toHaveLength(10);
    expect(q.realServers.every((r) => r.checkers[0].alpha && r.checkers[0].kind === 'TCP_CHECK' && r.checkers[0].connectPort === 80)).toBe(true);
    const m = firstChecker(readKeepalivedConfig('04', keepalivedCompatText('04-acassen-keepalived.conf.misc_check')).virtualServers[0]);
    expect(m).toMatchObject({ kind: 'MISC_CHECK', path: '/usr/local/bin/script.sh', timeout: 6, dynamic: false, retry: 0, delayBeforeRetry: 1 });
    const f = readKeepalivedConfig('05', keepalivedCompatText('05-acassen-keepalived.conf.fwmark')).virtualServers[0];
    expect(f.address).toEqual({ kind: 'fwmark', af: 4, fwmark: 1 });
    expect(f.realServers.map((r) => `${r.addr}:${r.port}`)).toEqual(['192.168.201.100:0', '192.168.201.101:0']);
    const g = readKeepalivedConfig('06', keepalivedCompatText('06-acassen-keepalived.conf.virtual_server_group'));
    expect(g.virtualServerGroups[0].entries.map((e) => (e.kind === 'fwmark' ? `fwm${e.fwmark}` : `${e.first}..${e.last}(${e.count}):${e.port}`))).toEqual([
      '10.0.0.1..10.0.0.1(1):8080', '10.0.0.2..10.0.0.2(1):80', '192.168.200.1..192.168.200.1(1):1358', '192.168.200.3..192.168.200.10(8):80', 'fwm1', 'fwm2',
    ]);
    expect(g.virtualServers[0].address).toEqual({ kind: 'group', name: 'VSG_1' });
    const s = readKeepalivedConfig('07', keepalivedCompatText('07-acassen-keepalived.conf.vrrp.lvs_syncd'));
    expect(s.vrrpInstances.map((i) => [i.name, i.state, i.lvsSyncDaemonInterface])).toEqual([['VI_1', 'MASTER', 'eth1'], ['VI_2', null, null], ['VI_3', null, null]]);
    expect(s.vrrpSyncGroups[0]).toMatchObject({ name: 'VG1', group: ['VI_2', 'VI_3'] });
    const six = readKeepalivedConfig('08', keepalivedCompatText('08-acassen-keepalived.conf.IPv6'));
    expect(six.virtualServerGroups[0].entries[0]).toMatchObject({ af: 6, first: 'ae00::2', last: 'ae00::9', count: 8 });
    expect(six.virtualServers[0]).toMatchObject({ address: { af: 6, addr: 'ae00::1', port: 80 }, persistenceGranularity: '128' });
    expect(firstChecker(six.virtualServers[0])).toMatchObject({ kind: 'SMTP_CHECK', heloName: 'foo.bar.com', retry: 3, connectTimeout: 3 });
    const ssl = readKeepalivedConfig('09', keepalivedCompatText('09-acassen-keepalived.conf'));
    expect(ssl.globalDefs.notificationEmail).toEqual(['acassen@firewall.loc', 'failover@firewall.loc', 'sysadmin@firewall.loc']);
    expect(firstChecker(ssl.virtualServers[0])).toMatchObject({ kind: 'SSL_GET', urls: [{ path: '/' }, { path: '/mrtg/' }] });
    expect(ssl.virtualServers[2].realServers.map((r) => r.checkers[0].delayLoop)).toEqual([3, 3]);
  });

  it('defaults: UDP, wlc and NAT with keepalived\'s warnings, weight 1, quorum 1, hysteresis 0, delay_loop 60, granularity, not persistent', () => {
    const c = read('virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n  TCP_CHECK {\n  }\n }\n}\n');
    expect(warnings(c)).toEqual([
      'k.conf:1: Virtual server 10.0.0.1:80: no protocol set - defaulting to UDP',
      "k.conf:1: Virtual server 10.0.0.1:80: no scheduler set, setting default 'wlc'",
      'k.conf:1: Virtual server 10.0.0.1:80: no forwarding method set, setting default NAT',
    ]);
    const v = c.virtualServers[0];
    expect(v).toMatchObject({ protocol: 'udp', scheduler: 'wlc', method: 'masq', persistenceTimeout: null, persistenceGranularity: '255.255.255.255', quorum: 1, hysteresis: 0, delayLoop: 60, alpha: false, omega: false, inhibitOnFailure: false, flags: 0 });
    expect(v.realServers[0]).toMatchObject({ weight: 1, method: 'masq', inhibitOnFailure: false });
    expect(firstChecker(v)).toMatchObject({ connectTimeout: 5, retry: 1, delayBeforeRetry: 1, delayLoop: 60, warmup: 60, alpha: false, connectIp: null, connectPort: null });
  });

  it('defaults: per checker retry/delay_before_retry (HTTP 1/3 s, DNS 3/delay_loop, MISC 0), misc_timeout, status_code', () => {
    const v = vs('delay_loop 7\nreal_server 10.0.0.2 80 {\n HTTP_GET {\n url {\n path /\n status_code 200 301-302\n }\n }\n SSL_GET {\n }\n DNS_CHECK {\n type a\n name x.example\n }\n MISC_CHECK {\n misc_path "/bin/check arg"\n misc_dynamic\n user nobody\n }\n}');
    const [http, ssl, dns, misc] = v.realServers[0].checkers;
    expect(http).toMatchObject({ retry: 1, delayBeforeRetry: 3, urls: [{ statusCodes: [{ from: 200, to: 200 }, { from: 301, to: 302 }] }] });
    expect(ssl).toMatchObject({ kind: 'SSL_GET', retry: 1, delayBeforeRetry: 3, urls: [] });
    expect(dns).toMatchObject({ kind: 'DNS_CHECK', retry: 3, delayBeforeRetry: 7, type: 'A', name: 'x.example' });
    expect(misc).toMatchObject({ kind: 'MISC_CHECK', retry: 0, delayBeforeRetry: 1, path: '/bin/check arg', timeout: 7, dynamic: true, user: 'nobody' });
  });

  it('defaults: persistence_timeout without a value is 360 s; ops and scheduler flags; IPv6 granularity is a prefix length', () => {
    expect(vs('persistence_timeout\npersistence_granularity 255.255.255.0').persistenceTimeout).toBe(360);
    expect(vs('persistence_timeout\npersistence_granularity 255.255.255.0').persistenceGranularity).toBe('255.255.255.0');
    expect(vs('lb_algo sh\nsh-port\nsh-fallback\nops\nprotocol UDP')).toMatchObject({ protocol: 'udp', flags: SvcFlag.SCHED1 | SvcFlag.SCHED2 | SvcFlag.ONEPACKET });
    expect(vs('persistence_granularity 64', '2001:db8::1 443').persistenceGranularity).toBe('64');
  });

  it('synonyms: lvs_sched = lb_algo, lvs_method = lb_kind (NAT, DR, TUN), per real_server method', () => {
    expect(vs('lvs_sched sed\nlvs_method TUN')).toMatchObject({ scheduler: 'sed', method: 'tunnel' });
    expect(vs('lb_algo nq\nlb_kind NAT')).toMatchObject({ scheduler: 'nq', method: 'masq' });
    expect(vs('lb_kind DR\nreal_server 10.0.0.2 80 {\n lvs_method NAT\n}\nreal_server 10.0.0.3 80 {\n}').realServers.map((r) => r.method)).toEqual(['masq', 'route']);
  });

  it('inheritance: checker ← real_server ← virtual_server for alpha, inhibit, retry, connect_timeout, delay_loop, warmup, delay_before_retry', () => {
    const v = vs(`alpha\ninhibit_on_failure\nretry 4\nconnect_timeout 9\ndelay_loop 20\ndelay_before_retry 2
real_server 10.0.0.2 80 {\n TCP_CHECK {\n }\n}
real_server 10.0.0.3 80 {\n retry 5\n warmup 0\n connect_timeout 1.5\n TCP_CHECK {\n  retry 6\n  delay_loop 10\n }\n HTTP_GET {\n }\n}`);
    expect(firstChecker(v)).toMatchObject({ alpha: true, retry: 4, connectTimeout: 9, delayLoop: 20, warmup: 20, delayBeforeRetry: 2 });
    expect(v.realServers.map((r) => r.inhibitOnFailure)).toEqual([true, true]);
    const [tcp, http] = v.realServers[1].checkers;
    expect(tcp).toMatchObject({ retry: 6, delayLoop: 10, warmup: 0, connectTimeout: 1.5, delayBeforeRetry: 2 });
    expect(http).toMatchObject({ retry: 5, delayLoop: 20, warmup: 0, delayBeforeRetry: 2 });
  });

  it('nb_get_retry: a deprecated alias of retry in HTTP_GET/SSL_GET only; in TCP_CHECK an unknown keyword, default retry', () => {
    const c = read('virtual_server 10.0.0.1 80 {\nlb_algo rr\nlb_kind NAT\nprotocol TCP\nreal_server 10.0.0.2 80 {\n HTTP_GET {\n  nb_get_retry 4\n  url {\n   path /\n  }\n }\n TCP_CHECK {\n  nb_get_retry 4\n }\n}\n}\n');
    expect(c.virtualServers[0].realServers[0].checkers.map((k) => k.retry)).toEqual([4, 1]);
    expect(warnings(c)).toEqual(["k.conf:7: nb_get_retry is deprecated - please use 'retry'", "k.conf:13: Unknown keyword 'nb_get_retry'"]);
  });

  it('validation: quorum above the total weight is reduced with a warning, then hysteresis ≥ quorum to quorum − 1', () => {
    const c = read('virtual_server 10.0.0.1 80 {\nlb_algo rr\nlb_kind NAT\nprotocol TCP\nquorum 10\nhysteresis 8\nreal_server 10.0.0.2 80 {\n weight 3\n}\nreal_server 10.0.0.3 80 {\n weight 2\n}\n}\n');
    expect(c.virtualServers[0]).toMatchObject({ quorum: 5, hysteresis: 4 });
    expect(warnings(c)).toEqual([
      'k.conf:1: Warning - quorum 10 for 10.0.0.1:80 exceeds total weight of real servers 5, reducing quorum to 5',
      'k.conf:1: Virtual server 10.0.0.1:80: hysteresis 8 >= quorum 5; setting hysteresis to 4',
    ]);
    expect(vs('quorum 2\nhysteresis 2\nreal_server 10.0.0.2 80 {\n weight 5\n}')).toMatchObject({ quorum: 2, hysteresis: 1 });
  });

  it('validation: a duplicate real_server is removed with a warning (the first one stays)', () => {
    const c = read('virtual_server 10.0.0.1 80 {\nlb_algo rr\nlb_kind NAT\nprotocol TCP\nreal_server 10.0.0.2 80 {\n weight 3\n}\nreal_server 10.0.0.2 80 {\n weight 2\n}\n}\n');
    expect(c.virtualServers[0].realServers.map((r) => r.weight)).toEqual([3]);
    expect(warnings(c)).toEqual(['k.conf:8: VS 10.0.0.1:80: real server 10.0.0.2:80 is duplicated - removing second rs']);
  });

  it('unknown keywords warn with file:line and are otherwise ignored; unknown top-level blocks are kept', () => {
    const c = read('frobnicate 1\nstatic_ipaddress {\n 1.2.3.4/24 dev eth0\n}\nvirtual_server 10.0.0.1 80 {\nlb_algo rr\nlb_kind NAT\nprotocol TCP\nfoo bar\nreal_server 10.0.0.2 80 {\n baz\n TCP_CHECK {\n  qux 1\n }\n}\n}\n');
    expect(warnings(c)).toEqual(["k.conf:1: Unknown keyword 'frobnicate'", "k.conf:9: Unknown keyword 'foo'", "k.conf:11: Unknown keyword 'baz'", "k.conf:13: Unknown keyword 'qux'"]);
    expect(c.other.map((n) => n.keyword)).toEqual(['frobnicate', 'static_ipaddress']);
  });

  it('validation: protocol defaults to UDP for address services and is ignored for fwmark ones; OPS only for UDP; zero port makes persistent', () => {
    const c = read(`virtual_server 10.0.0.1 0 {\nlb_algo rr\nlb_kind NAT\nprotocol TCP\nops\nreal_server 10.0.0.2 80 {\n}\n}
virtual_server fwmark 3 {\nlb_algo rr\nlb_kind NAT\nprotocol UDP\nops\nha_suspend\nreal_server 10.0.0.2 80 {\n}\n}
virtual_server_group G {\n 10.0.0.5 0\n}\nvirtual_server group G {\nlb_algo rr\nlb_kind NAT\nreal_server 10.0.0.2 80 {\n}\n}\n`);
    expect(warnings(c)).toEqual([
      'k.conf:1: Virtual server 10.0.0.1:0: one packet scheduling requires UDP - resetting',
      'k.conf:1: Virtual server 10.0.0.1:0: zero port only valid for persistent services - setting',
      'k.conf:9: Virtual server FWM 3: cannot use ha_suspend with fwmarks - clearing ha_suspend',
      'k.conf:9: Warning: Virtual server FWM 3: protocol specified for fwmark - protocol will be ignored',
      'k.conf:21: Virtual server [G]: no protocol set - defaulting to UDP',
      'k.conf:21: Virtual server [G]: zero port only valid for persistent services - setting',
    ]);
    expect(c.virtualServers.map((v) => [v.protocol, v.flags, v.persistenceTimeout, v.haSuspend])).toEqual([['tcp', 0, 360, false], ['tcp', SvcFlag.ONEPACKET, null, false], ['udp', 0, 360, false]]);
  });

  it('validation: a virtual_server without real servers is ignored with a warning', () => {
    const c = read('virtual_server 10.0.0.1 80 {\nlb_algo rr\nlb_kind NAT\nprotocol TCP\n}\n');
    expect(c.virtualServers).toEqual([]);
    expect(warnings(c)).toEqual(['k.conf:1: Virtual server 10.0.0.1:80 has no real servers - ignoring']);
  });

  it('validation: real and sorry server ports: NAT without port takes the service port; DR/TUN are reset to it, or cleared for fwmark', () => {
    const v = vs('lb_kind DR\nsorry_server 10.0.0.9 81\nreal_server 10.0.0.2 {\n lvs_method NAT\n}\nreal_server 10.0.0.3 8080 {\n}\nreal_server 10.0.0.4 {\n}');
    expect([...v.realServers.map((r) => r.port), v.sorryServer?.port]).toEqual([80, 80, 80, 80]);
    const c = read('virtual_server fwmark 1 {\nlb_algo rr\nlb_kind DR\nreal_server 10.0.0.2 80 {\n}\nreal_server 10.0.0.3 81 {\n lb_kind NAT\n}\n}\n');
    expect(c.virtualServers[0].realServers.map((r) => r.port)).toEqual([0, 81]);
    expect(warnings(c)).toEqual(['k.conf:4: WARNING - fwmark virtual server FWM 1, real server 10.0.0.2:80 has port specified - clearing']);
    expect(warnings(read('virtual_server 10.0.0.1 80 {\nlb_algo rr\nlb_kind DR\nprotocol TCP\nsorry_server 10.0.0.9 81\nreal_server 10.0.0.3 8080 {\n}\n}\n'))).toEqual([
      "k.conf:6: WARNING - virtual server 10.0.0.1:80 and real server 10.0.0.3:8080 ports don't match - resetting",
      "k.conf:5: WARNING - virtual server 10.0.0.1:80 and sorry server ports don't match - resetting",
    ]);
  });

  it('defaults: a virtual_server weight is its real servers\' default; no method warning when every real server has one', () => {
    const c = read('virtual_server 10.0.0.1 80 {\nlb_algo rr\nprotocol TCP\nweight 4\nreal_server 10.0.0.2 80 {\n lb_kind NAT\n}\nreal_server 10.0.0.3 80 {\n weight 2\n lb_kind NAT\n}\n}\n');
    expect(c.virtualServers[0].realServers.map((r) => r.weight)).toEqual([4, 2]);
    expect(warnings(c)).toEqual([]);
  });

  it('errors: every bad value is reported at once with file:line and the word', () => {
    const e = error(`virtual_server 10.0.0.300 80 {
lb_algo fancy
lb_kind NATT
persistence_timeout x
protocol ICMP
real_server 10.0.0.2 80 {
 weight 70000
 HTTP_GET {
  url {
   digest 123
  }
  connect_timeout soon
 }
}
real_server 10.0.0.3 {
 TCP_CHECK {
  connect_ip ::1
  connect_port 99999
 }
}
real_server 2001:db8::1 80 {
}
}
virtual_server group NOPE {
}
`);
    expect(e.code).toBe(KeepalivedErrorCode.VALUE);
    expect(e.problems.map((p) => [p.line, p.token])).toEqual([
      [1, '10.0.0.300'], [2, 'fancy'], [3, 'NATT'], [4, 'x'], [5, 'ICMP'], [7, '70000'], [10, '123'], [9, 'url'], [12, 'soon'], [18, '99999'], [21, '2001:db8::1'], [24, 'NOPE'],
    ]);
    expect(e.problems[0].message).toBe('k.conf:1: virtual_server: bad address "10.0.0.300"');
    expect(e.problems[6].message).toBe('k.conf:10: digest: not 32 hex digits "123"');
  });

  it('errors: missing values, missing blocks, bad ranges, unsupported checkers and TUN options', () => {
    const cases: [string, string][] = [
      ['virtual_server 10.0.0.1 80 {\nlb_algo\n}\n', 'k.conf:2: lb_algo: missing value'],
      ['virtual_server 10.0.0.1 80\n', "k.conf:1: virtual_server: missing '{' block"],
      ['virtual_server fwmark {\n}\n', 'k.conf:1: virtual_server fwmark: missing mark'],
      ['virtual_server_group G {\n 10.0.0.9-3 80\n}\n', 'k.conf:2: virtual_server_group: bad address range "10.0.0.9-3"'],
      ['virtual_server 10.0.0.1 80 {\nreal_server 10.0.0.2 80 {\n FILE_CHECK {\n }\n}\n}\n', 'k.conf:3: FILE_CHECK is not supported by tsvs'],
      ['virtual_server 10.0.0.1 80 {\nlb_kind TUN type gue port 6080\n}\n', 'k.conf:2: lb_kind: TUN options (type gue port 6080) are not supported; tunnels are ipip'],
      ['virtual_server 10.0.0.1 80 {\nreal_server 10.0.0.2 80 {\n MISC_CHECK {\n }\n}\n}\n', 'k.conf:3: MISC_CHECK: missing misc_path'],
      ['vrrp_instance V {\n virtual_router_id 256\n}\n', 'k.conf:2: virtual_router_id: bad number "256" (1..255)'],
    ];
    for (const [text, msg] of cases) expect(error(text).message, text).toBe(msg);
  });
});
