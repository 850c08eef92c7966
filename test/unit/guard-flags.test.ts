// guard flags: the dead-destination and flood settings on tsvsd's and the worker's command lines, and the
// per-source limiter's budget.
import { describe, expect, it } from 'vitest';
import { guardArgs, parseGuardFlags, SourceLimiter } from '../../shared/fwd/guard.ts';
import { parseWorkerArgs } from '../../services/worker/args.ts';
import { parseCli } from '../../services/tsvsd/args.ts';

const W = ['--index', '0', '--workers', '1', '--shm-dir', 'd', '--client-if', 'a'];

describe('guard flags', () => {
  it('guard flags: tsvsd parses them and the worker reads back exactly what tsvsd passes', () => {
    const r = parseCli(['--client-if', 'eth0', '--capacity', '65536', '--expire-nodest-conn', '0', '--expire-quiescent-template', '1', '--nodest-tcp', 'drop', '--syn-pressure', '50', '--syn-pressure-timeout', '1000', '--new-conn-rate', '20', '--new-conn-burst', '40']);
    expect(r.kind).toBe('run');
    if (r.kind !== 'run') return;
    const g = { expireNodestConn: false, expireQuiescentTemplate: true, nodestTcp: 'drop', pressurePct: 50, pressureSynRecvMs: 1000, newConnRate: 20, newConnBurst: 40 };
    expect(r.opts.guard).toEqual(g);
    expect(r.opts.capacity).toBe(65536);
    expect(parseWorkerArgs([...W, ...guardArgs(r.opts.guard!)])).toMatchObject({ guard: g });
    const plain = parseCli(['--client-if', 'eth0']);
    expect(plain.kind === 'run' && plain.opts.guard === undefined && plain.opts.capacity === undefined).toBe(true);
  });

  it('guard flags: bad values give one error line naming the flag', () => {
    expect(parseGuardFlags({ 'expire-nodest-conn': 'yes' })).toEqual({ error: "--expire-nodest-conn: want 0 or 1, got 'yes'" });
    expect(parseGuardFlags({ 'nodest-tcp': 'reset' })).toEqual({ error: "--nodest-tcp: want rst or drop, got 'reset'" });
    expect(parseGuardFlags({ 'syn-pressure': '0' })).toEqual({ error: "--syn-pressure: want 1..100, got '0'" });
    expect(parseGuardFlags({ 'syn-pressure-timeout': '5s' })).toEqual({ error: "--syn-pressure-timeout: want 100..60000, got '5s'" });
    expect(parseGuardFlags({ 'new-conn-burst': '4' })).toEqual({ error: '--new-conn-burst needs --new-conn-rate' });
    expect(parseWorkerArgs([...W, '--nodest-tcp', 'x'])).toEqual({ error: "--nodest-tcp: want rst or drop, got 'x'" });
    expect(parseCli(['--new-conn-rate', '5'])).toEqual({ kind: 'error', message: '--capacity and the guard flags need --client-if' });
    expect(parseCli(['--client-if', 'a', '--capacity', '8'])).toEqual({ kind: 'error', message: "--capacity: want 16..16777214, got '8'" });
  });

  it('guard flags: the source limiter allows the burst, then the rate', () => {
    const l = new SourceLimiter(10, 3);
    const a = 0x0a000001;
    expect([1, 2, 3, 4].map(() => l.take(a, 1000))).toEqual([true, true, true, false]);
    expect(l.take(0x0a000002, 1000)).toBe(true);
    expect(l.take(a, 1050)).toBe(false);
    expect(l.take(a, 1100)).toBe(true);
    expect(l.take(a, 1100)).toBe(false);
  });
});
