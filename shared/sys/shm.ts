// Shared memory segments for the data plane: a file under /dev/shm mapped MAP_SHARED (shared/sys/libc.ts), seen
// as an ArrayBuffer. tsvsd and the workers both map the connection-table shards and counters.
import { closeSync, existsSync, fstatSync, ftruncateSync, mkdirSync, openSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { SysError, toSysError } from './errors.ts';
import { C, munmap, raw, MAP_FAILED, errno, view, type Ptr } from './libc.ts';

/** A mapped segment. `buffer` stays valid until `unmap()`; after that, touching it is undefined behaviour. */
export interface SharedSegment {
  readonly path: string;
  readonly buffer: ArrayBuffer;
  /** True when this call created (or resized) the file: its contents are zero. */
  readonly created: boolean;
  unmap(): void;
}

/**
 * Maps `path` (normally under /dev/shm) with `bytes` bytes, read-write, shared between processes.
 * With `create`, a missing file is created zero-filled; an existing file of another size is an error unless
 * `resize` is also given (then it is truncated to zero and re-created). Without `create` the file must exist
 * and have exactly `bytes` bytes. Throws SysError naming the path: EINVAL (bad size, size mismatch), ENOENT
 * (missing without `create`), or the failing call's errno.
 */
export function mapShared(path: string, bytes: number, opts: { create?: boolean; resize?: boolean } = {}): SharedSegment {
  const op = `shm ${path}`;
  if (!Number.isInteger(bytes) || bytes <= 0) throw new SysError(op, 'EINVAL', `bad size ${bytes}`);
  let created = false;
  let fd = -1;
  try {
    if (opts.create) mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const exists = existsSync(path);
    if (!exists && !opts.create) throw new SysError(op, 'ENOENT', 'does not exist');
    fd = openSync(path, exists ? 'r+' : 'w+', 0o600);
    const size = fstatSync(fd).size;
    if (size !== bytes) {
      if (exists && size !== 0 && !opts.resize) throw new SysError(op, 'EINVAL', `has ${size} bytes, expected ${bytes}`);
      if (size !== 0) ftruncateSync(fd, 0);
      ftruncateSync(fd, bytes);
      created = true;
    } else if (!exists) {
      created = true;
    }
  } catch (e) {
    if (fd >= 0) closeSync(fd);
    throw toSysError(op, e);
  }
  try {
    const ptr: Ptr = raw.mmap(null, bytes, C.PROT_READ | C.PROT_WRITE, C.MAP_SHARED, fd, 0);
    if (ptr === MAP_FAILED || ptr === 0n) throw new SysError(`${op}: mmap`, errno());
    const buffer = view(ptr, bytes);
    let mapped = true;
    return {
      path,
      buffer,
      created,
      unmap(): void {
        if (mapped) {
          mapped = false;
          munmap(ptr, bytes);
        }
      },
    };
  } finally {
    closeSync(fd);
  }
}

/** Removes a segment's file (mappings already made stay valid until unmapped). Missing files are fine. */
export function removeShared(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw toSysError(`shm ${path}: unlink`, e);
  }
}
