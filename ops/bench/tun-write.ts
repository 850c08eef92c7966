// npm run bench -- tun-write: ns per TunDevice.write of a 60-byte UDP packet (shared/sys/tun.ts) against an
// allocating subarray write and the bare FFI floor, in a scratch namespace (root). Ends with one JSON line.
import { execFileSync } from 'node:child_process';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import koffi from 'koffi';
import { TunCounter, openTun } from '../../shared/sys/tun.ts';

const NS = 'tsvs-tl-bench';
const TUN = 'tsvs-tlb0';

/** A 60-byte IPv4/UDP packet 10.77.9.2:40000 → 10.77.9.1:9 with valid checksums (UDP checksum 0). */
function packet(buf: Uint8Array, o: number): number {
  const h = [0x45, 0, 0, 60, 0, 1, 0x40, 0, 64, 17, 0, 0, 10, 77, 9, 2, 10, 77, 9, 1];
  buf.set(h, o);
  let s = 0;
  for (let i = 0; i < 20; i += 2) s += (buf[o + i] << 8) | buf[o + i + 1];
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  const c = ~s & 0xffff;
  buf[o + 10] = c >> 8;
  buf[o + 11] = c & 0xff;
  buf.set([0x9c, 0x40, 0, 9, 0, 40, 0, 0], o + 20);
  buf.fill(0x41, o + 28, o + 60);
  return 60;
}

async function measure(name: string, n: number, fn: () => void): Promise<{ name: string; nsPerOp: number; gcs: number }> {
  for (let i = 0; i < 20_000; i++) fn();
  let gcs = 0;
  const obs = new PerformanceObserver((l) => (gcs += l.getEntries().length));
  obs.observe({ entryTypes: ['gc'] });
  await new Promise((r) => setTimeout(r, 10));
  gcs = 0;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) fn();
  const ns = ((performance.now() - t0) * 1e6) / n;
  await new Promise((r) => setTimeout(r, 50));
  obs.disconnect();
  return { name, nsPerOp: Math.round(ns), gcs };
}

async function inner(n: number): Promise<void> {
  execFileSync('ip', ['link', 'set', 'lo', 'up']);
  const tun = openTun({ name: TUN });
  execFileSync('ip', ['addr', 'add', '10.77.9.1/32', 'dev', 'lo']);
  execFileSync('iptables', ['-w', '-t', 'raw', '-A', 'PREROUTING', '-i', TUN, '-j', 'DROP']);
  const buf = new Uint8Array(4096);
  const OFF = 14; // as in a ring frame: the IP header after an Ethernet header
  const len = packet(buf, OFF);
  const lib = koffi.load('libc.so.6');
  const writeArr = lib.func('long write(int fd, void *buf, size_t len)') as (fd: number, b: Uint8Array, l: number) => number;
  const writeAddr = lib.func('long write(int fd, uintptr_t buf, size_t len)') as (fd: number, a: number, l: number) => number;
  const open = lib.func('int open(const char *path, int flags)') as (p: string, f: number) => number;
  const devnull = open('/dev/null', 1);
  const base = Number(koffi.address(buf.buffer));
  const rows = [
    await measure('TunDevice.write (numeric address, zero-alloc)', n, () => void tun.write(buf, OFF, len)),
    await measure('koffi write(void*) of buf.subarray (allocates)', n, () => void writeArr(tun.fd, buf.subarray(OFF, OFF + len), len)),
    await measure('FFI floor: write(uintptr_t) to /dev/null', n, () => void writeAddr(devnull, base + OFF, len)),
  ];
  const k = tun.counters;
  for (const r of rows) process.stdout.write(`${r.name.padEnd(50)} ${String(r.nsPerOp).padStart(6)} ns/write  ${r.gcs} GCs over ${n}\n`);
  process.stdout.write(`tun counters: writes ${k[TunCounter.WRITES]} errors ${k[TunCounter.WRITE_ERRORS]} rejected ${k[TunCounter.WRITE_REJECTED]}\n`);
  process.stdout.write(`${JSON.stringify({ bench: 'tun-write', n, packetBytes: len, rows })}\n`);
  tun.close();
}

/** Entry point for ops/bench/main.ts: `[--n N]`. Creates and removes namespace tsvs-tl-bench. */
export function main(args: string[]): void {
  let n = 200_000;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--n' && Number.isInteger(Number(args[i + 1]))) n = Number(args[++i]);
    else throw new Error(`bench tun-write: unknown option ${args[i]} (use --n)`);
  }
  if (process.getuid?.() !== 0) throw new Error('bench tun-write needs root (network namespace, TUN device)');
  const del = (): void => {
    try {
      execFileSync('ip', ['netns', 'del', NS], { stdio: 'ignore' });
    } catch {
      // absent
    }
  };
  del();
  execFileSync('ip', ['netns', 'add', NS]);
  try {
    execFileSync('ip', ['netns', 'exec', NS, process.execPath, fileURLToPath(import.meta.url), '--inner', String(n)], { stdio: 'inherit' });
  } finally {
    del();
  }
}

if (import.meta.main) {
  if (process.argv[2] === '--inner') await inner(Number(process.argv[3]));
  else main(process.argv.slice(2));
}
