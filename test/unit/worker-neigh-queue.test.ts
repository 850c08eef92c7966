// worker/neigh-queue: packets for a next hop being resolved are held per neighbour, bounded, and sent in order with
// the MAC filled when it resolves; overflow and timeout are dropped and counted by reason; others are unaffected.
import { describe, expect, it } from 'vitest';
import { Ev, WorkerEvent } from '../../shared/fwd/counters.ts';
import { NeighQueue } from '../../services/worker/neigh-queue.ts';
import type { TxPort } from '../../services/worker/io/port.ts';

/** A TX port that keeps what was sent. */
class Port implements TxPort {
  readonly txBuf = new Uint8Array(4 * 2048);
  readonly txFrameMax = 2048;
  readonly sent: { bytes: number[]; vnet: number[] }[] = [];
  private slot = -1;
  readonly ifindex: number;
  constructor(ifindex: number) {
    this.ifindex = ifindex;
  }
  txReserve(): number {
    this.slot = (this.slot + 1) % 4;
    return this.slot * 2048;
  }
  txCommit(len: number, vnetFlags: number, csumStart: number, csumOffset: number): void {
    const at = this.slot * 2048;
    this.sent.push({ bytes: [...this.txBuf.subarray(at, at + len)], vnet: [vnetFlags, csumStart, csumOffset] });
  }
  flush(): number {
    return 0;
  }
}

const copy = (d: Uint8Array, dOff: number, s: Uint8Array, sOff: number, n: number): void => d.set(s.subarray(sOff, sOff + n), dOff);
const MAC = new Uint8Array([2, 0, 0, 0, 1, 1]);
const RS1 = 0x0a010065;
const RS2 = 0x0a010066;

function setup(perNeighbour = 3, neighbours = 2) {
  const ev = new Float64Array(WorkerEvent.length);
  const o = { neighbours, perNeighbour, slotBytes: 64, holdMs: 3000 };
  const q = new NeighQueue(new Uint8Array(NeighQueue.bytes(o)), ev, o);
  const port = new Port(2);
  const to = { port: (i: number) => (i === 2 ? port : undefined) };
  /** What the engine does with a held packet: reserve, write a frame (dst MAC zero) tagged `tag`, commit. */
  const put = (nexthop: number, tag: number, now = 0): boolean => {
    if (!q.hold(2, nexthop, now)) return false;
    const at = q.txReserve();
    q.txBuf.set([0, 0, 0, 0, 0, 0, 9, 9, 9, 9, 9, 9, tag], at);
    q.txCommit(13, tag & 1, 34, 16);
    return true;
  };
  return { ev, q, port, to, put };
}

describe('worker/neigh-queue', () => {
  it('neigh-queue: held packets go out in order, with the resolved MAC and their checksum fields, when the neighbour resolves', () => {
    const { ev, q, port, to, put } = setup();
    put(RS1, 1);
    put(RS1, 2);
    expect([q.pending, q.waiting(2, RS1), port.sent.length]).toEqual([1, 2, 0]);
    expect(q.resolved(2, RS1, MAC, to, copy)).toBe(2);
    expect(port.sent.map((f) => f.bytes)).toEqual([
      [2, 0, 0, 0, 1, 1, 9, 9, 9, 9, 9, 9, 1],
      [2, 0, 0, 0, 1, 1, 9, 9, 9, 9, 9, 9, 2],
    ]);
    expect(port.sent.map((f) => f.vnet)).toEqual([[1, 34, 16], [0, 34, 16]]);
    expect([ev[Ev.neigh_held], ev[Ev.neigh_released], ev[Ev.tx_frames], q.pending]).toEqual([2, 2, 2, 0]);
    expect(q.resolved(2, RS1, MAC, to, copy)).toBe(0);
  });
  it('neigh-queue: a full queue drops its oldest packet (counted) and stays bounded', () => {
    const { ev, q, port, to, put } = setup(3);
    for (let t = 1; t <= 5; t++) put(RS1, t);
    expect(q.waiting(2, RS1)).toBe(3);
    expect(ev[Ev.drop_neigh_queue_full]).toBe(2);
    q.resolved(2, RS1, MAC, to, copy);
    expect(port.sent.map((f) => f.bytes[12])).toEqual([3, 4, 5]);
  });
  it('neigh-queue: a neighbour that never answers is dropped after holdMs (counted); another one is unaffected', () => {
    const { ev, q, port, to, put } = setup();
    put(RS1, 1, 0);
    put(RS1, 2, 100);
    put(RS2, 7, 2000);
    const none = (): Uint8Array | null => null;
    expect(q.expire(2999, none, to, copy)).toBe(0);
    expect(q.expire(3000, none, to, copy)).toBe(2);
    expect([ev[Ev.drop_neigh_timeout], q.waiting(2, RS1), q.waiting(2, RS2)]).toEqual([2, 0, 1]);
    q.resolved(2, RS2, MAC, to, copy);
    expect(port.sent.map((f) => f.bytes[12])).toEqual([7]);
  });
  it('neigh-queue: a MAC found by lookup without an event releases the queue at the next expire', () => {
    const { q, port, to, put } = setup();
    put(RS1, 4);
    expect(q.expire(10, (_i, ip) => (ip === RS1 ? MAC : null), to, copy)).toBe(0);
    expect(port.sent.map((f) => f.bytes.slice(0, 6))).toEqual([[2, 0, 0, 0, 1, 1]]);
    expect(q.pending).toBe(0);
  });
  it('neigh-queue: when every neighbour queue is taken, hold refuses (the engine falls back) until one frees', () => {
    const { q, to, put } = setup(3, 2);
    expect([put(RS1, 1), put(RS2, 2), put(0x0a010067, 3)]).toEqual([true, true, false]);
    q.resolved(2, RS1, MAC, to, copy);
    expect(put(0x0a010067, 3)).toBe(true);
  });
  it('neigh-queue: the memory it is given must fit its sizing', () => {
    expect(() => new NeighQueue(new Uint8Array(100), new Float64Array(64), { neighbours: 2, perNeighbour: 2, slotBytes: 64 })).toThrow(RangeError);
  });
});
