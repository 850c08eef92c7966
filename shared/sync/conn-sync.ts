// Connection sync between a shard's table and the sync records: writing an entry as a record (the worker's
// outbound path and tsvsd's snapshot), and installing a peer's record into a table (the worker's inbound path).
// Pure and allocation-free on both paths: numbers in, numbers out, outcomes as codes.
import { ConnFlag, NO_DEST, type ConnTable } from '../conntab/conn-table.ts';
import { TCP_STATE_COUNT } from '../conntab/tcp-state.ts';
import { RECORD_TEMPLATE_FLAG, RecordOp, recordProblem } from './record.ts';

/** What {@link installRecord} did with a record. */
export const Install = {
  /** A new entry was created. */
  CREATED: 0,
  /** An existing entry took the record's state, dest or timeout. */
  UPDATED: 1,
  /** The entry was removed (CLOSE), or was already gone. */
  REMOVED: 2,
  /** The record is not well formed (recordProblem): dropped. */
  MALFORMED: 3,
  /** No service of this director matches the record's VIP, port or fwmark: dropped. */
  NO_SERVICE: 4,
  /** The service has no real server with the record's address and port: dropped. */
  NO_DEST: 5,
  /** The table is full: dropped. */
  TABLE_FULL: 6,
} as const;
export type InstallValue = (typeof Install)[keyof typeof Install];

/** Names of {@link Install} codes, by value (logs and counters). */
export const INSTALL_NAMES = ['created', 'updated', 'removed', 'malformed', 'no_service', 'no_dest', 'table_full'] as const;

/** A real server as the installer needs it. */
export interface SyncDest {
  id: number;
  addr: number;
  port: number;
  method: number;
}

/** A service as the installer needs it. */
export interface SyncService {
  id: number;
  /** Persistence netmask (host order); used to find the template that controls a synced connection. */
  netmask: number;
  persistMs: number;
  fwmark: number;
  vport: number;
  /** True for persistent services (`-p`). */
  persistent: boolean;
  dests: readonly SyncDest[];
}

/** How the installer finds this director's service of a record (the worker's current table). */
export interface SyncResolver {
  /** The service for (proto, vaddr, vport) or, when `fwmark` ≠ 0, the fwmark service. Undefined when none. */
  service(proto: number, vaddr: number, vport: number, fwmark: number): SyncService | undefined;
}

/**
 * Writes entry `e` of `ct` as a sync record at word `off` of `words`: `op`, the entry's protocol, state, flags
 * (LIVE cleared), `shard`, addresses and ports, the service's `fwmark`, the timeout of its current state
 * (`timeoutMs`) and what is left of it at `nowMs` (clamped to [0, timeoutMs]). No allocation.
 */
export function writeEntryRecord(words: Uint32Array, off: number, ct: ConnTable, e: number, op: number, shard: number, fwmark: number, timeoutMs: number, nowMs: number): void {
  let left = ct.expiresIn(e, nowMs);
  if (left < 0) left = 0;
  let timeout = timeoutMs >>> 0;
  if (left > timeout) timeout = left;
  words[off] = (op & 0xff) | ((ct.proto(e) & 0xff) << 8) | ((ct.state(e) & 0xff) << 16);
  words[off + 1] = ((ct.flags(e) & ~ConnFlag.LIVE) & 0xffff) | ((shard & 0xffff) << 16);
  words[off + 2] = ct.caddr(e) >>> 0;
  words[off + 3] = ct.vaddr(e) >>> 0;
  words[off + 4] = ct.daddr(e) >>> 0;
  words[off + 5] = (ct.cport(e) & 0xffff) | ((ct.vport(e) & 0xffff) << 16);
  words[off + 6] = ct.dport(e) & 0xffff;
  words[off + 7] = fwmark >>> 0;
  words[off + 8] = timeout;
  words[off + 9] = left >>> 0;
  words[off + 10] = 0;
  words[off + 11] = 0;
}

/** The position of the dest with `addr` and (when the service maps ports) `port`, or -1. */
function findDest(s: SyncService, addr: number, port: number, template: boolean): number {
  const ds = s.dests;
  for (let i = 0; i < ds.length; i++) {
    const d = ds[i];
    if (d.addr !== addr >>> 0) continue;
    // A connection's dport is the dest's port, or the client's vport when the dest has none (port 0); a
    // template of a port-0 or fwmark service records port 0.
    if (template ? port === 0 || d.port === port : d.port === port || d.port === 0) return i;
  }
  return -1;
}

/**
 * Installs the record at word `off` of `words` into `ct` (the shard that owns its client), at `nowMs`, for
 * this director's services as `resolver` knows them. NEW/UPDATE: the entry is created (flagged SYNC) or
 * updated — its state (TCP, counters moved as a transition would), its dest (re-created when the peer moved it)
 * and its expiry (now + the record's remaining time); a synced connection of a persistent service is linked to
 * its template when one is present. CLOSE removes the entry (a template still controlling connections stays
 * and expires by itself). Returns an {@link Install} code; never throws, never allocates.
 */
export function installRecord(ct: ConnTable, words: Uint32Array, off: number, resolver: SyncResolver, nowMs: number): InstallValue {
  if (recordProblem(words, off) !== null) return Install.MALFORMED;
  const w0 = words[off];
  const op = w0 & 0xff;
  const proto = (w0 >>> 8) & 0xff;
  const state = (w0 >>> 16) & 0xff;
  const flags = words[off + 1] & 0xffff;
  const caddr = words[off + 2];
  const vaddr = words[off + 3];
  const daddr = words[off + 4];
  const cport = words[off + 5] & 0xffff;
  const vport = words[off + 5] >>> 16;
  const dport = words[off + 6] & 0xffff;
  const fwmark = words[off + 7];
  const left = words[off + 9];
  const template = (flags & RECORD_TEMPLATE_FLAG) !== 0;
  if (template) return installTemplate(ct, op, proto, state, flags, caddr, vaddr, vport, daddr, dport, fwmark, left, resolver, nowMs);

  let e = ct.lookupIn(proto, caddr, cport, vaddr, vport);
  if (op === RecordOp.CLOSE) {
    if (e >= 0) ct.remove(e);
    return Install.REMOVED;
  }
  const s = resolver.service(proto, vaddr, vport, fwmark);
  if (s === undefined) return Install.NO_SERVICE;
  const pos = findDest(s, daddr, dport, false);
  if (pos < 0) return Install.NO_DEST;
  const d = s.dests[pos];
  let code: InstallValue = Install.UPDATED;
  if (e >= 0 && (ct.destId(e) !== d.id || ct.daddr(e) !== daddr >>> 0 || ct.dport(e) !== dport)) {
    ct.remove(e);
    e = -1;
  }
  if (e < 0) {
    // The peer's flags but for the counters' own bookkeeping (insert sets INACTIVE; setState moves it).
    const f = (flags & ~(ConnFlag.INACTIVE | ConnFlag.ONE_PACKET)) | ConnFlag.SYNC;
    e = ct.insert(proto, caddr, cport, vaddr, vport, daddr, dport, f, d.id, s.id, nowMs);
    if (e < 0) return Install.TABLE_FULL;
    code = Install.CREATED;
    if (s.persistent) {
      const fw = s.fwmark > 0;
      const t = ct.lookupTemplate(fw ? 0 : proto, (caddr & s.netmask) >>> 0, fw ? s.fwmark : vaddr, fw || s.vport === 0 || s.vport === 21 ? 0 : vport);
      if (t >= 0 && ct.destId(t) === d.id) ct.control(e, t);
    }
  }
  if (proto === 6 && state < TCP_STATE_COUNT && ct.state(e) !== state) ct.setState(e, state, nowMs);
  ct.rearm(e, nowMs, left);
  return code;
}

function installTemplate(ct: ConnTable, op: number, proto: number, _state: number, flags: number, caddr: number, vaddr: number, vport: number, daddr: number, dport: number,
  fwmark: number, left: number, resolver: SyncResolver, nowMs: number): InstallValue {
  let t = ct.lookupTemplate(proto, caddr, vaddr, vport);
  if (op === RecordOp.CLOSE) {
    if (t >= 0) ct.remove(t);
    return Install.REMOVED;
  }
  // A fwmark template carries the mark as its VIP; a port-0 template (port-0 or FTP service) has vport 0.
  const s = fwmark !== 0 ? resolver.service(0, 0, 0, fwmark) : (resolver.service(proto, vaddr, vport, 0) ?? (vport === 0 ? resolver.service(proto, vaddr, 21, 0) : undefined));
  if (s === undefined) return Install.NO_SERVICE;
  const pos = findDest(s, daddr, dport, true);
  if (pos < 0) return Install.NO_DEST;
  const d = s.dests[pos];
  if (t >= 0 && ct.destId(t) !== d.id) {
    // The peer re-scheduled the client: the old template no longer matches (it expires by itself).
    ct.invalidateTemplate(t);
    t = -1;
  }
  if (t >= 0) {
    ct.rearm(t, nowMs, left);
    return Install.UPDATED;
  }
  t = ct.insertTemplate(proto, caddr, vaddr, vport, daddr, dport, (flags & ConnFlag.FWD_MASK) | ConnFlag.SYNC, d.id, s.id, left, nowMs);
  return t < 0 ? Install.TABLE_FULL : Install.CREATED;
}

/** Whether entry `e` is bound to a dest (unbound entries are never synced). */
export function isBound(ct: ConnTable, e: number): boolean {
  return ct.destId(e) !== NO_DEST;
}
