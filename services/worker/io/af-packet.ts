// The AF_PACKET packet port: a PacketPort (the shape every packet I/O backend offers a forwarding worker)
// over mmapped TPACKET rings for receive and sendmmsg with virtio-net headers for transmit.
import {
  C, type Ptr, type UvPollHandle, SysError, allocNative, bind, close, errno, getsockoptBuf, htons, ifIndex,
  mmap, munmap, raw, setsockoptBuf, setsockoptInt, socket, uvPoll, view,
} from '../../../shared/sys/libc.ts';
import { acceptAllFilter, clientFanoutProgram, dropAllFilter } from './bpf.ts';
import type { L2Port, PortHandler } from './port.ts';
export type { FanoutProgramOptions } from './bpf.ts';

/** Bits of the `flags` argument of an RX frame callback. */
export const RxFlag = {
  /** CHECKSUM_PARTIAL: the L4 checksum field holds only the pseudo-header sum (TP_STATUS_CSUMNOTREADY). */
  CSUM_NOT_READY: 1,
  /** The kernel (or device) validated the L4 checksum (TP_STATUS_CSUM_VALID). */
  CSUM_VALID: 2,
  /** The frame was cut to the ring's frame size (GSO/GRO super-packets): snaplen < wire length. */
  TRUNCATED: 4,
  /** A GSO TCP super-packet (TP_STATUS_GSO_TCP). */
  GSO_TCP: 8,
} as const;

/** virtio_net_hdr flags for TX (`VIRTIO_NET_HDR_F_*`). */
export const VnetFlag = { NONE: 0, NEEDS_CSUM: 1, DATA_VALID: 2 } as const;

/** virtio_net_hdr gso_type values. */
export const VnetGso = { NONE: 0, TCPV4: 1, UDP: 3, TCPV6: 4 } as const;

/** Indices into a port's `counters` (Float64Array; packets unless the name says bytes). */
export const Counter = {
  RX: 0, RX_BYTES: 1, RX_TRUNCATED: 2, RX_BATCHES: 3, RING_BLOCKS: 4,
  TX: 5, TX_SHORT: 6, TX_BATCHES: 7, TX_FULL: 8,
  MODE_SWITCHES: 9, RX_LOW_LATENCY: 10,
} as const;
/** Number of counters in `PacketPort.counters`. */
export const COUNTERS = 11;

/** Frames go to a PortHandler (io/port.ts): `packet(buf, off, len, flags, 0)`, `flags` a set of RxFlag bits. */
export type { PortHandler as RxHandler } from './port.ts';

/**
 * A packet I/O endpoint on one interface: the L2 port of io/port.ts plus AF_PACKET extras. RX delivers Ethernet
 * frames by batch; TX is a slot vector: `txReserve` a slot, write the frame at the returned offset of `txBuf`,
 * `txCommit` its length and checksum-offload fields, `txFlush` (= `flush`) sends all committed slots in one call.
 * Nothing in rx/tx allocates per frame.
 */
export interface PacketPort extends L2Port {
  readonly ifname: string;
  /**
   * Commits the reserved slot with a frame of `len` bytes and its virtio-net header: `vnetFlags` (VnetFlag),
   * `csumStart` (bytes from the MAC header to where checksumming starts) and `csumOffset` (offset of the
   * checksum field from csumStart: 16 TCP, 6 UDP), `gsoType`/`gsoSize`/`hdrLen` for GSO frames (0 otherwise).
   */
  txCommit(len: number, vnetFlags: number, csumStart: number, csumOffset: number, gsoType?: number, gsoSize?: number, hdrLen?: number): void;
  /** Sends every committed slot with one sendmmsg; returns frames sent. Unsent frames count in TX_SHORT and are dropped. */
  txFlush(): number;
  /** Kernel ring statistics: packets seen by the socket(s) and dropped for lack of ring space, since the last call. */
  kernelStats(): { packets: number; drops: number };
}

/** Fanout membership: workers that join group `group` on the same interface share its packets by client. */
export interface FanoutOptions {
  /** Fanout group id (16 bits; unique per interface and network namespace). */
  group: number;
  /** Which side of the packet is the client: 'src' on request interfaces, 'dst' on NAT reply interfaces. */
  key: 'src' | 'dst';
  /** Number of workers; a worker's index is its join order (0-based), so workers must join in index order. */
  members: number;
  /** Steer on the client's address only (see FanoutProgramOptions.addrOnly). */
  addrOnly?: boolean;
  /** Shard → member slot map after members left and rejoined (see FanoutProgramOptions.slotOf). */
  slotOf?: readonly number[];
}

/** Receive configuration. */
export interface RxOptions {
  /**
   * 'v3': TPACKET_V3 block ring, best throughput but blocks retire only when full or after `retireTovMs`
   * (adds up to ~1 ms at low rate). 'v2': TPACKET_V2 frame ring, one wakeup per packet when idle, natural
   * batching under load. 'adaptive' (default): both, switched by measured rate (v2 below `lowPps`, v3
   * above `highPps`) by swapping socket filters; a switch may duplicate a packet and, going down, reorder
   * packets within one retire timeout.
   */
  ring?: 'v3' | 'v2' | 'adaptive';
  /** V3 block size in bytes (power-of-two multiple of the page size). Default 256 KiB. */
  blockSize?: number;
  /** V3 block count. Default 16. */
  blockCount?: number;
  /** V3 block retire timeout in ms (minimum 1). Default 1. */
  retireTovMs?: number;
  /** V2 frame size in bytes (multiple of 16; frames larger are truncated). Default 2048. */
  frameSize?: number;
  /** V2 frame count (multiple of 32). Default 4096. */
  frameCount?: number;
  /** Encoded socket filter (bpf.ts); default admits everything of `protocol`. */
  filter?: Uint8Array;
  /** Fanout membership; default none (this socket sees all packets of the interface). */
  fanout?: FanoutOptions;
  /** Ethertype to receive, host order. Default ETH_P_IP. */
  protocol?: number;
  /** Adaptive mode: switch v3→v2 below this rate (packets/s). Default 5000. */
  lowPps?: number;
  /** Adaptive mode: switch v2→v3 above this rate (packets/s). Default 50000. */
  highPps?: number;
  /** Adaptive mode: rate measurement window in ms. Default 100. */
  windowMs?: number;
}

/** Transmit configuration. */
export interface TxOptions {
  /** Number of TX slots (frames per sendmmsg). Default 1024. */
  slots?: number;
  /** Bypass the qdisc layer (PACKET_QDISC_BYPASS). Default true. */
  qdiscBypass?: boolean;
}

/** Options of `openAfPacketPort`. A side that is `null` is not opened. */
export interface AfPacketPortOptions {
  ifname: string;
  rx?: RxOptions | null;
  tx?: TxOptions | null;
}

// tpacket_block_desc (V3): version u32 @0, offset_to_priv u32 @4, hdr.bh1 @8: block_status u32 @8,
// num_pkts u32 @12, offset_to_first_pkt u32 @16, blk_len u32 @20, seq_num u64 @24, ts_first @32, ts_last @40.
const BD_STATUS = 8;
const BD_NUM_PKTS = 12;
const BD_FIRST = 16;
// tpacket3_hdr: tp_next_offset u32 @0, tp_sec @4, tp_nsec @8, tp_snaplen u32 @12, tp_len u32 @16,
// tp_status u32 @20, tp_mac u16 @24, tp_net u16 @26, hv1 @28 (rxhash, vlan_tci, vlan_tpid), size 48.
const H3_NEXT = 0;
const H3_SNAPLEN = 12;
const H3_LEN = 16;
const H3_STATUS = 20;
const H3_MAC = 24;
// tpacket2_hdr: tp_status u32 @0, tp_len u32 @4, tp_snaplen u32 @8, tp_mac u16 @12, tp_net u16 @14, size 32.
const H2_STATUS = 0;
const H2_LEN = 4;
const H2_SNAPLEN = 8;
const H2_MAC = 12;

const TP_STATUS_USER = 1;
const TP_STATUS_CSUMNOTREADY = 0x8;
const TP_STATUS_CSUM_VALID = 0x80;
const TP_STATUS_GSO_TCP = 0x100;

// TX slot layout: [8 pad][10 virtio_net_hdr][frame ...]; one iovec covers header + frame. The frame starts
// at 2 mod 4, like frames in the RX rings (their network header is 16-aligned), so the IP header is
// 4-aligned and ring → slot copies run word by word.
const VNET_LEN = 10;
const SLOT_FRAME = 18;
const SLOT_SIZE = 2048;
const MMSGHDR = 64; // struct mmsghdr: msghdr (56) + msg_len u32 + pad
const IOVEC = 16;

function sockaddrLl(protocol: number, ifindex: number): Uint8Array {
  const a = new Uint8Array(20);
  const dv = new DataView(a.buffer);
  dv.setUint16(0, C.AF_PACKET, true);
  dv.setUint16(2, htons(protocol), true);
  dv.setInt32(4, ifindex, true);
  return a;
}

/** Native `struct sock_fprog` pointing at a native copy of `prog`; both live in one allocation. */
class NativeProg {
  readonly fprog: Uint8Array;
  private readonly mem: Ptr;
  private readonly len: number;
  constructor(prog: Uint8Array) {
    this.len = 4096 * Math.ceil((prog.byteLength + 16) / 4096);
    this.mem = allocNative(this.len, 'bpf program');
    new Uint8Array(view(this.mem, this.len)).set(prog, 16);
    this.fprog = new Uint8Array(16);
    const dv = new DataView(this.fprog.buffer);
    dv.setUint16(0, prog.byteLength / 8, true);
    dv.setBigUint64(8, this.mem + 16n, true);
  }
  free(): void {
    munmap(this.mem, this.len);
  }
}

function setFilter(fd: number, prog: Uint8Array, what: string): void {
  const p = new NativeProg(prog);
  try {
    setsockoptBuf(fd, C.SOL_SOCKET, C.SO_ATTACH_FILTER, p.fprog, `SO_ATTACH_FILTER ${what}`);
  } finally {
    p.free();
  }
}

/** One RX socket with a mapped ring, walked from the event loop. */
class RingRx {
  readonly fd: number;
  readonly version: 1 | 2;
  private readonly mem: Ptr;
  private readonly memLen: number;
  private readonly u8: Uint8Array;
  private readonly dv: DataView;
  private readonly unitSize: number; // V3 block size, V2 frame size
  private readonly units: number;
  private cur = 0;
  private poller: UvPollHandle | null = null;
  private readonly counters: Float64Array;
  private readonly ifname: string;

  constructor(ifname: string, ifindex: number, version: 1 | 2, o: RxOptions, filter: Uint8Array, counters: Float64Array) {
    this.ifname = ifname;
    this.version = version;
    this.counters = counters;
    const proto = o.protocol ?? C.ETH_P_IP;
    const what = `${version === 2 ? 'v3' : 'v2'} rx on ${ifname}`;
    this.fd = socket(C.AF_PACKET, C.SOCK_RAW | C.SOCK_NONBLOCK | C.SOCK_CLOEXEC, 0, `socket(AF_PACKET) ${what}`);
    try {
      setFilter(this.fd, filter, what);
      setsockoptInt(this.fd, C.SOL_PACKET, C.PACKET_VERSION, version === 2 ? C.TPACKET_V3 : C.TPACKET_V2, `PACKET_VERSION ${what}`);
      const req = new Uint8Array(28);
      const rq = new DataView(req.buffer);
      if (version === 2) {
        const bs = o.blockSize ?? 256 * 1024;
        const bn = o.blockCount ?? 16;
        rq.setUint32(0, bs, true);
        rq.setUint32(4, bn, true);
        rq.setUint32(8, 2048, true);
        rq.setUint32(12, (bs / 2048) * bn, true);
        rq.setUint32(16, Math.max(1, o.retireTovMs ?? 1), true);
        this.unitSize = bs;
        this.units = bn;
      } else {
        const fs = o.frameSize ?? 2048;
        const fn = o.frameCount ?? 4096;
        const bs = Math.max(4096, fs * 32);
        rq.setUint32(0, bs, true);
        rq.setUint32(4, (fs * fn) / bs, true);
        rq.setUint32(8, fs, true);
        rq.setUint32(12, fn, true);
        this.unitSize = fs;
        this.units = fn;
      }
      setsockoptBuf(this.fd, C.SOL_PACKET, C.PACKET_RX_RING, version === 2 ? req : req.subarray(0, 16), `PACKET_RX_RING ${what}`);
      this.memLen = this.unitSize * this.units;
      this.mem = mmap(this.memLen, C.PROT_READ | C.PROT_WRITE, C.MAP_SHARED, this.fd, `mmap(ring) ${what}`);
      const ab = view(this.mem, this.memLen);
      this.u8 = new Uint8Array(ab);
      this.dv = new DataView(ab);
      if (!o.fanout) setsockoptInt(this.fd, C.SOL_PACKET, C.PACKET_IGNORE_OUTGOING, 1, `PACKET_IGNORE_OUTGOING ${what}`);
      bind(this.fd, sockaddrLl(proto, ifindex), `bind ${what}`);
    } catch (e) {
      close(this.fd);
      throw e;
    }
  }

  /** Joins fanout group `group` with the client-hash program. */
  joinFanout(group: number, f: FanoutOptions): void {
    const what = `fanout group ${group} on ${this.ifname}`;
    const arg = (group & 0xffff) | ((C.PACKET_FANOUT_CBPF | C.PACKET_FANOUT_FLAG_IGNORE_OUTGOING) << 16);
    setsockoptInt(this.fd, C.SOL_PACKET, C.PACKET_FANOUT, arg, `PACKET_FANOUT ${what}`);
    this.setFanoutProgram(group, f);
  }

  /** Installs the client-hash program for the whole fanout group this socket belongs to. */
  setFanoutProgram(group: number, f: FanoutOptions): void {
    const what = `fanout group ${group} on ${this.ifname}`;
    const p = new NativeProg(clientFanoutProgram(f.key, f.members, { addrOnly: f.addrOnly, slotOf: f.slotOf }));
    try {
      setsockoptBuf(this.fd, C.SOL_PACKET, C.PACKET_FANOUT_DATA, p.fprog, `PACKET_FANOUT_DATA ${what}`);
    } finally {
      p.free();
    }
  }

  start(h: PortHandler): void {
    if (this.poller) return;
    const walk = this.version === 2 ? (): void => this.walkV3(h) : (): void => this.walkV2(h);
    this.walk = walk;
    this.poller = uvPoll(this.fd, { readable: true }, walk);
    walk();
  }

  /** Walks the ring once without waiting (frames already there go to the handler); no-op before start. */
  pollOnce(): void {
    if (this.poller && this.walk) this.walk();
  }

  private walk: (() => void) | null = null;

  stop(): void {
    if (this.poller) {
      this.poller.close();
      this.poller = null;
    }
  }

  private walkV3(h: PortHandler): void {
    const dv = this.dv;
    const u8 = this.u8;
    const c = this.counters;
    const bs = this.unitSize;
    let n = 0;
    for (;;) {
      const b = this.cur * bs;
      if ((dv.getUint32(b + BD_STATUS, true) & TP_STATUS_USER) === 0) break;
      const num = dv.getUint32(b + BD_NUM_PKTS, true);
      let p = b + dv.getUint32(b + BD_FIRST, true);
      for (let i = 0; i < num; i++) {
        const snap = dv.getUint32(p + H3_SNAPLEN, true);
        const len = dv.getUint32(p + H3_LEN, true);
        const st = dv.getUint32(p + H3_STATUS, true);
        let fl = 0;
        if (st & TP_STATUS_CSUMNOTREADY) fl |= RxFlag.CSUM_NOT_READY;
        if (st & TP_STATUS_CSUM_VALID) fl |= RxFlag.CSUM_VALID;
        if (st & TP_STATUS_GSO_TCP) fl |= RxFlag.GSO_TCP;
        if (snap < len) {
          fl |= RxFlag.TRUNCATED;
          c[Counter.RX_TRUNCATED]++;
        }
        c[Counter.RX_BYTES] += snap;
        h.packet(u8, p + dv.getUint16(p + H3_MAC, true), snap, fl, 0);
        p += dv.getUint32(p + H3_NEXT, true);
      }
      n += num;
      dv.setUint32(b + BD_STATUS, 0, true);
      c[Counter.RING_BLOCKS]++;
      this.cur = this.cur + 1 === this.units ? 0 : this.cur + 1;
    }
    if (n > 0) {
      c[Counter.RX] += n;
      c[Counter.RX_BATCHES]++;
      if (h.batchEnd) h.batchEnd();
    }
  }

  private walkV2(h: PortHandler): void {
    const dv = this.dv;
    const u8 = this.u8;
    const c = this.counters;
    const fs = this.unitSize;
    let n = 0;
    for (;;) {
      const p = this.cur * fs;
      const st = dv.getUint32(p + H2_STATUS, true);
      if ((st & TP_STATUS_USER) === 0) break;
      const snap = dv.getUint32(p + H2_SNAPLEN, true);
      const len = dv.getUint32(p + H2_LEN, true);
      let fl = 0;
      if (st & TP_STATUS_CSUMNOTREADY) fl |= RxFlag.CSUM_NOT_READY;
      if (st & TP_STATUS_CSUM_VALID) fl |= RxFlag.CSUM_VALID;
      if (st & TP_STATUS_GSO_TCP) fl |= RxFlag.GSO_TCP;
      if (snap < len) {
        fl |= RxFlag.TRUNCATED;
        c[Counter.RX_TRUNCATED]++;
      }
      c[Counter.RX_BYTES] += snap;
      h.packet(u8, p + dv.getUint16(p + H2_MAC, true), snap, fl, 0);
      dv.setUint32(p + H2_STATUS, 0, true);
      n++;
      this.cur = this.cur + 1 === this.units ? 0 : this.cur + 1;
    }
    if (n > 0) {
      c[Counter.RX] += n;
      c[Counter.RX_LOW_LATENCY] += n;
      c[Counter.RX_BATCHES]++;
      if (h.batchEnd) h.batchEnd();
    }
  }

  stats(): { packets: number; drops: number } {
    const b = new Uint8Array(12);
    getsockoptBuf(this.fd, C.SOL_PACKET, C.PACKET_STATISTICS, b, `PACKET_STATISTICS on ${this.ifname}`);
    const dv = new DataView(b.buffer);
    return { packets: dv.getUint32(0, true), drops: dv.getUint32(4, true) };
  }

  close(): void {
    this.stop();
    close(this.fd);
    munmap(this.mem, this.memLen);
  }
}

/** TX socket with a native mmsghdr/iovec vector and frame slots. */
class VectorTx {
  readonly fd: number;
  readonly buf: Uint8Array;
  private readonly dv: DataView;
  private readonly mem: Ptr;
  private readonly memLen: number;
  private readonly slots: number;
  private readonly slotBase: number; // byte offset of slot 0 in buf
  private readonly iovBase: number;
  private count = 0;
  private reserved = false;
  private readonly counters: Float64Array;

  constructor(ifname: string, ifindex: number, o: TxOptions, counters: Float64Array) {
    this.counters = counters;
    this.slots = o.slots ?? 1024;
    const what = `tx on ${ifname}`;
    this.fd = socket(C.AF_PACKET, C.SOCK_RAW | C.SOCK_NONBLOCK | C.SOCK_CLOEXEC, 0, `socket(AF_PACKET) ${what}`);
    try {
      if (o.qdiscBypass ?? true) setsockoptInt(this.fd, C.SOL_PACKET, C.PACKET_QDISC_BYPASS, 1, `PACKET_QDISC_BYPASS ${what}`);
      setsockoptInt(this.fd, C.SOL_PACKET, C.PACKET_VNET_HDR, 1, `PACKET_VNET_HDR ${what}`);
      setsockoptInt(this.fd, C.SOL_SOCKET, C.SO_SNDBUFFORCE, 8 << 20, `SO_SNDBUFFORCE ${what}`);
      bind(this.fd, sockaddrLl(0, ifindex), `bind ${what}`);
    } catch (e) {
      close(this.fd);
      throw e;
    }
    this.iovBase = this.slots * MMSGHDR;
    this.slotBase = 4096 * Math.ceil((this.iovBase + this.slots * IOVEC) / 4096);
    this.memLen = this.slotBase + this.slots * SLOT_SIZE;
    this.mem = allocNative(this.memLen, `tx slots ${ifname}`);
    const ab = view(this.mem, this.memLen);
    this.buf = new Uint8Array(ab);
    this.dv = new DataView(ab);
    for (let i = 0; i < this.slots; i++) {
      const m = i * MMSGHDR;
      const iov = this.iovBase + i * IOVEC;
      this.dv.setBigUint64(m + 16, this.mem + BigInt(iov), true); // msg_iov
      this.dv.setBigUint64(m + 24, 1n, true); // msg_iovlen
      this.dv.setBigUint64(iov, this.mem + BigInt(this.slotBase + i * SLOT_SIZE + SLOT_FRAME - VNET_LEN), true);
    }
  }

  reserve(): number {
    if (this.count === this.slots) {
      // A batch with more frames for this port than the vector holds (a backlog read at once, e.g. the replies of
      // every flow a takeover brings): send what is committed and go on, rather than drop the rest of the batch.
      this.counters[Counter.TX_FULL]++;
      this.flush();
    }
    this.reserved = true;
    return this.slotBase + this.count * SLOT_SIZE + SLOT_FRAME;
  }

  commit(len: number, vnetFlags: number, csumStart: number, csumOffset: number, gsoType: number, gsoSize: number, hdrLen: number): void {
    if (!this.reserved) return;
    this.reserved = false;
    const i = this.count++;
    const dv = this.dv;
    const h = this.slotBase + i * SLOT_SIZE + SLOT_FRAME - VNET_LEN;
    dv.setUint8(h, vnetFlags);
    dv.setUint8(h + 1, gsoType);
    dv.setUint16(h + 2, hdrLen, true);
    dv.setUint16(h + 4, gsoSize, true);
    dv.setUint16(h + 6, csumStart, true);
    dv.setUint16(h + 8, csumOffset, true);
    dv.setUint32(this.iovBase + i * IOVEC + 8, VNET_LEN + len, true);
  }

  flush(): number {
    const n = this.count;
    if (n === 0) return 0;
    this.count = 0;
    this.reserved = false;
    const c = this.counters;
    let sent = 0;
    for (let tries = 0; sent < n && tries < 4; tries++) {
      const r = raw.sendmmsg(this.fd, this.mem + BigInt(sent * MMSGHDR), n - sent, 0);
      if (r <= 0) {
        const e = errno();
        if (r < 0 && e !== C.EAGAIN && e !== C.ENOBUFS && e !== C.EINTR) break;
        continue;
      }
      sent += r;
    }
    c[Counter.TX] += sent;
    c[Counter.TX_SHORT] += n - sent;
    c[Counter.TX_BATCHES]++;
    return sent;
  }

  close(): void {
    close(this.fd);
    munmap(this.mem, this.memLen);
  }
}

/** Adaptive RX: a V2 ring (low latency) and a V3 ring (throughput); one admits packets, the other is parked. */
class AdaptiveRx {
  private readonly lat: RingRx;
  private readonly bulk: RingRx;
  private readonly filter: Uint8Array;
  private readonly park = dropAllFilter();
  private mode: 'lat' | 'bulk' = 'lat';
  private timer: ReturnType<typeof setInterval> | null = null;
  private lastRx = 0;
  private readonly o: RxOptions;
  private readonly counters: Float64Array;

  constructor(lat: RingRx, bulk: RingRx, filter: Uint8Array, o: RxOptions, counters: Float64Array) {
    this.lat = lat;
    this.bulk = bulk;
    this.filter = filter;
    this.o = o;
    this.counters = counters;
  }

  start(h: PortHandler): void {
    this.lat.start(h);
    this.bulk.start(h);
    if (this.timer) return;
    const win = this.o.windowMs ?? 100;
    const low = this.o.lowPps ?? 5000;
    const high = this.o.highPps ?? 50000;
    this.lastRx = this.counters[Counter.RX];
    this.timer = setInterval(() => {
      const rx = this.counters[Counter.RX];
      const pps = ((rx - this.lastRx) * 1000) / win;
      this.lastRx = rx;
      if (this.mode === 'lat' && pps > high) this.switchTo('bulk');
      else if (this.mode === 'bulk' && pps < low) this.switchTo('lat');
    }, win);
    this.timer.unref();
  }

  /** The active ring: 'lat' (V2) or 'bulk' (V3). */
  get current(): 'lat' | 'bulk' {
    return this.mode;
  }

  /** Admits on the other ring first, then parks the old one (a packet in between may be seen twice, never lost). */
  switchTo(mode: 'lat' | 'bulk'): void {
    if (mode === this.mode) return;
    const on = mode === 'lat' ? this.lat : this.bulk;
    const off = mode === 'lat' ? this.bulk : this.lat;
    setFilter(on.fd, this.filter, `adaptive ${mode}`);
    setFilter(off.fd, this.park, `adaptive park`);
    this.mode = mode;
    this.counters[Counter.MODE_SWITCHES]++;
  }

  stop(): void {
    this.lat.stop();
    this.bulk.stop();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

/** The AF_PACKET PacketPort. Create with `openAfPacketPort`. */
export class AfPacketPort implements PacketPort {
  readonly layer = 'l2' as const;
  readonly ifname: string;
  readonly ifindex: number;
  readonly counters = new Float64Array(COUNTERS);
  readonly txBuf: Uint8Array;
  readonly txFrameMax = SLOT_SIZE - SLOT_FRAME;
  private readonly rings: RingRx[] = [];
  private readonly adaptive: AdaptiveRx | null = null;
  private readonly tx: VectorTx | null = null;
  private fanout: FanoutOptions | null = null;

  constructor(o: AfPacketPortOptions) {
    this.ifname = o.ifname;
    this.ifindex = ifIndex(o.ifname);
    try {
      if (o.rx) {
        const r = o.rx;
        this.fanout = r.fanout ?? null;
        const filter = r.filter ?? acceptAllFilter();
        const ring = r.ring ?? 'adaptive';
        if (ring === 'adaptive') {
          const lat = new RingRx(o.ifname, this.ifindex, 1, r, filter, this.counters);
          this.rings.push(lat);
          const bulk = new RingRx(o.ifname, this.ifindex, 2, r, dropAllFilter(), this.counters);
          this.rings.push(bulk);
          if (r.fanout) {
            lat.joinFanout(r.fanout.group, r.fanout);
            bulk.joinFanout(r.fanout.group ^ 0x8000, r.fanout);
          }
          this.adaptive = new AdaptiveRx(lat, bulk, filter, r, this.counters);
        } else {
          const one = new RingRx(o.ifname, this.ifindex, ring === 'v3' ? 2 : 1, r, filter, this.counters);
          this.rings.push(one);
          if (r.fanout) one.joinFanout(r.fanout.group, r.fanout);
        }
      }
      if (o.tx) this.tx = new VectorTx(o.ifname, this.ifindex, o.tx, this.counters);
    } catch (e) {
      for (const r of this.rings) r.close();
      throw e;
    }
    this.txBuf = this.tx ? this.tx.buf : new Uint8Array(0);
  }

  /**
   * Delivers the frames already waiting in the receive ring(s) to the handler given to `rx`, without waiting;
   * returns how many.
   */
  pollOnce(): number {
    const before = this.counters[Counter.RX];
    for (const r of this.rings) r.pollOnce();
    return this.counters[Counter.RX] - before;
  }

  /**
   * Re-installs the fanout program for this port's group(s) with a new shard → slot map (after a worker
   * rejoined). The program is group-wide: any member may install it. No-op without fanout.
   */
  updateFanout(slotOf: readonly number[]): void {
    const f = this.fanout;
    if (f === null) return;
    const g = { ...f, slotOf };
    this.fanout = g;
    if (this.adaptive) {
      this.rings[0].setFanoutProgram(f.group, g);
      this.rings[1].setFanoutProgram(f.group ^ 0x8000, g);
    } else if (this.rings.length > 0) {
      this.rings[0].setFanoutProgram(f.group, g);
    }
  }

  get name(): string {
    return this.ifname;
  }

  /** Sends every committed TX slot (see txFlush). */
  flush(): number {
    return this.txFlush();
  }

  rx(h: PortHandler): void {
    if (this.rings.length === 0) throw new SysError(`rx on ${this.ifname}: port opened without an RX side`, 22);
    if (this.adaptive) this.adaptive.start(h);
    else this.rings[0].start(h);
  }

  stopRx(): void {
    if (this.adaptive) this.adaptive.stop();
    for (const r of this.rings) r.stop();
  }

  /** Adaptive mode only: the ring now admitting packets ('lat' = V2, 'bulk' = V3); null otherwise. */
  get rxMode(): 'lat' | 'bulk' | null {
    return this.adaptive ? this.adaptive.current : null;
  }

  /** Adaptive mode only: forces a ring (for tests and operators); the rate timer may switch back. */
  forceRxMode(mode: 'lat' | 'bulk'): void {
    if (this.adaptive) this.adaptive.switchTo(mode);
  }

  txReserve(): number {
    return this.tx ? this.tx.reserve() : -1;
  }

  txCommit(len: number, vnetFlags: number, csumStart: number, csumOffset: number, gsoType = 0, gsoSize = 0, hdrLen = 0): void {
    if (this.tx) this.tx.commit(len, vnetFlags, csumStart, csumOffset, gsoType, gsoSize, hdrLen);
  }

  txFlush(): number {
    return this.tx ? this.tx.flush() : 0;
  }

  /**
   * Sends one frame outside the batch (control traffic such as ARP): copies `frame` into a slot and
   * flushes. Returns false when it could not be sent.
   */
  sendFrame(frame: Uint8Array): boolean {
    if (!this.tx || frame.byteLength > this.txFrameMax) return false;
    let off = this.tx.reserve();
    if (off < 0) {
      this.tx.flush();
      off = this.tx.reserve();
    }
    this.txBuf.set(frame, off);
    this.tx.commit(frame.byteLength, 0, 0, 0, 0, 0, 0);
    return this.tx.flush() > 0;
  }

  kernelStats(): { packets: number; drops: number } {
    let packets = 0;
    let drops = 0;
    for (const r of this.rings) {
      const s = r.stats();
      packets += s.packets;
      drops += s.drops;
    }
    return { packets, drops };
  }

  close(): void {
    this.stopRx();
    for (const r of this.rings) r.close();
    this.rings.length = 0;
    if (this.tx) this.tx.close();
  }
}

/**
 * Opens an AF_PACKET port on `ifname`. Needs CAP_NET_RAW. Throws SysError naming the failing step
 * (socket, setsockopt(option), mmap, bind, fanout) and releases what was already set up.
 * With `rx.fanout`, the call joins the group: call it in worker-index order (pitfall 9).
 */
export function openAfPacketPort(o: AfPacketPortOptions): AfPacketPort {
  return new AfPacketPort(o);
}

