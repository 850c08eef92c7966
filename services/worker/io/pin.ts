// CPU pinning for a forwarding worker: sched_setaffinity on the calling thread, confirmed by sched_getcpu.
import { check, raw } from '../../../shared/sys/libc.ts';

/** Size in bytes of the cpu_set_t passed to the kernel (1024 CPUs). */
const CPUSET_BYTES = 128;

/**
 * Pins the calling thread (the JS main thread; pid 0) to `cpu` and returns the CPU it runs on afterwards.
 * Linux affinity is per thread: threads created before the call (libuv pool, V8 helpers) keep their mask;
 * threads created later inherit it. To pin every thread, start the worker under `taskset -c CPU`.
 * Throws SysError("sched_setaffinity(cpu N)") when the CPU does not exist or is not allowed.
 */
export function pinToCpu(cpu: number): number {
  if (!Number.isInteger(cpu) || cpu < 0 || cpu >= CPUSET_BYTES * 8) throw new RangeError(`cpu out of range: ${cpu}`);
  const mask = new Uint8Array(CPUSET_BYTES);
  mask[cpu >> 3] = 1 << (cpu & 7);
  check(raw.sched_setaffinity(0, CPUSET_BYTES, mask), `sched_setaffinity(cpu ${cpu})`);
  return raw.sched_getcpu();
}

/** The CPU the calling thread is running on now (sched_getcpu). */
export function currentCpu(): number {
  return raw.sched_getcpu();
}

/** The CPUs the calling thread may run on (sched_getaffinity), ascending. */
export function allowedCpus(): number[] {
  const mask = new Uint8Array(CPUSET_BYTES);
  check(raw.sched_getaffinity(0, CPUSET_BYTES, mask), 'sched_getaffinity');
  const out: number[] = [];
  for (let i = 0; i < CPUSET_BYTES * 8; i++) if (mask[i >> 3] & (1 << (i & 7))) out.push(i);
  return out;
}
