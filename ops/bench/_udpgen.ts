// A paced UDP load generator for the benchmarks: 60-byte frames at a fixed rate, written straight onto an interface
// through the project's AF_PACKET port (sendmmsg), in bursts of one millisecond's worth, sleeping in between.
// trafgen's own rate limit (-b) sends one frame per sendto() and fell far short of 150 kpps here (43k delivered).
//   node ops/bench/_udpgen.ts --if DEV --dmac MAC --smac MAC --src IP --dst IP --dport N [--flows 16]
//        [--rate PPS] [--seconds S]
// Prints one line of JSON: {"sent":N,"seconds":S,"pps":P}.
import { parseArgs } from 'node:util';
import { openAfPacketPort } from '../../services/worker/io/af-packet.ts';
import { ipv4FromTextOrThrow } from '../../shared/net/addr.ts';

const { values: a } = parseArgs({
  options: {
    if: { type: 'string' },
    dmac: { type: 'string' },
    smac: { type: 'string' },
    src: { type: 'string' },
    dst: { type: 'string' },
    dport: { type: 'string' },
    flows: { type: 'string', default: '16' },
    rate: { type: 'string', default: '150000' },
    seconds: { type: 'string', default: '5' },
  },
});
for (const k of ['if', 'dmac', 'smac', 'src', 'dst', 'dport'] as const) {
  if (a[k] === undefined) {
    process.stderr.write(`udpgen: --${k} is required\n`);
    process.exit(2);
  }
}

const LEN = 60;
const flows = Number(a.flows);
const rate = Number(a.rate);
const seconds = Number(a.seconds);
if (!(Number.isInteger(flows) && flows >= 1 && flows <= 65536 && rate > 0 && seconds > 0)) {
  process.stderr.write(`udpgen: want --flows 1..65536, --rate > 0, --seconds > 0 (got ${a.flows}, ${a.rate}, ${a.seconds})\n`);
  process.exit(2);
}

/** One frame per flow (UDP source port 20000 + i), IPv4 header checksum filled, UDP checksum 0 (none). */
function templates(): Uint8Array[] {
  const mac = (s: string): number[] => s.split(':').map((x) => parseInt(x, 16));
  const out: Uint8Array[] = [];
  for (let f = 0; f < flows; f++) {
    const b = new Uint8Array(LEN);
    const dv = new DataView(b.buffer);
    b.set(mac(a.dmac as string), 0);
    b.set(mac(a.smac as string), 6);
    dv.setUint16(12, 0x0800);
    dv.setUint8(14, 0x45);
    dv.setUint16(16, LEN - 14);
    dv.setUint8(22, 64);
    dv.setUint8(23, 17);
    dv.setUint32(26, ipv4FromTextOrThrow(a.src as string));
    dv.setUint32(30, ipv4FromTextOrThrow(a.dst as string));
    let sum = 0;
    for (let i = 14; i < 34; i += 2) sum += dv.getUint16(i);
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    dv.setUint16(24, ~sum & 0xffff);
    dv.setUint16(34, 20000 + f);
    dv.setUint16(36, Number(a.dport));
    dv.setUint16(38, LEN - 34);
    b.fill(0x41, 42);
    out.push(b);
  }
  return out;
}

let port: ReturnType<typeof openAfPacketPort>;
try {
  port = openAfPacketPort({ ifname: a.if as string, rx: null, tx: { slots: 1024 } });
} catch (e) {
  process.stderr.write(`udpgen: cannot send on ${a.if}: ${(e as Error).message}\n`);
  process.exit(1);
}
const frames = templates();
const nap = new Int32Array(new SharedArrayBuffer(4));
const t0 = performance.now();
const end = t0 + seconds * 1000;
let sent = 0;
let f = 0;
for (let now = t0; now < end; now = performance.now()) {
  const due = Math.floor(((now - t0) * rate) / 1000);
  while (sent < due) {
    const off = port.txReserve();
    if (off < 0) break;
    port.txBuf.set(frames[f], off);
    port.txCommit(LEN, 0, 0, 0);
    f = f + 1 === flows ? 0 : f + 1;
    sent++;
  }
  port.txFlush();
  Atomics.wait(nap, 0, 0, 1);
}
const secs = (performance.now() - t0) / 1000;
port.close();
process.stdout.write(JSON.stringify({ sent, seconds: Number(secs.toFixed(3)), pps: Math.round(sent / secs) }) + '\n');
