// The NFQUEUE packet port ("safe mode"): IPv4 packets queued by iptables NFQUEUE rules arrive over a raw
// NETLINK_NETFILTER socket (recvmmsg into native slots), and verdicts (accept, drop, accept with a mark,
// accept a rewritten packet) go back concatenated into one send() per batch. The kernel keeps routing, ARP
// and checksums; no Ethernet header is involved.
import {
  C, type Ptr, type UvPollHandle, SysError, allocNative, bind, close, copyBytes, errno, isNativeView, munmap, raw,
  setsockoptInt, socket, uvPoll, view,
} from '../../../shared/sys/libc.ts';
import {
  MARK_ATTR, MAX_PAYLOAD, NFGEN_HDR, NLMSG_DONE, NLMSG_HDR, NLMSG_NOOP, NfVerdict, NfqCfgFlag, NfqCmd, NfqMsg, NfqPacketInfo, NfqParse,
  NfqaCfg, PAYLOAD_ATTR, VERDICT_MSG, align4, be32, cmdAttr, configMsg, paramsAttr, parseNfqPacket, parseQueueStats, rewriteAsDrop,
  writeMarkAttr, writePayloadAttr, writeVerdictHeader,
} from '../../../shared/sys/nfqueue-codec.ts';
import type { L3Port, PortHandler } from './port.ts';
import { readFileSync } from 'node:fs';

/** Indices into `NfqueuePort.counters` (Float64Array; packets unless the name says otherwise). */
export const NfqCounter = {
  /** Packet messages delivered to the handler. */
  RX: 0,
  /** Payload bytes delivered to the handler. */
  RX_BYTES: 1,
  /** recvmmsg calls that returned at least one message. */
  RX_BATCHES: 2,
  /** Packets whose payload was cut to the copy range (NFQA_CAP_LEN > payload). */
  RX_TRUNCATED: 3,
  /** Malformed or unexpected netlink messages/attributes (a packet id found in one still gets a DROP verdict). */
  BAD_MSG: 4,
  /** Verdict messages queued (every kind). */
  VERDICTS: 5,
  /** DROP verdicts, including those the port gave itself (bad messages, refused rewrites, config window). */
  DROPS: 6,
  /** ACCEPT verdicts carrying a mark (acceptMark). */
  MARKED: 7,
  /** ACCEPT verdicts carrying a rewritten payload (acceptModified / reserveModified). */
  MODIFIED: 8,
  /** Rewrites refused (length out of range): those packets got a DROP verdict instead. */
  MODIFY_REFUSED: 9,
  /** send() calls that delivered a verdict batch. */
  SEND_BATCHES: 10,
  /** Verdicts lost because send() failed: those packets stay queued in the kernel until close(). */
  SEND_ERRORS: 11,
  /** Flushes forced mid-batch because the verdict buffer was full. */
  VERDICT_FULL: 12,
  /** Error acks from the kernel (e.g. a verdict for an unknown packet id). */
  NL_ERRORS: 13,
  /** recvmmsg failures other than EAGAIN/EINTR. */
  RECV_ERRORS: 14,
  /** Kernel: packets waiting in the queue now (at the last readKernelStats). */
  QUEUE_TOTAL: 15,
  /** Kernel: packets dropped because the queue was full (`queue_dropped`, cumulative since bind). */
  QUEUE_DROPPED: 16,
  /** Kernel: packets dropped because the netlink socket buffer was full (`user_dropped`, cumulative). */
  USER_DROPPED: 17,
} as const;
/** Number of counters in `NfqueuePort.counters`. */
export const NFQ_COUNTERS = 18;

/** Bits of the `flags` argument of a packet callback. */
export const NfqFlag = {
  /** The payload is cut to the copy range: `len` is less than the packet's length (`NfqueuePort.wireLen`). */
  TRUNCATED: 1,
} as const;

/** Netfilter hook numbers, as `NfqueuePort.hook` reports them. */
export const NfHook = { PRE_ROUTING: 0, LOCAL_IN: 1, FORWARD: 2, LOCAL_OUT: 3, POST_ROUTING: 4 } as const;

/**
 * Packets go to a PortHandler (io/port.ts): `packet(buf, off, len, flags, id)` with `buf[off .. off+len)` the IPv4
 * packet (no Ethernet header), valid only during the call (a receive slot reused by the next batch); it may be
 * rewritten in place and handed to `acceptModified`. `id` is the kernel's packet id: every id must get exactly one
 * verdict (accept, drop, acceptMark, acceptModified, reserveModified), from inside the call or before the next
 * `flush`; a packet without a verdict stays queued (and counts against the queue length) until the port is closed.
 * `flags` is a set of NfqFlag bits; skb->mark is `NfqueuePort.mark` during the call (0 when unset).
 */
export type { PortHandler as NfqHandler } from './port.ts';

/** Options of `openNfqueuePort`. */
export interface NfqueuePortOptions {
  /** Queue number (0..65535), as in `-j NFQUEUE --queue-num`. */
  queue: number;
  /** Kernel queue length limit in packets (NFQA_CFG_QUEUE_MAXLEN); beyond it packets are dropped and counted. Default 8192. */
  maxlen?: number;
  /** Bytes of each packet copied to userspace (NFQA_CFG_PARAMS copy_range), 64..65535. Default 65535. */
  copyRange?: number;
  /** Messages per recvmmsg (receive slots), 1..1024. Native memory is `batch × (copyRange + 512)` bytes. Default 64. */
  batch?: number;
  /** Verdict buffer size in bytes: verdicts are sent when it fills or at batch end. Default 512 KiB. */
  verdictBytes?: number;
  /**
   * Let packets through unqueued when the queue is full (NFQA_CFG_F_FAIL_OPEN). Default false: a director
   * must not leak un-NATed packets (packet-io-notes pitfall 10).
   */
  failOpen?: boolean;
  /** Socket receive buffer in bytes (SO_RCVBUFFORCE). Default 16 MiB. */
  rcvbuf?: number;
}

/** Room in a receive slot for the attributes around the payload (packet header, mark, ifindexes, hwaddr, timestamps, cap_len…). */
const SLOT_OVERHEAD = 512;
const MMSGHDR = 64;
const IOVEC = 16;
const NF_DROP = NfVerdict.DROP;
const NF_ACCEPT = NfVerdict.ACCEPT;

/**
 * One NFQUEUE queue bound on its own netlink socket. Create with `openNfqueuePort`. Nothing in the receive
 * or verdict path allocates: messages are parsed from native receive slots viewed once, and verdicts are
 * written into one native buffer that a single send() hands to the kernel.
 */
export class NfqueuePort implements L3Port {
  readonly layer = 'l3' as const;
  /** The queue number this port is bound to. */
  readonly queue: number;
  /** Counters indexed by NfqCounter; safe to read at any time. */
  readonly counters = new Float64Array(NFQ_COUNTERS);
  /**
   * Native verdict memory, for `reserveModified`: write the new packet at the offset it returns. Other
   * bytes belong to the port.
   */
  readonly verdictBuf: Uint8Array;
  /**
   * Largest packet, in bytes, `acceptModified`/`reserveModified` take: 65535 (the IP total length limit the
   * kernel enforces), or less when the verdict buffer is smaller. A packet that grows past the egress MTU is
   * fragmented by the kernel, or answered with ICMP fragmentation-needed when it has DF set.
   */
  readonly maxModified: number;
  /** skb->mark of the packet being delivered (0 when unset); valid during a packet callback. */
  mark = 0;
  /** Netfilter hook (NfHook) of the packet being delivered; valid during a packet callback. */
  hook = 0;
  /** Input interface index of the packet being delivered (0 if none); valid during a packet callback. */
  indev = 0;
  /** Output interface index of the packet being delivered (0 if none yet, as in PREROUTING). */
  outdev = 0;
  /** Full length in bytes of the packet being delivered (larger than `len` when NfqFlag.TRUNCATED). */
  wireLen = 0;

  private readonly fd: number;
  private readonly rxMem: Ptr;
  private readonly rxLen: number;
  private readonly rxU8: Uint8Array;
  private readonly rxDv: DataView;
  private readonly slots: number;
  private readonly slotSize: number;
  private readonly slotBase: number;
  private readonly vMem: Ptr;
  private readonly vLen: number;
  private readonly vDv: DataView;
  private vOff = 0;
  private vCount = 0;
  /** Offset of the message `reserveModified` queued last, while it is still the last one; else -1. */
  private reserved = -1;
  private poller: UvPollHandle | null = null;
  private handler: PortHandler | null = null;
  private closed = false;
  /** True while a batch is being delivered: close() then waits for the batch to end. */
  private busy = false;
  private closePending = false;
  private seq = 1;
  private readonly pk = new NfqPacketInfo();

  constructor(o: NfqueuePortOptions) {
    const q = o.queue;
    if (!Number.isInteger(q) || q < 0 || q > 0xffff) throw new RangeError(`nfqueue: queue ${q} is not in 0..65535`);
    const copyRange = o.copyRange ?? 0xffff;
    if (!Number.isInteger(copyRange) || copyRange < 64 || copyRange > 0xffff) throw new RangeError(`nfqueue ${q}: copyRange ${copyRange} is not in 64..65535`);
    const maxlen = o.maxlen ?? 8192;
    if (!Number.isInteger(maxlen) || maxlen < 1 || maxlen > 0x7fffffff) throw new RangeError(`nfqueue ${q}: maxlen ${maxlen} is not a positive 32-bit integer`);
    const batch = o.batch ?? 64;
    if (!Number.isInteger(batch) || batch < 1 || batch > 1024) throw new RangeError(`nfqueue ${q}: batch ${batch} is not in 1..1024`);
    this.queue = q;
    this.slots = batch;
    this.slotSize = (copyRange + SLOT_OVERHEAD + 63) & ~63;
    this.vLen = Math.max(4096, o.verdictBytes ?? 512 * 1024);
    this.maxModified = Math.min(MAX_PAYLOAD, this.vLen - VERDICT_MSG - MARK_ATTR - PAYLOAD_ATTR - 4);
    const what = `nfqueue ${q}`;
    this.fd = socket(C.AF_NETLINK, C.SOCK_RAW | C.SOCK_NONBLOCK | C.SOCK_CLOEXEC, C.NETLINK_NETFILTER, `socket(AF_NETLINK) ${what}`);
    this.slotBase = 4096 * Math.ceil((this.slots * (MMSGHDR + IOVEC)) / 4096);
    this.rxLen = this.slotBase + this.slots * this.slotSize;
    let rxMem: Ptr = 0n;
    let vMem: Ptr = 0n;
    try {
      const sa = new Uint8Array(12);
      new DataView(sa.buffer).setUint16(0, C.AF_NETLINK, true);
      bind(this.fd, sa, `bind ${what}`);
      setsockoptInt(this.fd, C.SOL_SOCKET, C.SO_RCVBUFFORCE, o.rcvbuf ?? 16 << 20, `SO_RCVBUFFORCE ${what}`);
      setsockoptInt(this.fd, C.SOL_SOCKET, C.SO_SNDBUFFORCE, Math.max(4 << 20, this.vLen * 2), `SO_SNDBUFFORCE ${what}`);
      setsockoptInt(this.fd, C.SOL_NETLINK, C.NETLINK_NO_ENOBUFS, 1, `NETLINK_NO_ENOBUFS ${what}`);
      rxMem = allocNative(this.rxLen, `${what} receive slots`);
      this.rxMem = rxMem;
      const ab = view(rxMem, this.rxLen);
      this.rxU8 = new Uint8Array(ab);
      this.rxDv = new DataView(ab);
      const iovBase = this.slots * MMSGHDR;
      for (let i = 0; i < this.slots; i++) {
        const m = i * MMSGHDR;
        const iov = iovBase + i * IOVEC;
        this.rxDv.setBigUint64(m + 16, rxMem + BigInt(iov), true);
        this.rxDv.setBigUint64(m + 24, 1n, true);
        this.rxDv.setBigUint64(iov, rxMem + BigInt(this.slotBase + i * this.slotSize), true);
        this.rxDv.setBigUint64(iov + 8, BigInt(this.slotSize), true);
      }
      vMem = allocNative(this.vLen, `${what} verdicts`);
      this.vMem = vMem;
      const vab = view(vMem, this.vLen);
      this.verdictBuf = new Uint8Array(vab);
      this.vDv = new DataView(vab);
      this.configure([NfqaCfg.CMD, cmdAttr(NfqCmd.BIND)], `${what}: CMD_BIND`);
      this.configure([NfqaCfg.PARAMS, paramsAttr(copyRange)], `${what}: PARAMS copy_range ${copyRange}`);
      this.configure([NfqaCfg.QUEUE_MAXLEN, be32(maxlen)], `${what}: QUEUE_MAXLEN ${maxlen}`);
      this.configure([NfqaCfg.FLAGS, be32(o.failOpen ? NfqCfgFlag.FAIL_OPEN : 0), NfqaCfg.MASK, be32(NfqCfgFlag.ALL)], `${what}: FLAGS`);
    } catch (e) {
      close(this.fd);
      if (rxMem !== 0n) munmap(rxMem, this.rxLen);
      if (vMem !== 0n) munmap(vMem, this.vLen);
      throw e;
    }
  }

  /** "nfqueue N", for logs. */
  get name(): string {
    return `nfqueue ${this.queue}`;
  }

  /** Delivers what is queued now (up to 16 receive rounds) without blocking; returns packets delivered. */
  pollOnce(): number {
    const before = this.counters[NfqCounter.RX];
    this.onReadable();
    return this.counters[NfqCounter.RX] - before;
  }

  /** Starts delivering queued packets to `h` from the event loop (koffi.node.poll on the socket). */
  rx(h: PortHandler): void {
    this.handler = h;
    if (this.poller || this.closed) return;
    this.poller = uvPoll(this.fd, { readable: true }, this.onReadable);
    this.onReadable();
  }

  /** Stops delivery; packets keep queueing in the kernel (up to maxlen) until `rx` is called again. */
  stopRx(): void {
    if (this.poller) {
      this.poller.close();
      this.poller = null;
    }
  }

  /** ACCEPT: the packet continues through netfilter unchanged. */
  accept(id: number): void {
    this.put(id, NF_ACCEPT, -1);
  }

  /** DROP: the kernel frees the packet. */
  drop(id: number): void {
    this.put(id, NF_DROP, -1);
  }

  /**
   * ACCEPT with skb->mark set to `mark` (uint32), e.g. DR: `ip rule fwmark MARK lookup TABLE` then routes
   * the unchanged packet to the real server (the port's rules helper installs those rules).
   */
  acceptMark(id: number, mark: number): void {
    this.put(id, NF_ACCEPT, mark >>> 0);
    this.counters[NfqCounter.MARKED]++;
  }

  /**
   * ACCEPT with the packet replaced by `buf[off .. off+len)` (a complete IPv4 packet with valid checksums:
   * the kernel does not recompute them). The packet may shrink or grow (e.g. +20 bytes for IPIP) up to
   * `maxModified` bytes; when it has grown past the egress MTU the kernel fragments it or, with DF, drops
   * it and sends ICMP fragmentation-needed. Routing after PREROUTING uses the new destination. The bytes are
   * copied: `buf` may be the receive slot the packet arrived in. Copies between native buffers (the receive
   * slots, `verdictBuf`, libc `view()`s) allocate nothing; other buffers are copied byte by byte. Returns
   * false, and gives a DROP verdict instead, when `len` is not in 20..maxModified. Never rewrite a packet
   * delivered with NfqFlag.TRUNCATED: the kernel would replace the whole packet with the truncated bytes
   * (the default copy range, 65535, covers every packet, since GSO packets are segmented before queueing).
   */
  acceptModified(id: number, buf: Uint8Array, off: number, len: number): boolean {
    const at = this.reserveModified(id, len);
    if (at < 0) return false;
    if (isNativeView(buf)) copyBytes(this.verdictBuf, at, buf, off, len);
    else for (let i = 0; i < len; i++) this.verdictBuf[at + i] = buf[off + i];
    return true;
  }

  /**
   * As `acceptModified`, without the copy: queues an ACCEPT verdict for a `len`-byte packet and returns
   * the offset in `verdictBuf` where the caller must write it before the next verdict call or flush (e.g.
   * build an IPIP packet there directly). Returns -1, and gives a DROP verdict instead, when `len` is not in
   * 20..maxModified. A caller that cannot fill the space after all calls `dropReserved` next.
   */
  reserveModified(id: number, len: number): number {
    if (len < 20 || len > this.maxModified) {
      this.counters[NfqCounter.MODIFY_REFUSED]++;
      this.drop(id);
      return -1;
    }
    const pad = align4(len);
    const size = VERDICT_MSG + PAYLOAD_ATTR + pad;
    if (this.vOff + size > this.vLen) {
      this.counters[NfqCounter.VERDICT_FULL]++;
      this.flush();
    }
    const dv = this.vDv;
    const p = this.vOff;
    this.header(p, size, id, NF_ACCEPT);
    const a = p + VERDICT_MSG;
    writePayloadAttr(dv, a, len);
    for (let i = len; i < pad; i++) this.verdictBuf[a + PAYLOAD_ATTR + i] = 0;
    this.vOff = p + size;
    this.vCount++;
    this.reserved = p;
    const c = this.counters;
    c[NfqCounter.VERDICTS]++;
    c[NfqCounter.MODIFIED]++;
    return a + PAYLOAD_ATTR;
  }

  /**
   * Turns the verdict `reserveModified` just queued into a DROP without payload, for a caller that found it
   * cannot build the packet after all. Only valid before any other verdict call or flush; returns false
   * (and changes nothing) otherwise.
   */
  dropReserved(): boolean {
    const p = this.reserved;
    if (p < 0) return false;
    this.reserved = -1;
    rewriteAsDrop(this.vDv, p);
    this.vOff = p + VERDICT_MSG;
    const c = this.counters;
    c[NfqCounter.MODIFIED]--;
    c[NfqCounter.DROPS]++;
    return true;
  }

  /**
   * Sends every queued verdict in one send() (the port calls it after each batch; call it after verdicts
   * given outside a packet callback). Returns the number of verdicts sent. On failure (after retrying
   * EINTR/EAGAIN/ENOBUFS 4 times) the verdicts are counted in SEND_ERRORS and discarded.
   */
  flush(): number {
    const n = this.vCount;
    if (n === 0) return 0;
    const len = this.vOff;
    this.vOff = 0;
    this.vCount = 0;
    this.reserved = -1;
    let r = -1;
    for (let tries = 0; tries < 4; tries++) {
      r = raw.send(this.fd, this.vMem, len, 0);
      if (r >= 0) break;
      const e = errno();
      if (e !== C.EINTR && e !== C.EAGAIN && e !== C.ENOBUFS) break;
    }
    if (r !== len) {
      this.counters[NfqCounter.SEND_ERRORS] += n;
      return 0;
    }
    this.counters[NfqCounter.SEND_BATCHES]++;
    return n;
  }

  /**
   * Reads this queue's line of /proc/net/netfilter/nfnetlink_queue (the caller's network namespace) into
   * QUEUE_TOTAL, QUEUE_DROPPED and USER_DROPPED and returns them; zeros when the line is missing. Reads a
   * file: call it from a timer, not per packet.
   */
  readKernelStats(): { queued: number; queueDropped: number; userDropped: number } {
    let text = '';
    try {
      text = readFileSync('/proc/net/netfilter/nfnetlink_queue', 'utf8');
    } catch {
      text = '';
    }
    const { queued, queueDropped, userDropped } = parseQueueStats(text, this.queue);
    const c = this.counters;
    c[NfqCounter.QUEUE_TOTAL] = queued;
    c[NfqCounter.QUEUE_DROPPED] = queueDropped;
    c[NfqCounter.USER_DROPPED] = userDropped;
    return { queued, queueDropped, userDropped };
  }

  /**
   * Stops delivery, sends pending verdicts, unbinds the queue (packets still queued are dropped by the
   * kernel), closes the socket and frees native memory. Called from inside a packet callback, it takes
   * effect when the batch ends. Idempotent; never throws. Views handed out (`verdictBuf`, packet buffers)
   * must not be used afterwards.
   */
  close(): void {
    if (this.busy) {
      this.closePending = true;
      return;
    }
    if (this.closed) return;
    this.closed = true;
    this.stopRx();
    this.flush();
    const m = configMsg(this.queue, this.seq++, false, [NfqaCfg.CMD, cmdAttr(NfqCmd.UNBIND)]);
    raw.send(this.fd, m, m.byteLength, 0);
    close(this.fd);
    munmap(this.rxMem, this.rxLen);
    munmap(this.vMem, this.vLen);
  }

  private readonly onReadable = (): void => {
    const h = this.handler;
    if (h === null || this.closed) return;
    this.busy = true;
    try {
      this.batches(h);
    } finally {
      this.busy = false;
    }
    if (this.closePending) this.close();
  };

  /** Up to 16 recvmmsg rounds per wakeup (then back to the event loop); verdicts sent after each round. */
  private batches(h: PortHandler): void {
    const dv = this.rxDv;
    const c = this.counters;
    for (let round = 0; round < 16 && !this.closePending; round++) {
      const n = raw.recvmmsg(this.fd, this.rxMem, this.slots, C.MSG_DONTWAIT, null);
      if (n <= 0) {
        if (n < 0) {
          const e = errno();
          if (e !== C.EAGAIN && e !== C.EINTR) c[NfqCounter.RECV_ERRORS]++;
        }
        break;
      }
      c[NfqCounter.RX_BATCHES]++;
      for (let i = 0; i < n; i++) {
        const m = i * MMSGHDR;
        const got = dv.getUint32(m + 56, true);
        if ((dv.getInt32(m + 48, true) & C.MSG_TRUNC) !== 0) c[NfqCounter.BAD_MSG]++;
        const s = this.slotBase + i * this.slotSize;
        this.messages(h, s, s + Math.min(got, this.slotSize));
      }
      if (h.batchEnd) h.batchEnd();
      this.flush();
      if (n < this.slots) break;
    }
  }

  /** Walks the netlink messages in `[p, end)` of the receive memory. */
  private messages(h: PortHandler, start: number, end: number): void {
    const dv = this.rxDv;
    const c = this.counters;
    let p = start;
    while (end - p >= NLMSG_HDR) {
      const mlen = dv.getUint32(p, true);
      const type = dv.getUint16(p + 4, true);
      if (mlen < NLMSG_HDR || p + mlen > end) {
        c[NfqCounter.BAD_MSG]++;
        return;
      }
      if (type === NfqMsg.PACKET) this.packetMsg(h, p + NLMSG_HDR + NFGEN_HDR, p + mlen);
      else if (type === C.NLMSG_ERROR) {
        if (mlen >= NLMSG_HDR + 4 && dv.getInt32(p + NLMSG_HDR, true) !== 0) c[NfqCounter.NL_ERRORS]++;
      } else if (type !== NLMSG_NOOP && type !== NLMSG_DONE) c[NfqCounter.BAD_MSG]++;
      p += align4(mlen);
    }
  }

  /** Parses the attributes of one packet message and calls the handler (or drops a malformed packet). */
  private packetMsg(h: PortHandler, start: number, end: number): void {
    const c = this.counters;
    const pk = this.pk;
    const r = parseNfqPacket(this.rxDv, start, end, pk);
    if (r !== NfqParse.OK) {
      c[NfqCounter.BAD_MSG]++;
      if (r === NfqParse.BAD) this.drop(pk.id);
      return;
    }
    let flags = 0;
    const payLen = pk.payLen;
    this.wireLen = payLen;
    if (pk.capLen > payLen) {
      flags |= NfqFlag.TRUNCATED;
      this.wireLen = pk.capLen;
      c[NfqCounter.RX_TRUNCATED]++;
    }
    this.hook = pk.hook;
    this.mark = pk.mark;
    this.indev = pk.indev;
    this.outdev = pk.outdev;
    c[NfqCounter.RX]++;
    c[NfqCounter.RX_BYTES] += payLen;
    h.packet(this.rxU8, pk.payOff, payLen, flags, pk.id);
  }

  /** Queues a verdict without payload; `mark` < 0 means no NFQA_MARK. */
  private put(id: number, verdict: number, mark: number): void {
    this.reserved = -1;
    const size = mark < 0 ? VERDICT_MSG : VERDICT_MSG + MARK_ATTR;
    if (this.vOff + size > this.vLen) {
      this.counters[NfqCounter.VERDICT_FULL]++;
      this.flush();
    }
    const p = this.vOff;
    this.header(p, size, id, verdict);
    if (mark >= 0) writeMarkAttr(this.vDv, p + VERDICT_MSG, mark);
    this.vOff = p + size;
    this.vCount++;
    const c = this.counters;
    c[NfqCounter.VERDICTS]++;
    if (verdict === NF_DROP) c[NfqCounter.DROPS]++;
  }

  /** Writes nlmsghdr + nfgenmsg + NFQA_VERDICT_HDR at `p` of the verdict buffer. */
  private header(p: number, size: number, id: number, verdict: number): void {
    writeVerdictHeader(this.vDv, p, size, this.queue, id, verdict);
  }

  /**
   * Sends one config message with NLM_F_ACK and waits (up to 2 s) for its ack; packets that arrive
   * meanwhile (the queue is bound, the copy mode may not be set yet) get DROP verdicts. Throws SysError(op)
   * with the kernel's errno on a negative ack or a timeout (ETIMEDOUT).
   */
  private configure(attrs: (number | Uint8Array)[], op: string): void {
    const seq = this.seq++;
    const m = configMsg(this.queue, seq, true, attrs);
    if (raw.send(this.fd, m, m.byteLength, 0) !== m.byteLength) throw new SysError(op, errno());
    const pfd = new Uint8Array(8);
    const pdv = new DataView(pfd.buffer);
    const deadline = Date.now() + 2000;
    const dv = this.rxDv;
    const slot = this.slotBase;
    const slotPtr = this.rxMem + BigInt(slot);
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) throw new SysError(op, 110);
      pdv.setInt32(0, this.fd, true);
      pdv.setInt16(4, C.POLLIN, true);
      pdv.setInt16(6, 0, true);
      if (raw.poll(pfd, 1, left) <= 0) continue;
      const got = raw.recv(this.fd, slotPtr, this.slotSize, C.MSG_DONTWAIT);
      if (got < 0) {
        const e = errno();
        if (e === C.EAGAIN || e === C.EINTR) continue;
        throw new SysError(op, e);
      }
      let p = slot;
      const end = slot + got;
      while (end - p >= NLMSG_HDR) {
        const mlen = dv.getUint32(p, true);
        if (mlen < NLMSG_HDR || p + mlen > end) break;
        const type = dv.getUint16(p + 4, true);
        if (type === C.NLMSG_ERROR && dv.getUint32(p + 8, true) === seq && mlen >= NLMSG_HDR + 4) {
          const err = dv.getInt32(p + NLMSG_HDR, true);
          this.flush();
          if (err !== 0) throw new SysError(op, -err);
          return;
        }
        if (type === NfqMsg.PACKET) this.packetMsg({ packet: (_b, _o, _l, _f, id) => this.drop(id) }, p + NLMSG_HDR + NFGEN_HDR, p + mlen);
        p += align4(mlen);
      }
      this.flush();
    }
  }
}

/**
 * Binds NFQUEUE queue `o.queue` on a new netlink socket and configures it (copy the whole packet up to
 * `copyRange`, `maxlen`, no fail-open, no GSO so checksums arrive complete). Needs CAP_NET_ADMIN in the
 * network namespace whose iptables rules feed the queue. Throws RangeError for bad options, SysError naming
 * the failing step otherwise (EBUSY from CMD_BIND: another socket holds the queue), releasing what was set up.
 */
export function openNfqueuePort(o: NfqueuePortOptions): NfqueuePort {
  return new NfqueuePort(o);
}
