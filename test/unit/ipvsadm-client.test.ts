// tsvsadm admin client: newline-delimited JSON envelopes over a real unix socket, replies matched by id.
import { describe, expect, it } from 'vitest';
import { createServer } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adminSocketPath, connectAdmin } from '../../services/tsvsadm/client.ts';

describe('tsvsadm client', () => {
  it('client: sends versioned envelopes and resolves replies by id', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'tsvsadm-')), 'd.sock');
    const seen: unknown[] = [];
    const server = createServer((s) => {
      let buf = '';
      s.setEncoding('utf8');
      s.on('data', (c: string) => {
        buf += c;
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          const req = JSON.parse(buf.slice(0, nl)) as { id: number; op: string };
          buf = buf.slice(nl + 1);
          seen.push(req);
          s.write(JSON.stringify(req.op === 'flush' ? { id: req.id, ok: true } : { id: req.id, ok: false, errno: 'ESRCH' }) + '\n');
        }
      });
    });
    await new Promise<void>((r) => server.listen(path, r));
    const c = await connectAdmin(path);
    expect(await c.request({ op: 'flush' })).toEqual({ id: 1, ok: true });
    expect(await c.request({ op: 'zero' })).toEqual({ id: 2, ok: false, errno: 'ESRCH' });
    expect(seen).toEqual([{ v: 1, id: 1, op: 'flush' }, { v: 1, id: 2, op: 'zero' }]);
    c.close();
    server.close();
  });

  it('client: rejects when nothing listens', async () => {
    await expect(connectAdmin(join(tmpdir(), 'tsvsadm-none', 'x.sock'))).rejects.toThrow();
  });

  it('client: TSVS_ADMIN_SOCKET overrides the per-netns default path', () => {
    expect(adminSocketPath({ TSVS_ADMIN_SOCKET: '/tmp/x.sock' })).toBe('/tmp/x.sock');
    expect(adminSocketPath({})).toMatch(/^\/run\/tsvs\/ns-\d+\/tsvsd\.sock$/);
  });
});
