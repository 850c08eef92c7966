// Sends a bounded set of malformed Ethernet/IPv4 frames, addressed to a VIP through the director's MAC, from a
// lab node's interface (AF_PACKET): one category at a time, `count` frames each, then random mutations of a
// valid frame. Prints one JSON line {sent: {category: n}}.
//   node frame-fuzzer.ts IFACE DST_MAC SRC_IP VIP COUNT SEED
import { openAfPacketPort } from '../../services/worker/io/af-packet.ts';
import { inetChecksum } from '../../shared/net/checksum.ts';
import { wr16, wr32 } from '../../shared/net/parse.ts';
import { ipv4FromText } from '../../shared/net/addr.ts';
import { mulberry32U32 } from '../../shared/util/rng.ts';

const [ifname, dstMacS, srcIpS, vipS, countS, seedS] = process.argv.slice(2);
const count = Number(countS);
const rnd = mulberry32U32(Number(seedS));
const dstMac = dstMacS.split(':').map((x) => parseInt(x, 16));
const src = ipv4FromText(srcIpS)!;
const vip = ipv4FromText(vipS)!;
const port = openAfPacketPort({ ifname, rx: null, tx: { slots: 64 } });

/** A valid TCP SYN to vip:80 in `f` (54 bytes). */
function base(f: Uint8Array, proto = 6, l4len = 20): number {
  f.fill(0);
  for (let i = 0; i < 6; i++) f[i] = dstMac[i];
  f.set([0x02, 0, 0, 0, 0, 0x99], 6);
  wr16(f, 12, 0x0800);
  f[14] = 0x45;
  wr16(f, 16, 20 + l4len);
  wr16(f, 18, rnd() & 0xffff);
  f[22] = 64;
  f[23] = proto;
  wr32(f, 26, src);
  wr32(f, 30, vip);
  wr16(f, 24, inetChecksum(f, 14, 20));
  wr16(f, 34, 40000 + (rnd() % 1000));
  wr16(f, 36, 80);
  if (proto === 6) {
    f[46] = 0x50;
    f[47] = 0x02;
  }
  if (proto === 17) wr16(f, 38, l4len);
  return 14 + 20 + l4len;
}

function fixIpCsum(f: Uint8Array): void {
  wr16(f, 24, 0);
  wr16(f, 24, inetChecksum(f, 14, (f[14] & 0xf) * 4));
}

const categories: Record<string, (f: Uint8Array) => number> = {
  truncated_ip: (f) => (base(f), 14 + 10),
  bad_version: (f) => (base(f), (f[14] = 0x65), fixIpCsum(f), 54),
  bad_ihl: (f) => (base(f), (f[14] = 0x43), 54),
  bad_total_len: (f) => (base(f), wr16(f, 16, 900), fixIpCsum(f), 54),
  bad_ip_csum: (f) => (base(f), wr16(f, 24, 0x1234), 54),
  fragment: (f) => (base(f), wr16(f, 20, 0x2000), fixIpCsum(f), 54),
  truncated_l4: (f) => (base(f, 6, 8), 14 + 20 + 8),
  bad_tcp_doff: (f) => (base(f), (f[46] = 0x20), 54),
  bad_udp_len: (f) => (base(f, 17, 8), wr16(f, 38, 3), 42),
  unsupported_proto: (f) => (base(f, 47, 20), 54),
};

const sent: Record<string, number> = {};
const send = (name: string, build: (f: Uint8Array) => number): void => {
  let o = port.txReserve();
  if (o < 0) {
    port.txFlush();
    o = port.txReserve();
  }
  const f = port.txBuf.subarray(o, o + 128);
  const len = build(f);
  port.txCommit(len, 0, 0, 0);
  sent[name] = (sent[name] ?? 0) + 1;
};
for (const [name, build] of Object.entries(categories)) for (let i = 0; i < count; i++) send(name, build);
for (let i = 0; i < count * 5; i++) {
  send('random_mutation', (f) => {
    const n = base(f);
    for (let k = 0; k < 1 + (rnd() % 4); k++) f[14 + (rnd() % (n - 14))] = rnd() & 0xff;
    return 14 + 1 + (rnd() % (n - 14));
  });
}
port.txFlush();
port.close();
process.stdout.write(JSON.stringify({ sent }) + '\n');
