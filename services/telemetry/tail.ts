// Tails the decision rings of a director's workers as their consumer: maps each ring segment, polls it, hands the
// records on and commits how far it got in the ring's header (the only words it writes), so a restarted exporter
// resumes there and a first one starts from the oldest record the ring holds. Rings not there yet are retried.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { mapShared, type SharedSegment } from '../../shared/sys/shm.ts';
import { DecisionReader, type DecisionRecord } from '../../shared/telemetry/decision-ring.ts';

interface Tailed {
  seg: SharedSegment;
  reader: DecisionReader;
}

export class RingTail {
  private paths = new Set<string>();
  private readonly open = new Map<string, Tailed>();
  private readonly dir: string | null;
  /** Last error per path, reported once. */
  private readonly errors = new Map<string, string>();

  /** `paths`: ring files to tail; `dir`: also every `decisions-*` file appearing in that directory. */
  private readonly log: (line: string) => void;

  constructor(paths: string[], dir: string | null, log: (line: string) => void) {
    this.log = log;
    this.paths = new Set(paths);
    this.dir = dir;
  }

  /** Replaces the set of ring files (the `rings` IPC message). */
  setPaths(paths: string[]): void {
    this.paths = new Set(paths);
    for (const [p, t] of this.open) {
      if (!this.paths.has(p) && !(this.dir !== null && p.startsWith(this.dir + '/'))) {
        t.seg.unmap();
        this.open.delete(p);
      }
    }
  }

  /** Opens rings that appeared (cheap when nothing changed); call about once a second. */
  rescan(): void {
    const want = new Set(this.paths);
    if (this.dir !== null) {
      try {
        for (const f of readdirSync(this.dir)) if (/^decisions-\d+$/.test(f)) want.add(join(this.dir, f));
      } catch {
        // The directory appears when the data plane starts.
      }
    }
    for (const p of want) {
      if (this.open.has(p)) continue;
      try {
        const size = statSync(p).size;
        const seg = mapShared(p, size);
        try {
          const reader = new DecisionReader(seg.buffer, { from: 'consumer' });
          this.open.set(p, { seg, reader });
          const back = (reader.head - reader.cursor) >>> 0;
          if (back > 0) this.log(`ring ${p}: ${reader.consumed === null ? 'first attach' : 'resuming'}, ${back} record(s) to catch up`);
        } catch (e) {
          seg.unmap();
          throw e;
        }
        this.errors.delete(p);
        this.log(`tailing ${p}`);
      } catch (e) {
        const msg = (e as Error).message;
        if (this.errors.get(p) !== msg) this.log(`ring ${p}: ${msg} (retrying)`);
        this.errors.set(p, msg);
      }
    }
  }

  /**
   * Reads what every ring gained since the last poll: records `keep(outcome)` accepts go to `onRecord`, the others
   * are only counted (`onSkip`), losses to `onLoss`. Returns the largest share of a ring's capacity this poll had to
   * go through (records kept, skipped, torn or lost, over the ring's capacity; 0 when nothing was new).
   */
  poll(onRecord: (r: DecisionRecord) => void, onLoss: (lost: number, torn: number) => void, keep?: (outcome: number) => boolean, onSkip?: (n: number) => void): number {
    let fill = 0;
    for (const t of this.open.values()) {
      const { records, lost, torn, skipped } = t.reader.poll(undefined, keep);
      if (lost > 0 || torn > 0) onLoss(lost, torn);
      if (skipped > 0) onSkip?.(skipped);
      for (const r of records) onRecord(r);
      // Handed on (queued for export): a restart resumes after them. Spans still queued when the process dies are
      // lost with it (at most the export queue, about one export delay's worth).
      t.reader.commit();
      const f = (records.length + lost + torn + skipped) / t.reader.capacity;
      if (f > fill) fill = f;
    }
    return fill;
  }

  get count(): number {
    return this.open.size;
  }

  close(): void {
    for (const t of this.open.values()) t.seg.unmap();
    this.open.clear();
  }
}
