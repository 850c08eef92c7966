// The checkers: one run of TCP_CHECK, HTTP_GET, SSL_GET, DNS_CHECK, UDP_CHECK, SMTP_CHECK, PING_CHECK or
// MISC_CHECK against a real server. Every run is asynchronous and ends within its timeout, whatever the peer does.
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { CheckerPlan } from '../../shared/health/plan.ts';
import type { DnsTypeName } from '../../shared/health/dns-wire.ts';
import { DnsType, dnsQuery, dnsReplyProblem } from '../../shared/health/dns-wire.ts';
import { httpRequest, splitReply, statusAccepted } from '../../shared/health/http-wire.ts';
import { pingOnce } from './ping.ts';

/** The outcome of one run. */
export interface RunOutcome {
  ok: boolean;
  error: string | null;
  /** MISC_CHECK misc_dynamic: the weight its exit status sets (null: back to the configured weight). */
  weight?: number | null;
}

/**
 * A run in progress: `done` settles exactly once; `cancel(reason)` ends it at once as a failure with `reason` and
 * frees its socket or process (used for the timeout).
 */
interface Run {
  done: Promise<RunOutcome>;
  cancel(reason: string): void;
}

function once(): { promise: Promise<RunOutcome>; finish: (o: RunOutcome) => boolean; settled: () => boolean } {
  let settled = false;
  let resolve!: (o: RunOutcome) => void;
  const promise = new Promise<RunOutcome>((r) => { resolve = r; });
  return { promise, finish: (o) => (settled ? false : ((settled = true), resolve(o), true)), settled: () => settled };
}

const fail = (error: string): RunOutcome => ({ ok: false, error });
const OK: RunOutcome = { ok: true, error: null };

function errText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err?.code ? `${err.code}${err.message && !err.message.startsWith(err.code) ? ` (${err.message})` : ''}` : String((e as Error)?.message ?? e);
}

function bindOpts(p: CheckerPlan): { localAddress?: string; localPort?: number } {
  const c = p.checker;
  if (c.kind === 'MISC_CHECK') return {};
  return { ...(c.bindTo ? { localAddress: c.bindTo.addr } : {}), ...(c.bindPort !== null ? { localPort: c.bindPort } : {}) };
}

function tcpRun(p: CheckerPlan): Run {
  const { promise, finish } = once();
  const s = netConnect({ host: p.host, port: p.port, family: p.af, ...bindOpts(p) });
  s.once('connect', () => { finish(OK); s.destroy(); });
  s.once('error', (e) => { finish(fail(errText(e))); s.destroy(); });
  return { done: promise, cancel: (r) => { finish(fail(r)); s.destroy(); } };
}

/** Longest HTTP reply read (headers and body); a longer one fails the check rather than filling memory. */
const MAX_HTTP_REPLY = 4 << 20;

function httpRun(p: CheckerPlan, tls: boolean): Run {
  const c = p.checker;
  if (c.kind !== 'HTTP_GET' && c.kind !== 'SSL_GET') throw new TypeError('httpRun: not an HTTP checker');
  const { promise, finish, settled } = once();
  let current: Socket | null = null;
  const urls = [...c.urls];
  const one = (i: number): void => {
    if (settled()) return;
    if (i >= urls.length) { finish(OK); return; }
    const u = urls[i];
    const vhost = u.virtualhost ?? c.virtualhost ?? (p.af === 6 ? `[${p.host}]` : p.host);
    const opts = { host: p.host, port: p.port, family: p.af, ...bindOpts(p) };
    const s: Socket = tls
      ? tlsConnect({ ...opts, rejectUnauthorized: false, ...(u.virtualhost ?? c.virtualhost ? { servername: (u.virtualhost ?? c.virtualhost) as string } : {}) })
      : netConnect(opts);
    current = s;
    const chunks: Buffer[] = [];
    let size = 0;
    s.once(tls ? 'secureConnect' : 'connect', () => s.write(httpRequest(u.path, vhost, p.port, tls)));
    s.on('data', (b: Buffer) => {
      size += b.length;
      if (size > MAX_HTTP_REPLY) {
        finish(fail(`${u.path}: reply larger than ${MAX_HTTP_REPLY} bytes`));
        s.destroy();
      } else chunks.push(b);
    });
    s.once('error', (e) => { finish(fail(`${u.path}: ${errText(e)}`)); s.destroy(); });
    s.once('end', () => {
      s.destroy();
      const r = splitReply(Buffer.concat(chunks));
      if (!r) { finish(fail(`${u.path}: reply without complete headers`)); return; }
      if (!statusAccepted(r.status, u.statusCodes)) { finish(fail(`${u.path}: status ${r.status}`)); return; }
      if (u.digest !== null) {
        const got = createHash('md5').update(r.body).digest('hex');
        if (got !== u.digest) { finish(fail(`${u.path}: digest ${got} != ${u.digest}`)); return; }
      }
      one(i + 1);
    });
  };
  if (urls.length === 0) finish(fail('no url configured'));
  else one(0);
  return { done: promise, cancel: (r) => { finish(fail(r)); current?.destroy(); } };
}

/** keepalived's SMTP_DEFAULT_HELO (check_smtp.h). */
const SMTP_DEFAULT_HELO = 'smtpchecker.keepalived.org';

function smtpRun(p: CheckerPlan): Run {
  const c = p.checker;
  const helo = c.kind === 'SMTP_CHECK' && c.heloName ? c.heloName : SMTP_DEFAULT_HELO;
  const { promise, finish } = once();
  const s = netConnect({ host: p.host, port: p.port, family: p.af, ...bindOpts(p) });
  let buf = '';
  let stage: 'banner' | 'helo' = 'banner';
  s.setEncoding('latin1');
  s.on('data', (d: string) => {
    buf += d;
    // a complete reply: last line "NNN " (not "NNN-")
    const lines = buf.split('\r\n');
    const last = lines.length >= 2 ? lines[lines.length - 2] : '';
    if (!/^\d{3} /.test(last) && !/^\d{3}$/.test(last)) return;
    const code = Number(last.slice(0, 3));
    buf = '';
    if (stage === 'banner') {
      if (code !== 220) { finish(fail(`banner ${code}`)); s.destroy(); return; }
      stage = 'helo';
      s.write(`HELO ${helo}\r\n`);
    } else {
      if (code !== 250) finish(fail(`HELO answered ${code}`));
      else finish(OK);
      s.end('QUIT\r\n');
      s.destroy();
    }
  });
  s.once('error', (e) => { finish(fail(errText(e))); s.destroy(); });
  s.once('end', () => finish(fail('connection closed before HELO was answered')));
  return { done: promise, cancel: (r) => { finish(fail(r)); s.destroy(); } };
}

/** `judge` returns null for a good reply, a reason for a bad one, undefined for a datagram to ignore. */
function udpLike(p: CheckerPlan, payload: Uint8Array, judge: ((msg: Buffer) => string | null | undefined) | null): Run {
  const { promise, finish } = once();
  const s = createSocket(p.af === 6 ? 'udp6' : 'udp4');
  let closed = false;
  const close = () => { if (!closed) { closed = true; s.close(); } };
  s.on('error', (e) => { finish(fail(errText(e))); close(); });
  s.on('message', (msg) => {
    if (judge === null) { finish(OK); close(); return; }
    const why = judge(msg);
    if (why === undefined) return;
    if (why === null) finish(OK);
    else finish(fail(why));
    close();
  });
  const b = bindOpts(p);
  const go = () => s.connect(p.port, p.host, () => s.send(payload));
  if (b.localAddress !== undefined || b.localPort !== undefined) s.bind({ address: b.localAddress, port: b.localPort ?? 0 }, go);
  else go();
  // Without a required reply, silence until the timeout is success (no ICMP error came back): cancel decides.
  return { done: promise, cancel: (r) => { finish(judge === null ? OK : fail(r)); close(); } };
}

function udpRun(p: CheckerPlan): Run {
  const c = p.checker;
  if (c.kind !== 'UDP_CHECK') throw new TypeError('udpRun: not a UDP_CHECK');
  const payload = c.payload ? Buffer.from(c.payload, 'hex') : new Uint8Array(0);
  const need = c.requireReply ? Buffer.from(c.requireReply, 'hex') : null;
  const judge = (m: Buffer): string | null => {
    if (c.minReplyLength > 0 && m.length < c.minReplyLength) return `reply ${m.length} bytes < min_reply_length ${c.minReplyLength}`;
    if (c.maxReplyLength > 0 && m.length > c.maxReplyLength) return `reply ${m.length} bytes > max_reply_length ${c.maxReplyLength}`;
    if (need && !m.subarray(0, need.length).equals(need)) return 'reply does not match require_reply';
    return null;
  };
  const strict = need !== null || c.minReplyLength > 0 || c.maxReplyLength > 0;
  return udpLike(p, payload, strict ? judge : null);
}

let dnsId = (process.pid * 7919) & 0xffff;

function dnsRun(p: CheckerPlan): Run {
  const c = p.checker;
  if (c.kind !== 'DNS_CHECK') throw new TypeError('dnsRun: not a DNS_CHECK');
  const type = (c.type in DnsType ? c.type : 'SOA') as DnsTypeName;
  const id = (dnsId = (dnsId + 1) & 0xffff);
  return udpLike(p, dnsQuery(id, c.name, type), (m) => dnsReplyProblem(id, m));
}

function miscRun(p: CheckerPlan): Run {
  const c = p.checker;
  if (c.kind !== 'MISC_CHECK') throw new TypeError('miscRun: not a MISC_CHECK');
  const { promise, finish } = once();
  const child = spawn('/bin/sh', ['-c', c.path], { stdio: 'ignore', detached: true });
  const kill = () => { try { if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL'); } catch { /* already gone */ } };
  child.once('error', (e) => finish(fail(`misc_path: ${errText(e)}`)));
  child.once('exit', (code, signal) => {
    if (code === null) { finish(fail(`killed by ${signal}`)); return; }
    if (code === 0) finish(c.dynamic ? { ok: true, error: null, weight: null } : OK);
    else if (c.dynamic && code >= 2) finish({ ok: true, error: null, weight: code - 2 });
    else finish(fail(`exit ${code}`));
  });
  return { done: promise, cancel: (r) => { if (finish(fail(r))) kill(); } };
}

function pingRun(p: CheckerPlan): Run {
  const { promise, finish } = once();
  const ac = new AbortController();
  pingOnce(p.host, p.af, ac.signal).then((err) => finish(err === null ? OK : fail(err)), (e) => finish(fail(errText(e))));
  return { done: promise, cancel: (r) => { finish(fail(r)); ac.abort(); } };
}

function start(p: CheckerPlan): Run {
  switch (p.checker.kind) {
    case 'TCP_CHECK': return tcpRun(p);
    case 'HTTP_GET': return httpRun(p, false);
    case 'SSL_GET': return httpRun(p, true);
    case 'SMTP_CHECK': return smtpRun(p);
    case 'DNS_CHECK': return dnsRun(p);
    case 'UDP_CHECK': return udpRun(p);
    case 'MISC_CHECK': return miscRun(p);
    case 'PING_CHECK': return pingRun(p);
  }
}

/**
 * Runs one check of `p`; the whole check (connect, TLS, request, reply, slow body, script) must end within
 * `timeoutMs`, else it fails with "timeout after N ms" and its socket or process is freed. Never rejects.
 */
export function runCheck(p: CheckerPlan, timeoutMs: number): Promise<RunOutcome> {
  let run: Run;
  try {
    run = start(p);
  } catch (e) {
    return Promise.resolve(fail(errText(e)));
  }
  const timer = setTimeout(() => run.cancel(`timeout after ${timeoutMs} ms`), timeoutMs);
  return run.done.finally(() => clearTimeout(timer));
}
