// A tiny DR forwarder for lab tests of services/worker/io: frames to the VIP arriving on --in are sent out
// on --out with only the MACs rewritten (dst = real server, src = own --out MAC); prints "ready {...}" on
// stdout once set up, and its counters as one JSON line on SIGTERM. Run inside the director's namespace.
//   node dr-forwarder.ts --in dcli --out drs --vip 10.78.100.100 --rs 10.78.2.11
//        [--ring adaptive|v2|v3] [--fanout GROUP:MEMBERS] [--cpu N] [--csum pass|drop-flags] [--flows]
import { parseArgs } from 'node:util';
import { openAfPacketPort, Counter, RxFlag, VnetFlag, type RxOptions } from '../../services/worker/io/af-packet.ts';
import { ipv4Filter } from '../../services/worker/io/bpf.ts';
import { ipv4FromTextOrThrow } from '../../shared/net/addr.ts';
import { copyBytes } from '../../shared/sys/libc.ts';
import { NeighTable, macToString } from '../../shared/sys/neigh.ts';
import { pinToCpu } from '../../services/worker/io/pin.ts';

const { values: a } = parseArgs({
  options: {
    in: { type: 'string' }, out: { type: 'string' }, vip: { type: 'string' }, rs: { type: 'string' },
    ring: { type: 'string', default: 'adaptive' }, fanout: { type: 'string' }, cpu: { type: 'string' },
    csum: { type: 'string', default: 'pass' }, flows: { type: 'boolean', default: false },
  },
});
if (!a.in || !a.out || !a.vip || !a.rs) throw new Error('usage: --in IF --out IF --vip A.B.C.D --rs A.B.C.D');
const ring = a.ring as RxOptions['ring'];
const cpu = a.cpu !== undefined ? pinToCpu(Number(a.cpu)) : -1;

const neigh = NeighTable.open();
neigh.watch();
const outIdx = neigh.ifindexOf(a.out);
const ownMac = neigh.ownMac(a.out);
if (!ownMac || ownMac.byteLength !== 6) throw new Error(`no MAC for ${a.out}`);
const rsMac = await neigh.resolve(outIdx, ipv4FromTextOrThrow(a.rs), 2000);

let fanout: RxOptions['fanout'];
if (a.fanout) {
  const [g, m] = a.fanout.split(':').map(Number);
  fanout = { group: g, key: 'src', members: m };
}
const rxPort = openAfPacketPort({ ifname: a.in, rx: { ring, filter: ipv4Filter({ dstAddrs: [ipv4FromTextOrThrow(a.vip)] }), fanout }, tx: null });
const txPort = openAfPacketPort({ ifname: a.out, rx: null, tx: { slots: 1024 } });

const passCsum = a.csum === 'pass';
const txBuf = txPort.txBuf;
const flows = new Map<number, number>();
const recordFlows = a.flows;
const extra = new Float64Array(4); // 0 dropped (short/non-IPv4/truncated), 1 csum-partial frames, 2 tcp, 3 udp

function frame(buf: Uint8Array, off: number, len: number, flags: number): void {
  if (len < 34 || len > txPort.txFrameMax || buf[off + 12] !== 0x08 || buf[off + 13] !== 0x00 || (flags & RxFlag.TRUNCATED) !== 0) {
    extra[0]++;
    return;
  }
  let o = txPort.txReserve();
  if (o < 0) {
    txPort.txFlush();
    o = txPort.txReserve();
  }
  copyBytes(txBuf, o, buf, off, len);
  for (let i = 0; i < 6; i++) {
    txBuf[o + i] = rsMac[i];
    txBuf[o + 6 + i] = ownMac![i];
  }
  const ihl = (buf[off + 14] & 0x0f) * 4;
  const proto = buf[off + 23];
  if (proto === 6) extra[2]++;
  else if (proto === 17) extra[3]++;
  if ((flags & RxFlag.CSUM_NOT_READY) !== 0 && (proto === 6 || proto === 17)) {
    extra[1]++;
    if (passCsum) txPort.txCommit(len, VnetFlag.NEEDS_CSUM, 14 + ihl, proto === 6 ? 16 : 6);
    else txPort.txCommit(len, VnetFlag.NONE, 0, 0);
  } else {
    txPort.txCommit(len, VnetFlag.NONE, 0, 0);
  }
  if (recordFlows && len >= 14 + ihl + 4) {
    const src = ((buf[off + 26] << 24) | (buf[off + 27] << 16) | (buf[off + 28] << 8) | buf[off + 29]) >>> 0;
    const sport = (buf[off + 14 + ihl] << 8) | buf[off + 15 + ihl];
    const k = src * 65536 + sport;
    flows.set(k, (flows.get(k) ?? 0) + 1);
  }
}

rxPort.rx({ packet: frame, batchEnd: () => txPort.txFlush() });

function snapshot(): Record<string, unknown> {
  const c = rxPort.counters;
  const t = txPort.counters;
  return {
    pid: process.pid, cpu, ring, rxMode: rxPort.rxMode,
    rx: c[Counter.RX], rxBatches: c[Counter.RX_BATCHES], ringBlocks: c[Counter.RING_BLOCKS], rxLowLatency: c[Counter.RX_LOW_LATENCY],
    modeSwitches: c[Counter.MODE_SWITCHES], rxTruncated: c[Counter.RX_TRUNCATED],
    tx: t[Counter.TX], txShort: t[Counter.TX_SHORT], txBatches: t[Counter.TX_BATCHES],
    dropped: extra[0], csumPartial: extra[1], tcp: extra[2], udp: extra[3],
    kernel: rxPort.kernelStats(),
    flows: recordFlows ? [...flows.entries()] : [],
  };
}

process.on('SIGTERM', () => {
  process.stdout.write(`stats ${JSON.stringify(snapshot())}\n`);
  rxPort.close();
  txPort.close();
  neigh.close();
  process.exit(0);
});
process.on('SIGUSR2', () => {
  process.stdout.write(`stats ${JSON.stringify(snapshot())}\n`);
});
process.stdout.write(`ready ${JSON.stringify({ pid: process.pid, cpu, rsMac: macToString(rsMac), ownMac: macToString(ownMac) })}\n`);
