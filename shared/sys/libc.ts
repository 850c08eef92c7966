// The one libc binding of the project (koffi): sockets, mmap, batch send/receive, files, affinity, ioctl.
// Every call that can fail has a checked wrapper that throws a SysError naming the operation and errno.
import koffi from 'koffi';
import { SysError } from './errors.ts';

export { SysError } from './errors.ts';

/** A pointer into native memory, as koffi 3 represents it (the raw address). */
export type Ptr = bigint;

const lib = koffi.load('libc.so.6');

/** Raw libc functions. They return -1 / MAP_FAILED and leave errno set; prefer the checked wrappers below. */
export const raw = {
  socket: lib.func('int socket(int domain, int type, int protocol)') as (d: number, t: number, p: number) => number,
  bind: lib.func('int bind(int fd, const void *addr, uint32_t len)') as (fd: number, addr: Uint8Array, len: number) => number,
  setsockopt: lib.func('int setsockopt(int fd, int level, int name, const void *val, uint32_t len)') as (
    fd: number, level: number, name: number, val: Uint8Array, len: number) => number,
  getsockopt: lib.func('int getsockopt(int fd, int level, int name, void *val, void *len)') as (
    fd: number, level: number, name: number, val: Uint8Array, len: Uint32Array) => number,
  mmap: lib.func('void *mmap(void *addr, size_t len, int prot, int flags, int fd, long off)') as (
    addr: Ptr | null, len: number, prot: number, flags: number, fd: number, off: number) => Ptr,
  munmap: lib.func('int munmap(void *addr, size_t len)') as (addr: Ptr, len: number) => number,
  poll: lib.func('int poll(void *fds, unsigned long nfds, int timeout)') as (fds: Uint8Array, n: number, timeoutMs: number) => number,
  recvmmsg: lib.func('int recvmmsg(int fd, void *vec, unsigned int vlen, int flags, void *timeout)') as (
    fd: number, vec: Ptr, vlen: number, flags: number, timeout: Ptr | null) => number,
  sendmmsg: lib.func('int sendmmsg(int fd, void *vec, unsigned int vlen, int flags)') as (
    fd: number, vec: Ptr, vlen: number, flags: number) => number,
  sendto: lib.func('long sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t alen)') as (
    fd: number, buf: Uint8Array | Ptr, len: number, flags: number, addr: Uint8Array | null, alen: number) => number,
  send: lib.func('long send(int fd, const void *buf, size_t len, int flags)') as (
    fd: number, buf: Uint8Array | Ptr, len: number, flags: number) => number,
  recv: lib.func('long recv(int fd, void *buf, size_t len, int flags)') as (
    fd: number, buf: Uint8Array | Ptr, len: number, flags: number) => number,
  close: lib.func('int close(int fd)') as (fd: number) => number,
  open: lib.func('int open(const char *path, int flags, int mode)') as (path: string, flags: number, mode: number) => number,
  /** read(2)/write(2) from a numeric address: no JS object is created per call. */
  read: lib.func('long read(int fd, uintptr_t buf, size_t len)') as (fd: number, addr: number, len: number) => number,
  write: lib.func('long write(int fd, uintptr_t buf, size_t len)') as (fd: number, addr: number, len: number) => number,
  /** ioctl(2) with a pointer argument (struct ifreq and the like). */
  ioctlPtr: lib.func('int ioctl(int fd, unsigned long req, void *arg)') as (fd: number, req: number, arg: Uint8Array) => number,
  if_nametoindex: lib.func('unsigned int if_nametoindex(const char *name)') as (name: string) => number,
  sched_setaffinity: lib.func('int sched_setaffinity(int pid, size_t size, const void *mask)') as (
    pid: number, size: number, mask: Uint8Array) => number,
  sched_getaffinity: lib.func('int sched_getaffinity(int pid, size_t size, void *mask)') as (
    pid: number, size: number, mask: Uint8Array) => number,
  sched_getcpu: lib.func('int sched_getcpu(void)') as () => number,
  ioctl: lib.func('int ioctl(int fd, unsigned long req, ...)') as (fd: number, req: number, type: string, arg: Uint8Array) => number,
  memcpy: lib.func('uintptr_t memcpy(uintptr_t dst, uintptr_t src, size_t n)') as (dst: number, src: number, n: number) => unknown,
  strerror: lib.func('const char *strerror(int errnum)') as (e: number) => string,
} as const;

/** Constants from the Linux uapi headers (x86_64 values). */
export const C = {
  AF_NETLINK: 16, AF_PACKET: 17, AF_INET: 2,
  SOCK_STREAM: 1, SOCK_DGRAM: 2, SOCK_RAW: 3, SOCK_NONBLOCK: 0x800, SOCK_CLOEXEC: 0x80000,
  SOL_SOCKET: 1, SO_SNDBUF: 7, SO_RCVBUF: 8, SO_SNDBUFFORCE: 32, SO_RCVBUFFORCE: 33,
  SO_ATTACH_FILTER: 26, SO_DETACH_FILTER: 27,
  SOL_PACKET: 263, SOL_NETLINK: 270,
  NETLINK_NETFILTER: 12, NETLINK_NO_ENOBUFS: 5, NLMSG_ERROR: 2,
  POLLIN: 1,
  PACKET_RX_RING: 5, PACKET_STATISTICS: 6, PACKET_VERSION: 10, PACKET_VNET_HDR: 15, PACKET_FANOUT: 18,
  PACKET_QDISC_BYPASS: 20, PACKET_FANOUT_DATA: 22, PACKET_IGNORE_OUTGOING: 23,
  TPACKET_V2: 1, TPACKET_V3: 2,
  PACKET_FANOUT_CBPF: 6, PACKET_FANOUT_FLAG_IGNORE_OUTGOING: 0x4000,
  ETH_P_ALL: 0x0003, ETH_P_IP: 0x0800, ETH_P_ARP: 0x0806,
  PROT_READ: 1, PROT_WRITE: 2, MAP_SHARED: 0x01, MAP_PRIVATE: 0x02, MAP_ANONYMOUS: 0x20, MAP_POPULATE: 0x8000,
  MSG_DONTWAIT: 0x40, MSG_TRUNC: 0x20,
  EINTR: 4, EAGAIN: 11, ENOBUFS: 105,
  O_RDWR: 2, O_NONBLOCK: 0x800, O_CLOEXEC: 0x80000,
  IPPROTO_IPIP: 4, IPPROTO_RAW: 255,
  SIOCGIFHWADDR: 0x8927,
} as const;

/** MAP_FAILED, `(void *)-1`, as koffi returns it. */
export const MAP_FAILED: Ptr = 0xffffffffffffffffn;

/** The errno left by the last libc call on this thread. */
export function errno(): number {
  return koffi.errno();
}

/** Throws SysError(op) when `rc` is negative; returns rc otherwise. */
export function check(rc: number, op: string): number {
  if (rc < 0) throw new SysError(op, koffi.errno());
  return rc;
}

/** socket(2), checked. */
export function socket(domain: number, type: number, protocol: number, op = 'socket'): number {
  return check(raw.socket(domain, type, protocol), op);
}

/** bind(2) with a caller-built sockaddr, checked. */
export function bind(fd: number, addr: Uint8Array, op = 'bind'): void {
  check(raw.bind(fd, addr, addr.byteLength), op);
}

/** setsockopt(2) with an int value, checked. `what` names the option in the error. */
export function setsockoptInt(fd: number, level: number, name: number, value: number, what: string): void {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, value, true);
  check(raw.setsockopt(fd, level, name, b, 4), `setsockopt(${what})`);
}

/** setsockopt(2) with a byte buffer value, checked. */
export function setsockoptBuf(fd: number, level: number, name: number, value: Uint8Array, what: string): void {
  check(raw.setsockopt(fd, level, name, value, value.byteLength), `setsockopt(${what})`);
}

/** getsockopt(2) into `out`; returns the length the kernel wrote. */
export function getsockoptBuf(fd: number, level: number, name: number, out: Uint8Array, what: string): number {
  const len = new Uint32Array([out.byteLength]);
  check(raw.getsockopt(fd, level, name, out, len), `getsockopt(${what})`);
  return len[0];
}

/** mmap(2), checked against MAP_FAILED. */
export function mmap(len: number, prot: number, flags: number, fd: number, op = 'mmap'): Ptr {
  const p = raw.mmap(null, len, prot, flags, fd, 0);
  if (p === MAP_FAILED || p === 0n) throw new SysError(op, koffi.errno());
  return p;
}

/** munmap(2), checked. Any view over the region must not be touched afterwards. */
export function munmap(addr: Ptr, len: number): void {
  check(raw.munmap(addr, len), 'munmap');
}

/** Anonymous, zeroed, page-aligned native memory of `len` bytes (freed with munmap). */
export function allocNative(len: number, what: string): Ptr {
  return mmap(len, C.PROT_READ | C.PROT_WRITE, C.MAP_PRIVATE | C.MAP_ANONYMOUS | C.MAP_POPULATE, -1, `mmap(${what})`);
}

/** A native region seen from JS: its address and whole-buffer byte and 32-bit views. */
interface NativeView {
  addr: number;
  u8: Uint8Array;
  i32: Int32Array;
}
// Every ArrayBuffer handed out by view(), so copies between them need no allocation.
const natives = new WeakMap<ArrayBufferLike, NativeView>();

/** A zero-copy ArrayBuffer over native memory (mmap or allocNative). Valid until the memory is unmapped. */
export function view(addr: Ptr, len: number): ArrayBuffer {
  const ab = koffi.view(addr, len);
  natives.set(ab, { addr: Number(addr), u8: new Uint8Array(ab), i32: new Int32Array(ab, 0, len >> 2) });
  return ab;
}

/** True when `b` lies in memory made by `view()`, so {@link copyBytes} copies to or from it without allocating. */
export function isNativeView(b: Uint8Array): boolean {
  return natives.has(b.buffer);
}

/** Frames at least this long are copied by memcpy (one koffi call ≈ 70–120 ns); shorter ones by a JS word loop. */
const MEMCPY_MIN = 256;

/**
 * Copies `len` bytes from `src[srcOff..]` to `dst[dstOff..]` without allocating when both live in buffers
 * made by `view()`: short copies with the same alignment mod 4 run as a 32-bit JS loop (≈ 10–20 ns for 60
 * bytes), others as one memcpy with numeric addresses. Other buffers fall back to a typed-array copy.
 * Offsets are byte offsets within each view and must stay inside it (not checked here).
 */
export function copyBytes(dst: Uint8Array, dstOff: number, src: Uint8Array, srcOff: number, len: number): void {
  const d = natives.get(dst.buffer);
  const s = natives.get(src.buffer);
  if (d === undefined || s === undefined) {
    dst.set(src.subarray(srcOff, srcOff + len), dstOff);
    return;
  }
  let da = dst.byteOffset + dstOff;
  let sa = src.byteOffset + srcOff;
  if (len >= MEMCPY_MIN || ((da ^ sa) & 3) !== 0) {
    raw.memcpy(d.addr + da, s.addr + sa, len);
    return;
  }
  const du8 = d.u8;
  const su8 = s.u8;
  let n = len;
  while ((sa & 3) !== 0 && n > 0) {
    du8[da++] = su8[sa++];
    n--;
  }
  const di = d.i32;
  const si = s.i32;
  let w = da >> 2;
  let r = sa >> 2;
  const end = r + (n >> 2);
  while (r < end) di[w++] = si[r++];
  da = w << 2;
  sa = r << 2;
  n &= 3;
  while (n-- > 0) du8[da++] = su8[sa++];
}

/** close(2); errors are ignored (there is nothing a caller can do about them). */
export function close(fd: number): void {
  if (fd >= 0) raw.close(fd);
}

/** if_nametoindex(3), throwing SysError (ENODEV) when the interface does not exist. */
export function ifIndex(name: string): number {
  const i = raw.if_nametoindex(name);
  if (i === 0) throw new SysError(`if_nametoindex(${name})`, koffi.errno());
  return i;
}

/** Host-order 16-bit value to network order (the value to store little-endian so the bytes read big-endian). */
export function htons(v: number): number {
  return ((v & 0xff) << 8) | ((v >> 8) & 0xff);
}

/** The libuv poll integration of koffi (undocumented API, pinned by koffi 3.3.4). */
export const uvPoll = koffi.node.poll;
export type UvPollHandle = ReturnType<typeof koffi.node.poll>;

/** Runs `cb` from the event loop whenever `fd` is readable; `close()` stops it (does not close `fd`). */
export function onReadable(fd: number, cb: () => void): { close(): void } {
  return uvPoll(fd, { readable: true }, () => cb());
}

/** A 16-byte `struct sockaddr_in` for `addr` (host-order uint32) and `port`. */
export function sockaddrIn(addr: number, port: number): Uint8Array {
  const b = new Uint8Array(16);
  b[0] = C.AF_INET;
  b[2] = port >> 8;
  b[3] = port & 255;
  b[4] = addr >>> 24;
  b[5] = (addr >>> 16) & 255;
  b[6] = (addr >>> 8) & 255;
  b[7] = addr & 255;
  return b;
}

/** open(2), checked; `op` names the path in the error. */
export function open(path: string, flags: number, mode = 0o600): number {
  return check(raw.open(path, flags | C.O_CLOEXEC, mode), `open(${path})`);
}

// Native address of each ArrayBuffer seen, computed once (koffi.address allocates a BigInt). Backing stores of
// non-detached ArrayBuffers do not move (reading `.buffer` moves a small on-heap typed array off-heap first).
// The one-entry cache keeps the last buffer alive (normally a long-lived ring or packet buffer).
const bases = new WeakMap<ArrayBufferLike, number>();
let lastBuffer: ArrayBufferLike | null = null;
let lastBase = 0;

/**
 * Native address of `u8[0]` as a number, for the `uintptr_t` bindings (read, write, memcpy): a one-entry cache
 * in front of a WeakMap, so the steady state is two compares and no allocation.
 */
export function addressOf(u8: Uint8Array): number {
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
