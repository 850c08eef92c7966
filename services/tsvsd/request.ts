// tsvsd admin requests: one wire line → a checked, canonical AdminEnvelope, or the error reply it deserves.
import { isIPv4, isIPv6 } from 'node:net';
import { ADMIN_PROTO_VERSION } from '../../shared/proto/admin.ts';
import type { AdminEnvelope, AdminErrno, AdminReply, AdminRequest } from '../../shared/proto/admin.ts';
import type { Af, DaemonConfig, DestConfig, DestKey, FwdMethod, ServiceConfig, ServiceKey, TunCsum, TunType } from '../../shared/model/ipvs.ts';

/** Reply id used when a request is too broken to carry a usable id of its own. */
export const UNKNOWN_ID = 0;

/** Outcome of checking one request: the request, or every problem found (never just the first). */
export type Checked<T> = { ok: true; value: T } | { ok: false; problems: string[] };

const OPS = new Set<AdminRequest['op']>([
  'add-service', 'edit-service', 'del-service', 'flush', 'add-dest', 'edit-dest', 'del-dest',
  'zero', 'set-timeout', 'start-daemon', 'stop-daemon', 'snapshot', 'conns', 'dataplane', 'stats', 'set-marks', 'get-marks', 'cluster', 'health',
]);
const PROTOCOLS = ['tcp', 'udp', 'sctp'] as const;
const METHODS: readonly FwdMethod[] = ['masq', 'local', 'tunnel', 'route'];
const TUN_TYPES: readonly TunType[] = ['ipip', 'gue', 'gre'];
const TUN_CSUMS: readonly TunCsum[] = ['', 'nocsum', 'csum', 'remcsum'];
const U32 = 0xffff_ffff;
const I32_MIN = -0x8000_0000;
const I32_MAX = 0x7fff_ffff;

/** Collects problems while reading fields of an untrusted object. */
class Reader {
  readonly problems: string[];
  readonly #o: Record<string, unknown>;
  readonly #where: string;

  constructor(o: unknown, where: string, problems: string[]) {
    this.problems = problems;
    this.#where = where;
    if (o === null || typeof o !== 'object' || Array.isArray(o)) {
      problems.push(`${where}: not an object`);
      this.#o = {};
    } else {
      this.#o = o as Record<string, unknown>;
    }
  }

  has(k: string): boolean {
    return this.#o[k] !== undefined;
  }

  raw(k: string): unknown {
    return this.#o[k];
  }

  int(k: string, min: number, max: number): number {
    const v = this.#o[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.problems.push(`${this.#where}.${k}: want an integer ${min}..${max}, got ${show(v)}`);
      return 0;
    }
    return v;
  }

  str(k: string, maxLen: number): string {
    const v = this.#o[k];
    if (typeof v !== 'string' || v.length > maxLen) {
      this.problems.push(`${this.#where}.${k}: want a string of at most ${maxLen} characters, got ${show(v)}`);
      return '';
    }
    return v;
  }

  oneOf<T extends string | number>(k: string, allowed: readonly T[]): T {
    const v = this.#o[k];
    if (!(allowed as readonly unknown[]).includes(v)) {
      this.problems.push(`${this.#where}.${k}: want one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, got ${show(v)}`);
      return allowed[0];
    }
    return v as T;
  }

  addr(k: string, af: Af): string {
    const v = this.#o[k];
    const c = typeof v === 'string' ? canonicalAddr(v, af) : null;
    if (c === null) {
      this.problems.push(`${this.#where}.${k}: want an IPv${af} address, got ${show(v)}`);
      return '';
    }
    return c;
  }

  where(): string {
    return this.#where;
  }
}

function show(v: unknown): string {
  const s = v === undefined ? 'nothing' : JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/**
 * Canonical text of an address of family `af` (dotted quad; RFC 5952-style lower-case compressed IPv6),
 * or null when `text` is not one. Zone ids are refused: a real server or VIP has none.
 */
export function canonicalAddr(text: string, af: Af): string | null {
  if (af === 4) return isIPv4(text) ? text : null;
  if (!isIPv6(text) || text.includes('%')) return null;
  return new URL(`http://[${text}]/`).hostname.slice(1, -1);
}

function serviceKey(r: Reader): ServiceKey {
  const af = r.oneOf<Af>('af', [4, 6]);
  const protocol = r.oneOf('protocol', PROTOCOLS);
  const fwmark = r.int('fwmark', 0, U32);
  if (fwmark > 0) {
    if (r.raw('addr') !== '' || r.raw('port') !== 0) r.problems.push(`${r.where()}: a fwmark service has addr "" and port 0`);
    return { af, protocol, addr: '', port: 0, fwmark };
  }
  return { af, protocol, addr: r.addr('addr', af), port: r.int('port', 0, 65535), fwmark: 0 };
}

function serviceConfig(r: Reader): ServiceConfig {
  return {
    ...serviceKey(r),
    // IP_VS_SCHEDNAME_MAXLEN and IP_VS_PENAME_MAXLEN are 16 including the NUL.
    scheduler: r.str('scheduler', 15),
    flags: r.int('flags', 0, U32),
    timeout: r.int('timeout', 0, I32_MAX),
    netmask: r.str('netmask', 39),
    pe: r.str('pe', 15),
  };
}

function destKey(r: Reader): DestKey {
  const af = r.oneOf<Af>('af', [4, 6]);
  return { af, addr: r.addr('addr', af), port: r.int('port', 0, 65535) };
}

function destConfig(r: Reader): DestConfig {
  return {
    ...destKey(r),
    method: r.oneOf('method', METHODS),
    // The kernel takes an int and answers ERANGE below zero: negative weights pass through to the table.
    weight: r.int('weight', I32_MIN, I32_MAX),
    uThreshold: r.int('uThreshold', 0, U32),
    lThreshold: r.int('lThreshold', 0, U32),
    tunType: r.oneOf('tunType', TUN_TYPES),
    tunPort: r.int('tunPort', 0, 65535),
    tunCsum: r.oneOf('tunCsum', TUN_CSUMS),
  };
}

function daemonConfig(r: Reader): DaemonConfig {
  return {
    state: r.oneOf('state', ['master', 'backup'] as const),
    mcastIfn: r.str('mcastIfn', 15),
    syncid: r.int('syncid', 0, 255),
    maxlen: r.int('maxlen', 0, 65535),
    group: r.str('group', 45),
    port: r.int('port', 0, 65535),
    ttl: r.int('ttl', 0, 255),
  };
}

/**
 * Checks an untrusted request object and rebuilds it from known fields only (extra fields are dropped,
 * addresses canonicalised). Numbers must be integers in the ranges the kernel's types allow; the errno
 * rules of the table (ERANGE, ENOENT, ...) are not applied here.
 */
export function checkRequest(x: unknown): Checked<AdminRequest> {
  const problems: string[] = [];
  const r = new Reader(x, 'request', problems);
  const op = r.raw('op');
  if (typeof op !== 'string' || !OPS.has(op as AdminRequest['op'])) {
    return { ok: false, problems: [`unknown op ${show(op)}`] };
  }
  const sub = (k: string): Reader => new Reader(r.raw(k), k, problems);
  let req: AdminRequest;
  switch (op as AdminRequest['op']) {
    case 'add-service':
    case 'edit-service':
      req = { op: op as 'add-service' | 'edit-service', svc: serviceConfig(sub('svc')) };
      break;
    case 'del-service':
      req = { op: 'del-service', key: serviceKey(sub('key')) };
      break;
    case 'add-dest':
    case 'edit-dest':
      req = { op: op as 'add-dest' | 'edit-dest', key: serviceKey(sub('key')), dest: destConfig(sub('dest')) };
      break;
    case 'del-dest':
      req = { op: 'del-dest', key: serviceKey(sub('key')), dest: destKey(sub('dest')) };
      break;
    case 'zero':
      req = r.has('key') ? { op: 'zero', key: serviceKey(sub('key')) } : { op: 'zero' };
      break;
    case 'set-timeout':
      req = { op: 'set-timeout', tcp: r.int('tcp', I32_MIN, I32_MAX), tcpfin: r.int('tcpfin', I32_MIN, I32_MAX), udp: r.int('udp', I32_MIN, I32_MAX) };
      break;
    case 'start-daemon':
      req = { op: 'start-daemon', daemon: daemonConfig(sub('daemon')) };
      break;
    case 'stop-daemon': {
      const state = r.oneOf('state', ['master', 'backup'] as const);
      req = r.has('syncid') ? { op: 'stop-daemon', state, syncid: r.int('syncid', 0, 255) } : { op: 'stop-daemon', state };
      break;
    }
    case 'flush':
    case 'snapshot':
    case 'conns':
    case 'dataplane':
    case 'stats':
    case 'get-marks':
    case 'health':
    case 'cluster':
      req = { op: op as 'flush' | 'snapshot' | 'conns' | 'dataplane' | 'stats' | 'get-marks' | 'cluster' | 'health' };
      break;
    case 'set-marks':
      req = { op: 'set-marks', text: r.str('text', 512 * 1024) };
      break;
  }
  return problems.length ? { ok: false, problems } : { ok: true, value: req };
}

function errorReply(id: number, errno: AdminErrno, detail: string): AdminReply {
  return { id, ok: false, errno, detail };
}

/**
 * Parses one wire line (without its newline). Bad JSON, a missing or non-integer id, an unknown op or a
 * malformed request → EINVAL; a version other than {@link ADMIN_PROTO_VERSION} → EPROTO. The reply
 * echoes the request's id when it has a usable one, else {@link UNKNOWN_ID}. Never throws.
 */
export function parseRequestLine(line: string): { ok: true; env: AdminEnvelope } | { ok: false; reply: AdminReply } {
  let x: unknown;
  try {
    x = JSON.parse(line);
  } catch {
    return { ok: false, reply: errorReply(UNKNOWN_ID, 'EINVAL', 'request is not JSON') };
  }
  if (x === null || typeof x !== 'object' || Array.isArray(x)) {
    return { ok: false, reply: errorReply(UNKNOWN_ID, 'EINVAL', 'request is not a JSON object') };
  }
  const o = x as Record<string, unknown>;
  const idOk = typeof o.id === 'number' && Number.isSafeInteger(o.id);
  const id = idOk ? (o.id as number) : UNKNOWN_ID;
  if (o.v !== ADMIN_PROTO_VERSION) {
    return { ok: false, reply: errorReply(id, 'EPROTO', `protocol version ${show(o.v)} not supported (want ${ADMIN_PROTO_VERSION})`) };
  }
  if (!idOk) return { ok: false, reply: errorReply(id, 'EINVAL', `request id ${show(o.id)} is not an integer`) };
  const c = checkRequest(o);
  if (!c.ok) return { ok: false, reply: errorReply(id, 'EINVAL', c.problems.join('; ')) };
  return { ok: true, env: { v: ADMIN_PROTO_VERSION, id, ...c.value } };
}
