// TUN devices through koffi: hand IP packets to the local kernel stack (local-node forwarding on the director,
// decapsulated packets on real servers) by writing them into an IFF_TUN|IFF_NO_PI device, without allocating.
import { SysError } from './errors.ts';
import { C, addressOf, errno, raw } from './libc.ts';
import { linkDelete, linkSetUp } from './rtnl.ts';
import { writeSysctl } from './sysctl.ts';

/** `ifr_flags` bits of TUNSETIFF (linux/if_tun.h). */
export const TunFlag = {
  /** Layer-3 device: each read/write is one IP packet. */
  TUN: 0x0001,
  /** No 4-byte packet-information prefix: writes start at the IP header (version nibble gives the protocol). */
  NO_PI: 0x1000,
  /** Several file descriptors (queues) may attach to one device; each write is injected on its own queue. */
  MULTI_QUEUE: 0x0100,
} as const;

/** Indices into {@link TunDevice.counters} (Float64Array; packets unless the name says bytes). */
export const TunCounter = {
  /** Packets the kernel accepted whole. */
  WRITES: 0,
  WRITE_BYTES: 1,
  /** write(2) failed or was short (errno in `lastWriteErrno`); the packet is lost. */
  WRITE_ERRORS: 2,
  /** Refused before the call: `off`/`len` outside the buffer, `len` 0 or above 65535, or the device closed. */
  WRITE_REJECTED: 3,
  READS: 4,
  READ_BYTES: 5,
  /** read(2) failed with something other than EAGAIN. */
  READ_ERRORS: 6,
} as const;
/** Number of entries in {@link TunDevice.counters}. */
export const TUN_COUNTERS = 7;

/** Longest packet a TUN write takes: the IPv4 total-length limit. */
export const TUN_MAX_PACKET = 65535;

const TUNSETIFF = 0x400454ca;
const IFNAMSIZ = 16;

/** Options of {@link openTun}. */
export interface TunOptions {
  /** Interface name, 1..15 bytes. An existing TUN device of that name is attached to, otherwise one is created. */
  name: string;
  /**
   * Open one queue of a multi-queue device (IFF_MULTI_QUEUE), so several processes (one per worker) can each
   * hold their own descriptor of the same device. Every opener of a device must agree on this flag.
   * Default false: a second opener of a single-queue device in use fails with EBUSY.
   */
  multiQueue?: boolean;
  /** Run {@link configureTunLocalDelivery} after opening (link up, rp_filter, accept_local). Default true. */
  configure?: boolean;
}

/**
 * One open queue of a TUN device (IFF_TUN|IFF_NO_PI, nonblocking). Not thread-safe; one per worker. The device
 * itself lives while any queue is open (it is not made persistent) and disappears with the last `close()`.
 */
export class TunDevice {
  readonly name: string;
  readonly multiQueue: boolean;
  /** Counters indexed by {@link TunCounter}; updated per call, safe to read at any time. */
  readonly counters = new Float64Array(TUN_COUNTERS);
  /** errno of the last failed write (0 for a short write), for the control process to report. */
  lastWriteErrno = 0;
  #fd: number;

  /** Wraps an attached queue descriptor; use {@link openTun} rather than calling this directly. */
  constructor(fd: number, name: string, multiQueue: boolean) {
    this.#fd = fd;
    this.name = name;
    this.multiQueue = multiQueue;
  }

  /** The queue's file descriptor, -1 once closed. */
  get fd(): number {
    return this.#fd;
  }

  /**
   * Writes one IP packet, `buf[off .. off+len)`, into the device: the kernel receives it as if it had arrived
   * on this interface (ip_rcv, then local delivery or forwarding). The packet must be complete: L4 checksums
   * finished (a CHECKSUM_PARTIAL frame from AF_PACKET needs `finishPartial` first), IPv4 header checksum
   * valid. Zero allocation: the address is computed from the buffer's cached native address. Returns true
   * when the kernel took the whole packet; false (counted, never throws) on rejection or error.
   */
  write(buf: Uint8Array, off: number, len: number): boolean {
    const k = this.counters;
    if (this.#fd < 0 || !(off >= 0) || !(len > 0) || len > TUN_MAX_PACKET || off + len > buf.length) {
      k[TunCounter.WRITE_REJECTED]++;
      return false;
    }
    const n = raw.write(this.#fd, addressOf(buf) + off, len);
    if (n !== len) {
      this.lastWriteErrno = n < 0 ? errno() : 0;
      k[TunCounter.WRITE_ERRORS]++;
      return false;
    }
    k[TunCounter.WRITES]++;
    k[TunCounter.WRITE_BYTES] += len;
    return true;
  }

  /**
   * Reads one packet the kernel routed out through the device into `buf[off ..]` (at most `buf.length - off`
   * bytes; a longer packet is truncated by the kernel). Returns its length, or -1 when none is queued or on
   * error (errors other than EAGAIN are counted). Zero allocation.
   */
  read(buf: Uint8Array, off = 0): number {
    const room = buf.length - off;
    if (this.#fd < 0 || !(off >= 0) || room <= 0) return -1;
    const n = raw.read(this.#fd, addressOf(buf) + off, room);
    if (n < 0) {
      if (errno() !== C.EAGAIN) this.counters[TunCounter.READ_ERRORS]++;
      return -1;
    }
    this.counters[TunCounter.READS]++;
    this.counters[TunCounter.READ_BYTES] += n;
    return n;
  }

  /** Closes this queue (idempotent). The device goes away when its last queue closes. */
  close(): void {
    if (this.#fd >= 0) {
      raw.close(this.#fd);
      this.#fd = -1;
    }
  }
}

/**
 * Opens (creating if needed) TUN device `o.name` in the caller's network namespace: open /dev/net/tun
 * nonblocking, TUNSETIFF with IFF_TUN|IFF_NO_PI (|IFF_MULTI_QUEUE), then unless `configure: false`
 * {@link configureTunLocalDelivery}. Throws SysError naming the step (bad name, no /dev/net/tun, EPERM without
 * CAP_NET_ADMIN, EBUSY when a single-queue device is already attached, EINVAL on a queue-mode mismatch).
 * Call at worker start, never per packet.
 */
export function openTun(o: TunOptions): TunDevice {
  const nameBytes = new TextEncoder().encode(o.name);
  if (nameBytes.length === 0 || nameBytes.length >= IFNAMSIZ || o.name.includes('/') || /\s/.test(o.name)) {
    throw new SysError(`openTun(${o.name})`, 'EINVAL', 'interface name must be 1..15 bytes without "/" or spaces');
  }
  const fd = raw.open('/dev/net/tun', C.O_RDWR | C.O_NONBLOCK | C.O_CLOEXEC, 0);
  if (fd < 0) throw new SysError('open(/dev/net/tun)', errno());
  const ifr = new Uint8Array(40); // struct ifreq: ifr_name[16], ifr_flags (short) at 16
  ifr.set(nameBytes, 0);
  const mq = o.multiQueue === true;
  const flags = TunFlag.TUN | TunFlag.NO_PI | (mq ? TunFlag.MULTI_QUEUE : 0);
  ifr[16] = flags & 0xff;
  ifr[17] = flags >> 8;
  if (raw.ioctlPtr(fd, TUNSETIFF, ifr) < 0) {
    const e = errno();
    raw.close(fd);
    throw new SysError(`ioctl(TUNSETIFF) ${o.name}${mq ? ' multi-queue' : ''}`, e);
  }
  const dev = new TunDevice(fd, o.name, mq);
  if (o.configure !== false) {
    try {
      configureTunLocalDelivery(o.name);
    } catch (e) {
      dev.close();
      throw e;
    }
  }
  return dev;
}

function sysctl(key: string, value: string, required: boolean): void {
  try {
    writeSysctl(key, value);
  } catch (e) {
    if (required) throw e;
  }
}

/**
 * Makes packets injected into TUN device `name` deliverable locally (idempotent; rtnetlink and /proc/sys):
 * link up; rp_filter 0 on the device and on `all` (the kernel applies the maximum of the two, and the source
 * of an injected packet is a client whose route points out of another interface); accept_local 1 on the device
 * (sources that are local addresses, e.g. a client on the director itself); IPv6 off on the device when
 * available (so the kernel queues no router solicitations nobody reads). Throws SysError naming the step.
 */
export function configureTunLocalDelivery(name: string): void {
  linkSetUp(name);
  sysctl(`net.ipv4.conf.${name}.rp_filter`, '0', true);
  sysctl('net.ipv4.conf.all.rp_filter', '0', true);
  sysctl(`net.ipv4.conf.${name}.accept_local`, '1', true);
  sysctl(`net.ipv6.conf.${name}.disable_ipv6`, '1', false);
}

/**
 * Deletes TUN device `name` (a persistent one, or to force the others' queues off). A missing device is fine.
 * Throws SysError otherwise. A non-persistent device also disappears on its own once every queue is closed.
 */
export function removeTun(name: string): void {
  linkDelete(name);
}
