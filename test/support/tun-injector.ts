// Local-node delivery for lab tests: frames to the VIP arriving on --in (AF_PACKET rx ring) are written, minus
// their Ethernet header and with any CHECKSUM_PARTIAL checksum finished, into TUN device --tun, so the director's
// own kernel delivers them to a server on the VIP. Prints "ready {...}", and its counters as one JSON line
// ("stats {...}") on SIGTERM. Run inside the director's namespace.
//   node tun-injector.ts --in dcli --vip 10.77.100.100 --tun tsvs-tl0 [--fanout GROUP:MEMBERS] [--mq] [--csum finish|skip]
import { parseArgs } from 'node:util';
import { openAfPacketPort, Counter, RxFlag, type RxOptions } from '../../services/worker/io/af-packet.ts';
import { ipv4Filter } from '../../services/worker/io/bpf.ts';
import { ipv4FromTextOrThrow } from '../../shared/net/addr.ts';
import { PacketMeta, parseFrame } from '../../shared/net/parse.ts';
import { finishPartial } from '../../shared/net/rewrite.ts';
import { NetVerdict } from '../../shared/net/verdict.ts';
import { TunCounter, openTun } from '../../shared/sys/tun.ts';

const { values: a } = parseArgs({
  options: {
    in: { type: 'string' }, vip: { type: 'string' }, tun: { type: 'string' },
    fanout: { type: 'string' }, mq: { type: 'boolean', default: false }, csum: { type: 'string', default: 'finish' },
  },
});
if (!a.in || !a.vip || !a.tun) throw new Error('usage: --in IF --vip A.B.C.D --tun NAME [--fanout G:M] [--mq]');
const vip = ipv4FromTextOrThrow(a.vip);
const finish = a.csum !== 'skip'; // 'skip' is the control: partial checksums reach the stack unfinished

let fanout: RxOptions['fanout'];
if (a.fanout) {
  const [g, n] = a.fanout.split(':').map(Number);
  fanout = { group: g, key: 'src', members: n };
}
const tun = openTun({ name: a.tun, multiQueue: a.mq });
const port = openAfPacketPort({ ifname: a.in, rx: { ring: 'adaptive', filter: ipv4Filter({ dstAddrs: [vip] }), fanout }, tx: null });
const m = new PacketMeta();
const extra = new Float64Array(3); // 0 dropped (parse/truncated/not VIP), 1 CHECKSUM_PARTIAL completed, 2 frames seen

port.rx({
  packet(buf: Uint8Array, off: number, len: number, flags: number): void {
    extra[2]++;
    if ((flags & RxFlag.TRUNCATED) !== 0 || parseFrame(buf, len, m, off) !== NetVerdict.OK || m.daddr !== vip) {
      extra[0]++;
      return;
    }
    if ((flags & RxFlag.CSUM_NOT_READY) !== 0) {
      if (finish) finishPartial(buf, m);
      extra[1]++;
    }
    tun.write(buf, m.l3Off, m.totalLen);
  },
});

function snapshot(): Record<string, unknown> {
  const t = tun.counters;
  return {
    pid: process.pid, frames: extra[2], dropped: extra[0], csumPartial: extra[1], rx: port.counters[Counter.RX],
    writes: t[TunCounter.WRITES], writeBytes: t[TunCounter.WRITE_BYTES], writeErrors: t[TunCounter.WRITE_ERRORS],
    writeRejected: t[TunCounter.WRITE_REJECTED], lastWriteErrno: tun.lastWriteErrno,
  };
}

process.on('SIGTERM', () => {
  process.stdout.write(`stats ${JSON.stringify(snapshot())}\n`);
  port.close();
  tun.close();
  process.exit(0);
});
process.stdout.write(`ready ${JSON.stringify({ pid: process.pid, tun: tun.name, multiQueue: tun.multiQueue })}\n`);
