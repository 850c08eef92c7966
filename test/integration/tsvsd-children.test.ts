// tsvsd-children: the child supervisor with real child processes — restart with backoff, messages to the owner,
// stop with SIGTERM (no root needed; each child is a tiny node -e script).
import { describe, expect, it } from 'vitest';
import { ChildSupervisor } from '../../services/tsvsd/children.ts';

const HELLO = "process.send({ type: 'hello', v: 1, kind: 'health', pid: process.pid });";

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('tsvsd-children', () => {
  it('tsvsd-children: a child that keeps exiting is restarted with a doubling backoff up to its bound; each run says hello', async () => {
    const hellos: number[] = [];
    const waits: (number | null)[] = [];
    const sup = new ChildSupervisor({
      message: (_n, m) => void ((m as { type?: string }).type === 'hello' && hellos.push((m as { pid: number }).pid)),
      exited: (_n, _how, wait) => void waits.push(wait),
    });
    sup.start({ name: 'crasher', kind: 'health', entry: '-e', args: [`${HELLO} setTimeout(() => process.exit(3), 50)`], minBackoffMs: 20, maxBackoffMs: 80 });
    await until(() => waits.length >= 3);
    expect(waits.slice(0, 3)).toEqual([40, 80, 80]);
    await until(() => hellos.length >= 3);
    expect(new Set(hellos).size).toBe(hellos.length);
    expect(sup.get('crasher')).toMatchObject({ kind: 'health', lastExit: 'code 3' });
    expect(sup.get('crasher')!.restarts).toBeGreaterThanOrEqual(3);
    await sup.stop();
    expect(sup.alive('crasher')).toBe(false);
  });
  it('tsvsd-children: stop ends a running child with SIGTERM, restarts nothing, and a message reaches the child', async () => {
    const got: unknown[] = [];
    const exits: (number | null)[] = [];
    const sup = new ChildSupervisor({ message: (_n, m) => void got.push(m), exited: (_n, how, wait) => void exits.push(wait) });
    sup.start({ name: 'echo', kind: 'cluster', entry: '-e', args: [`${HELLO} process.on('message', (m) => process.send({ type: 'echo', m }));`] });
    await until(() => got.length >= 1);
    expect(sup.send('echo', { type: 'ping' })).toBe(true);
    await until(() => got.length >= 2);
    expect(got[1]).toEqual({ type: 'echo', m: { type: 'ping' } });
    const pid = sup.get('echo')!.pid;
    expect(pid).toBeGreaterThan(0);
    await sup.stop();
    expect(exits).toEqual([null]);
    expect(sup.get('echo')).toMatchObject({ alive: false, restarts: 0, lastExit: 'SIGTERM' });
    expect(sup.send('echo', { type: 'ping' })).toBe(false);
  });
});
