// Lab helper, run inside a namespace: sends a UDP datagram from client:cport to vip:vport, encapsulated with
// shared/net (IPIP or GUE) to a real server through a raw socket, and prints the reply the real server sends
// straight back (as JSON), or {"reply":null} after the deadline. Mode "garbage" sends an IPIP packet whose inner
// header is invalid, to exercise the agent's drop counters. Usage: node tunnel-client.ts '<json options>'.
import { createSocket } from 'node:dgram';
import koffi from 'koffi';
import { PacketMeta, parseIpv4 } from '../../shared/net/parse.ts';
import { encapGue, encapIpip, GUE_OVERHEAD, IPIP_OVERHEAD } from '../../shared/net/rewrite.ts';
import { ipv4, udp } from './packet-ref.ts';
import { ipv4FromTextOrThrow } from '../../shared/net/addr.ts';

interface Opts {
  outerSrc: string;
  outerDst: string;
  client: string;
  cport: number;
  vip: string;
  vport: number;
  mode: 'ipip' | 'gue' | 'garbage';
  guePort: number;
  payload: string;
}

const o = JSON.parse(process.argv[2]) as Opts;
const lib = koffi.load('libc.so.6');
const socket = lib.func('int socket(int, int, int)');
const sendto = lib.func('long sendto(int, void *, unsigned long, int, void *, uint32_t)');
const fd = socket(2, 3, 255);
if (fd < 0) throw new Error(`raw socket: errno ${koffi.errno()}`);
const dst = ipv4FromTextOrThrow(o.outerDst);
const sa = new Uint8Array([2, 0, 0, 0, dst >>> 24, (dst >>> 16) & 255, (dst >>> 8) & 255, dst & 255, 0, 0, 0, 0, 0, 0, 0, 0]);

const data = Array.from(Buffer.from(o.payload));
const inner = Uint8Array.from(ipv4({ src: o.client, dst: o.vip, proto: 17, ttl: 64, payload: udp({ src: o.client, dst: o.vip, sport: o.cport, dport: o.vport, payload: data }) }));
if (o.mode === 'garbage') inner[0] = 0x4f;
const m = new PacketMeta();
const out = new Uint8Array(2048);
let len = 0;
if (o.mode === 'gue') {
  parseIpv4(inner, 0, inner.length, m);
  if (encapGue(inner, m, out, 0, ipv4FromTextOrThrow(o.outerSrc), dst, 40000, o.guePort, true, 0) !== 0) throw new Error('encapGue failed');
  len = GUE_OVERHEAD + m.totalLen;
} else if (o.mode === 'ipip') {
  parseIpv4(inner, 0, inner.length, m);
  if (encapIpip(inner, m, out, 0, ipv4FromTextOrThrow(o.outerSrc), dst, 0) !== 0) throw new Error('encapIpip failed');
  len = IPIP_OVERHEAD + m.totalLen;
} else {
  out.set(ipv4({ src: o.outerSrc, dst: o.outerDst, proto: 4, payload: Array.from(inner) }));
  len = IPIP_OVERHEAD + inner.length;
}

const sock = createSocket('udp4');
let tries = 0;
const send = (): void => {
  if (sendto(fd, out, len, 0, sa, 16) !== len) throw new Error(`sendto: errno ${koffi.errno()}`);
  if (++tries < 5 && o.mode !== 'garbage') setTimeout(send, 400).unref();
};
const deadline = setTimeout(() => {
  process.stdout.write(JSON.stringify({ reply: null, sent: tries }) + '\n');
  sock.close();
}, o.mode === 'garbage' ? 300 : 2500);
sock.on('message', (msg, rinfo) => {
  clearTimeout(deadline);
  process.stdout.write(JSON.stringify({ reply: msg.toString(), from: rinfo.address, port: rinfo.port, sent: tries }) + '\n');
  sock.close();
});
sock.bind(o.cport, o.client, send);
