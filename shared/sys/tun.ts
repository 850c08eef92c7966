// TUN devices through koffi: hand IP packets to the local kernel stack (local-node forwarding on the director,
// decapsulated packets on real servers) by writing them into an IFF_TUN|IFF_NO_PI device, without allocating.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import koffi from 'koffi';

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
const O_RDWR = 2;
const O_NONBLOCK = 0x800;
const O_CLOEXEC = 0x80000;
const EAGAIN = 11;
const IFNAMSIZ = 16;

/** A failed TUN operation: `op` names it (e.g. "ioctl(TUNSETIFF) tsvs-ln0"), `errno` is 0 for non-syscall failures. */
export class TunError extends Error {
  override name = 'TunError';
  readonly op: string;
  readonly errno: number;
  constructor(op: string, errno: number, detail?: string) {
    super(`${op}: ${detail ?? (errno ? `${sys().strerror(errno)} (errno ${errno})` : 'failed')}`);
    this.op = op;
    this.errno = errno;
  }
}

interface Sys {
  open(path: string, flags: number): number;
  ioctl(fd: number, req: number, arg: Uint8Array): number;
  /** write(2) from a numeric address: no JS object is created per call. */
  write(fd: number, addr: number, len: number): number;
  read(fd: number, addr: number, len: number): number;
  close(fd: number): number;
  strerror(e: number): string;
}
let bound: Sys | undefined;

function sys(): Sys {
  if (!bound) {
    const lib = koffi.load('libc.so.6');
    bound = {
      open: lib.func('int open(const char *path, int flags)'),
      ioctl: lib.func('int ioctl(int fd, unsigned long req, void *arg)'),
      write: lib.func('long write(int fd, uintptr_t buf, size_t len)'),
      read: lib.func('long read(int fd, uintptr_t buf, size_t len)'),
      close: lib.func('int close(int fd)'),
      strerror: lib.func('const char *strerror(int errnum)'),
    };
  }
  return bound;
}

// Native address of each ArrayBuffer seen, computed once (koffi.address allocates a BigInt). Backing stores of
// non-detached ArrayBuffers do not move (reading `.buffer` moves a small on-heap typed array off-heap first);
// a detached buffer has length 0 and is rejected by the bounds check before its address is used. The one-entry
// cache keeps the last buffer alive (normally the worker's long-lived ring view).
const bases = new WeakMap<ArrayBufferLike, number>();
let lastBuffer: ArrayBufferLike | null = null;
let lastBase = 0;

/** Native address of `u8[0]`; one-entry cache in front of the WeakMap, so the steady state is two compares. */
function addressOf(u8: Uint8Array): number {
  const ab = u8.buffer;
  if (ab !== lastBuffer) {
    let b = bases.get(ab);
    if (b === undefined) {
      b = Number(koffi.address(ab));
      bases.set(ab, b);
    }
    lastBuffer = ab;
    lastBase = b;
  }
  return lastBase + u8.byteOffset;
}

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
  readonly #sys: Sys;

  /** Wraps an attached queue descriptor; use {@link openTun} rather than calling this directly. */
  constructor(fd: number, name: string, multiQueue: boolean) {
    this.#fd = fd;
    this.name = name;
    this.multiQueue = multiQueue;
    this.#sys = sys();
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
    const n = this.#sys.write(this.#fd, addressOf(buf) + off, len);
    if (n !== len) {
      this.lastWriteErrno = n < 0 ? koffi.errno() : 0;
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
    const n = this.#sys.read(this.#fd, addressOf(buf) + off, room);
    if (n < 0) {
      if (koffi.errno() !== EAGAIN) this.counters[TunCounter.READ_ERRORS]++;
      return -1;
    }
    this.counters[TunCounter.READS]++;
    this.counters[TunCounter.READ_BYTES] += n;
    return n;
  }

  /** Closes this queue (idempotent). The device goes away when its last queue closes. */
  close(): void {
    if (this.#fd >= 0) {
      this.#sys.close(this.#fd);
      this.#fd = -1;
    }
  }
}

/**
 * Opens (creating if needed) TUN device `o.name` in the caller's network namespace: open /dev/net/tun
 * nonblocking, TUNSETIFF with IFF_TUN|IFF_NO_PI (|IFF_MULTI_QUEUE), then unless `configure: false`
 * {@link configureTunLocalDelivery}. Throws TunError naming the step (bad name, no /dev/net/tun, EPERM without
 * CAP_NET_ADMIN, EBUSY when a single-queue device is already attached, EINVAL on a queue-mode mismatch).
 * Call at worker start, never per packet.
 */
export function openTun(o: TunOptions): TunDevice {
  const nameBytes = new TextEncoder().encode(o.name);
  if (nameBytes.length === 0 || nameBytes.length >= IFNAMSIZ || o.name.includes('/') || /\s/.test(o.name)) {
    throw new TunError(`openTun(${o.name})`, 0, 'interface name must be 1..15 bytes without "/" or spaces');
  }
  const s = sys();
  const fd = s.open('/dev/net/tun', O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) throw new TunError('open(/dev/net/tun)', koffi.errno());
  const ifr = new Uint8Array(40); // struct ifreq: ifr_name[16], ifr_flags (short) at 16
  ifr.set(nameBytes, 0);
  const mq = o.multiQueue === true;
  const flags = TunFlag.TUN | TunFlag.NO_PI | (mq ? TunFlag.MULTI_QUEUE : 0);
  ifr[16] = flags & 0xff;
  ifr[17] = flags >> 8;
  if (s.ioctl(fd, TUNSETIFF, ifr) < 0) {
    const e = koffi.errno();
    s.close(fd);
    throw new TunError(`ioctl(TUNSETIFF) ${o.name}${mq ? ' multi-queue' : ''}`, e);
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

function ipCmd(...args: string[]): string {
  try {
    return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new TunError(`ip ${args.join(' ')}`, 0, (err.stderr || err.message).trim());
  }
}

function sysctl(key: string, value: string, required: boolean): void {
  try {
    writeFileSync(`/proc/sys/${key.replaceAll('.', '/')}`, value);
  } catch (e) {
    if (required) throw new TunError(`sysctl ${key}=${value}`, 0, (e as Error).message);
  }
}

/**
 * Makes packets injected into TUN device `name` deliverable locally (idempotent; runs `ip`, writes /proc/sys):
 * link up; rp_filter 0 on the device and on `all` (the kernel applies the maximum of the two, and the source
 * of an injected packet is a client whose route points out of another interface); accept_local 1 on the device
 * (sources that are local addresses, e.g. a client on the director itself); IPv6 off on the device when
 * available (so the kernel queues no router solicitations nobody reads). Throws TunError naming the step.
 */
export function configureTunLocalDelivery(name: string): void {
  ipCmd('link', 'set', 'dev', name, 'up');
  sysctl(`net.ipv4.conf.${name}.rp_filter`, '0', true);
  sysctl('net.ipv4.conf.all.rp_filter', '0', true);
  sysctl(`net.ipv4.conf.${name}.accept_local`, '1', true);
  sysctl(`net.ipv6.conf.${name}.disable_ipv6`, '1', false);
}

/**
 * Deletes TUN device `name` (a persistent one, or to force the others' queues off). A missing device is fine.
 * Throws TunError with ip's message otherwise. A non-persistent device also disappears on its own once every
 * queue is closed.
 */
export function removeTun(name: string): void {
  try {
    ipCmd('link', 'del', 'dev', name);
  } catch (e) {
    if (!/Cannot find device|does not exist/i.test((e as Error).message)) throw e;
  }
}
