// The newest decision records of every worker of this director, for /api/decisions and the monitor page: maps the
// decision-ring segments in the director's shared-memory directory (opened lazily, as workers create them).
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { mapShared, type SharedSegment } from '../../../shared/sys/shm.ts';
import { DecisionReader, type DecisionRecord } from '../../../shared/telemetry/decision-ring.ts';

/** Reads the rings `decisions-<i>` under `dir`; never throws for a missing or not-yet-formatted ring. */
export class DecisionRings {
  private readonly dir: string;
  private readonly open = new Map<string, { seg: SharedSegment; reader: DecisionReader }>();
  private lastScan = 0;

  constructor(dir: string) {
    this.dir = dir;
  }

  private scan(): void {
    const now = Date.now();
    if (now - this.lastScan < 1000) return;
    this.lastScan = now;
    let names: string[];
    try {
      names = readdirSync(this.dir).filter((f) => /^decisions-\d+$/.test(f));
    } catch {
      return;
    }
    for (const f of names) {
      const p = join(this.dir, f);
      if (this.open.has(p)) continue;
      try {
        const seg = mapShared(p, statSync(p).size);
        try {
          this.open.set(p, { seg, reader: new DecisionReader(seg.buffer) });
        } catch {
          seg.unmap();
        }
      } catch {
        // Not there yet or not a ring yet: try again on the next scan.
      }
    }
  }

  /** The newest `max` records over all workers that pass `filter`, newest first (by record time). */
  recent(max: number, filter?: (r: DecisionRecord) => boolean): DecisionRecord[] {
    this.scan();
    const all: DecisionRecord[] = [];
    for (const { reader } of this.open.values()) all.push(...reader.recent(filter, max));
    all.sort((a, b) => b.timeMs - a.timeMs || b.seq - a.seq);
    return all.slice(0, max);
  }

  close(): void {
    for (const { seg } of this.open.values()) seg.unmap();
    this.open.clear();
  }
}
