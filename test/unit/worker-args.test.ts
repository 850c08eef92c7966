// worker/args: the worker's command line as tsvsd builds it, parsed without touching process state.
import { describe, expect, it } from 'vitest';
import { parseWorkerArgs } from '../../services/worker/args.ts';
import { DEFAULT_CONNS_PER_WORKER } from '../../shared/proto/worker.ts';

describe('worker/args', () => {
  it('worker/args: the usual command line, with defaults', () => {
    expect(parseWorkerArgs(['--index', '1', '--workers', '2', '--shm-dir', '/dev/shm/tsvs-x', '--client-if', 'eth0'])).toEqual({
      index: 1, workers: 2, cpu: null, shmDir: '/dev/shm/tsvs-x', clientIf: 'eth0', serverIf: 'eth0', capacity: DEFAULT_CONNS_PER_WORKER,
      ring: 'adaptive', backend: 'afpacket', spinUs: 100, busyPoll: false, queueBase: 0, decisions: 0, director: undefined, syncRing: 0, guard: {},
    });
    expect(parseWorkerArgs(['--index', '0', '--workers', '1', '--shm-dir', 'd', '--client-if', 'a', '--decisions', '4096', '--director', 'd1'])).toMatchObject({ decisions: 4096, director: 'd1' });
    expect(parseWorkerArgs(['--index', '0', '--workers', '1', '--shm-dir', 'd', '--client-if', 'a', '--server-if', 'b', '--cpu', '3', '--backend', 'nfqueue', '--queue-base', '8', '--busy-poll'])).toMatchObject({
      cpu: 3, serverIf: 'b', backend: 'nfqueue', queueBase: 8, busyPoll: true,
    });
  });
  it('worker/args: bad command lines give one error line, never a throw', () => {
    const base = ['--shm-dir', 'd', '--client-if', 'a'];
    expect(parseWorkerArgs(['--index', '2', '--workers', '2', ...base])).toEqual({ error: '--index I and --workers N with 0 <= I < N are required' });
    expect(parseWorkerArgs(['--index', '0', '--workers', '1', '--client-if', 'a'])).toEqual({ error: '--shm-dir is required' });
    expect(parseWorkerArgs(['--index', '0', '--workers', '1', ...base, '--ring', 'v4'])).toEqual({ error: 'bad --ring v4' });
    expect(parseWorkerArgs(['--index', '0', '--workers', '1', ...base, '--cpu', 'x'])).toEqual({ error: 'bad --cpu x' });
    expect('error' in parseWorkerArgs(['--bogus'])).toBe(true);
    expect(parseWorkerArgs(['--index', '0', '--workers', '1', ...base, '--decisions', '1000'])).toEqual({ error: '--decisions 1000: 0 (off) or a power of two >= 2' });
  });
});
