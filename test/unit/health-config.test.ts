// health config: the `--check` report (every problem with file:line), the compat files, and the checkers' wire formats.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkKeepalivedConfig } from '../../shared/keepalived/check.ts';
import { readKeepalivedConfig } from '../../shared/keepalived/index.ts';
import { healthWarnings } from '../../shared/health/unsupported.ts';
import { healthPlan } from '../../shared/health/plan.ts';
import { healthView, startHealth } from '../../shared/health/machine.ts';
import { keepalivedToIpvs } from '../../shared/keepalived/ipvs.ts';
import { dnsQuery, dnsReplyProblem } from '../../shared/health/dns-wire.ts';
import { httpRequest, splitReply, statusAccepted } from '../../shared/health/http-wire.ts';
import { keepalivedCompatFiles, keepalivedCompatText, memoryFs } from '../support/keepalived-files.ts';

describe('health config', () => {
  it('health config: every compat file loads and gives a plan; the checker kinds and timings come through', () => {
    const kinds = new Set<string>();
    for (const f of keepalivedCompatFiles()) {
      const r = checkKeepalivedConfig(`/etc/keepalived/${f}`, memoryFs({ [`/etc/keepalived/${f}`]: keepalivedCompatText(f) }), {}, healthWarnings);
      expect(r.errors, f).toBe(0);
      expect(r.config, f).not.toBeNull();
      const p = healthPlan(r.config!);
      expect(p.virtualServers.length, f).toBeGreaterThan(0);
      for (const c of p.checkers) kinds.add(c.checker.kind);
    }
    expect([...kinds].sort()).toEqual(['HTTP_GET', 'MISC_CHECK', 'SMTP_CHECK', 'SSL_GET', 'TCP_CHECK']);
    const p = healthPlan(readKeepalivedConfig('k.conf', keepalivedCompatText('02-acassen-keepalived.conf.inhibit')));
    expect(p.checkers[0].timing).toMatchObject({ delayLoopMs: 6000, timeoutMs: 3000, retry: 3, delayBeforeRetryMs: 3000 });
  });

  it("health config: the checker's startup view is keepalived's startup table (shared/keepalived/ipvs.ts) for every compat file", () => {
    for (const f of keepalivedCompatFiles()) {
      const cfg = readKeepalivedConfig(f, keepalivedCompatText(f));
      const view = healthView(startHealth(healthPlan(cfg), 0, () => 0).state).virtualServers;
      const fmt = (ds: readonly { addr: string; port: number; weight: number }[]) => ds.map((d) => `${d.addr}:${d.port} w${d.weight}`).sort();
      const byVs = new Map<unknown, string[]>();
      for (const s of keepalivedToIpvs(cfg)) byVs.set(s.from, fmt(s.dests));
      expect(view.map((v) => fmt(v.dests)), f).toEqual(cfg.virtualServers.map((vs) => byVs.get(vs)));
    }
  });

  it('health config: a broken file lists every error with file:line and counts them; warnings are tagged', () => {
    const bad = 'virtual_server 10.0.0.1 80 {\n delay_loop x\n real_server 10.0.0.2 80 {\n  weight -1\n  FILE_CHECK {\n  }\n }\n}\n';
    const r = checkKeepalivedConfig('/k.conf', memoryFs({ '/k.conf': bad }));
    expect(r.config).toBeNull();
    expect(r.lines).toEqual([
      '/k.conf:2: error: delay_loop: bad time "x"',
      '/k.conf:4: error: weight: bad number "-1" (0..65535)',
      '/k.conf:5: error: FILE_CHECK is not supported by tsvs',
    ]);
    expect(r.errors).toBe(3);
    const ok = 'virtual_server 10.0.0.1 80 {\n protocol TCP\n lb_algo rr\n lb_kind NAT\n ha_suspend\n frob 1\n real_server 10.0.0.2 80 {\n  TCP_CHECK {\n   bind_if eth0\n  }\n  MISC_CHECK {\n   misc_path /bin/true\n   user nobody\n  }\n }\n}\n';
    const w = checkKeepalivedConfig('/k.conf', memoryFs({ '/k.conf': ok }), {}, healthWarnings);
    expect(w.errors).toBe(0);
    expect(w.lines).toEqual([
      "/k.conf:6: warning: Unknown keyword 'frob'",
      '/k.conf:1: warning: ha_suspend is not supported by tsvs: checkers run whether or not the VIP is present',
      '/k.conf:8: warning: TCP_CHECK: bind_if is not supported by tsvs: the route decides the interface',
      "/k.conf:11: warning: MISC_CHECK: user is not supported by tsvs: the script runs as the checker's user",
    ]);
  });

  it('health config: PING_CHECK, UDP_CHECK (hex payload) and the extension keywords are read, inherited from the real server', () => {
    const t = 'virtual_server 10.0.0.1 53 {\n protocol UDP\n lb_algo rr\n lb_kind NAT\n fall 4\n real_server 10.0.0.2 53 {\n  rise 2\n  fastinter 0.1\n  PING_CHECK {\n  }\n  UDP_CHECK {\n   payload 0x0A0b\n   require_reply 0b\n   min_reply_length 1\n   downinter 2\n  }\n }\n}\n';
    const cs = readKeepalivedConfig('k.conf', t).virtualServers[0].realServers[0].checkers;
    expect(cs.map((c) => [c.kind, c.rise, c.fall, c.fastinter, c.downinter])).toEqual([['PING_CHECK', 2, 4, 0.1, null], ['UDP_CHECK', 2, 4, 0.1, 2]]);
    expect(cs[1]).toMatchObject({ payload: '0a0b', requireReply: '0b', minReplyLength: 1, maxReplyLength: 0 });
    expect(() => readKeepalivedConfig('k.conf', t.replace('0x0A0b', 'xyz'))).toThrow('k.conf:12: payload: not an even number of hex digits "xyz"');
  });

  it("health wire: the DNS query is RFC 1035 bytes; a reply is judged as keepalived's check_dns.c judges it", () => {
    expect(Buffer.from(dnsQuery(0x1234, 'a.bc', 'A')).toString('hex')).toBe('123401000001000000000000' + '0161026263' + '00' + '0001' + '0001');
    expect(Buffer.from(dnsQuery(1, '.', 'SOA')).toString('hex')).toBe('000101000001000000000000' + '00' + '0006' + '0001');
    const reply = (id: number, flags: number, an: number) => { const b = Buffer.alloc(12); b.writeUInt16BE(id, 0); b.writeUInt16BE(flags, 2); b.writeUInt16BE(an, 6); return b; };
    expect(dnsReplyProblem(7, reply(7, 0x8180, 1))).toBeNull();
    expect(dnsReplyProblem(7, reply(8, 0x8180, 1))).toBeUndefined(); // another id: ignored, keep waiting
    expect(dnsReplyProblem(7, reply(7, 0x0100, 1))).toBeUndefined(); // a query, not a response
    expect(dnsReplyProblem(7, new Uint8Array(5))).toBeUndefined(); // too short
    expect(dnsReplyProblem(7, reply(7, 0x8183, 0))).toBe('rcode 3');
    expect(dnsReplyProblem(7, reply(7, 0x8180, 0))).toBeNull(); // no answer count check, as keepalived
    expect(() => dnsQuery(1, 'a..b', 'A')).toThrow(RangeError);
  });

  it("health wire: keepalived's HTTP/1.0 request; the body digest is the md5 of the bytes after the headers", () => {
    expect(httpRequest('/x', '10.0.0.2', 80, false)).toBe('GET /x HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 10.0.0.2\r\n\r\n');
    expect(httpRequest('/', 'www', 8443, true)).toBe('GET / HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: www:8443\r\n\r\n');
    const raw = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello');
    const r = splitReply(raw)!;
    expect(r.status).toBe(200);
    expect(createHash('md5').update(r.body).digest('hex')).toBe('5d41402abc4b2a76b9719d911017c592');
    expect(splitReply(Buffer.from('HTTP/1.1 200 OK\r\nA: b\r\n'))).toBeNull();
    expect(splitReply(Buffer.from('garbage\r\n\r\n'))!.status).toBe(-1);
    expect(statusAccepted(204, [{ from: 200, to: 299 }])).toBe(true);
    expect(statusAccepted(302, [{ from: 200, to: 299 }, { from: 404, to: 404 }])).toBe(false);
  });
});
