// A tiny NFQUEUE forwarder for lab tests of services/worker/io/nfqueue.ts: NAT of TCP/UDP to one real server
// (ports kept: requests to the VIP get dst → RIP, replies from the RIP get src → VIP) or DR (requests to the
// VIP accepted with a mark that policy routing sends to the real server) or TUN (requests to the VIP grow by
// an IPIP header to the real server, built in the verdict buffer with reserveModified). Prints "ready {...}" once bound,
// and its counters as one JSON line on SIGTERM. Run inside the director's namespace.
//   node nfq-forwarder.ts --queue 0 --mode nat|dr|tun --vip 10.81.100.100 --rip 10.81.2.11 [--mark 0x100]
//        [--tun-src 10.81.2.1] [--clients] [--cpu N]
import { PerformanceObserver } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { openNfqueuePort, NfqCounter } from '../../services/worker/io/nfqueue.ts';
import { pinToCpu } from '../../services/worker/io/pin.ts';
import { PacketMeta, parseIpv4 } from '../../shared/net/parse.ts';
import { IPIP_OVERHEAD, encapIpip, natIn, natOut } from '../../shared/net/rewrite.ts';
import { NetVerdict } from '../../shared/net/verdict.ts';
import { ipv4FromTextOrThrow, ipv4ToText } from '../../shared/net/addr.ts';

const { values: a } = parseArgs({
  options: {
    queue: { type: 'string', default: '0' }, mode: { type: 'string', default: 'nat' },
    vip: { type: 'string' }, rip: { type: 'string' }, mark: { type: 'string', default: '0x100' }, 'tun-src': { type: 'string' },
    clients: { type: 'boolean', default: false }, cpu: { type: 'string' },
  },
});
if (!a.vip || !a.rip || (a.mode !== 'nat' && a.mode !== 'dr' && a.mode !== 'tun') || (a.mode === 'tun' && !a['tun-src'])) {
  throw new Error('usage: --queue N --mode nat|dr|tun --vip A.B.C.D --rip A.B.C.D [--tun-src A.B.C.D]');
}
const cpu = a.cpu !== undefined ? pinToCpu(Number(a.cpu)) : -1;
const vip = ipv4FromTextOrThrow(a.vip);
const rip = ipv4FromTextOrThrow(a.rip);
const drMark = Number(a.mark);
const nat = a.mode === 'nat';
const tun = a.mode === 'tun';
const tunSrc = tun ? ipv4FromTextOrThrow(a['tun-src']!) : 0;
const recordClients = a.clients;

const port = openNfqueuePort({ queue: Number(a.queue), maxlen: 8192 });
const m = new PacketMeta();
// 0 requests, 1 replies, 2 other (accepted untouched), 3 parse/rewrite drops
const seen = new Float64Array(4);
const reqClients = new Map<number, number>();
const repClients = new Map<number, number>();

function packet(buf: Uint8Array, off: number, len: number, _flags: number, id: number): void {
  if (parseIpv4(buf, off, off + len, m) !== NetVerdict.OK) {
    seen[3]++;
    port.drop(id);
    return;
  }
  if (m.daddr === vip) {
    seen[0]++;
    if (recordClients) reqClients.set(m.saddr, (reqClients.get(m.saddr) ?? 0) + 1);
    if (tun) {
      const at = port.reserveModified(id, m.totalLen + IPIP_OVERHEAD);
      if (at >= 0 && encapIpip(buf, m, port.verdictBuf, at, tunSrc, rip, 0) !== NetVerdict.OK) {
        seen[3]++;
        port.dropReserved();
      }
    } else if (!nat) {
      port.acceptMark(id, drMark);
    } else if (natIn(buf, m, rip, m.dport, false) === NetVerdict.OK) {
      port.acceptModified(id, buf, off, m.totalLen);
    } else {
      seen[3]++;
      port.drop(id);
    }
    return;
  }
  if (nat && m.saddr === rip) {
    seen[1]++;
    if (recordClients) repClients.set(m.daddr, (repClients.get(m.daddr) ?? 0) + 1);
    if (natOut(buf, m, vip, m.sport, false) === NetVerdict.OK) {
      port.acceptModified(id, buf, off, m.totalLen);
    } else {
      seen[3]++;
      port.drop(id);
    }
    return;
  }
  seen[2]++;
  port.accept(id);
}

// Garbage collections while forwarding: the receive/verdict path allocates nothing per packet, so a flood
// of packets must not drive scavenges up with it.
let gcs = 0;
new PerformanceObserver((l) => (gcs += l.getEntries().length)).observe({ entryTypes: ['gc'] });
const cpu0 = process.cpuUsage();
port.rx({ packet });

function snapshot(): Record<string, unknown> {
  const k = port.readKernelStats();
  const c = port.counters;
  const names = Object.keys(NfqCounter) as (keyof typeof NfqCounter)[];
  const counters: Record<string, number> = {};
  for (const n of names) counters[n] = c[NfqCounter[n]];
  const ips = (mp: Map<number, number>): Record<string, number> => Object.fromEntries([...mp].map(([ip, n]) => [ipv4ToText(ip), n]));
  return {
    pid: process.pid, cpu, queue: port.queue, mode: a.mode, counters, kernel: k, cpuUs: process.cpuUsage(cpu0), gcs,
    requests: seen[0], replies: seen[1], other: seen[2], dropped: seen[3],
    reqClients: ips(reqClients), repClients: ips(repClients),
  };
}

process.on('SIGTERM', () => {
  process.stdout.write(`stats ${JSON.stringify(snapshot())}\n`);
  port.close();
  process.exit(0);
});
process.stdout.write(`ready ${JSON.stringify({ pid: process.pid, cpu, queue: port.queue, mode: a.mode })}\n`);
