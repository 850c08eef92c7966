// health checkers: each checker kind against a real loopback peer — HTTP_GET (status, md5 digest, virtualhost),
// SSL_GET (TLS, self-signed), DNS_CHECK (a real UDP query), UDP_CHECK, SMTP_CHECK, PING_CHECK (raw ICMP, root).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import type { Server as TlsServer } from 'node:tls';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { HealthChild, TcpPeer, UdpPeer, vsConf } from './health-harness.ts';

const children: HealthChild[] = [];
const stops: (() => Promise<void>)[] = [];
const dir = mkdtempSync(join(tmpdir(), 'tsvs-health-'));

afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.stop()));
  await Promise.all(stops.splice(0).map((s) => s()));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function child(conf: string): HealthChild {
  const c = new HealthChild();
  children.push(c);
  c.init(conf);
  return c;
}
async function tcp(host: string, port: number, mode: TcpPeer['mode'] = 'http'): Promise<TcpPeer> {
  const p = new TcpPeer(host, port);
  p.mode = mode;
  await p.start();
  stops.push(() => p.stop());
  return p;
}
async function udp(host: string, port: number, mode: 'echo' | 'dns'): Promise<UdpPeer> {
  const p = new UdpPeer(host, port, mode);
  await p.start();
  stops.push(() => p.stop());
  return p;
}
const timing = '   connect_timeout 0.5\n   delay_loop 0.2\n   retry 0\n   warmup 0\n';

describe('health checkers', () => {
  it('health: HTTP_GET checks the status code, the md5 of the body as keepalived computes it, and sends the virtualhost', async () => {
    const p = await tcp('127.45.0.30', 45020);
    p.body = 'hello from rs\n';
    const digest = createHash('md5').update(p.body).digest('hex');
    const h = child(vsConf('127.45.0.1', 45020, ` real_server 127.45.0.30 45020 {\n  HTTP_GET {\n   url {\n    path /health\n    digest ${digest}\n    status_code 200\n   }\n   virtualhost www.example.test\n${timing}  }\n }`));
    await h.waitAlive('127.45.0.30', true, 3000);
    expect(p.lastRequest).toBe('GET /health HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: www.example.test:45020\r\n\r\n');
    p.body = 'changed\n';
    await h.waitAlive('127.45.0.30', false, 3000);
    expect(await h.lastError('127.45.0.30')).toBe(`/health: digest ${createHash('md5').update('changed\n').digest('hex')} != ${digest}`);
    p.body = 'hello from rs\n';
    await h.waitAlive('127.45.0.30', true, 3000);
    p.status = 503;
    await h.waitAlive('127.45.0.30', false, 3000);
    expect(await h.lastError('127.45.0.30')).toBe('/health: status 503');
  });

  it('health: SSL_GET speaks TLS to a self-signed server (no verification, as keepalived) and checks the status', async () => {
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=rs.test'], { stdio: 'ignore' });
    } catch (e) {
      throw new Error(`this test needs the openssl command to make a certificate: ${(e as Error).message}`);
    }
    let status = 200;
    const srv: TlsServer = createTlsServer({ key: readFileSync(key), cert: readFileSync(cert) }, (s) => {
      s.on('error', () => s.destroy());
      s.once('data', () => s.end(`HTTP/1.0 ${status} X\r\nContent-Length: 3\r\n\r\nok\n`));
    });
    await new Promise<void>((r) => srv.listen(45021, '127.45.0.31', () => r()));
    stops.push(() => new Promise<void>((r) => srv.close(() => r())));
    const h = child(vsConf('127.45.0.1', 45021, ` real_server 127.45.0.31 45021 {\n  SSL_GET {\n   url {\n    path /\n   }\n${timing}  }\n }`));
    await h.waitAlive('127.45.0.31', true, 3000);
    status = 500;
    await h.waitAlive('127.45.0.31', false, 3000);
    expect(await h.lastError('127.45.0.31')).toBe('/: status 500');
  });

  it('health: DNS_CHECK sends a real query over UDP and wants an answer; a dead responder fails it', async () => {
    const d = await udp('127.45.0.32', 45022, 'dns');
    const h = child(vsConf('127.45.0.1', 45022, ` real_server 127.45.0.32 45022 {\n  DNS_CHECK {\n   type A\n   name whoami.lab\n${timing}  }\n }`, 'UDP'));
    await h.waitAlive('127.45.0.32', true, 3000);
    await d.stop();
    await h.waitAlive('127.45.0.32', false, 3000);
    expect(await h.lastError('127.45.0.32')).toMatch(/ECONNREFUSED|timeout/);
    await d.start();
    await h.waitAlive('127.45.0.32', true, 3000);
  });

  it('health: UDP_CHECK sends its payload and wants the required reply; without require_reply an ICMP error fails it', async () => {
    const e = await udp('127.45.0.33', 45023, 'echo');
    const h = child(
      vsConf('127.45.0.1', 45023, ` real_server 127.45.0.33 45023 {\n  UDP_CHECK {\n   payload 74737673\n   require_reply 7473\n${timing}  }\n }`, 'UDP') +
      vsConf('127.45.0.1', 45024, ` real_server 127.45.0.34 45024 {\n  UDP_CHECK {\n   payload 00\n${timing}  }\n }`, 'UDP'),
    );
    await h.waitAlive('127.45.0.33', true, 3000);
    await h.waitAlive('127.45.0.34', false, 3000); // nothing listens: port unreachable
    expect(await h.lastError('127.45.0.34')).toMatch(/^ECONNREFUSED/);
    await e.stop();
    await h.waitAlive('127.45.0.33', false, 3000);
    const silent = await udp('127.45.0.34', 45024, 'dns'); // answers nothing to a 1-byte datagram: silence is success
    await h.waitAlive('127.45.0.34', true, 3000);
    await silent.stop();
  });

  it('health: SMTP_CHECK reads the 220 banner and wants 250 to HELO; a closed port fails it', async () => {
    const p = await tcp('127.45.0.35', 45025, 'smtp');
    const h = child(vsConf('127.45.0.1', 45025, ` real_server 127.45.0.35 45025 {\n  SMTP_CHECK {\n   helo_name director.test\n${timing}  }\n }`));
    await h.waitAlive('127.45.0.35', true, 3000);
    await p.stop();
    await h.waitAlive('127.45.0.35', false, 3000);
    expect(await h.lastError('127.45.0.35')).toMatch(/^ECONNREFUSED/);
  });

  it('health: PING_CHECK sends ICMP echo through raw-socket (needs root): loopback answers, TEST-NET-3 (no route here) does not', async () => {
    if (process.getuid?.() !== 0) throw new Error('this test needs root (PING_CHECK opens a raw ICMP socket through raw-socket)');
    const h = child(
      vsConf('127.45.0.1', 45026, ` real_server 127.45.0.36 45026 {\n  PING_CHECK {\n${timing}  }\n }`) +
      vsConf('127.45.0.1', 45027, ` real_server 203.0.113.1 45027 {\n  PING_CHECK {\n${timing}  }\n }`),
    );
    await h.waitAlive('127.45.0.36', true, 3000);
    await h.waitAlive('203.0.113.1', false, 3000);
    expect(await h.lastError('203.0.113.1')).toMatch(/timeout after 500 ms|send: /);
  });
});
