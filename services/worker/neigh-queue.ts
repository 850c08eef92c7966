// Packets waiting for their next hop's MAC: a small bounded queue per neighbour (the kernel's unres_qlen idea),
// filled by the engine through a TxPort-shaped front and sent the moment the neighbour resolves. Fixed memory,
// no allocation per packet; what overflows or waits too long is dropped and counted by reason.
import { Ev } from '../../shared/fwd/counters.ts';
import type { TxPort } from './io/port.ts';

/** Sizing and timing of a {@link NeighQueue}. */
export interface NeighQueueOptions {
  /** Neighbours that can have packets waiting at once (default 64). */
  neighbours?: number;
  /** Packets held per neighbour (default 32; the kernel's default is 101 packets / 208 KiB). */
  perNeighbour?: number;
  /** Bytes per held frame (default 2048: an AF_PACKET TX slot). */
  slotBytes?: number;
  /** How long a neighbour may stay unresolved before its packets are dropped, ms (default 3000, the kernel's 3 probes × 1 s). */
  holdMs?: number;
}

/** Where released frames go: the real transmit port of an interface, and a send of what was committed. */
export interface ReleaseTarget {
  port(ifindex: number): (TxPort & { flush(): number }) | undefined;
}

const FREE = 0;
const PENDING = 1;

/**
 * The per-neighbour hold queues of one worker. {@link hold} picks (or opens) the queue of a next hop and returns
 * this object as the TxPort the engine writes the finished frame into (destination MAC left for later); the
 * owner calls {@link resolved} when the neighbour table learns the MAC, and {@link expire} periodically.
 * When a neighbour's queue is full the oldest packet is dropped (drop_neigh_queue_full), as the kernel does;
 * packets of a neighbour unresolved for `holdMs` are dropped (drop_neigh_timeout). Counters go to `ev` (the
 * worker's event row). Memory is `buf`, supplied by the owner (native memory, so copies allocate nothing).
 */
export class NeighQueue implements TxPort {
  /** Set by {@link hold} for the engine's hop; the queue's memory. */
  ifindex = 0;
  readonly txBuf: Uint8Array;
  readonly txFrameMax: number;
  private readonly ev: Float64Array;
  private readonly n: number;
  private readonly q: number;
  private readonly slot: number;
  private readonly holdMs: number;
  // Per neighbour: state, ifindex, next hop, opened at (ms), first slot index (ring head), count.
  private readonly state: Uint8Array;
  private readonly ifx: Int32Array;
  private readonly hop: Uint32Array;
  private readonly since: Float64Array;
  private readonly head: Int32Array;
  private readonly count: Int32Array;
  // Per slot (neighbour i, position k → i*q+k): frame length and checksum-offload fields.
  private readonly len: Int32Array;
  private readonly vnet: Int32Array;
  private readonly cstart: Int32Array;
  private readonly coff: Int32Array;
  /** Neighbour of the reservation in progress (between hold/txReserve and txCommit), -1 otherwise. */
  private cur = -1;
  private curSlot = -1;
  private pendingCount = 0;

  /** `buf` must hold neighbours × perNeighbour × slotBytes bytes; `ev` is the worker's event counter row. */
  constructor(buf: Uint8Array, ev: Float64Array, o: NeighQueueOptions = {}) {
    this.n = o.neighbours ?? 64;
    this.q = o.perNeighbour ?? 32;
    this.slot = o.slotBytes ?? 2048;
    this.holdMs = o.holdMs ?? 3000;
    if (buf.length < this.n * this.q * this.slot) throw new RangeError(`neigh-queue: buffer of ${buf.length} bytes, need ${this.n * this.q * this.slot}`);
    this.txBuf = buf;
    this.txFrameMax = this.slot;
    this.ev = ev;
    this.state = new Uint8Array(this.n);
    this.ifx = new Int32Array(this.n);
    this.hop = new Uint32Array(this.n);
    this.since = new Float64Array(this.n);
    this.head = new Int32Array(this.n);
    this.count = new Int32Array(this.n);
    const slots = this.n * this.q;
    this.len = new Int32Array(slots);
    this.vnet = new Int32Array(slots);
    this.cstart = new Int32Array(slots);
    this.coff = new Int32Array(slots);
  }

  /** Bytes of memory a queue with these options needs. */
  static bytes(o: NeighQueueOptions = {}): number {
    return (o.neighbours ?? 64) * (o.perNeighbour ?? 32) * (o.slotBytes ?? 2048);
  }

  /** Neighbours with packets waiting. */
  get pending(): number {
    return this.pendingCount;
  }

  /** Packets waiting for neighbour (`ifindex`, `nexthop`), 0 when it has no queue. */
  waiting(ifindex: number, nexthop: number): number {
    const i = this.find(ifindex, nexthop >>> 0);
    return i < 0 ? 0 : this.count[i];
  }

  /**
   * Opens (or finds) the queue of next hop `nexthop` on `ifindex` and makes this object the TxPort for one frame
   * (the next txReserve/txCommit). Returns false when every neighbour queue is in use by others (the caller then
   * drops the packet as it did without a queue). `nowMs`: the clock, for the timeout.
   */
  hold(ifindex: number, nexthop: number, nowMs: number): boolean {
    let i = this.find(ifindex, nexthop >>> 0);
    if (i < 0) {
      for (let k = 0; k < this.n; k++) {
        if (this.state[k] === FREE) {
          i = k;
          break;
        }
      }
      if (i < 0) return false;
      this.state[i] = PENDING;
      this.ifx[i] = ifindex;
      this.hop[i] = nexthop >>> 0;
      this.since[i] = nowMs;
      this.head[i] = 0;
      this.count[i] = 0;
      this.pendingCount++;
    }
    this.cur = i;
    this.ifindex = ifindex;
    return true;
  }

  /** TxPort: a slot in the current neighbour's queue; when it is full, its oldest packet is dropped to make room. */
  txReserve(): number {
    const i = this.cur;
    if (i < 0) return -1;
    const q = this.q;
    if (this.count[i] === q) {
      this.head[i] = (this.head[i] + 1) % q;
      this.count[i]--;
      this.ev[Ev.drop_neigh_queue_full]++;
    }
    const k = i * q + ((this.head[i] + this.count[i]) % q);
    this.curSlot = k;
    return k * this.slot;
  }

  /** TxPort: the frame written at the reserved slot is held (its destination MAC is filled on release). */
  txCommit(len: number, vnetFlags: number, csumStart: number, csumOffset: number): void {
    const i = this.cur;
    const k = this.curSlot;
    if (i < 0 || k < 0) return;
    this.len[k] = len;
    this.vnet[k] = vnetFlags;
    this.cstart[k] = csumStart;
    this.coff[k] = csumOffset;
    this.count[i]++;
    this.cur = -1;
    this.curSlot = -1;
    this.ev[Ev.neigh_held]++;
  }

  /**
   * The neighbour (`ifindex`, `nexthop`) resolved to `mac`: its packets are copied, in order, into `to`'s port for
   * that interface with the MAC set, and sent. Returns the packets released. `copy(dst, dOff, src, sOff, len)`
   * copies bytes (the owner's zero-allocation copy between native buffers).
   */
  resolved(ifindex: number, nexthop: number, mac: Uint8Array, to: ReleaseTarget, copy: (d: Uint8Array, dOff: number, s: Uint8Array, sOff: number, n: number) => void): number {
    const i = this.find(ifindex, nexthop >>> 0);
    if (i < 0) return 0;
    const port = to.port(ifindex);
    const q = this.q;
    let sent = 0;
    for (let c = 0; c < this.count[i]; c++) {
      const k = i * q + ((this.head[i] + c) % q);
      const len = this.len[k];
      if (port === undefined || len > port.txFrameMax) {
        this.ev[Ev.tx_errors]++;
        continue;
      }
      let at = port.txReserve();
      if (at < 0) {
        port.flush();
        at = port.txReserve();
      }
      if (at < 0) {
        this.ev[Ev.tx_errors]++;
        continue;
      }
      copy(port.txBuf, at, this.txBuf, k * this.slot, len);
      for (let b = 0; b < 6; b++) port.txBuf[at + b] = mac[b];
      port.txCommit(len, this.vnet[k], this.cstart[k], this.coff[k]);
      sent++;
    }
    if (sent > 0) {
      port?.flush();
      this.ev[Ev.tx_frames] += sent;
      this.ev[Ev.neigh_released] += sent;
    }
    this.free(i);
    return sent;
  }

  /**
   * Drops the packets of neighbours unresolved for longer than `holdMs` (counted drop_neigh_timeout) and frees
   * their queues. `stillUnresolved(ifindex, nexthop)` may return a MAC found meanwhile (an answer whose event was
   * missed), which releases the queue instead. Returns the packets dropped.
   */
  expire(nowMs: number, lookup: (ifindex: number, nexthop: number) => Uint8Array | null, to: ReleaseTarget, copy: (d: Uint8Array, dOff: number, s: Uint8Array, sOff: number, n: number) => void): number {
    let dropped = 0;
    for (let i = 0; i < this.n; i++) {
      if (this.state[i] !== PENDING) continue;
      const mac = lookup(this.ifx[i], this.hop[i]);
      if (mac !== null) {
        this.resolved(this.ifx[i], this.hop[i], mac, to, copy);
        continue;
      }
      if (nowMs - this.since[i] < this.holdMs) continue;
      dropped += this.count[i];
      this.ev[Ev.drop_neigh_timeout] += this.count[i];
      this.free(i);
    }
    return dropped;
  }

  /** Pending neighbours as (ifindex, next hop) pairs, for probing again. */
  forEachPending(f: (ifindex: number, nexthop: number) => void): void {
    for (let i = 0; i < this.n; i++) if (this.state[i] === PENDING) f(this.ifx[i], this.hop[i]);
  }

  private find(ifindex: number, nexthop: number): number {
    for (let i = 0; i < this.n; i++) if (this.state[i] === PENDING && this.hop[i] === nexthop && this.ifx[i] === ifindex) return i;
    return -1;
  }

  private free(i: number): void {
    this.state[i] = FREE;
    this.count[i] = 0;
    this.head[i] = 0;
    this.pendingCount--;
  }
}
