// The few libc calls the real-server agent needs, bound through koffi (socket, bind, recv, sendto, close); TUN devices are shared/sys/tun.ts.
import koffi from 'koffi';

/** libc functions as koffi binds them: return values are libc's (−1 on error, then see `errno()`). */
export interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Uint8Array, len: number): number;
  recv(fd: number, buf: Uint8Array, len: number, flags: number): number;
  sendto(fd: number, buf: Uint8Array, len: number, flags: number, addr: Uint8Array, alen: number): number;
  close(fd: number): number;
  errno(): number;
}

export const AF_INET = 2;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
export const SOCK_NONBLOCK = 0x800;
export const IPPROTO_IPIP = 4;
export const IPPROTO_RAW = 255;
export const EAGAIN = 11;

let cached: Libc | null = null;

/** Loads libc.so.6 once and binds the calls. Throws (at startup, not per packet) if koffi cannot load it. */
export function libc(): Libc {
  if (cached) return cached;
  const lib = koffi.load('libc.so.6');
  cached = {
    socket: lib.func('int socket(int, int, int)'),
    bind: lib.func('int bind(int, void *, uint32_t)'),
    recv: lib.func('long recv(int, void *, unsigned long, int)'),
    sendto: lib.func('long sendto(int, void *, unsigned long, int, void *, uint32_t)'),
    close: lib.func('int close(int)'),
    errno: () => koffi.errno(),
  };
  return cached;
}

/** A 16-byte `struct sockaddr_in` for `addr` (uint32) and `port`. */
export function sockaddrIn(addr: number, port: number): Uint8Array {
  const b = new Uint8Array(16);
  b[0] = AF_INET;
  b[2] = port >> 8;
  b[3] = port & 255;
  b[4] = addr >>> 24;
  b[5] = (addr >>> 16) & 255;
  b[6] = (addr >>> 8) & 255;
  b[7] = addr & 255;
  return b;
}

/** Registers `cb` on libuv readiness of `fd` (koffi's undocumented uv_poll wrapper, pinned koffi version). */
export function onReadable(fd: number, cb: () => void): { close(): void } {
  return koffi.node.poll(fd, { readable: true }, () => cb());
}
