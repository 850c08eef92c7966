// The one error type of the platform layer: a failed system call (or a refused system-level request) with a
// stable errno name in `.code`, the operation in `.op`, and the numeric errno in `.errno`.

/** Linux x86_64 errno numbers the platform layer meets, by name, with the C library's text. */
const ERRNOS: Readonly<Record<number, readonly [string, string]>> = {
  1: ['EPERM', 'Operation not permitted'],
  2: ['ENOENT', 'No such file or directory'],
  3: ['ESRCH', 'No such process'],
  4: ['EINTR', 'Interrupted system call'],
  5: ['EIO', 'Input/output error'],
  6: ['ENXIO', 'No such device or address'],
  9: ['EBADF', 'Bad file descriptor'],
  11: ['EAGAIN', 'Resource temporarily unavailable'],
  12: ['ENOMEM', 'Cannot allocate memory'],
  13: ['EACCES', 'Permission denied'],
  14: ['EFAULT', 'Bad address'],
  16: ['EBUSY', 'Device or resource busy'],
  17: ['EEXIST', 'File exists'],
  19: ['ENODEV', 'No such device'],
  20: ['ENOTDIR', 'Not a directory'],
  21: ['EISDIR', 'Is a directory'],
  22: ['EINVAL', 'Invalid argument'],
  23: ['ENFILE', 'Too many open files in system'],
  24: ['EMFILE', 'Too many open files'],
  28: ['ENOSPC', 'No space left on device'],
  30: ['EROFS', 'Read-only file system'],
  32: ['EPIPE', 'Broken pipe'],
  34: ['ERANGE', 'Numerical result out of range'],
  38: ['ENOSYS', 'Function not implemented'],
  61: ['ENODATA', 'No data available'],
  90: ['EMSGSIZE', 'Message too long'],
  92: ['ENOPROTOOPT', 'Protocol not available'],
  93: ['EPROTONOSUPPORT', 'Protocol not supported'],
  95: ['EOPNOTSUPP', 'Operation not supported'],
  97: ['EAFNOSUPPORT', 'Address family not supported by protocol'],
  98: ['EADDRINUSE', 'Address already in use'],
  99: ['EADDRNOTAVAIL', 'Cannot assign requested address'],
  100: ['ENETDOWN', 'Network is down'],
  101: ['ENETUNREACH', 'Network is unreachable'],
  105: ['ENOBUFS', 'No buffer space available'],
  110: ['ETIMEDOUT', 'Connection timed out'],
  111: ['ECONNREFUSED', 'Connection refused'],
  113: ['EHOSTUNREACH', 'No route to host'],
};

const BY_NAME = new Map<string, number>(Object.entries(ERRNOS).map(([n, [name]]) => [name, Number(n)]));

/** The errno name of `errno` ("EAGAIN"), or "E<number>" for one not in the table. */
export function errnoName(errno: number): string {
  return ERRNOS[errno]?.[0] ?? `E${errno}`;
}

/** The errno number of a name ("EPERM" → 1), or 0 when unknown. */
export function errnoOf(code: string): number {
  return BY_NAME.get(code) ?? 0;
}

/**
 * A failed system-level operation. `code` is stable and safe to branch on ("EAGAIN", "EPERM", "ENOENT", …);
 * `op` names what failed ("setsockopt(PACKET_RX_RING) on eth0", "sysctl net.ipv4.ip_forward");
 * `errno` is the number behind `code` (0 when the code has no number here).
 * Construct with an errno number (from libc) or a code name (from Node's fs errors, or a refused argument:
 * "EINVAL"); `detail` replaces the C library's text in the message.
 */
export class SysError extends Error {
  override name = 'SysError';
  readonly op: string;
  readonly code: string;
  readonly errno: number;
  constructor(op: string, errnoOrCode: number | string, detail?: string) {
    const errno = typeof errnoOrCode === 'number' ? errnoOrCode : errnoOf(errnoOrCode);
    const code = typeof errnoOrCode === 'number' ? errnoName(errnoOrCode) : errnoOrCode;
    const text = detail ?? ERRNOS[errno]?.[1] ?? 'failed';
    super(`${op}: ${text} (${code}${errno ? `, errno ${errno}` : ''})`);
    this.op = op;
    this.code = code;
    this.errno = errno;
  }
}

/**
 * Wraps an error thrown by Node (fs, child_process: `.code` like "ENOENT") as a SysError naming `op`;
 * a SysError passes through unchanged.
 */
export function toSysError(op: string, e: unknown): SysError {
  if (e instanceof SysError) return e;
  const err = e as { code?: unknown; message?: unknown };
  const code = typeof err?.code === 'string' && /^E[A-Z0-9]+$/.test(err.code) ? err.code : 'EIO';
  return new SysError(op, code, typeof err?.message === 'string' ? err.message : String(e));
}
