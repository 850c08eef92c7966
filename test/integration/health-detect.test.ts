// health detect: the checker child against real loopback servers — detection and recovery times, inhibit,
// hanging checks cut at their timeout, flapping damped by rise/fall, misc_dynamic, quorum/sorry, reload.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { HealthChild, TcpPeer, sleep, vsConf } from './health-harness.ts';

const children: HealthChild[] = [];
const peers: TcpPeer[] = [];
const dir = mkdtempSync(join(tmpdir(), 'tsvs-health-'));

function child(): HealthChild {
  const c = new HealthChild();
  children.push(c);
  return c;
}
async function peer(host: string, port: number, mode: TcpPeer['mode'] = 'http'): Promise<TcpPeer> {
  const p = new TcpPeer(host, port);
  p.mode = mode;
  peers.push(p);
  await p.start();
  return p;
}

afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.stop()));
  await Promise.all(peers.splice(0).map((p) => p.stop()));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Real servers on 127.45.0.x:45000 with one TCP_CHECK each at a 200 ms interval. */
const fast = (extra = '') => `  TCP_CHECK {\n   connect_timeout 0.3\n   delay_loop 0.2\n   delay_before_retry 0.2\n   retry 1\n   warmup 0\n${extra}  }\n`;

describe('health detect', () => {
  it('health: a stopped server leaves the table within interval × fall + timeout (≤ 1 s at 200 ms) and comes back as fast', async () => {
    const a = await peer('127.45.0.2', 45000);
    await peer('127.45.0.3', 45000);
    const h = child();
    h.init(vsConf('127.45.0.1', 45000, ` real_server 127.45.0.2 45000 {\n${fast()} }\n real_server 127.45.0.3 45000 {\n${fast()} }`));
    await h.until(() => h.dests().length === 2, 3000, 'startup table');
    await sleep(1500); // past bootstrap; checks running
    const detect: number[] = [];
    const recover: number[] = [];
    for (let round = 0; round < 3; round++) {
      const t0 = Date.now();
      await a.stop();
      await h.until(() => h.dests().length === 1, 3000, 'removal');
      detect.push(Date.now() - t0);
      const t1 = Date.now();
      await a.start();
      await h.until(() => h.dests().length === 2, 3000, 'recovery');
      recover.push(Date.now() - t1);
    }
    console.log(`health: TCP_CHECK delay_loop 0.2 retry 1 delay_before_retry 0.2: detection ms ${detect.join(' ')}, recovery ms ${recover.join(' ')}`);
    for (const d of detect) expect(d).toBeLessThanOrEqual(1000);
    for (const r of recover) expect(r).toBeLessThanOrEqual(1000);
    const st = await h.status();
    expect(st[0].realServers.map((r) => r.checkers[0].kind)).toEqual(['TCP_CHECK', 'TCP_CHECK']);
  });

  it('health: with inhibit_on_failure a dead server stays listed at weight 0, then gets its weight back', async () => {
    const a = await peer('127.45.0.2', 45001);
    const h = child();
    h.init(vsConf('127.45.0.1', 45001, ` inhibit_on_failure\n real_server 127.45.0.2 45001 {\n  weight 4\n${fast()} }`));
    await h.until(() => h.dests().join() === '127.45.0.2:45001 w4', 3000, 'startup');
    await sleep(1200);
    await a.stop();
    await h.until(() => h.dests().join() === '127.45.0.2:45001 w0', 3000, 'weight 0');
    await a.start();
    await h.until(() => h.dests().join() === '127.45.0.2:45001 w4', 3000, 'weight back');
  });

  it('health: a check against a server that accepts and never answers (or stalls in the body) is cut at its timeout', async () => {
    await peer('127.45.0.4', 45002, 'silent');
    await peer('127.45.0.5', 45002, 'slow-body');
    const http = `  HTTP_GET {\n   url {\n    path /\n   }\n   connect_timeout 0.4\n   delay_loop 0.3\n   retry 0\n   warmup 0\n  }\n`;
    const h = child();
    h.init(vsConf('127.45.0.1', 45002, ` real_server 127.45.0.4 45002 {\n${http} }\n real_server 127.45.0.5 45002 {\n${http} }`));
    await h.until(() => h.dests().length === 2, 3000, 'startup table');
    await h.until(() => h.dests().length === 0, 4000, 'both removed');
    const st = await h.status();
    for (const rs of st[0].realServers) {
      const c = rs.checkers[0];
      expect(c.lastError).toBe('timeout after 400 ms');
      expect(c.lastDurationMs).toBeGreaterThanOrEqual(390);
      expect(c.lastDurationMs).toBeLessThan(700);
    }
  });

  it('health: a server flapping every 300 ms does not flap the table with rise 3 / fall 3; a real failure still goes through', async () => {
    const a = await peer('127.45.0.6', 45003);
    const h = child();
    h.init(vsConf('127.45.0.1', 45003, ` real_server 127.45.0.6 45003 {\n${fast('   rise 3\n   fall 3\n   fastinter 0.2\n')} }`));
    await h.until(() => h.dests().length === 1, 3000, 'startup');
    await sleep(1200);
    const before = h.seen.length;
    for (let i = 0; i < 12; i++) {
      await sleep(300);
      if (i % 2 === 0) await a.stop();
      else await a.start();
    }
    await a.start();
    expect(h.seen.length - before).toBe(0);
    const st = await h.status();
    expect(st[0].realServers[0].alive).toBe(true);
    const t0 = Date.now();
    await a.stop();
    await h.until(() => h.dests().length === 0, 3000, 'removal');
    console.log(`health: rise 3 fall 3 at 200 ms: flapping 300 ms for 3.6 s gave 0 transitions; a real failure detected in ${Date.now() - t0} ms`);
  });

  it('health: MISC_CHECK in mon\'s convention drives a server down and up; misc_dynamic exit status sets its weight', async () => {
    const state = join(dir, 'misc-state');
    const script = join(dir, 'check.sh');
    writeFileSync(state, '0');
    writeFileSync(script, `#!/bin/sh\nexit $(cat ${state})\n`);
    chmodSync(script, 0o755);
    const misc = (dyn: string) => `  MISC_CHECK {\n   misc_path "${script}"\n   misc_timeout 1\n   delay_loop 0.2\n   retry 0\n   warmup 0\n${dyn}  }\n`;
    const h = child();
    h.init(vsConf('127.45.0.1', 45004, ` real_server 127.45.0.7 45004 {\n  weight 2\n${misc('')} }`) + vsConf('127.45.0.1', 45005, ` real_server 127.45.0.8 45005 {\n  weight 2\n${misc('   misc_dynamic\n')} }`));
    await h.until(() => h.dests('tcp 127.45.0.1:45004').length === 1 && h.dests('tcp 127.45.0.1:45005').length === 1, 3000, 'startup');
    await sleep(1300);
    writeFileSync(state, '1');
    await h.until(() => h.dests('tcp 127.45.0.1:45004').length === 0 && h.dests('tcp 127.45.0.1:45005').length === 0, 3000, 'exit 1: down');
    writeFileSync(state, '0');
    await h.until(() => h.dests('tcp 127.45.0.1:45004').join() === '127.45.0.7:45004 w2', 3000, 'exit 0: up');
    writeFileSync(state, '7');
    await h.until(() => h.dests('tcp 127.45.0.1:45005').join() === '127.45.0.8:45005 w5', 3000, 'misc_dynamic exit 7: weight 5');
    // without misc_dynamic, exit 7 is a failure
    await h.until(() => h.dests('tcp 127.45.0.1:45004').length === 0, 3000, 'exit 7 without misc_dynamic: down');
    writeFileSync(state, '0');
    await h.until(() => h.dests('tcp 127.45.0.1:45005').join() === '127.45.0.8:45005 w2', 3000, 'misc_dynamic exit 0: configured weight back');
    // a hanging script is killed at misc_timeout
    writeFileSync(script, '#!/bin/sh\nsleep 30\n');
    await sleep(1500);
    const st = await h.status();
    expect(st[1].realServers[0].checkers[0].lastError).toBe('timeout after 1000 ms');
  });

  it("health: keepalived's quorum sample on real servers: quorum 7, hysteresis 2 — lost below 5 (sorry server in), gained at 9", async () => {
    const ps: TcpPeer[] = [];
    for (let i = 0; i < 10; i++) ps.push(await peer(`127.45.1.${10 + i}`, 45006));
    const rss = ps.map((p) => ` real_server ${p.host} 45006 {\n${fast().replace('retry 1', 'retry 0')} }`).join('\n');
    const h = child();
    h.init(vsConf('127.45.0.1', 45006, ` quorum 7\n hysteresis 2\n quorum_up "echo up >> ${join(dir, 'quorum.log')}"\n quorum_down "echo down >> ${join(dir, 'quorum.log')}"\n sorry_server 127.45.1.99 45006\n${rss}`));
    await h.until(() => h.dests().length === 10, 3000, 'startup');
    await sleep(1200);
    for (const p of ps.slice(0, 4)) await p.stop(); // 6 alive: still >= 5
    await h.until(() => h.dests().length === 6, 3000, 'six left');
    await sleep(600);
    expect(h.dests()).not.toContain('127.45.1.99:45006 w1');
    await ps[4].stop(); // 5 alive: 5 >= 7 - 2, holds
    await h.until(() => h.dests().length === 5, 3000, 'five left');
    await ps[5].stop(); // 4 alive: lost
    await h.until(() => h.dests().join() === '127.45.1.99:45006 w1', 3000, 'sorry server alone');
    // the switch to the sorry server is one batch: the failed server and the four live ones out, the sorry server in, together
    const batch = h.messages.find((m) => m.type === 'transitions' && m.changes.some((c) => c.key.addr === '127.45.1.99'));
    expect(batch?.type === 'transitions' ? batch.changes.map((c) => `${c.key.addr} ${c.dest ? 'set' : 'del'}`).sort() : []).toEqual(
      ['127.45.1.15 del', '127.45.1.16 del', '127.45.1.17 del', '127.45.1.18 del', '127.45.1.19 del', '127.45.1.99 set'],
    );
    for (const p of ps.slice(0, 4)) await p.start(); // 8 alive: not yet
    await sleep(1000);
    expect(h.dests()).toEqual(['127.45.1.99:45006 w1']);
    await ps[4].start(); // 9 alive: gained
    await h.until(() => h.dests().length === 9 && !h.dests().includes('127.45.1.99:45006 w1'), 3000, 'quorum back');
    const notified = h.messages.flatMap((m) => (m.type === 'notified' ? [m.event] : []));
    expect(notified).toEqual(['quorum_down', 'quorum_up']);
  });

  it('health: a reload keeps unchanged servers\' state and pushes only what changes', async () => {
    await peer('127.45.0.10', 45007);
    const text = (extra: string) => vsConf('127.45.0.1', 45007, ` real_server 127.45.0.10 45007 {\n${fast()} }\n real_server 127.45.0.11 45007 {\n${fast()} }\n${extra}`);
    const h = child();
    h.init(text(''));
    await h.until(() => h.dests().length === 1, 4000, '127.45.0.11 down');
    await sleep(600);
    const before = (await h.status())[0].realServers.map((r) => [r.alive, r.checkers[0].okInRow > 0, r.checkers[0].failInRow > 0]);
    const seenBefore = h.seen.length;
    h.reload(text(` real_server 127.45.0.12 45007 {\n  weight 3\n }`), 2);
    await h.until(() => h.dests().includes('127.45.0.12:45007 w3'), 3000, 'new server added');
    await sleep(300);
    expect(h.seen.slice(seenBefore).map((s) => `${s.change.key.addr} ${s.change.dest ? 'set' : 'del'}`)).toEqual(['127.45.0.12 set']);
    const after = (await h.status())[0].realServers.map((r) => [r.alive, r.checkers[0]?.okInRow > 0, r.checkers[0]?.failInRow > 0]);
    expect(after.slice(0, 2)).toEqual(before);
    expect(h.messages.some((m) => m.type === 'configured' && m.epoch === 2)).toBe(true);
  });
});
