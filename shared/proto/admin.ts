// The admin API between tsvsadm (or any client) and tsvsd: newline-delimited JSON over a unix stream socket.
import type { ConnSnapshot, TableSnapshot } from '../model/ipvs.ts';
import type { TableErrno, TableOp } from '../model/ops.ts';
import type { ClusterStatus } from './cluster.ts';
import type { DataplaneStatus, StatsView } from './stats.ts';
import type { VirtualServerStatus } from '../health/machine.ts';

export type { DataplaneStatus, StatsView, WorkerStatus } from './stats.ts';

/** Protocol version carried in every request; tsvsd rejects others with EPROTO. */
export const ADMIN_PROTO_VERSION = 1;

/**
 * Errno names an admin request can fail with: the table's (shared/model/ops.ts) plus the transport's and the
 * daemon's own (EPROTO: a malformed or wrong-version request; EOPNOTSUPP: not available in this daemon; EAGAIN: a child
 * that must answer, the cluster agent, is not running or did not answer in time).
 */
export type AdminErrno = TableErrno | 'EPERM' | 'ENOMEM' | 'EOPNOTSUPP' | 'EAFNOSUPPORT' | 'EPROTO' | 'EAGAIN';

/** A request: a table operation, or a read / tsvs-specific request. */
export type AdminRequest =
  | TableOp
  | { op: 'snapshot' }
  | { op: 'conns' }
  /** tsvs's own: the data plane's state (workers, drops by reason); not an ipvsadm operation. */
  | { op: 'dataplane' }
  /** tsvs's own: the stats read model (table with counters and rates, data plane status) at one moment. */
  | { op: 'stats' }
  /** tsvs's own: replace the mark rules of fwmark services (iptables MARK syntax; docs/fwmark.md). */
  | { op: 'set-marks'; text: string }
  /** tsvs's own: the mark rules in force, as text. */
  | { op: 'get-marks' }
  /** tsvs's own: every real server's health (checkers, state, consecutive results, last error and change). */
  | { op: 'health' }
  /** tsvs's own: the cluster agent's status (`tsvsadm cluster`); EOPNOTSUPP when the director runs alone. */
  | { op: 'cluster' };

/** A request on the wire: version, a client-chosen id echoed in the reply, and the operation. */
export type AdminEnvelope = { v: number; id: number } & AdminRequest;

export type AdminReply =
  | { id: number; ok: true; snapshot?: TableSnapshot; conns?: ConnSnapshot[]; dataplane?: DataplaneStatus; stats?: StatsView; marks?: string; cluster?: ClusterStatus; health?: VirtualServerStatus[] }
  | { id: number; ok: false; errno: AdminErrno; detail?: string };

/**
 * Where tsvsd listens by default. Directors in different network namespaces share one filesystem, so the
 * path is keyed on the network namespace's inode: every namespace gets its own daemon and socket.
 * TSVS_ADMIN_SOCKET overrides it.
 */
export function defaultAdminSocketPath(netnsInode: number | bigint, runDir = '/run/tsvs'): string {
  return `${runDir}/ns-${String(netnsInode)}/tsvsd.sock`;
}
