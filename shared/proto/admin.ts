// The admin API between tsvsadm (or any client) and tsvsd: newline-delimited JSON over a unix stream socket.
import type { ConnSnapshot, DaemonConfig, DestConfig, DestKey, ServiceConfig, ServiceKey, TableSnapshot } from '../model/ipvs.ts';

/** Protocol version carried in every request; tsvsd rejects others with EPROTO. */
export const ADMIN_PROTO_VERSION = 1;

/**
 * Errno names a table operation can fail with. They mirror the kernel's answers to ipvsadm's netlink
 * calls, so the client can print exactly the message ipvsadm prints (libipvs ipvs_strerror).
 */
export type AdminErrno =
  | 'EEXIST'
  | 'ESRCH'
  | 'ENOENT'
  | 'ERANGE'
  | 'EINVAL'
  | 'EPERM'
  | 'ENOMEM'
  | 'EOPNOTSUPP'
  | 'EAFNOSUPPORT'
  | 'EPROTO';

export type AdminRequest =
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
  | { op: 'stop-daemon'; state: 'master' | 'backup'; syncid?: number }
  | { op: 'snapshot' }
  | { op: 'conns' }
  /** tsvs's own: the data plane's state (workers, drops by reason); not an ipvsadm operation. */
  | { op: 'dataplane' }
  /** tsvs's own: replace the mark rules of fwmark services (iptables MARK syntax; docs/fwmark.md). */
  | { op: 'set-marks'; text: string }
  /** tsvs's own: the mark rules in force, as text. */
  | { op: 'get-marks' };

/** A request on the wire: version, a client-chosen id echoed in the reply, and the operation. */
export type AdminEnvelope = { v: number; id: number } & AdminRequest;

export type AdminReply =
  | { id: number; ok: true; snapshot?: TableSnapshot; conns?: ConnSnapshot[]; dataplane?: DataplaneStatus; marks?: string }
  | { id: number; ok: false; errno: AdminErrno; detail?: string };

/** One forwarding worker as tsvsd supervises it. */
export interface WorkerStatusInfo {
  index: number;
  cpu: number;
  pid: number;
  alive: boolean;
  restarts: number;
  appliedEpoch: number;
}

/** The data plane as `tsvsadm status` shows it. `forwarding` is false when tsvsd runs without --client-if. */
export interface DataplaneStatus {
  forwarding: boolean;
  epoch: number;
  workers: WorkerStatusInfo[];
  /** Event and drop counters summed over workers, by name (see shared/fwd/counters.ts WorkerEvent). */
  events: Record<string, number>;
  /** Per-worker orphan replies (replies that reached a worker whose shard does not hold their flow). */
  orphansByWorker: number[];
  /** Per-worker packets forwarded (both directions). */
  forwardedByWorker: number[];
}

/**
 * Where tsvsd listens by default. Directors in different network namespaces share one filesystem, so the
 * path is keyed on the network namespace's inode: every namespace gets its own daemon and socket.
 * TSVS_ADMIN_SOCKET overrides it.
 */
export function defaultAdminSocketPath(netnsInode: number | bigint, runDir = '/run/tsvs'): string {
  return `${runDir}/ns-${String(netnsInode)}/tsvsd.sock`;
}
