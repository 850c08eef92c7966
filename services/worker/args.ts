// The worker's command line, parsed into options (pure: no process state; main.ts prints the error and exits).
import { parseArgs } from 'node:util';
import { DEFAULT_CONNS_PER_WORKER } from '../../shared/proto/worker.ts';
import { GUARD_ARG_SPECS, parseGuardFlags, type GuardOptions } from '../../shared/fwd/guard.ts';

/** Everything a worker is started with (tsvsd builds the command line; see services/tsvsd). */
export interface WorkerOptions {
  index: number;
  workers: number;
  /** CPU to pin to; null = stay where started. */
  cpu: number | null;
  shmDir: string;
  clientIf: string;
  serverIf: string;
  capacity: number;
  ring: 'adaptive' | 'v2' | 'v3';
  backend: 'afpacket' | 'nfqueue';
  /** Poll window after each batch, µs (0 = none). */
  spinUs: number;
  busyPoll: boolean;
  queueBase: number;
  /** Decision-ring records (tracing): 0 = off, else a power of two >= 2. */
  decisions: number;
  /** Director name written into decision records (default: the host name). */
  director?: string;
  /** Records per connection-sync ring (a cluster): 0 = no sync, else the capacity tsvsd created the rings with. */
  syncRing: number;
  /** Dead destinations and flood defence (shared/fwd/guard.ts): only the flags given; the rest take the defaults. */
  guard: Partial<GuardOptions>;
}

export const WORKER_USAGE =
  'usage: worker --index I --workers N --shm-dir DIR --client-if IF [--server-if IF] [--cpu C] [--capacity N] [--ring adaptive|v2|v3] [--backend afpacket|nfqueue [--queue-base Q]] [--spin-us US | --busy-poll] [--decisions N [--director NAME]] [--sync-ring N] [--expire-nodest-conn 0|1] [--expire-quiescent-template 0|1] [--nodest-tcp rst|drop] [--syn-pressure PCT] [--syn-pressure-timeout MS] [--new-conn-rate N [--new-conn-burst N]]';

/** Parses `argv` (without node and script); returns the options or a one-line error. Never throws. */
export function parseWorkerArgs(argv: string[]): WorkerOptions | { error: string } {
  let a;
  try {
    a = parseArgs({
      args: argv,
      options: {
        index: { type: 'string' },
        workers: { type: 'string' },
        cpu: { type: 'string' },
        'shm-dir': { type: 'string' },
        'client-if': { type: 'string' },
        'server-if': { type: 'string' },
        capacity: { type: 'string' },
        ring: { type: 'string', default: 'adaptive' },
        backend: { type: 'string', default: 'afpacket' },
        'spin-us': { type: 'string', default: '100' },
        'busy-poll': { type: 'boolean', default: false },
        'queue-base': { type: 'string', default: '0' },
        decisions: { type: 'string', default: '0' },
        director: { type: 'string' },
        'sync-ring': { type: 'string', default: '0' },
        ...GUARD_ARG_SPECS,
      },
    }).values;
  } catch (e) {
    return { error: (e as Error).message };
  }
  const int = (v: string | undefined): number => (v !== undefined && /^\d+$/.test(v) ? Number(v) : NaN);
  const index = int(a.index);
  const workers = int(a.workers);
  if (!Number.isInteger(index) || !Number.isInteger(workers) || workers < 1 || index >= workers) return { error: '--index I and --workers N with 0 <= I < N are required' };
  if (!a['shm-dir']) return { error: '--shm-dir is required' };
  if (!a['client-if']) return { error: '--client-if is required' };
  if (a.ring !== 'adaptive' && a.ring !== 'v2' && a.ring !== 'v3') return { error: `bad --ring ${a.ring}` };
  if (a.backend !== 'afpacket' && a.backend !== 'nfqueue') return { error: `bad --backend ${a.backend}` };
  const cpu = a.cpu === undefined ? null : int(a.cpu);
  const capacity = a.capacity === undefined ? DEFAULT_CONNS_PER_WORKER : int(a.capacity);
  const spinUs = Number(a['spin-us']);
  const queueBase = int(a['queue-base']);
  if (cpu !== null && !Number.isInteger(cpu)) return { error: `bad --cpu ${a.cpu}` };
  if (!(capacity > 0)) return { error: `bad --capacity ${a.capacity}` };
  if (!(spinUs >= 0)) return { error: `bad --spin-us ${a['spin-us']}` };
  if (!(queueBase >= 0 && queueBase <= 0xffff)) return { error: `bad --queue-base ${a['queue-base']}` };
  const decisions = int(a.decisions);
  if (!Number.isInteger(decisions) || (decisions > 0 && (decisions < 2 || (decisions & (decisions - 1)) !== 0))) return { error: `--decisions ${a.decisions}: 0 (off) or a power of two >= 2` };
  const syncRing = int(a['sync-ring']);
  if (!Number.isInteger(syncRing) || (syncRing > 0 && (syncRing < 2 || (syncRing & (syncRing - 1)) !== 0))) return { error: `--sync-ring ${a['sync-ring']}: 0 (off) or a power of two >= 2` };
  const guard = parseGuardFlags(a);
  if ('error' in guard) return guard;
  return {
    index, workers, cpu, shmDir: a['shm-dir'], clientIf: a['client-if'], serverIf: a['server-if'] ?? a['client-if'], capacity,
    ring: a.ring, backend: a.backend, spinUs, busyPoll: a['busy-poll'] === true, queueBase, decisions, director: a.director, syncRing, guard,
  };
}
