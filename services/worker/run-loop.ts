// How a worker waits for packets: woken by the event loop per batch with a short poll window after each batch
// (--spin-us), or never sleeping (--busy-poll) with one event-loop turn between slices for the control path.
import type { Port } from './io/port.ts';

/**
 * After a batch, keeps polling every port for `spinUs` µs, so that a reply in flight is forwarded as it lands
 * instead of after another sleep and wake-up (tens of µs in a VM). The window is fixed, never extended by traffic:
 * the worker must return to its event loop to swap tables, expire connections and switch ring modes. Returns the
 * function to call at each batch end (re-entry safe: a batch delivered while spinning does not spin again).
 */
export function spinAfterBatch(ports: readonly Port[], spinUs: number): () => void {
  const spinMs = spinUs / 1000;
  let spinning = false;
  return (): void => {
    if (spinning || !(spinMs > 0)) return;
    spinning = true;
    const until = performance.now() + spinMs;
    while (performance.now() < until) for (let i = 0; i < ports.length; i++) ports[i].pollOnce();
    spinning = false;
  };
}

/**
 * Never sleeps: polls every port in slices of about a millisecond and gives the event loop one turn between slices
 * (setImmediate makes libuv poll without blocking) for table swaps, expiry, IPC and ring-mode timers. Returns a stop
 * function.
 */
export function busyPoll(ports: readonly Port[]): () => void {
  let stopped = false;
  const slice = (): void => {
    if (stopped) return;
    const until = performance.now() + 1;
    while (performance.now() < until) for (let i = 0; i < ports.length; i++) ports[i].pollOnce();
    setImmediate(slice);
  };
  setImmediate(slice);
  return () => {
    stopped = true;
  };
}
