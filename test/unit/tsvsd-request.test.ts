// tsvsd-request: request line checking, the command line, the start-up rules seam and the log format (pure, no daemon).
import { describe, expect, it } from 'vitest';
import { canonicalAddr, checkRequest, parseRequestLine, UNKNOWN_ID } from '../../services/tsvsd/request.ts';
import { defaultWorkers, parseCli } from '../../services/tsvsd/args.ts';
import { applyRules } from '../../services/tsvsd/config-store.ts';
import type { ParsedRule } from '../../services/tsvsd/config-store.ts';
import { createLogger, rateLimited } from '../../services/tsvsd/log.ts';
import { resolveSocketPath } from '../../services/tsvsd/daemon.ts';
import { handleAdmin } from '../../services/tsvsd/admin-handlers.ts';
import { LocalConfigStore } from '../../services/tsvsd/config-store.ts';
import { StatsModel } from '../../services/tsvsd/stats.ts';
import { IpvsTable } from '../../shared/model/table.ts';
import type { AdminRequest } from '../../shared/proto/admin.ts';
import type { DestConfig, ServiceConfig } from '../../shared/model/ipvs.ts';
import { mulberry32 } from '../../shared/util/rng.ts';

const SVC: ServiceConfig = { af: 4, protocol: 'tcp', addr: '10.0.0.1', port: 80, fwmark: 0, scheduler: 'wlc', flags: 0, timeout: 0, netmask: '255.255.255.255', pe: '' };
const KEY = { af: 4, protocol: 'tcp', addr: '10.0.0.1', port: 80, fwmark: 0 } as const;
const DEST: DestConfig = { af: 4, addr: '192.168.0.1', port: 80, method: 'route', weight: 1, uThreshold: 0, lThreshold: 0, tunType: 'ipip', tunPort: 0, tunCsum: '' };

function line(o: object): string {
  return JSON.stringify(o);
}

describe('tsvsd-request: wire lines', () => {
  it('tsvsd-request: a valid request comes back as an envelope with its id', () => {
    const r = parseRequestLine(line({ v: 1, id: 42, op: 'add-service', svc: SVC }));
    expect(r).toEqual({ ok: true, env: { v: 1, id: 42, op: 'add-service', svc: SVC } });
  });
  it('tsvsd-request: every op with a well-formed body is accepted', () => {
    const reqs: AdminRequest[] = [
      { op: 'add-service', svc: SVC },
      { op: 'edit-service', svc: SVC },
      { op: 'del-service', key: KEY },
      { op: 'flush' },
      { op: 'add-dest', key: KEY, dest: DEST },
      { op: 'edit-dest', key: KEY, dest: DEST },
      { op: 'del-dest', key: KEY, dest: { af: 4, addr: '192.168.0.1', port: 80 } },
      { op: 'zero' },
      { op: 'zero', key: KEY },
      { op: 'set-timeout', tcp: 1, tcpfin: 2, udp: 3 },
      { op: 'start-daemon', daemon: { state: 'master', mcastIfn: 'eth0', syncid: 1, maxlen: 0, group: '', port: 0, ttl: 0 } },
      { op: 'stop-daemon', state: 'backup' },
      { op: 'stop-daemon', state: 'backup', syncid: 3 },
      { op: 'snapshot' },
      { op: 'conns' },
    ];
    for (const req of reqs) expect(checkRequest(req), req.op).toEqual({ ok: true, value: req });
  });
  it('tsvsd-request: bad JSON and non-objects answer EINVAL with the unknown id', () => {
    for (const l of ['', 'x', '{', '[1]', 'null', '"s"', '7']) {
      expect(parseRequestLine(l)).toMatchObject({ ok: false, reply: { id: UNKNOWN_ID, ok: false, errno: 'EINVAL' } });
    }
  });
  it('tsvsd-request: a wrong or missing version answers EPROTO and echoes the id', () => {
    expect(parseRequestLine(line({ v: 2, id: 3, op: 'flush' }))).toMatchObject({ ok: false, reply: { id: 3, errno: 'EPROTO' } });
    expect(parseRequestLine(line({ id: 4, op: 'flush' }))).toMatchObject({ ok: false, reply: { id: 4, errno: 'EPROTO' } });
  });
  it('tsvsd-request: an unknown op or a bad id answers EINVAL', () => {
    expect(parseRequestLine(line({ v: 1, id: 5, op: 'explode' }))).toMatchObject({ ok: false, reply: { id: 5, errno: 'EINVAL' } });
    expect(parseRequestLine(line({ v: 1, id: 1.5, op: 'flush' }))).toMatchObject({ ok: false, reply: { id: UNKNOWN_ID, errno: 'EINVAL' } });
    expect(parseRequestLine(line({ v: 1, op: 'flush' }))).toMatchObject({ ok: false, reply: { id: UNKNOWN_ID, errno: 'EINVAL' } });
  });
  it('tsvsd-request: every problem of a request is reported, not just the first', () => {
    const r = checkRequest({ op: 'add-dest', key: { ...KEY, port: 70000 }, dest: { ...DEST, method: 'nat', weight: 'x', addr: '1.2.3' } });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems.join('\n')).toMatch(/key\.port/);
    expect(r.problems.join('\n')).toMatch(/dest\.method/);
    expect(r.problems.join('\n')).toMatch(/dest\.weight/);
    expect(r.problems.join('\n')).toMatch(/dest\.addr/);
  });
  it('tsvsd-request: a negative weight passes the shape check (the table answers ERANGE)', () => {
    expect(checkRequest({ op: 'add-dest', key: KEY, dest: { ...DEST, weight: -1 } }).ok).toBe(true);
  });
  it('tsvsd-request: extra fields are dropped and IPv6 addresses are made canonical', () => {
    const r = checkRequest({ op: 'add-service', svc: { ...SVC, af: 6, addr: '2001:DB8:0:0::1', netmask: '128', junk: 1 }, extra: true });
    expect(r).toEqual({ ok: true, value: { op: 'add-service', svc: { ...SVC, af: 6, addr: '2001:db8::1', netmask: '128' } } });
  });
  it('tsvsd-request: addresses must match the family; zone ids are refused', () => {
    expect(canonicalAddr('10.0.0.1', 6)).toBe(null);
    expect(canonicalAddr('::1', 4)).toBe(null);
    expect(canonicalAddr('fe80::1%eth0', 6)).toBe(null);
    expect(canonicalAddr('010.0.0.1', 4)).toBe(null);
  });
  it('tsvsd-request: a fwmark service carries addr "" and port 0', () => {
    const fw = { ...SVC, addr: '', port: 0, fwmark: 3 };
    expect(checkRequest({ op: 'add-service', svc: fw }).ok).toBe(true);
    expect(checkRequest({ op: 'add-service', svc: { ...fw, addr: '10.0.0.1' } }).ok).toBe(false);
  });
  it('tsvsd-request: seeded random values in every field never throw', () => {
    const rand = mulberry32(7);
    const values: unknown[] = [null, undefined, 0, -1, 1.5, 2 ** 40, NaN, '', 'tcp', '::', '1.2.3.4', [], {}, true, { toString: 1 }];
    const pick = (): unknown => values[Math.floor(rand() * values.length)];
    const ops = ['add-service', 'edit-service', 'del-service', 'add-dest', 'edit-dest', 'del-dest', 'zero', 'set-timeout', 'start-daemon', 'stop-daemon'];
    for (let i = 0; i < 2000; i++) {
      const o: Record<string, unknown> = { op: ops[i % ops.length] };
      for (const k of ['svc', 'key', 'dest', 'daemon', 'tcp', 'tcpfin', 'udp', 'state', 'syncid']) {
        if (rand() < 0.5) continue;
        const sub: Record<string, unknown> = {};
        for (const f of ['af', 'protocol', 'addr', 'port', 'fwmark', 'scheduler', 'weight', 'method', 'state']) sub[f] = pick();
        o[k] = rand() < 0.5 ? sub : pick();
      }
      expect(() => checkRequest(o)).not.toThrow();
    }
  });
});

describe('tsvsd-request: handling', () => {
  it('tsvsd-request: snapshot and conns are read-only; without a data plane conns is empty', async () => {
    const t = new IpvsTable();
    const ctx = { store: new LocalConfigStore(t), stats: new StatsModel(t), log: (): void => {}, forwarding: false };
    expect((await handleAdmin({ v: 1, id: 1, op: 'conns' }, ctx)).reply).toEqual({ id: 1, ok: true, conns: [] });
    expect((await handleAdmin({ v: 1, id: 2, op: 'snapshot' }, ctx)).reply).toMatchObject({ id: 2, ok: true, snapshot: { services: [] } });
    expect(t.epoch).toBe(0);
    expect(await handleAdmin({ v: 1, id: 3, op: 'del-service', key: KEY }, ctx)).toEqual({ reply: { id: 3, ok: false, errno: 'ESRCH', detail: expect.any(String) } });
  });
  it('tsvsd-request: the socket path is the flag, else TSVS_ADMIN_SOCKET, else keyed on the netns inode', () => {
    expect(resolveSocketPath('/a.sock', { TSVS_ADMIN_SOCKET: '/b.sock' })).toBe('/a.sock');
    expect(resolveSocketPath(undefined, { TSVS_ADMIN_SOCKET: '/b.sock' })).toBe('/b.sock');
    expect(resolveSocketPath(undefined, {})).toMatch(/^\/run\/tsvs\/ns-\d+\/tsvsd\.sock$/);
  });
});

describe('tsvsd-request: command line', () => {
  it('tsvsd-request: all options parse; workers default to one per core less one', () => {
    expect(parseCli([])).toEqual({ kind: 'run', opts: { socket: undefined, config: undefined, pidfile: undefined, workers: defaultWorkers(), clientIf: undefined, serverIf: undefined, cpus: undefined, ring: undefined, markRules: undefined, backend: undefined, spinUs: undefined, busyPoll: undefined } });
    expect(defaultWorkers(1)).toBe(1);
    expect(defaultWorkers(2)).toBe(1);
    expect(defaultWorkers(8)).toBe(7);
    expect(defaultWorkers(64)).toBe(16);
    expect(parseCli(['--socket', '/s', '--config=/c', '--pidfile', '/p', '--workers', '4'])).toEqual({
      kind: 'run',
      opts: { socket: '/s', config: '/c', pidfile: '/p', workers: 4, clientIf: undefined, serverIf: undefined, cpus: undefined, ring: undefined, markRules: undefined, backend: undefined, spinUs: undefined, busyPoll: undefined },
    });
    expect(parseCli(['-h'])).toEqual({ kind: 'help' });
    const bp = parseCli(['--client-if', 'front', '--busy-poll']);
    expect(bp.kind === 'run' && bp.opts.busyPoll).toBe(true);
  });
  it('tsvsd-request: unknown flags, positionals, bad worker counts and empty paths are usage errors', () => {
    for (const argv of [['--nope'], ['extra'], ['--workers', '0'], ['--workers', '17'], ['--ring', 'v4'], ['--server-if', 'back'], ['--client-if', 'front', '--cpus', 'x'], ['--workers', 'two'], ['--workers', '1.5'], ['--socket', ''], ['--socket'], ['--client-if', 'f', '--busy-poll', '--spin-us', '50'], ['--client-if', 'f', '--busy-poll', '--backend', 'nfqueue'], ['--busy-poll=1']]) {
      expect(parseCli(argv).kind, argv.join(' ')).toBe('error');
    }
  });
});

describe('tsvsd-request: start-up rules seam', () => {
  it('tsvsd-request: rules apply in order and count', () => {
    const t = new IpvsTable();
    const rules: ParsedRule[] = [
      { line: 1, request: { op: 'add-service', svc: SVC } },
      { line: 2, request: { op: 'add-dest', key: KEY, dest: DEST } },
      { line: 3, request: { op: 'add-dest', key: KEY, dest: { ...DEST, addr: '192.168.0.2' } } },
    ];
    expect(applyRules(t, rules)).toEqual({ ok: true, applied: 3 });
    expect(t.snapshot().services[0].dests.map((d) => d.addr)).toEqual(['192.168.0.2', '192.168.0.1']);
  });
  it('tsvsd-request: the first refused rule stops loading and names its line and errno', () => {
    const t = new IpvsTable();
    const rules: ParsedRule[] = [
      { line: 4, request: { op: 'add-service', svc: SVC } },
      { line: 9, request: { op: 'add-service', svc: SVC } },
      { line: 12, request: { op: 'flush' } },
    ];
    expect(applyRules(t, rules)).toMatchObject({ ok: false, applied: 1, line: 9, errno: 'EEXIST' });
    const bad: ParsedRule[] = [{ line: 2, request: { op: 'add-service', svc: { ...SVC, addr: 'nope' } } }];
    expect(applyRules(new IpvsTable(), bad)).toMatchObject({ ok: false, applied: 0, line: 2, errno: 'EINVAL' });
  });
});

describe('tsvsd-request: log', () => {
  it('tsvsd-request: one line per event with timestamp, pid and quoted fields', () => {
    const out: string[] = [];
    const log = createLogger((l) => out.push(l), () => new Date(Date.UTC(2025, 0, 2, 3, 4, 5, 6)), 77);
    log('table: applied', { op: 'add-service', epoch: 3, none: undefined });
    log('multi\nline', { detail: 'has space', nl: 'a\nb' });
    expect(out).toEqual([
      '2025-01-02T03:04:05.006Z tsvsd[77] table: applied op=add-service epoch=3\n',
      '2025-01-02T03:04:05.006Z tsvsd[77] multi\\nline detail="has space" nl="a\\nb"\n',
    ]);
  });
  it('tsvsd-request: a rate-limited log passes N events per window and reports how many it dropped', () => {
    const seen: string[] = [];
    let t = 0;
    const log = rateLimited((e, f) => seen.push(f?.count === undefined ? e : `${e} ${f.count}`), 2, 1000, () => t);
    for (let i = 0; i < 5; i++) log('bad');
    expect(seen).toEqual(['bad', 'bad']);
    t = 1000;
    log('bad');
    expect(seen).toEqual(['bad', 'bad', 'log: suppressed similar events 3', 'bad']);
  });
});

describe('tsvsd-log', () => {
  it('tsvsd-log: a broken stderr (EPIPE) is absorbed once and logging stops, instead of an exception loop', async () => {
    const { EventEmitter } = await import('node:events');
    const { stderrWriter, createLogger } = await import('../../services/tsvsd/log.ts');
    const lines: string[] = [];
    const fake = Object.assign(new EventEmitter(), { write: (l: string) => (lines.push(l), true) }) as unknown as NodeJS.WriteStream;
    const log = createLogger(stderrWriter(fake), () => new Date(0), 1);
    log('before');
    fake.emit('error', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
    log('after');
    expect(lines).toEqual(['1970-01-01T00:00:00.000Z tsvsd[1] before\n']);
  });
});

describe('tsvsd-request: --help', () => {
  it('tsvsd-request: --help names every flag the command line accepts, in the usage lines and in the list', async () => {
    const { USAGE } = await import('../../services/tsvsd/args.ts');
    const flags = ['--socket', '--config', '--pidfile', '--workers', '--client-if', '--server-if', '--cpus', '--ring', '--mark-rules', '--backend', '--spin-us', '--busy-poll', '--help'];
    const [usage, list] = [USAGE.slice(0, USAGE.indexOf('\n\n')), USAGE.slice(USAGE.indexOf('\n\n'))];
    for (const f of flags) {
      expect(list, f).toMatch(new RegExp(`^  (-h, )?${f}\\b`, 'm'));
      if (f !== '--help') expect(usage, f).toMatch(new RegExp(`[[|] ?${f}\\b`));
    }
    expect(parseCli(['--frob']).kind).toBe('error');
    const run = parseCli(['--socket', '/s', '--config', '/c', '--pidfile', '/p', '--workers', '1', '--client-if', 'a', '--server-if', 'b', '--cpus', '0', '--ring', 'v2', '--mark-rules', '/m', '--backend', 'afpacket', '--spin-us', '5']);
    expect(run.kind).toBe('run');
    expect(parseCli(['--client-if', 'a', '--busy-poll']).kind).toBe('run');
  });
});
