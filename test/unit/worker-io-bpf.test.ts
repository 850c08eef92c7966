// worker/io/bpf: the cBPF programs, run by a minimal local interpreter on hand-built packets: the fanout
// program equals clientShard, socket filters admit exactly what they describe.
import { describe, expect, it } from 'vitest';
import { clientShard } from '../../shared/util/flowhash.ts';
import { clientFanoutProgram, ipv4Filter, dropAllFilter, acceptAllFilter, ACCEPT_LEN } from '../../services/worker/io/bpf.ts';
import { ipv4FromTextOrThrow, ipv4ToText } from '../../shared/net/addr.ts';
import { mulberry32U32 } from '../../shared/util/rng.ts';

/** Runs an encoded cBPF program over `pkt` (the opcodes bpf.ts emits); out-of-bounds loads return 0 like the kernel. */
function run(prog: Uint8Array, pkt: Uint8Array): number {
  const dv = new DataView(prog.buffer, prog.byteOffset, prog.byteLength);
  const p = new DataView(pkt.buffer, pkt.byteOffset, pkt.byteLength);
  const mem = new Uint32Array(16);
  let a = 0;
  let x = 0;
  for (let pc = 0; pc < prog.byteLength / 8; pc++) {
    const code = dv.getUint16(pc * 8, true);
    const jt = dv.getUint8(pc * 8 + 2);
    const jf = dv.getUint8(pc * 8 + 3);
    const k = dv.getUint32(pc * 8 + 4, true);
    const cls = code & 7;
    const load = (off: number, size: number): number | null => {
      if (off < 0 || off + size > pkt.byteLength) return null;
      return size === 4 ? p.getUint32(off) : size === 2 ? p.getUint16(off) : p.getUint8(off);
    };
    const size = (code & 0x18) === 0 ? 4 : (code & 0x18) === 8 ? 2 : 1;
    if (cls === 0) {
      const mode = code & 0xe0;
      const v = mode === 0x20 ? load(k, size) : mode === 0x40 ? load(x + k, size) : mode === 0x60 ? mem[k] : k;
      if (v === null) return 0;
      a = v >>> 0;
    } else if (cls === 1) {
      const mode = code & 0xe0;
      if (mode === 0xa0) {
        const v = load(k, 1);
        if (v === null) return 0;
        x = (v & 0xf) * 4;
      } else if (mode === 0x60) x = mem[k];
      else x = k;
    } else if (cls === 2) mem[k] = a;
    else if (cls === 4) {
      const src = code & 8 ? x : k;
      switch (code & 0xf0) {
        case 0x20: a = Math.imul(a, src) >>> 0; break;
        case 0x70: a = a >>> src; break;
        case 0x50: a = (a & src) >>> 0; break;
        case 0x90: a = a % src; break;
        case 0xa0: a = (a ^ src) >>> 0; break;
        default: throw new Error(`alu op ${code.toString(16)}`);
      }
    } else if (cls === 5) {
      const op = code & 0xf0;
      if (op === 0) pc += k;
      else {
        const t = op === 0x10 ? a === k : op === 0x40 ? (a & k) !== 0 : (() => { throw new Error(`jmp ${code.toString(16)}`); })();
        pc += t ? jt : jf;
      }
    } else if (cls === 6) return code & 0x10 ? a : k;
  }
  throw new Error('fell off the program');
}

/** An IPv4 packet (from the IP header) with `ihl` words of header, protocol, addresses and ports. */
function ip(src: string, dst: string, proto: number, sport: number, dport: number, ihl = 5, frag = 0): Uint8Array {
  const b = new Uint8Array(ihl * 4 + 8);
  const d = new DataView(b.buffer);
  d.setUint8(0, 0x40 | ihl);
  d.setUint16(6, frag);
  d.setUint8(9, proto);
  d.setUint32(12, ipv4FromTextOrThrow(src));
  d.setUint32(16, ipv4FromTextOrThrow(dst));
  d.setUint16(ihl * 4, sport);
  d.setUint16(ihl * 4 + 2, dport);
  return b;
}
function eth(ipPkt: Uint8Array, type = 0x0800): Uint8Array {
  const b = new Uint8Array(14 + ipPkt.byteLength);
  new DataView(b.buffer).setUint16(12, type);
  b.set(ipPkt, 14);
  return b;
}

describe('worker/io bpf', () => {
  it('bpf: fanout program returns clientShard of the source (requests) and destination (replies)', () => {
    const rnd = mulberry32U32(0x1234567);
    for (const n of [1, 2, 3, 4, 7]) {
      const src = clientFanoutProgram('src', n);
      const dst = clientFanoutProgram('dst', n);
      for (let i = 0; i < 300; i++) {
        const a = rnd();
        const port = rnd() & 0xffff;
        const addr = ipv4ToText(a);
        const ihl = 5 + (i % 3);
        expect(run(src, ip(addr, '10.0.0.1', 6, port, 80, ihl))).toBe(clientShard(a, port, n));
        expect(run(dst, ip('10.0.0.2', addr, 17, 53, port, ihl))).toBe(clientShard(a, port, n));
      }
    }
  });

  it('bpf: fanout program pins a known vector (10.78.1.2:33000 over 2 members)', () => {
    expect(run(clientFanoutProgram('src', 2), ip('10.78.1.2', '10.78.100.100', 17, 33000, 9000))).toBe(clientShard(0x0a4e0102, 33000, 2));
  });

  it('bpf: address-only fanout ignores the port, so every connection of a client meets its template', () => {
    for (const n of [2, 3, 5]) {
      const src = clientFanoutProgram('src', n, { addrOnly: true });
      const dst = clientFanoutProgram('dst', n, { addrOnly: true });
      for (let a = 0x0a000001; a < 0x0a000001 + 200; a += 7) {
        const addr = `10.0.${(a >>> 8) & 255}.${a & 255}`;
        const want = clientShard(a, 0, n);
        for (const port of [1024, 33001, 65535]) {
          expect(run(src, ip(addr, '10.0.0.1', 6, port, 80))).toBe(want);
          expect(run(dst, ip('10.0.0.2', addr, 6, 80, port))).toBe(want);
        }
      }
    }
  });

  it('bpf: a shard → slot map sends each shard to the slot its worker holds after a rejoin', () => {
    const slotOf = [2, 0, 1];
    const prog = clientFanoutProgram('src', 3, { addrOnly: true, slotOf });
    for (let a = 0x0a000001; a < 0x0a000001 + 300; a += 3) {
      const addr = `10.0.${(a >>> 8) & 255}.${a & 255}`;
      expect(run(prog, ip(addr, '10.0.0.1', 17, 4000, 53))).toBe(slotOf[clientShard(a, 0, 3)]);
    }
    expect(() => clientFanoutProgram('src', 3, { slotOf: [0, 0, 1] })).toThrow(RangeError);
  });

  it('bpf: dst-address filter admits the VIPs only, and IPv4 only', () => {
    const f = ipv4Filter({ dstAddrs: [ipv4FromTextOrThrow('10.0.0.1'), ipv4FromTextOrThrow('10.0.0.9')] });
    expect(run(f, eth(ip('1.2.3.4', '10.0.0.1', 6, 1, 80)))).toBe(ACCEPT_LEN);
    expect(run(f, eth(ip('1.2.3.4', '10.0.0.9', 17, 1, 53)))).toBe(ACCEPT_LEN);
    expect(run(f, eth(ip('1.2.3.4', '10.0.0.2', 6, 1, 80)))).toBe(0);
    expect(run(f, eth(ip('1.2.3.4', '10.0.0.1', 6, 1, 80), 0x86dd))).toBe(0);
  });

  it('bpf: source-port filter admits TCP/UDP replies from the port set, skipping IP options and fragments', () => {
    const f = ipv4Filter({ srcPorts: [80, 8080] });
    expect(run(f, eth(ip('10.0.2.11', '1.2.3.4', 6, 80, 40000)))).toBe(ACCEPT_LEN);
    expect(run(f, eth(ip('10.0.2.11', '1.2.3.4', 17, 8080, 40000, 7)))).toBe(ACCEPT_LEN);
    expect(run(f, eth(ip('10.0.2.11', '1.2.3.4', 6, 81, 40000)))).toBe(0);
    expect(run(f, eth(ip('10.0.2.11', '1.2.3.4', 1, 80, 40000)))).toBe(0);
    expect(run(f, eth(ip('10.0.2.11', '1.2.3.4', 6, 80, 40000, 5, 0x20)))).toBe(0);
  });

  it('bpf: combined filter is an AND of its sets', () => {
    const f = ipv4Filter({ dstAddrs: [ipv4FromTextOrThrow('10.0.0.1')], dstPorts: [80] });
    expect(run(f, eth(ip('1.2.3.4', '10.0.0.1', 6, 5000, 80)))).toBe(ACCEPT_LEN);
    expect(run(f, eth(ip('1.2.3.4', '10.0.0.1', 6, 5000, 81)))).toBe(0);
    expect(run(f, eth(ip('1.2.3.4', '10.0.0.2', 6, 5000, 80)))).toBe(0);
  });

  it('bpf: park and accept-all filters; oversize sets are refused', () => {
    expect(run(dropAllFilter(), eth(ip('1.2.3.4', '10.0.0.1', 6, 1, 80)))).toBe(0);
    expect(run(acceptAllFilter(), eth(ip('1.2.3.4', '10.0.0.1', 6, 1, 80)))).toBe(ACCEPT_LEN);
    expect(() => ipv4Filter({ srcPorts: Array.from({ length: 300 }, (_, i) => i + 1) })).toThrow(RangeError);
  });
});
