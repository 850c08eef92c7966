// The IPVS table's operations and their errno answers: what the model accepts and refuses. The admin wire
// protocol (shared/proto/admin.ts) extends these with read requests and transport errors.
import type { DaemonConfig, DestConfig, DestKey, ServiceConfig, ServiceKey } from './ipvs.ts';

/**
 * Errno names a table operation can fail with. They mirror the kernel's answers to ipvsadm's netlink calls, so
 * a client can print exactly the message ipvsadm prints (libipvs ipvs_strerror).
 */
export type TableErrno = 'EEXIST' | 'ESRCH' | 'ENOENT' | 'ERANGE' | 'EINVAL';

/** One change to the table, as ipvsadm's commands make them (-A -E -D -C -a -e -d -Z --set --start/stop-daemon). */
export type TableOp =
  | { op: 'add-service'; svc: ServiceConfig }
  | { op: 'edit-service'; svc: ServiceConfig }
  | { op: 'del-service'; key: ServiceKey }
  | { op: 'flush' }
  | { op: 'add-dest'; key: ServiceKey; dest: DestConfig }
  | { op: 'edit-dest'; key: ServiceKey; dest: DestConfig }
  | { op: 'del-dest'; key: ServiceKey; dest: DestKey }
  | { op: 'zero'; key?: ServiceKey }
  | { op: 'set-timeout'; tcp: number; tcpfin: number; udp: number }
  | { op: 'start-daemon'; daemon: DaemonConfig }
  | { op: 'stop-daemon'; state: 'master' | 'backup'; syncid?: number };

/** The names of the table operations. */
export const TABLE_OPS: readonly TableOp['op'][] = [
  'add-service', 'edit-service', 'del-service', 'flush', 'add-dest', 'edit-dest', 'del-dest', 'zero', 'set-timeout', 'start-daemon', 'stop-daemon',
];

/** True when `op` names a table operation (a change), not a read or a tsvs-specific request. */
export function isTableOp<T extends { op: string }>(r: T): r is T & TableOp {
  return (TABLE_OPS as readonly string[]).includes(r.op);
}

/** The answer to one table operation. Failures carry the errno the kernel would return and a reason. */
export type TableResult = { ok: true } | { ok: false; errno: TableErrno; detail: string };
