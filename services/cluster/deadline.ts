// One bound for the agent's KV operations: a promise that settles within a given time, whatever the server does.

/** `p`, or a rejection after `ms` (the late settlement of `p` is ignored). */
export function deadline<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`KV operation did not settle within ${ms} ms`)), ms);
    p.then((v) => {
      clearTimeout(t);
      resolve(v);
    }, (e: unknown) => {
      clearTimeout(t);
      reject(e instanceof Error ? e : new Error(String(e)));
    });
  });
}
