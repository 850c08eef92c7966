// shm (integration: maps /dev/shm and starts a second node process): a segment mapped by two processes is one
// piece of memory; sizes are checked with SysError codes.
import { describe, expect, it, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mapShared, removeShared } from '../../shared/sys/shm.ts';

const path = `/dev/shm/tsvs-test-shm-${process.pid}`;
afterAll(() => removeShared(path));

describe('shm', () => {
  it('shm: a write in another process is seen here, and ours there', () => {
    const seg = mapShared(path, 8192, { create: true });
    expect(seg.created).toBe(true);
    const u32 = new Uint32Array(seg.buffer);
    u32[10] = 0xfeedf00d;
    const node = new URL('../../node_modules/.bin/node', import.meta.url).pathname;
    const mod = new URL('../../shared/sys/shm.ts', import.meta.url).pathname;
    const child = spawnSync(node, ['--input-type=module', '-e', `
      import { mapShared } from '${mod}';
      const s = mapShared('${path}', 8192);
      const u = new Uint32Array(s.buffer);
      process.stdout.write(u[10].toString(16));
      u[11] = 0x12345678;
    `], { encoding: 'utf8' });
    expect(child.stderr).toBe('');
    expect(child.stdout).toBe('feedf00d');
    expect(u32[11]).toBe(0x12345678);
    seg.unmap();
  });
  it('shm: re-mapping keeps the contents; a size mismatch is an error naming the path', () => {
    const again = mapShared(path, 8192, { create: true });
    expect(again.created).toBe(false);
    expect(new Uint32Array(again.buffer)[11]).toBe(0x12345678);
    again.unmap();
    expect(() => mapShared(path, 4096)).toThrow(path);
    expect(() => mapShared(path, 4096)).toThrow(expect.objectContaining({ name: 'SysError', code: 'EINVAL' }));
    expect(() => mapShared(`${path}-missing`, 4096)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    const resized = mapShared(path, 4096, { create: true, resize: true });
    expect(resized.created).toBe(true);
    expect(new Uint32Array(resized.buffer)[11]).toBe(0);
    resized.unmap();
  });
});
