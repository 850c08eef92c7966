// `tsvsadm trace [--service S] [--client ADDR[:PORT]] [--dest ADDR[:PORT]] [--json] [--last] [--count N]
// [--shm-dir DIR]`: scheduling decisions from the workers' decision rings (tsvsd with tracing on). Live: prints
// decisions as they happen; --last: the most recent ones still in the rings ("why did this connection go there").
// Not an ipvsadm command (ipvsadm rejects a first argument that is not an option). Reads the rings directly from
// shared memory: it needs root and the director's network namespace, like the rest of tsvsadm.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { shmDir } from '../../shared/proto/worker.ts';
import { mapShared, type SharedSegment } from '../../shared/sys/shm.ts';
import { DecisionReader, type DecisionRecord } from '../../shared/telemetry/decision-ring.ts';
import { formatTraceLine, matchTrace, parseTraceFilter, TraceUsageError, type TraceFilter } from '../../shared/telemetry/trace-format.ts';

const USAGE = 'usage: tsvsadm trace [--service [TCP|UDP] ADDR[:PORT] | --service "FWM MARK"] [--client ADDR[:PORT]] [--dest ADDR[:PORT]] [--json] [--last] [--count N] [--shm-dir DIR]\n';

/** The rings of one director, opened as they appear. */
class Rings {
  readonly dir: string;
  readonly #open = new Map<string, { seg: SharedSegment; reader: DecisionReader }>();

  constructor(dir: string) {
    this.dir = dir;
  }

  rescan(): void {
    let names: string[] = [];
    try {
      names = readdirSync(this.dir).filter((f) => /^decisions-\d+$/.test(f));
    } catch {
      return;
    }
    for (const f of names) {
      const p = join(this.dir, f);
      if (this.#open.has(p)) continue;
      try {
        const seg = mapShared(p, statSync(p).size);
        try {
          this.#open.set(p, { seg, reader: new DecisionReader(seg.buffer) });
        } catch {
          seg.unmap();
        }
      } catch {
        // Not there or not formatted yet.
      }
    }
  }

  get size(): number {
    return this.#open.size;
  }

  readers(): DecisionReader[] {
    return [...this.#open.values()].map((x) => x.reader);
  }

  close(): void {
    for (const { seg } of this.#open.values()) seg.unmap();
    this.#open.clear();
  }
}

/** Runs `trace`; resolves to the exit status (0; 1 when nothing to read or nothing matched with --last; 2 usage). */
export async function runTrace(args: readonly string[], out: (s: string) => void, err: (s: string) => void): Promise<number> {
  let v;
  let filter: TraceFilter;
  let count: number | null = null;
  try {
    v = parseArgs({
      args: [...args],
      strict: true,
      allowPositionals: false,
      options: {
        service: { type: 'string' },
        client: { type: 'string' },
        dest: { type: 'string' },
        json: { type: 'boolean' },
        last: { type: 'boolean' },
        count: { type: 'string' },
        'shm-dir': { type: 'string' },
      },
    }).values;
    filter = parseTraceFilter(v);
    if (v.count !== undefined) {
      if (!/^\d+$/.test(v.count) || Number(v.count) < 1) throw new TraceUsageError(`--count ${v.count}: want a positive integer`);
      count = Number(v.count);
    }
  } catch (e) {
    err(`tsvsadm trace: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const dir = v['shm-dir'] ?? shmDir(statSync('/proc/self/ns/net').ino);
  const rings = new Rings(dir);
  rings.rescan();
  const show = (r: DecisionRecord): void => out((v.json ? JSON.stringify(r) : formatTraceLine(r)) + '\n');
  try {
    if (v.last) {
      if (rings.size === 0) {
        err(`tsvsadm trace: no decision rings in ${dir}: is tsvsd running with tracing on (--otlp or --trace-ratio)?\n`);
        return 1;
      }
      const n = count ?? 1;
      const all = rings.readers().flatMap((rd) => rd.recent((r) => matchTrace(filter, r), n));
      all.sort((a, b) => b.timeMs - a.timeMs || b.seq - a.seq);
      if (all.length === 0) {
        err('tsvsadm trace: no decision in the rings matches (it may be older than what they keep)\n');
        return 1;
      }
      for (const r of all.slice(0, n)) show(r);
      return 0;
    }
    // Live: every ring from its current head on; new rings (a worker starting) are picked up once a second.
    let shown = 0;
    let stop = false;
    const onSig = (): void => {
      stop = true;
    };
    process.once('SIGINT', onSig);
    process.once('SIGTERM', onSig);
    let sinceScan = 0;
    while (!stop && (count === null || shown < count)) {
      for (const rd of rings.readers()) {
        for (const r of rd.poll().records) {
          if (!matchTrace(filter, r)) continue;
          show(r);
          if (count !== null && ++shown >= count) break;
        }
        if (count !== null && shown >= count) break;
      }
      await new Promise((res) => setTimeout(res, 50));
      if ((sinceScan += 50) >= 1000) {
        sinceScan = 0;
        rings.rescan();
      }
    }
    process.off('SIGINT', onSig);
    process.off('SIGTERM', onSig);
    return 0;
  } finally {
    rings.close();
  }
}
