// Long-lived TCP streams for failover tests: `serve` echoes; `run` opens N connections that each send a small
// sequence-numbered message every interval and check the echo, and reports resets, stalls and recovery after marks.
//   node ops/lab/streams.ts serve --port P [--bind ADDR]
//   node ops/lab/streams.ts run --host H --port P [--conns N] [--interval-ms 100] [--duration-ms D] [--open-batch 100]
//                                [--stall-ms 1000] [--drain-ms 1500] [--ready-timeout-ms 15000]
// `run` reads commands on stdin: `mark NAME [EPOCH_MS]` (a failure or heal happened then; default now) and `stop`
// (SIGTERM/SIGINT also stop). It prints JSON lines on stdout: {"event":"ready",...} once every connection is open and
// echoing, {"event":"summary",...} (see StreamSummary) at the end. Runs inside lab namespaces (ip netns exec).
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { connect, createServer } from 'node:net';
import type { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { netnsOf } from './plan.ts';

/** Bytes of one message: magic, connection index, sequence number, check word (u32 big-endian each). */
export const MSG_BYTES = 16;
const MAGIC = 0x54535354; // 'TSST'
const CHECK = 0x5a17c3e5;

/** What the client knows about one connection (plain numbers; the summary is computed from these). */
export interface ConnTrack {
  /** Epoch ms when connected; 0 if it never connected. */
  openedAt: number;
  /** Epoch ms of each message sent, index = sequence number. */
  sentAt: number[];
  /** Next sequence number whose echo is expected. */
  acked: number;
  /** Longest time an echo was owed, ms (send of a message → its echo, or → the end while still owed). */
  maxStallMs: number;
  /** Epoch ms the longest stall started. */
  maxStallFrom: number;
  /** Reset/closed/error: epoch ms (0 = none) and what ('ECONNRESET', 'EPIPE', 'closed', ...). */
  resetAt: number;
  resetWhy: string;
  /** Echoes that did not match what was sent. */
  corrupt: number;
  /** Per mark: epoch ms of the first echo of a message sent at or after the mark (0 = not yet). */
  recoveredAt: number[];
}

/** A moment the test marked (a failure, a heal), epoch ms. */
export interface StreamMark {
  name: string;
  at: number;
}

/** Recovery after one mark, over the connections open and not reset before it. */
export interface MarkSummary {
  name: string;
  at: number;
  /** Mark → the first echo (any connection) of a message sent after the mark: traffic flowing again, ms. */
  recovery_first_ms: number | null;
  /** Per connection: mark → its first echo of a message sent after the mark (includes up to one send interval), ms. */
  recovery_p50_ms: number | null;
  recovery_max_ms: number | null;
  /** Connections with no echo of a message sent after the mark. */
  unrecovered: number;
}

/** The client's JSON summary (`"event":"summary"`). */
export interface StreamSummary {
  event: 'summary';
  conns: number;
  opened: number;
  failed_to_open: number;
  /** Connections reset, closed by the peer or failed with an error while the run lasted. */
  reset: number;
  /** Connections whose longest stall was over the stall limit (default 1000 ms). */
  stalled_over_1s: number;
  /** Connections lost: reset, or still owing an echo older than the stall limit when the run ended (stuck). */
  lost: number;
  stall_limit_ms: number;
  max_stall_ms: number;
  /** Connections that received a wrong echo. */
  corrupt: number;
  sent: number;
  echoed: number;
  duration_ms: number;
  /** Of the first mark (the failure), or null without marks. */
  recovery_p50_ms: number | null;
  recovery_max_ms: number | null;
  marks: MarkSummary[];
  /** Up to 20 examples: connection index, local port, when and why it was reset. */
  resets: { conn: number; port: number; at: number; why: string }[];
  /** Up to 20 of the longest stalls over the limit: connection index, local port, from (epoch ms), ms. */
  stalls: { conn: number; port: number; from: number; ms: number }[];
}

/** A fresh track for a connection. */
export function newTrack(marks: number): ConnTrack {
  return { openedAt: 0, sentAt: [], acked: 0, maxStallMs: 0, maxStallFrom: 0, resetAt: 0, resetWhy: '', corrupt: 0, recoveredAt: new Array<number>(marks).fill(0) };
}

/** Records the echo of the next owed message at `now`; `marks` are the run's marks so far. */
export function onEcho(t: ConnTrack, now: number, marks: readonly StreamMark[]): void {
  const sent = t.sentAt[t.acked];
  const stall = now - sent;
  if (stall > t.maxStallMs) {
    t.maxStallMs = stall;
    t.maxStallFrom = sent;
  }
  for (let m = 0; m < marks.length; m++) {
    if (t.recoveredAt[m] === undefined) t.recoveredAt[m] = 0;
    if (t.recoveredAt[m] === 0 && sent >= marks[m].at) t.recoveredAt[m] = now;
  }
  t.acked++;
}

/** The longest stall of `t` counting a message still owed at `end`. */
export function stallAt(t: ConnTrack, end: number): { ms: number; from: number } {
  const owedFrom = t.acked < t.sentAt.length ? t.sentAt[t.acked] : end;
  const open = end - owedFrom;
  return open > t.maxStallMs ? { ms: open, from: owedFrom } : { ms: t.maxStallMs, from: t.maxStallFrom };
}

function pct(sorted: number[], p: number): number | null {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/**
 * The summary of a run: `tracks[i]` of connection i, `ports[i]` its local port, `end` the epoch ms the run ended (a
 * message still owed then counts as a stall up to `end`; a connection reset after `end` does not count).
 */
export function summarize(tracks: readonly ConnTrack[], ports: readonly number[], marks: readonly StreamMark[], end: number, startedAt: number, stallLimitMs = 1000): StreamSummary {
  let opened = 0;
  let sent = 0;
  let echoed = 0;
  let maxStall = 0;
  let corrupt = 0;
  const resets: StreamSummary['resets'] = [];
  const stalls: StreamSummary['stalls'] = [];
  let reset = 0;
  let lost = 0;
  for (let i = 0; i < tracks.length; i++) {
    const t = tracks[i];
    if (!t.openedAt) continue;
    opened++;
    sent += t.sentAt.length;
    echoed += t.acked;
    if (t.corrupt) corrupt++;
    if (t.resetAt && t.resetAt <= end) {
      reset++;
      resets.push({ conn: i, port: ports[i] ?? 0, at: t.resetAt, why: t.resetWhy });
    }
    const stuck = !t.resetAt && t.acked < t.sentAt.length && end - t.sentAt[t.acked] > stallLimitMs;
    if ((t.resetAt && t.resetAt <= end) || stuck) lost++;
    const s = t.resetAt ? { ms: t.maxStallMs, from: t.maxStallFrom } : stallAt(t, end);
    if (s.ms > maxStall) maxStall = s.ms;
    if (s.ms > stallLimitMs) stalls.push({ conn: i, port: ports[i] ?? 0, from: s.from, ms: s.ms });
  }
  stalls.sort((a, b) => b.ms - a.ms);
  const markSummaries: MarkSummary[] = marks.map((m, k) => {
    const rec: number[] = [];
    let unrecovered = 0;
    for (const t of tracks) {
      if (!t.openedAt || t.openedAt > m.at || (t.resetAt && t.resetAt <= m.at)) continue;
      const r = t.recoveredAt[k] ?? 0;
      if (r) rec.push(r - m.at);
      else unrecovered++;
    }
    rec.sort((a, b) => a - b);
    return { name: m.name, at: m.at, recovery_first_ms: rec.length ? rec[0] : null, recovery_p50_ms: pct(rec, 50), recovery_max_ms: rec.length ? rec[rec.length - 1] : null, unrecovered };
  });
  return {
    event: 'summary',
    conns: tracks.length,
    opened,
    failed_to_open: tracks.length - opened,
    reset,
    stalled_over_1s: stalls.length,
    lost,
    stall_limit_ms: stallLimitMs,
    max_stall_ms: maxStall,
    corrupt,
    sent,
    echoed,
    duration_ms: end - startedAt,
    recovery_p50_ms: markSummaries[0]?.recovery_p50_ms ?? null,
    recovery_max_ms: markSummaries[0]?.recovery_max_ms ?? null,
    marks: markSummaries,
    resets: resets.slice(0, 20),
    stalls: stalls.slice(0, 20),
  };
}

/** Parses one stdin command of `run`: a mark (time defaults to `now`), stop, or null (ignored/unknown). */
export function parseCommand(line: string, now: number): { type: 'mark'; mark: StreamMark } | { type: 'stop' } | null {
  const w = line.trim().split(/\s+/);
  if (w[0] === 'stop') return { type: 'stop' };
  if (w[0] === 'mark' && w[1]) {
    const at = w[2] === undefined ? now : Number(w[2]);
    if (!Number.isFinite(at) || at <= 0) return null;
    return { type: 'mark', mark: { name: w[1], at } };
  }
  return null;
}

// ---- handles (tests and benches drive the tool in lab nodes through these) ------------------------------------

const SELF = new URL(import.meta.url).pathname;
const NODE_BIN = new URL('../../node_modules/.bin/node', import.meta.url).pathname;

/** A running echo server in a lab node; stop() kills it by pid. */
export interface EchoServer {
  pid: number;
  stop(): Promise<void>;
}

function killed(p: ChildProcess, sig: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  return new Promise((r) => {
    if (p.exitCode !== null || p.signalCode !== null) return r();
    p.once('exit', () => r());
    p.kill(sig);
  });
}

/** Starts `streams.ts serve --port PORT` in lab node `node`; resolves once it listens (rejects after 10 s). */
export function startEchoServer(node: string, port: number): Promise<EchoServer> {
  const p = spawn('ip', ['netns', 'exec', netnsOf(node), NODE_BIN, SELF, 'serve', '--port', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`streams: echo server in ${node} did not listen within 10 s: ${out}`));
    }, 10_000);
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (out.includes('streams: serving on')) {
        clearTimeout(t);
        resolve({ pid: p.pid ?? 0, stop: () => killed(p) });
      }
    };
    p.stdout.on('data', onData);
    p.stderr.on('data', onData);
    p.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`streams: echo server in ${node} exited ${code}: ${out}`));
    });
  });
}

/** What the client printed when every connection was open and echoing. */
export interface StreamReady {
  event: 'ready';
  opened: number;
  failed_to_open: number;
  echoing: number;
  ms: number;
}

/** A running stream client in a lab node. */
export interface StreamClient {
  pid: number;
  /** Resolves with the `ready` line (rejects if the client exits first). */
  ready: Promise<StreamReady>;
  /** Marks a moment (epoch ms, default now) the summary reports recovery after. */
  mark(name: string, at?: number): void;
  /** Stops the streams and resolves with the summary (kills the client if it has none within `timeoutMs`). */
  stop(timeoutMs?: number): Promise<StreamSummary>;
}

/** Options of {@link startStreamClient}: the `run` flags. */
export interface StreamClientOptions {
  conns?: number;
  intervalMs?: number;
  stallMs?: number;
  openBatch?: number;
}

/** Starts `streams.ts run` in lab node `node` against host:port. */
export function startStreamClient(node: string, host: string, port: number, o: StreamClientOptions = {}): StreamClient {
  const args = ['run', '--host', host, '--port', String(port), '--conns', String(o.conns ?? 1000), '--interval-ms', String(o.intervalMs ?? 100),
    '--stall-ms', String(o.stallMs ?? 1000), '--open-batch', String(o.openBatch ?? 100)];
  const p = spawn('ip', ['netns', 'exec', netnsOf(node), NODE_BIN, SELF, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const lines: Record<string, unknown>[] = [];
  const waiters: { event: string; resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }[] = [];
  const settle = (): void => {
    for (const w of [...waiters]) {
      const l = lines.find((x) => x.event === w.event);
      if (l) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(l);
      }
    }
  };
  createInterface({ input: p.stdout }).on('line', (line) => {
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      return;
    }
    settle();
  });
  // 'close': after the exit and after stdout has been read to its end.
  p.once('close', (code, sig) => {
    for (const w of waiters.splice(0)) w.reject(new Error(`streams: client in ${node} exited (${code ?? sig}) without a ${w.event} line: ${err}`));
  });
  const wait = (event: string): Promise<Record<string, unknown>> => new Promise((resolve, reject) => {
    waiters.push({ event, resolve, reject });
    settle();
  });
  const ready = wait('ready') as Promise<unknown> as Promise<StreamReady>;
  ready.catch(() => undefined);
  return {
    pid: p.pid ?? 0,
    ready,
    mark(name, at = Date.now()) {
      if (p.stdin.writable) p.stdin.write(`mark ${name} ${at}\n`);
    },
    async stop(timeoutMs = 15_000) {
      if (p.stdin.writable) p.stdin.write('stop\n');
      const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
      try {
        return (await wait('summary')) as unknown as StreamSummary;
      } finally {
        clearTimeout(t);
        await killed(p);
      }
    },
  };
}

// ---- processes --------------------------------------------------------------------------------------------------

function flag(args: string[], name: string, def?: string): string {
  const i = args.indexOf(name);
  if (i >= 0 && args[i + 1] !== undefined) return args[i + 1];
  if (def === undefined) throw new Error(`streams: ${name} is required`);
  return def;
}

function num(args: string[], name: string, def?: number): number {
  const v = Number(flag(args, name, def === undefined ? undefined : String(def)));
  if (!Number.isFinite(v) || v < 0) throw new Error(`streams: ${name} must be a non-negative number`);
  return v;
}

function serve(args: string[]): void {
  const port = num(args, '--port');
  const bind = flag(args, '--bind', '0.0.0.0');
  const server = createServer((s) => {
    s.setNoDelay(true);
    s.on('error', () => undefined);
    s.pipe(s);
  });
  server.on('error', (e) => {
    process.stderr.write(`streams serve: ${(e as Error).message}\n`);
    process.exit(1);
  });
  server.listen({ port, host: bind, backlog: 4096 }, () => process.stdout.write(`streams: serving on ${bind}:${port}\n`));
}

async function run(args: string[]): Promise<void> {
  const host = flag(args, '--host');
  const port = num(args, '--port');
  const n = num(args, '--conns', 1000);
  const intervalMs = Math.max(10, num(args, '--interval-ms', 100));
  const durationMs = num(args, '--duration-ms', 0);
  const openBatch = Math.max(1, num(args, '--open-batch', 100));
  const stallMs = num(args, '--stall-ms', 1000);
  const drainMs = num(args, '--drain-ms', 1500);
  const readyTimeoutMs = num(args, '--ready-timeout-ms', 15_000);
  const startedAt = Date.now();
  const marks: StreamMark[] = [];
  const tracks: ConnTrack[] = Array.from({ length: n }, () => newTrack(0));
  const socks: (Socket | null)[] = new Array<Socket | null>(n).fill(null);
  const ports: number[] = new Array<number>(n).fill(0);
  let stopping = false;
  let stopAt = 0;
  const out = Buffer.alloc(MSG_BYTES);

  const send = (i: number): void => {
    const s = socks[i];
    const t = tracks[i];
    if (!s || t.resetAt || stopping) return;
    const seq = t.sentAt.length;
    out.writeUInt32BE(MAGIC, 0);
    out.writeUInt32BE(i, 4);
    out.writeUInt32BE(seq, 8);
    out.writeUInt32BE((seq ^ i ^ CHECK) >>> 0, 12);
    t.sentAt.push(Date.now());
    s.write(Buffer.from(out));
  };

  const open = (i: number): Promise<void> => new Promise((resolve) => {
    const s = connect({ host, port, noDelay: true });
    const t = tracks[i];
    let pending: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => {
      s.destroy();
      resolve();
    }, 5000);
    s.once('connect', () => {
      clearTimeout(timer);
      t.openedAt = Date.now();
      ports[i] = s.localPort ?? 0;
      socks[i] = s;
      send(i);
      resolve();
    });
    s.on('data', (d: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, d]) : d;
      let off = 0;
      const now = Date.now();
      while (pending.length - off >= MSG_BYTES) {
        const ok = pending.readUInt32BE(off) === MAGIC && pending.readUInt32BE(off + 4) === i && pending.readUInt32BE(off + 8) === t.acked
          && pending.readUInt32BE(off + 12) === ((t.acked ^ i ^ CHECK) >>> 0) && t.acked < t.sentAt.length;
        if (!ok) t.corrupt++;
        if (t.acked < t.sentAt.length) onEcho(t, now, marks);
        off += MSG_BYTES;
      }
      pending = pending.subarray(off);
    });
    const gone = (why: string): void => {
      if (!t.openedAt || t.resetAt || stopping) return;
      t.resetAt = Date.now();
      t.resetWhy = why;
    };
    s.on('error', (e: NodeJS.ErrnoException) => gone(e.code ?? e.message));
    s.on('close', () => gone('closed'));
    s.on('end', () => gone('closed by peer'));
  });

  // Open in batches so the SYNs do not all land at once.
  for (let i = 0; i < n; i += openBatch) {
    const batch: Promise<void>[] = [];
    for (let j = i; j < Math.min(n, i + openBatch); j++) batch.push(open(j));
    await Promise.all(batch);
  }

  // Every connection sends once per interval, spread over the interval in 10 ms slots.
  const slots = Math.max(1, Math.round(intervalMs / 10));
  let tick = 0;
  const ticker = setInterval(() => {
    const slot = tick++ % slots;
    for (let i = slot; i < n; i += slots) send(i);
  }, intervalMs / slots);

  const readyBy = Date.now() + readyTimeoutMs;
  while (Date.now() < readyBy && tracks.some((t) => t.openedAt && !t.resetAt && t.acked === 0)) await new Promise((r) => setTimeout(r, 20));
  const opened = tracks.filter((t) => t.openedAt).length;
  process.stdout.write(`${JSON.stringify({ event: 'ready', opened, failed_to_open: n - opened, echoing: tracks.filter((t) => t.acked > 0).length, ms: Date.now() - startedAt })}\n`);

  let finish: () => void = () => undefined;
  const done = new Promise<void>((r) => (finish = r));
  const stop = (): void => {
    if (stopAt) return;
    stopAt = Date.now();
    finish();
  };
  createInterface({ input: process.stdin }).on('line', (line) => {
    const c = parseCommand(line, Date.now());
    if (c?.type === 'stop') stop();
    else if (c?.type === 'mark') {
      marks.push(c.mark);
      for (const t of tracks) t.recoveredAt.push(0);
    }
  });
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  if (durationMs) setTimeout(stop, Math.max(0, startedAt + durationMs - Date.now()));
  await done;
  // Stop sending, then give owed echoes a moment to arrive (a reset meanwhile still counts).
  clearInterval(ticker);
  const end = stopAt;
  const drainBy = Date.now() + drainMs;
  while (Date.now() < drainBy && tracks.some((t) => t.openedAt && !t.resetAt && t.acked < t.sentAt.length)) await new Promise((r) => setTimeout(r, 20));
  stopping = true;
  // A message sent before `end` and echoed during the drain counts with its real stall; one still owed counts to now.
  const summary = summarize(tracks, ports, marks, Math.max(end, Date.now()), startedAt, stallMs);
  summary.duration_ms = end - startedAt;
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  for (const s of socks) s?.destroy();
  process.exit(0);
}

if (import.meta.main) {
  const [mode, ...args] = process.argv.slice(2);
  try {
    if (mode === 'serve') serve(args);
    else if (mode === 'run') await run(args);
    else {
      process.stderr.write('usage: streams.ts serve --port P [--bind ADDR] | run --host H --port P [--conns N] [--interval-ms MS] [--duration-ms MS]\n');
      process.exit(2);
    }
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(2);
  }
}
