// health cli: `services/health/main.ts --check FILE` as `keepalived -t` (every compat file passes, a broken one
// prints each problem with file:line and exits 1), and `--keepalived FILE` standalone with a SIGHUP reload.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { FromHealth } from '../../shared/proto/health.ts';
import { TcpPeer, vsConf } from './health-harness.ts';

const MAIN = resolve(import.meta.dirname, '../../services/health/main.ts');
const COMPAT = '/work/shared/compat/keepalived';
const FIXTURES = resolve(import.meta.dirname, '../fixtures/keepalived');
const dir = mkdtempSync(join(tmpdir(), 'tsvs-health-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function check(file: string): { code: number | null; err: string } {
  const r = spawnSync(process.execPath, [MAIN, '--check', file], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, err: r.stderr };
}

describe('health cli', () => {
  it('health cli: --check passes every compat keepalived.conf (exit 0, warnings with file:line)', () => {
    let files: string[];
    try {
      files = readdirSync(COMPAT).map((f) => join(COMPAT, f));
    } catch {
      files = readdirSync(FIXTURES, { withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(FIXTURES, e.name)); // a fresh clone has the copies under test/fixtures
    }
    expect(files.length).toBeGreaterThanOrEqual(9);
    for (const f of files) {
      const r = check(f);
      expect(r.code, `${f}: ${r.err}`).toBe(0);
      expect(r.err).toMatch(/: 0 error\(s\), \d+ warning\(s\)\n$/);
      for (const line of r.err.trim().split('\n').slice(0, -1)) expect(line).toMatch(/^\S+:\d+: warning: /);
    }
  });

  it('health cli: --check lists every problem of a broken file with its line and exits 1', () => {
    const f = join(dir, 'broken.conf');
    writeFileSync(f, 'virtual_server 10.0.0.1 80 {\n delay_loop x\n real_server 10.0.0.2 80 {\n  weight -1\n  FILE_CHECK {\n  }\n  UDP_CHECK {\n   payload zz\n  }\n }\n}\n');
    const r = check(f);
    expect(r.code).toBe(1);
    expect(r.err.split('\n').filter(Boolean)).toEqual([
      `${f}:2: error: delay_loop: bad time "x"`,
      `${f}:4: error: weight: bad number "-1" (0..65535)`,
      `${f}:5: error: FILE_CHECK is not supported by tsvs`,
      `${f}:8: error: payload: not an even number of hex digits "zz"`,
      `${f}: 4 error(s), 0 warning(s)`,
    ]);
    expect(check(join(dir, 'missing.conf')).code).toBe(1);
  });

  it('health cli: --keepalived FILE runs standalone, prints JSON lines, and reloads on SIGHUP keeping state', async () => {
    const peer = new TcpPeer('127.45.0.70', 45030);
    await peer.start();
    const f = join(dir, 'run.conf');
    const rs = (addr: string) => ` real_server ${addr} 45030 {\n  TCP_CHECK {\n   connect_timeout 0.3\n   delay_loop 0.2\n   retry 0\n   warmup 0\n  }\n }`;
    writeFileSync(f, vsConf('127.45.0.1', 45030, rs('127.45.0.70')));
    const p = spawn(process.execPath, [MAIN, '--keepalived', f], { stdio: ['ignore', 'pipe', 'pipe'] });
    const msgs: FromHealth[] = [];
    let buf = '';
    p.stdout.on('data', (d) => {
      buf += String(d);
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        msgs.push(JSON.parse(buf.slice(0, i)) as FromHealth);
        buf = buf.slice(i + 1);
      }
    });
    const until = async (pred: () => boolean, what: string) => {
      const end = Date.now() + 5000;
      while (!pred()) {
        if (Date.now() > end) throw new Error(`health cli: timed out waiting for ${what}: ${JSON.stringify(msgs)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    try {
      await until(() => msgs.some((m) => m.type === 'ready'), 'ready');
      await new Promise((r) => setTimeout(r, 800));
      writeFileSync(f, vsConf('127.45.0.1', 45030, `${rs('127.45.0.70')}\n${rs('127.45.0.71')}`));
      p.kill('SIGHUP');
      await until(() => msgs.some((m) => m.type === 'configured'), 'configured');
      await until(() => msgs.some((m) => m.type === 'transitions' && m.changes.some((c) => c.key.addr === '127.45.0.71' && c.dest === null)), '127.45.0.71 removed');
      // 127.45.0.70 kept its state: it was never removed or re-added
      expect(msgs.filter((m) => m.type === 'transitions').flatMap((m) => (m.type === 'transitions' ? m.changes : [])).filter((c) => c.key.addr === '127.45.0.70')).toEqual([]);
    } finally {
      const gone = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await gone;
      await peer.stop();
    }
  });
});
