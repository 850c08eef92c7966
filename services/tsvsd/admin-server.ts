// tsvsd admin socket: a root-only unix stream socket carrying newline-delimited JSON, one request at a time per connection.
import { connect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { chmodSync, lstatSync, mkdirSync, statSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import type { AdminReply } from '../../shared/proto/admin.ts';
import { rateLimited } from './log.ts';
import type { Logger } from './log.ts';
import { UNKNOWN_ID } from './request.ts';

/** Longest accepted request line, in bytes without the newline. Longer lines are answered EINVAL and dropped. */
export const MAX_LINE_BYTES = 1 << 20;

/** Lines buffered per connection before reading pauses (a client that pipelines waits, nothing is lost). */
const MAX_QUEUED_LINES = 64;

/** Answers one request line (newline stripped). Must not throw; a rejection is logged and answered EINVAL. */
export type LineHandler = (line: string) => AdminReply | Promise<AdminReply>;

/** What {@link startAdminServer} needs: where to listen, how to answer a line, where to log. */
export interface AdminServerOptions {
  path: string;
  handle: LineHandler;
  log: Logger;
  /** Default {@link MAX_LINE_BYTES}. */
  maxLineBytes?: number;
}

/** A listening admin server. */
export interface AdminServer {
  readonly path: string;
  /** Open client connections. */
  connections(): number;
  /**
   * Stops accepting, drops open connections and removes the socket file if it is still the one this
   * server created (a successor's socket is left alone). Idempotent.
   */
  close(): Promise<void>;
}

/** Why the admin socket could not be opened. */
export class AdminSocketError extends Error {
  override readonly name = 'AdminSocketError';
}

/**
 * Prepares `path` for listening: creates missing parent directories with mode 0700 and removes a stale
 * socket (one nobody answers on). Throws AdminSocketError when the path is a non-socket file or a live
 * daemon answers there.
 */
export async function clearSocketPath(path: string): Promise<'fresh' | 'stale-removed'> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return 'fresh';
  }
  if (!st.isSocket()) throw new AdminSocketError(`${path} exists and is not a socket; not touching it`);
  const live = await new Promise<boolean>((resolve) => {
    const c = connect(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (live) throw new AdminSocketError(`another daemon is listening on ${path}`);
  unlinkSync(path);
  return 'stale-removed';
}

/**
 * Listens on `path` (after {@link clearSocketPath}) with the socket created mode 0600 and owned by the
 * daemon's user, so only root reaches it when the daemon runs as root (the caller checks that: Node
 * offers no peer-credential check). Each connection's lines are answered strictly in order, one at a
 * time; connections are independent.
 */
export async function startAdminServer(opts: AdminServerOptions): Promise<AdminServer> {
  const { path, log } = opts;
  const maxLine = opts.maxLineBytes ?? MAX_LINE_BYTES;
  const removed = await clearSocketPath(path);
  if (removed === 'stale-removed') log('admin: removed stale socket', { path });

  const sockets = new Set<Socket>();
  // Clients can trigger these at will: a flood must not flood the log.
  const logTooLong = rateLimited(log, 10);
  const server: Server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    serveConnection(s, opts.handle, logTooLong, maxLine);
  });
  // The socket file is created by bind() inside listen(): the umask makes it 0600 from birth.
  const oldMask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(oldMask);
  }
  chmodSync(path, 0o600);
  const st = statSync(path);
  const ino = st.ino;
  if ((st.mode & 0o077) !== 0 || st.uid !== process.getuid?.()) {
    await new Promise<void>((r) => server.close(() => r()));
    throw new AdminSocketError(`${path} is not private to its owner after creation (mode ${(st.mode & 0o777).toString(8)}, uid ${st.uid})`);
  }
  server.on('error', (e) => log('admin: server error', { error: e.message }));

  let closing: Promise<void> | null = null;
  return {
    path,
    connections: () => sockets.size,
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }).then(() => {
        try {
          if (statSync(path).ino === ino) unlinkSync(path);
        } catch {
          // Already gone (Node's close unlinks its own socket): nothing to do.
        }
      });
      return closing;
    },
  };
}

/** Splits a byte stream into lines of at most `max` bytes; longer lines are reported and skipped. */
class LineFramer {
  #parts: Buffer[] = [];
  #len = 0;
  #discarding = false;
  readonly #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  /** Feeds bytes; returns complete lines and one `null` per over-long line, in order. */
  push(chunk: Buffer): (string | null)[] {
    const out: (string | null)[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl < 0 ? chunk.length : nl;
      if (!this.#discarding) {
        this.#parts.push(chunk.subarray(start, end));
        this.#len += end - start;
        if (this.#len > this.#max) {
          this.#discarding = true;
          this.#parts = [];
          this.#len = 0;
          out.push(null);
        }
      }
      if (nl < 0) break;
      if (!this.#discarding) out.push(Buffer.concat(this.#parts, this.#len).toString('utf8').replace(/\r$/, ''));
      this.#discarding = false;
      this.#parts = [];
      this.#len = 0;
      start = nl + 1;
    }
    return out;
  }
}

function serveConnection(s: Socket, handle: LineHandler, log: Logger, maxLine: number): void {
  const framer = new LineFramer(maxLine);
  const queue: (string | null)[] = [];
  let busy = false;
  /** The client half-closed: answer what it sent, then close our side. */
  let ended = false;

  const tooLong: AdminReply = { id: UNKNOWN_ID, ok: false, errno: 'EINVAL', detail: `request line longer than ${maxLine} bytes` };

  async function drain(): Promise<void> {
    if (busy) return;
    busy = true;
    while (queue.length > 0 && !s.destroyed) {
      if (queue.length < MAX_QUEUED_LINES / 2 && s.isPaused()) s.resume();
      const line = queue.shift() as string | null;
      if (line !== null && line.trim() === '') continue;
      let reply: AdminReply;
      if (line === null) {
        log('admin: request line too long', { limit: maxLine });
        reply = tooLong;
      } else {
        try {
          reply = await handle(line);
        } catch (e) {
          log('admin: handler failed (bug)', { error: (e as Error).message });
          reply = { id: UNKNOWN_ID, ok: false, errno: 'EINVAL', detail: 'internal error' };
        }
      }
      if (s.destroyed) break;
      if (!s.write(JSON.stringify(reply) + '\n')) {
        await new Promise<void>((r) => {
          const done = (): void => {
            s.off('drain', done);
            s.off('close', done);
            r();
          };
          s.on('drain', done);
          s.on('close', done);
        });
      }
    }
    busy = false;
    if (s.isPaused() && !s.destroyed) s.resume();
    if (ended && queue.length === 0 && !s.destroyed) s.end();
  }

  s.on('data', (chunk: Buffer) => {
    for (const l of framer.push(chunk)) queue.push(l);
    if (queue.length >= MAX_QUEUED_LINES) s.pause();
    void drain();
  });
  s.on('end', () => {
    ended = true;
    void drain();
  });
  s.on('error', () => s.destroy());
}
