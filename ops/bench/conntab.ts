// Benchmark of shared/conntab at 1,000,000 connections: bytes per connection, inserts, hit and miss lookups,
// per-packet transitions and expiry, single core. Ends with one line of JSON.
import { loadavg } from 'node:os';
import { ConnTable, ConnCount, destConnFlags } from '../../shared/conntab/conn-table.ts';
import { Dir, TcpFlag } from '../../shared/conntab/tcp-state.ts';
import { mulberry32U32 } from '../../shared/util/rng.ts';

const TCP = 6;
const VIP = 0x0a000001;
const RIP = 0xac100000;

/** Seeded so keys are reproducible run to run. */
function keys(n: number, seed: number, base: number): { caddr: Uint32Array; cport: Uint16Array } {
  const next = mulberry32U32(seed);
  const caddr = new Uint32Array(n);
  const cport = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    const x = next();
    caddr[i] = (base | (x & 0x00ffffff)) >>> 0;
    cport[i] = 1024 + ((x >>> 8) % 64512);
  }
  return { caddr, cport };
}

function permutation(n: number, seed: number): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  const next = mulberry32U32(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = next() % (i + 1);
    const t = p[i]; p[i] = p[j]; p[j] = t;
  }
  return p;
}

/** Lookup passes per figure; the median is reported (the machine is shared and noisy). */
const PASSES = 5;

function median(passes: number, body: () => void): number {
  const ms: number[] = [];
  for (let p = 0; p < passes; p++) {
    const t0 = performance.now();
    body();
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  return ms[passes >> 1];
}

function run(n: number, capacity: number, report: boolean): Record<string, number> {
  const dests = 64;
  const row = new Int32Array(dests * ConnCount.width);
  const t = ConnTable.create(capacity, { counters: row });
  const hit = keys(n, 0x12345, 0x64000000);
  const miss = keys(n, 0x6789a, 0xc6000000);
  const order = permutation(n, 0xbeef);
  const flags = destConnFlags(0);
  let sink = 0;

  let t0 = performance.now();
  for (let i = 0; i < n; i++) sink += t.insert(TCP, hit.caddr[i], hit.cport[i], VIP, 80, RIP + (i & 63), 8080, flags, i & 63, 0, 0);
  const insertMs = performance.now() - t0;

  const lookupMs = median(PASSES, () => {
    for (let i = 0; i < n; i++) {
      const k = order[i];
      sink += t.lookupIn(TCP, hit.caddr[k], hit.cport[k], VIP, 80);
    }
  });
  const outMs = median(PASSES, () => {
    for (let i = 0; i < n; i++) {
      const k = order[i];
      sink += t.lookupOut(TCP, hit.caddr[k], hit.cport[k], RIP + (k & 63), 8080);
    }
  });
  const missMs = median(PASSES, () => {
    for (let i = 0; i < n; i++) sink += t.lookupIn(TCP, miss.caddr[i], miss.cport[i], VIP, 80);
  });

  t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const k = order[i];
    const e = t.lookupIn(TCP, hit.caddr[k], hit.cport[k], VIP, 80);
    sink += t.onPacket(e, Dir.INPUT, i < n / 2 ? TcpFlag.SYN : TcpFlag.ACK, 1 + (i >>> 10));
  }
  const pktMs = performance.now() - t0;

  const bytes = t.buffer.byteLength;
  const live = t.size;
  t0 = performance.now();
  let freed = 0;
  for (let now = 0; t.size > 0 && now < 2_000_000; now += 1000) {
    let f = 0;
    do {
      f = t.expire(now + 60_000 + 1000, 65_536);
      freed += f;
    } while (f > 0);
  }
  const expireMs = performance.now() - t0;
  if (sink === 0.5) process.stdout.write('');

  const r = {
    conns: live,
    capacity,
    bytes_per_conn: Math.round((bytes / live) * 10) / 10,
    inserts_per_s: Math.round(n / (insertMs / 1000)),
    lookups_per_s: Math.round(n / (lookupMs / 1000)),
    lookups_out_per_s: Math.round(n / (outMs / 1000)),
    misses_per_s: Math.round(n / (missMs / 1000)),
    packets_per_s: Math.round(n / (pktMs / 1000)),
    expires_per_s: Math.round(freed / (expireMs / 1000)),
    insert_fails: t.stats().insertFails,
  };
  if (report && freed !== live) throw new Error(`conntab bench: expired ${freed} of ${live}`);
  return r;
}

/** `node ops/bench/main.ts conntab [--conns N]`: prints a table, then one JSON line. */
export async function main(args: string[]): Promise<void> {
  const i = args.indexOf('--conns');
  const n = i >= 0 ? Number(args[i + 1]) : 1_000_000;
  let capacity = 1;
  while (capacity < n) capacity *= 2;
  run(100_000, 131_072, false);
  run(100_000, 131_072, false);
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  const r = run(n, capacity, true);
  const cpu = process.cpuUsage(cpu0);
  const cpuShare = Math.round(((cpu.user + cpu.system) / 1000 / (performance.now() - wall0)) * 100) / 100;
  const load1 = Math.round(loadavg()[0] * 100) / 100;
  const rows: [string, string][] = [
    ['node', process.version],
    ['connections (live)', r.conns.toLocaleString('en')],
    ['capacity / index buckets', `${capacity.toLocaleString('en')} / ${(capacity * 2).toLocaleString('en')} (index load ${(r.conns / (capacity * 2)).toFixed(2)})`],
    ['bytes per connection (whole buffer)', String(r.bytes_per_conn)],
    ['inserts/s', r.inserts_per_s.toLocaleString('en')],
    ['lookupIn hits/s (random order)', r.lookups_per_s.toLocaleString('en')],
    ['lookupOut hits/s (random order)', r.lookups_out_per_s.toLocaleString('en')],
    ['lookupIn misses/s', r.misses_per_s.toLocaleString('en')],
    ['lookup + onPacket/s', r.packets_per_s.toLocaleString('en')],
    ['expired/s', r.expires_per_s.toLocaleString('en')],
    ['cpu time / wall time, load average (1 min)', `${cpuShare}, ${load1} (figures are low when the box is busy)`],
  ];
  process.stdout.write(`conntab: single core, one table, IPv4 TCP keys random over /8s, warm-up 2 x 100k-conn runs;\n  lookups: median of ${PASSES} passes over all keys in random order (hits), or over absent keys (misses)\n`);
  const w = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) process.stdout.write(`  ${k.padEnd(w)}  ${v}\n`);
  process.stdout.write(JSON.stringify({ bench: 'conntab', node: process.version, ...r, cpu_share: cpuShare, load1 }) + '\n');
}
