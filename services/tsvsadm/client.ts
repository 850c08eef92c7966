// tsvsadm's admin client: newline-delimited JSON requests to tsvsd over its unix socket.
import { connect as netConnect } from 'node:net';
import { statSync } from 'node:fs';
import type { AdminEnvelope, AdminReply, AdminRequest } from '../../shared/proto/admin.ts';
import { ADMIN_PROTO_VERSION, defaultAdminSocketPath } from '../../shared/proto/admin.ts';

/** A connection to tsvsd; one request at a time or pipelined, replies matched by id. */
export interface AdminClient {
  /** Sends one request; rejects when the connection fails or closes before the reply. */
  request(req: AdminRequest): Promise<AdminReply>;
  close(): void;
}

/** The socket tsvsadm talks to: $TSVS_ADMIN_SOCKET, else the per-network-namespace default. */
export function adminSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.TSVS_ADMIN_SOCKET || defaultAdminSocketPath(statSync('/proc/self/ns/net').ino);
}

/** Connects to tsvsd; rejects when nothing listens at `path`. */
export function connectAdmin(path: string): Promise<AdminClient> {
  return new Promise((resolve, reject) => {
    const sock = netConnect(path);
    const pending = new Map<number, { ok: (r: AdminReply) => void; fail: (e: Error) => void }>();
    let nextId = 1;
    let buf = '';
    let closed: Error | undefined;
    const failAll = (e: Error): void => {
      closed = e;
      for (const p of pending.values()) p.fail(e);
      pending.clear();
    };
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      buf += chunk;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim() === '') continue;
        let reply: AdminReply;
        try {
          reply = JSON.parse(line) as AdminReply;
        } catch {
          sock.destroy();
          failAll(new Error('tsvsd sent a malformed reply'));
          return;
        }
        const p = pending.get(reply.id);
        if (p) {
          pending.delete(reply.id);
          p.ok(reply);
        }
      }
    });
    sock.on('close', () => failAll(closed ?? new Error('tsvsd closed the connection')));
    sock.once('error', (e) => {
      failAll(e);
      reject(e);
    });
    sock.once('connect', () =>
      resolve({
        request(req) {
          if (closed) return Promise.reject(closed);
          const id = nextId++;
          const env: AdminEnvelope = { v: ADMIN_PROTO_VERSION, id, ...req };
          return new Promise<AdminReply>((ok, fail) => {
            pending.set(id, { ok, fail });
            sock.write(JSON.stringify(env) + '\n');
          });
        },
        close() {
          sock.end();
        },
      }),
    );
  });
}
