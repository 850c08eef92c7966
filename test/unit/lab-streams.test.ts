// The long-lived stream tool's bookkeeping (ops/lab/streams.ts): stalls, resets, recovery after marks, commands.
import { describe, expect, it } from 'vitest';
import { newTrack, onEcho, parseCommand, stallAt, summarize } from '../../ops/lab/streams.ts';
import type { ConnTrack, StreamMark } from '../../ops/lab/streams.ts';

/** A connection opened at `t0` that sent at each of `sends` and got echoes at `echoes` (in order). */
function track(t0: number, sends: number[], echoes: number[], marks: StreamMark[] = []): ConnTrack {
  const t = newTrack(marks.length);
  t.openedAt = t0;
  t.sentAt.push(...sends);
  for (const e of echoes) onEcho(t, e, marks);
  return t;
}

describe('lab streams: bookkeeping', () => {
  it('lab streams: the longest stall is the longest send → echo time, or send → end while still owed', () => {
    const t = track(1000, [1000, 1100, 1200], [1005, 1400]);
    expect(t.maxStallMs).toBe(300);
    expect(t.maxStallFrom).toBe(1100);
    expect(stallAt(t, 1300)).toEqual({ ms: 300, from: 1100 });
    expect(stallAt(t, 2500)).toEqual({ ms: 1300, from: 1200 });
  });

  it('lab streams: summary counts opened, resets (only up to the end), stalls over the limit, echoes', () => {
    const ok = track(1000, [1000, 1100], [1001, 1101]);
    const stalled = track(1000, [1000, 1100], [1001, 2300]);
    const reset = track(1000, [1000], [1001]);
    reset.resetAt = 1500;
    reset.resetWhy = 'ECONNRESET';
    const lateReset = track(1000, [1000], [1001]);
    lateReset.resetAt = 9000;
    const never = newTrack(0);
    const s = summarize([ok, stalled, reset, lateReset, never], [40001, 40002, 40003, 40004, 0], [], 2400, 900);
    expect(s).toMatchObject({ conns: 5, opened: 4, failed_to_open: 1, reset: 1, stalled_over_1s: 1, lost: 1, max_stall_ms: 1200, sent: 6, echoed: 6, corrupt: 0, recovery_p50_ms: null });
    expect(s.resets).toEqual([{ conn: 2, port: 40003, at: 1500, why: 'ECONNRESET' }]);
    expect(s.stalls).toEqual([{ conn: 1, port: 40002, from: 1100, ms: 1200 }]);
  });

  it('lab streams: recovery after a mark is the first echo of a message sent at or after it, per connection', () => {
    const marks: StreamMark[] = [{ name: 'fail', at: 5000 }];
    // sent before the mark and echoed after it: does not count; the one sent at 5050 echoed at 5300 does
    const a = track(1000, [4950, 5050, 5150], [4990, 5300, 5301], marks);
    const b = track(1000, [4990, 5090], [5400, 5401], marks);
    const c = track(1000, [4999, 5099], [], marks);
    const s = summarize([a, b, c], [1, 2, 3], marks, 6000, 1000);
    expect(s.marks).toEqual([{ name: 'fail', at: 5000, recovery_first_ms: 300, recovery_p50_ms: 300, recovery_max_ms: 401, unrecovered: 1 }]);
    // c still owes the echo of 4999 at 6000 (> 1 s): stuck, lost
    expect(s.lost).toBe(1);
    expect(s.recovery_p50_ms).toBe(300);
    expect(s.recovery_max_ms).toBe(401);
  });

  it('lab streams: stdin commands: mark with or without a time, stop; anything else is ignored', () => {
    expect(parseCommand('mark fail 1234', 99)).toEqual({ type: 'mark', mark: { name: 'fail', at: 1234 } });
    expect(parseCommand('mark heal', 99)).toEqual({ type: 'mark', mark: { name: 'heal', at: 99 } });
    expect(parseCommand('stop\n', 99)).toEqual({ type: 'stop' });
    expect(parseCommand('mark x nope', 99)).toBeNull();
    expect(parseCommand('hello', 99)).toBeNull();
  });
});
