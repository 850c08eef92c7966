// flood: the connection table under a SYN flood. hping3 -S -i u10 --rand-source (≈ 15–25 k SYN/s here) at a NAT
// service from the lab's client for 15 s while the same client opens connections with curl ten times a second:
// legitimate success ≥ 99 %, no SYN refused for a full table (the flood's half-open entries make room), the table
// within its bound (--capacity), the worker's RSS stable; evictions counted by reason.
// The flood's rate is bounded below what one worker forwards even on a loaded host: this test asserts how the table
// behaves when it is full, not how many packets a worker takes before its receive ring overflows (that is speed,
// the benches' part; the kernel's ring drops are counted as drop_rx_ring and printed here). With --flood, a CI host
// once saw 114 of 120 requests succeed (cause not recorded then); this machine 120 of 120.
// Needs root and the lab's host tools (hping3 among them); without them every test fails saying why (never skipped).
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { VIP, realServerIp, spawnIn } from '../../ops/lab/index.ts';
import { dataplaneStatus, labFor, settle, tsvsadm } from '../support/lab.ts';

const TOOLS = ['ip', 'nginx', 'dnsmasq', 'curl', 'dig', 'hping3'];
/** Entries per worker: the table's bound. */
const CAPACITY = 32768;
const FLOOD_S = 15;

/** Resident set of `pid` in KiB (from /proc: the lab shares the host's pid namespace). */
function rssKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? -1);
}

/** Connections in the table as ipvsadm counts them: ActiveConn + InActConn over every real server. */
function tableConns(): number {
  let n = 0;
  for (const m of tsvsadm('-L', '-n').matchAll(/->\s+\S+\s+\S+\s+\d+\s+(\d+)\s+(\d+)/g)) n += Number(m[1]) + Number(m[2]);
  return n;
}

describe('SYN flood (1 director, 1 worker, 2 servers, nat)', () => {
  labFor({ mode: 'nat', servers: 2, workers: 1, tsvsdArgs: `--capacity ${CAPACITY}` }, TOOLS);

  it(`flood: ${FLOOD_S} s of hping3 -S -i u10 --rand-source; curl 10/s succeeds ≥ 99 %, no SYN refused for a full table, the table stays within its bound, RSS stable`, async () => {
    tsvsadm('-C');
    tsvsadm('-A', '-t', `${VIP}:80`, '-s', 'rr');
    tsvsadm('-a', '-t', `${VIP}:80`, '-r', `${realServerIp(1)}:80`, '-m');
    tsvsadm('-a', '-t', `${VIP}:80`, '-r', `${realServerIp(2)}:80`, '-m');
    await settle();
    const pid = dataplaneStatus().workers[0].pid;
    const flood = spawnIn('client', ['timeout', String(FLOOD_S), 'hping3', '-q', '-S', '-i', 'u10', '--rand-source', '-p', '80', VIP], { stdio: 'ignore' });
    const floodDone = new Promise<void>((r) => flood.once('exit', () => r()));
    const curls = spawnIn('client', ['sh', '-c', `for i in $(seq ${(FLOOD_S - 3) * 10}); do curl -s -o /dev/null -w '%{http_code} %{exitcode} %{time_total}\\n' -m 5 http://${VIP}/ & sleep 0.1; done; wait`], { stdio: ['ignore', 'pipe', 'ignore'] });
    let codes = '';
    curls.stdout!.on('data', (d: Buffer) => (codes += d.toString()));
    const curlsDone = new Promise<void>((r) => curls.once('exit', () => r()));
    const rss: number[] = [];
    const sizes: number[] = [];
    try {
      for (let s = 0; s < FLOOD_S; s++) {
        await sleep(1000);
        rss.push(rssKiB(pid));
        sizes.push(tableConns());
      }
      await Promise.all([floodDone, curlsDone]);
    } finally {
      if (flood.exitCode === null) flood.kill();
      if (curls.exitCode === null) curls.kill();
    }
    const results = codes.trim().split('\n');
    const ok = results.filter((c) => c.startsWith('200 ')).length;
    const ev = dataplaneStatus().events;
    const figures = { requests: results.length, ok, rssKiB: rss, tableConns: sizes, failed: results.filter((c) => !c.startsWith('200 ')), drop_rx_ring: ev.drop_rx_ring ?? 0, evict_embryonic: ev.evict_embryonic ?? 0, drop_table_full: ev.drop_table_full ?? 0, table_pressure: ev.table_pressure ?? 0, conns_created: ev.conns_created ?? 0, rx_frames: ev.rx_frames ?? 0 };
    console.log(`flood figures: ${JSON.stringify(figures)}`);
    expect(results.length).toBe((FLOOD_S - 3) * 10);
    expect(ok / results.length).toBeGreaterThanOrEqual(0.99);
    // The per-dest counters are read one after another while the worker evicts an entry of one real server and
    // inserts one for the other: a reading can be one or two ahead of the table (which never exceeds its capacity).
    expect(Math.max(...sizes)).toBeLessThanOrEqual(CAPACITY + 2);
    expect(figures.evict_embryonic).toBeGreaterThan(0);
    expect(figures.drop_table_full).toBe(0);
    // Stable: after the first seconds (the table filling, its queues warming), RSS grows by less than 32 MiB.
    expect(Math.max(...rss.slice(3)) - rss[2]).toBeLessThan(32 * 1024);
  });
});
