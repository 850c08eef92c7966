// The data plane's shared memory, as tsvsd owns it: the per-namespace directory, the counters segment it creates,
// the workers' connection-table shards it maps read-only for listings, and their removal on exit.
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { Counters, countersBytes } from '../../shared/fwd/counters.ts';
import { conntabPath, countersPath, shmDir } from '../../shared/proto/worker.ts';
import { mapShared, removeShared, type SharedSegment } from '../../shared/sys/shm.ts';

/** This process's network namespace inode: the key of every per-director path. */
export function netnsInode(): number {
  return statSync('/proc/self/ns/net').ino;
}

/** The segments of one director's data plane. */
export class DataShm {
  /** The directory: /dev/shm/tsvs-ns-<netns inode>. */
  readonly dir: string;
  readonly workers: number;
  readonly counters: Counters;
  readonly #countersSeg: SharedSegment;

  /**
   * Creates the directory (removing what a previous tsvsd of this namespace left behind, e.g. after kill -9) and
   * the zeroed counters segment for `workers` rows. Throws an Error naming the path on failure.
   */
  constructor(workers: number, dir = shmDir(netnsInode())) {
    this.dir = dir;
    this.workers = workers;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const f of readdirSync(dir)) removeShared(`${dir}/${f}`);
    this.#countersSeg = mapShared(countersPath(dir), countersBytes(workers), { create: true, resize: true });
    this.counters = new Counters(this.#countersSeg.buffer, workers, true);
  }

  /**
   * Maps every worker's shard, hands the buffers to `fn` (index = worker; null where the shard is missing, its
   * worker not started yet, or cannot be mapped: reported to `onError`), and unmaps them when `fn` returns.
   */
  withShards<T>(fn: (buffers: readonly (ArrayBuffer | null)[]) => T, onError: (worker: number, e: Error) => void): T {
    const segs: SharedSegment[] = [];
    const buffers: (ArrayBuffer | null)[] = [];
    try {
      for (let w = 0; w < this.workers; w++) {
        const path = conntabPath(this.dir, w);
        buffers.push(null);
        if (!existsSync(path)) continue;
        try {
          const seg = mapShared(path, statSync(path).size);
          segs.push(seg);
          buffers[w] = seg.buffer;
        } catch (e) {
          onError(w, e as Error);
        }
      }
      return fn(buffers);
    } finally {
      for (const s of segs) s.unmap();
    }
  }

  /** Unmaps the counters and removes the directory with every segment in it. Idempotent. */
  remove(): void {
    this.#countersSeg.unmap();
    if (existsSync(this.dir)) rmSync(this.dir, { recursive: true, force: true });
  }
}
