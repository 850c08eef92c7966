// sync ring across processes: a child process produces records into a real /dev/shm segment while this process
// consumes them; every record arrives once, in order, with all 12 words intact (no torn reads), and what the
// producer could not place while the ring was full is exactly the ring's dropped count.
import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { mapShared, removeShared, type SharedSegment } from '../../shared/sys/shm.ts';
import { SyncRing } from '../../shared/sync/ring.ts';

const root = resolve(import.meta.dirname, '../..');
const nodeBin = join(root, 'node_modules/.bin/node');
const path = `/dev/shm/tsvs-cluster-ringtest-${process.pid}`;
const N = 100_000;
const CAP = 1024;
let seg: SharedSegment | null = null;

afterAll(() => {
  seg?.unmap();
  removeShared(path);
});

/** Word j of record i: every word derived from i so a torn record cannot pass the check. */
const expectWord = (i: number, j: number): number => (j === 0 ? 0x000601 | ((i % 11) << 16) : j >= 10 ? 0 : (Math.imul(i + 1, 0x9e3779b1) ^ (j * 0x01010101)) >>> 0);

const producer = `
import { mapShared } from ${JSON.stringify(join(root, 'shared/sys/shm.ts'))};
import { SyncRing } from ${JSON.stringify(join(root, 'shared/sync/ring.ts'))};
const seg = mapShared(${JSON.stringify(path)}, ${SyncRing.bytes(CAP)});
const ring = SyncRing.attach(seg.buffer, 0);
const w = (i, j) => (${expectWord.toString()})(i, j);
let full = 0;
for (let i = 0; i < ${N}; i++) {
  for (;;) {
    const off = ring.reserve();
    if (off < 0) { full++; continue; }
    for (let j = 0; j < 12; j++) ring.words[off + j] = w(i, j);
    ring.commit();
    break;
  }
}
process.stdout.write(JSON.stringify({ full }) + '\\n');
seg.unmap();
`;

describe('sync ring between two processes', () => {
  it('sync ring: 100k records cross a real shm segment from a child process, in order, untorn, drops counted', async () => {
    seg = mapShared(path, SyncRing.bytes(CAP), { create: true, resize: true });
    const ring = SyncRing.create(seg.buffer, 0, CAP);
    const child = spawn(nodeBin, ['--input-type=module', '-e', producer], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    const exited = new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
    let next = 0;
    let torn = 0;
    const deadline = Date.now() + 60_000;
    while (next < N && Date.now() < deadline) {
      const n = ring.available();
      if (n === 0) {
        await new Promise((r) => setImmediate(r));
        continue;
      }
      for (let k = 0; k < n; k++) {
        const off = ring.offsetAt(k);
        for (let j = 0; j < 12; j++) if (ring.words[off + j] !== expectWord(next, j)) torn++;
        next++;
      }
      ring.release(n);
    }
    const code = await exited;
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(next).toBe(N);
    expect(torn).toBe(0);
    const { full } = JSON.parse(out) as { full: number };
    const st = ring.stats();
    expect(st.written).toBe(N);
    expect(st.dropped).toBe(full);
    expect(st.used).toBe(0);
  });
});
