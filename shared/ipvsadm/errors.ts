// Kernel (tsvsd) errno → the message ipvsadm prints for the failed call (libipvs ipvs_strerror), and exit codes.
import type { AdminErrno } from '../proto/admin.ts';

/** The libipvs call that failed; selects call-specific messages. */
export type IpvsCall =
  | 'add-service'
  | 'edit-service'
  | 'del-service'
  | 'zero'
  | 'add-dest'
  | 'edit-dest'
  | 'del-dest'
  | 'start-daemon'
  | 'stop-daemon'
  | 'get-services'
  | 'get-dests'
  | 'get-service'
  | 'flush'
  | 'set-timeout'
  | 'get-timeout'
  | 'get-daemon';

/** Errno names understood here: the admin API's plus two libipvs knows. */
export type IpvsErrno = AdminErrno | 'ENOPROTOOPT' | 'EMSGSIZE';

/** Exit status of a failed kernel operation (process_options returns -1). */
export const EXIT_KERNEL = 255;
/** Exit status of fail(): option validation and "Can't initialize ipvs". */
export const EXIT_FAIL = 2;
/** Exit status of a failed listing. */
export const EXIT_LIST = 1;

const SPECIFIC: ReadonlyArray<[IpvsCall, IpvsErrno, string]> = [
  ['add-service', 'EEXIST', 'Service already exists'],
  ['add-service', 'ENOENT', 'Scheduler or persistence engine not found'],
  ['edit-service', 'ESRCH', 'No such service'],
  ['edit-service', 'ENOENT', 'Scheduler or persistence engine not found'],
  ['del-service', 'ESRCH', 'No such service'],
  ['zero', 'ESRCH', 'No such service'],
  ['add-dest', 'ESRCH', 'Service not defined'],
  ['add-dest', 'EEXIST', 'Destination already exists'],
  ['edit-dest', 'ESRCH', 'Service not defined'],
  ['edit-dest', 'ENOENT', 'No such destination'],
  ['del-dest', 'ESRCH', 'Service not defined'],
  ['del-dest', 'ENOENT', 'No such destination'],
  ['start-daemon', 'EEXIST', 'Daemon has already run'],
  ['stop-daemon', 'ESRCH', 'No daemon is running'],
  ['get-services', 'ESRCH', 'No such service'],
  ['get-dests', 'ESRCH', 'No such service'],
  ['get-service', 'ESRCH', 'No such service'],
];

const GENERIC: Readonly<Partial<Record<IpvsErrno, string>>> = {
  EPERM: 'Permission denied (you must be root)',
  EINVAL: 'Invalid operation.  Possibly wrong module version, address not unicast, ...',
  ENOPROTOOPT: 'Protocol not available',
  ENOMEM: 'Memory allocation problem',
  EOPNOTSUPP: 'Operation not supported with IPv6',
  EAFNOSUPPORT: 'Operation not supported with specified address family',
  EMSGSIZE: 'Module is wrong version',
};

/** glibc strerror texts for the errnos that have no libipvs message. */
const STRERROR: Readonly<Record<IpvsErrno, string>> = {
  EEXIST: 'File exists',
  ESRCH: 'No such process',
  ENOENT: 'No such file or directory',
  ERANGE: 'Numerical result out of range',
  EINVAL: 'Invalid argument',
  EPERM: 'Operation not permitted',
  ENOMEM: 'Cannot allocate memory',
  EOPNOTSUPP: 'Operation not supported',
  EAFNOSUPPORT: 'Address family not supported by protocol',
  EPROTO: 'Protocol error',
  ENOPROTOOPT: 'Protocol not available',
  EMSGSIZE: 'Message too long',
  EAGAIN: 'Resource temporarily unavailable',
};

/** ipvs_strerror: the message ipvsadm prints when `call` failed with `errno` (call-specific first, then generic, then strerror). */
export function ipvsStrerror(call: IpvsCall, errno: IpvsErrno): string {
  const hit = SPECIFIC.find(([c, e]) => c === call && e === errno);
  if (hit) return hit[2];
  return GENERIC[errno] ?? STRERROR[errno] ?? errno;
}

/**
 * The two-line message (without the final newline) ipvsadm prints, exit 2, when IPVS cannot be initialised, for the
 * errno of the failed ipvs_init: ENOPROTOOPT without ip_vs, EPERM ("you must be root") for a non-root caller.
 */
export function initFailure(errno: IpvsErrno): string {
  return `Can't initialize ipvs: ${GENERIC[errno] ?? STRERROR[errno] ?? errno}\nAre you sure that IP Virtual Server is built in the kernel or as module?`;
}

/** {@link initFailure} without ip_vs: "Protocol not available". */
export const INIT_FAILURE = initFailure('ENOPROTOOPT');
