// Shared memory segments for the data plane: a file under /dev/shm mapped MAP_SHARED through koffi, seen as
// an ArrayBuffer. The one place outside services/ that makes system calls: tsvsd and the workers both map the
// connection-table shards and counters, and services may not import each other.
import { closeSync, fstatSync, ftruncateSync, openSync, unlinkSync, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import koffi from 'koffi';

const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_SHARED = 1;

let libc: { mmap: (addr: null, len: number, prot: number, flags: number, fd: number, off: number) => unknown; munmap: (addr: unknown, len: number) => number } | undefined;

function bindings(): NonNullable<typeof libc> {
  if (!libc) {
    const lib = koffi.load('libc.so.6');
    libc = {
      mmap: lib.func('void *mmap(void *addr, size_t len, int prot, int flags, int fd, int64_t off)'),
      munmap: lib.func('int munmap(void *addr, size_t len)'),
    };
  }
  return libc;
}

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
 * and have exactly `bytes` bytes. Throws an Error naming the path and the failed step.
 */
export function mapShared(path: string, bytes: number, opts: { create?: boolean; resize?: boolean } = {}): SharedSegment {
  if (!Number.isInteger(bytes) || bytes <= 0) throw new Error(`shm ${path}: bad size ${bytes}`);
  let created = false;
  if (opts.create) mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const exists = existsSync(path);
  if (!exists && !opts.create) throw new Error(`shm ${path}: does not exist`);
  const fd = openSync(path, exists ? 'r+' : 'w+', 0o600);
  try {
    const size = fstatSync(fd).size;
    if (size !== bytes) {
      if (exists && size !== 0 && !opts.resize) throw new Error(`shm ${path}: has ${size} bytes, expected ${bytes}`);
      if (size !== 0) ftruncateSync(fd, 0);
      ftruncateSync(fd, bytes);
      created = true;
    } else if (!exists) {
      created = true;
    }
    const { mmap, munmap } = bindings();
    const ptr = mmap(null, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    const addr = koffi.address(ptr);
    if (addr === -1n || addr === 0xffffffffffffffffn) throw new Error(`shm ${path}: mmap failed (errno ${koffi.errno()})`);
    const buffer = koffi.view(ptr, bytes) as ArrayBuffer;
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
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}
