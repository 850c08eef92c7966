// The one packet-port interface of the worker: every backend (AF_PACKET, NFQUEUE) delivers packets to a
// PortHandler in batches and is polled, flushed and closed the same way; the engine sees an L2 port's transmit
// side (TxPort) or an L3 port's verdict side (VerdictPort).

/**
 * Receives packets in batches. `packet` is called once per packet: `buf[off .. off+len)` is an Ethernet frame (L2
 * ports) or an IPv4 packet (L3 ports), valid only during the call (ring or receive-slot memory, reused after the
 * batch). `flags` is the backend's flag set (RxFlag for AF_PACKET, NfqFlag for NFQUEUE); `id` is the NFQUEUE
 * packet id that must get exactly one verdict (0 on L2 ports). `batchEnd` runs once per batch, after which the port
 * sends what was queued (TX slots, verdicts). Neither may throw.
 */
export interface PortHandler {
  packet(buf: Uint8Array, off: number, len: number, flags: number, id: number): void;
  batchEnd?(): void;
}

/** What every backend implements. Nothing in rx, poll or flush allocates per packet. */
export interface Port {
  /** 'l2': the worker does routing, ARP and checksums itself (AF_PACKET); 'l3': the kernel does (NFQUEUE). */
  readonly layer: 'l2' | 'l3';
  /** For logs: the interface name, or "nfqueue N". */
  readonly name: string;
  /** The backend's counters (Counter for AF_PACKET, NfqCounter for NFQUEUE); safe to read at any time. */
  readonly counters: Float64Array;
  /** Starts delivering packets to `h` from the event loop. */
  rx(h: PortHandler): void;
  /** Stops delivery; packets stay queued in the kernel until `rx` again (or they overflow and are counted). */
  stopRx(): void;
  /** Delivers what is waiting now, without blocking (busy polling); returns packets delivered. */
  pollOnce(): number;
  /** Sends everything queued (TX slots or verdicts) in one call; returns how many. */
  flush(): number;
  /** Closes sockets and frees native memory; the port and its views must not be used afterwards. */
  close(): void;
}

/**
 * The transmit side of an L2 port, as the engine uses it: reserve a slot, write a frame at the returned offset of
 * `txBuf`, commit its length and checksum-offload fields (virtio-net header: flags, csum_start from the MAC header,
 * csum_offset from csum_start). Sent on the port's next flush.
 */
export interface TxPort {
  readonly ifindex: number;
  readonly txBuf: Uint8Array;
  /** Largest frame one slot holds, bytes. */
  readonly txFrameMax: number;
  /** The byte offset in `txBuf` of a free slot, or -1 when every slot is used until the next flush. */
  txReserve(): number;
  txCommit(len: number, vnetFlags: number, csumStart: number, csumOffset: number): void;
}

/** The verdict side of an L3 (NFQUEUE) port, as the engine uses it. Every packet id gets exactly one verdict. */
export interface VerdictPort {
  /** Native verdict memory: a packet reserved with `reserveModified` is written at the offset it returns. */
  readonly verdictBuf: Uint8Array;
  accept(id: number): void;
  drop(id: number): void;
  /** Accept with skb->mark set (DR: a policy route per real server). */
  acceptMark(id: number, mark: number): void;
  /** Accept with the packet replaced by `buf[off .. off+len)` (complete checksums); false (and DROP) when refused. */
  acceptModified(id: number, buf: Uint8Array, off: number, len: number): boolean;
  /** Reserves `len` bytes of `verdictBuf` for a grown packet; the offset, or -1 (and DROP). */
  reserveModified(id: number, len: number): number;
  /** Turns the reservation just made into a drop. */
  dropReserved(): boolean;
}

/** An L2 port: receives frames and transmits them itself. */
export interface L2Port extends Port, TxPort {
  readonly layer: 'l2';
}

/** An L3 port: receives queued packets and answers each with a verdict. */
export interface L3Port extends Port, VerdictPort {
  readonly layer: 'l3';
}
