// Classic BPF (cBPF) programs for AF_PACKET: socket filters (offsets from the MAC header) and the fanout
// program that steers a flow to a worker by the client-side hash of shared/util/flowhash.ts (offsets from
// the network header, because the fanout demux runs on ingress skbs whose data starts at the IP header).

/** One cBPF instruction before encoding; jump targets may name the program's last two instructions,
 * which are always `accept` (second last) and `drop` (last). */
interface Insn {
  code: number;
  jt: number | 'drop' | 'accept';
  jf: number | 'drop' | 'accept';
  k: number;
}

/** Opcode pieces from linux/filter.h / bpf_common.h. */
export const BPF = {
  LD: 0x00, LDX: 0x01, ST: 0x02, ALU: 0x04, JMP: 0x05, RET: 0x06,
  W: 0x00, H: 0x08, B: 0x10,
  IMM: 0x00, ABS: 0x20, IND: 0x40, MEM: 0x60, MSH: 0xa0,
  MUL: 0x20, RSH: 0x70, AND: 0x50, MOD: 0x90, XOR: 0xa0,
  JEQ: 0x10, JSET: 0x40,
  K: 0x00, X: 0x08, A: 0x10,
} as const;

/** Snap length returned by accepting socket filters: the whole packet. */
export const ACCEPT_LEN = 0x40000;

function ins(code: number, k = 0, jt: Insn['jt'] = 0, jf: Insn['jf'] = 0): Insn {
  return { code, jt, jf, k: k >>> 0 };
}

/** Encodes instructions as `struct sock_filter[]` (8 bytes each: u16 code, u8 jt, u8 jf, u32 k; little endian). */
function encode(prog: Insn[]): Uint8Array {
  const n = prog.length;
  const accept = n - 2;
  const drop = n - 1;
  const out = new Uint8Array(n * 8);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < n; i++) {
    const p = prog[i];
    const rel = (t: Insn['jt']): number => {
      const v = t === 'drop' ? drop - i - 1 : t === 'accept' ? accept - i - 1 : t;
      if (v < 0 || v > 255) throw new RangeError(`cBPF jump out of range at ${i} (${v}): too many match values`);
      return v;
    };
    dv.setUint16(i * 8, p.code, true);
    dv.setUint8(i * 8 + 2, rel(p.jt));
    dv.setUint8(i * 8 + 3, rel(p.jf));
    dv.setUint32(i * 8 + 4, p.k, true);
  }
  return out;
}

/** `A ∈ values` → fall through to the next instruction; otherwise jump to drop. */
function anyOf(values: readonly number[]): Insn[] {
  if (values.length === 0) throw new RangeError('cBPF match set is empty');
  return values.map((v, i) => ins(BPF.JMP | BPF.JEQ | BPF.K, v, i === values.length - 1 ? 0 : values.length - 1 - i, i === values.length - 1 ? 'drop' : 0));
}

/** What a socket filter admits: IPv4 only; every given set must match (AND); within a set any value (OR). */
export interface Ipv4Match {
  /** Destination addresses, host-order u32 (e.g. VIPs). */
  dstAddrs?: readonly number[];
  /** Source addresses, host-order u32. */
  srcAddrs?: readonly number[];
  /** L4 protocols (6 TCP, 17 UDP). Implied {6, 17} when a port set is given. */
  protos?: readonly number[];
  /** Source ports (e.g. the real servers' ports, for NAT replies). Non-first fragments never match. */
  srcPorts?: readonly number[];
  /** Destination ports (e.g. virtual ports). Non-first fragments never match. */
  dstPorts?: readonly number[];
}

/**
 * A socket filter (SO_ATTACH_FILTER) for an Ethernet AF_PACKET SOCK_RAW socket, offsets from the MAC header,
 * untagged frames. Returns the encoded `sock_filter[]`; throws RangeError when a set is too large for 8-bit
 * jump offsets (≈ 200 values).
 */
export function ipv4Filter(m: Ipv4Match): Uint8Array {
  const p: Insn[] = [ins(BPF.LD | BPF.H | BPF.ABS, 12), ...anyOf([0x0800])];
  if (m.dstAddrs) p.push(ins(BPF.LD | BPF.W | BPF.ABS, 30), ...anyOf(m.dstAddrs));
  if (m.srcAddrs) p.push(ins(BPF.LD | BPF.W | BPF.ABS, 26), ...anyOf(m.srcAddrs));
  const ports = m.srcPorts !== undefined || m.dstPorts !== undefined;
  const protos = m.protos ?? (ports ? [6, 17] : undefined);
  if (protos) p.push(ins(BPF.LD | BPF.B | BPF.ABS, 23), ...anyOf(protos));
  if (ports) {
    p.push(ins(BPF.LD | BPF.H | BPF.ABS, 20), ins(BPF.JMP | BPF.JSET | BPF.K, 0x1fff, 'drop', 0));
    p.push(ins(BPF.LDX | BPF.B | BPF.MSH, 14));
    if (m.srcPorts) p.push(ins(BPF.LD | BPF.H | BPF.IND, 14), ...anyOf(m.srcPorts));
    if (m.dstPorts) p.push(ins(BPF.LD | BPF.H | BPF.IND, 16), ...anyOf(m.dstPorts));
  }
  p.push(ins(BPF.RET | BPF.K, ACCEPT_LEN), ins(BPF.RET | BPF.K, 0));
  return encode(p);
}

/** A socket filter that admits nothing (used to park an inactive socket). */
export function dropAllFilter(): Uint8Array {
  return encode([ins(BPF.RET | BPF.K, 0), ins(BPF.RET | BPF.K, 0)]);
}

/** A socket filter that admits everything. */
export function acceptAllFilter(): Uint8Array {
  return encode([ins(BPF.RET | BPF.K, ACCEPT_LEN), ins(BPF.RET | BPF.K, ACCEPT_LEN)]);
}

/** Options of {@link clientFanoutProgram}. */
export interface FanoutProgramOptions {
  /**
   * Hash the client's address only (port taken as 0). IPVS persistence templates are keyed by client
   * address: steering on the address keeps every connection of a client, and its template, on one worker.
   */
  addrOnly?: boolean;
  /**
   * `slotOf[shard]` = the fanout member slot that owns `shard`. The kernel indexes members in join order and,
   * when one leaves, moves the last member into its slot; a restarted worker rejoins last. With this map the
   * program still sends each shard to its own worker. Default: identity.
   */
  slotOf?: readonly number[];
}

/**
 * The PACKET_FANOUT_CBPF program: returns the member slot of `clientShard(addr, port, members)` where
 * (addr, port) is the source (`key: 'src'`, request side) or destination (`key: 'dst'`, NAT reply side) of an
 * IPv4 TCP/UDP packet (port 0 with `addrOnly`). Offsets are from the network header (ingress fanout). The
 * kernel takes the result modulo the member count. Non-first fragments hash their (garbage) port bytes unless
 * `addrOnly`.
 */
export function clientFanoutProgram(key: 'src' | 'dst', members: number, opts: FanoutProgramOptions = {}): Uint8Array {
  if (!Number.isInteger(members) || members < 1) throw new RangeError(`fanout members must be >= 1, got ${members}`);
  const slotOf = opts.slotOf;
  if (slotOf !== undefined && (slotOf.length !== members || [...slotOf].sort((x, y) => x - y).some((v, i) => v !== i))) {
    throw new RangeError(`fanout slotOf must be a permutation of 0..${members - 1}`);
  }
  const addrOff = key === 'src' ? 12 : 16;
  const portOff = key === 'src' ? 0 : 2;
  const prog = opts.addrOnly
    ? [ins(BPF.LD | BPF.W | BPF.ABS, addrOff)]
    : [
        ins(BPF.LD | BPF.W | BPF.ABS, addrOff),
        ins(BPF.ST, 0),
        ins(BPF.LDX | BPF.B | BPF.MSH, 0),
        ins(BPF.LD | BPF.H | BPF.IND, portOff),
        ins(BPF.LDX | BPF.W | BPF.MEM, 0),
        ins(BPF.ALU | BPF.XOR | BPF.X),
      ];
  prog.push(ins(BPF.ALU | BPF.MUL | BPF.K, 0x9e3779b1), ins(BPF.ALU | BPF.RSH | BPF.K, 16), ins(BPF.ALU | BPF.MOD | BPF.K, members));
  if (slotOf === undefined || slotOf.every((v, i) => v === i)) {
    prog.push(ins(BPF.RET | BPF.A));
  } else {
    // A jump table: n compares, a default return, then n returns; compare k jumps n ahead to return k.
    const n = members;
    for (let k = 0; k < n; k++) prog.push(ins(BPF.JMP | BPF.JEQ | BPF.K, k, n, 0));
    prog.push(ins(BPF.RET | BPF.K, 0));
    for (let k = 0; k < n; k++) prog.push(ins(BPF.RET | BPF.K, slotOf[k]));
  }
  return encode(prog);
}

/** A fanout program returning a constant member index (to verify join order). */
export function constantFanoutProgram(index: number): Uint8Array {
  return encode([ins(BPF.RET | BPF.K, index), ins(BPF.RET | BPF.K, index)]);
}
