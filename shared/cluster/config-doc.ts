// The cluster's table as one KV value (shared/proto/cluster.ts ConfigDoc), pure: table ↔ document, an edit replayed
// on the latest revision with the kernel's checks, and the table operations that bring a director's table to a revision.
import type { DaemonConfig, DestConfig, ServiceConfig, Timeouts } from '../model/ipvs.ts';
import { Defaults, destKeyString, serviceKeyString } from '../model/ipvs.ts';
import type { TableErrno, TableOp } from '../model/ops.ts';
import { isTableOp } from '../model/ops.ts';
import { IpvsTable, type CompiledTable } from '../model/table.ts';
import { CONFIG_DOC_VERSION, CONFIG_RECENT_EDITS, type ConfigDoc, type ConfigDocService } from '../proto/cluster.ts';

/** Who wrote a document and from which revision (everything but the table itself). */
export interface DocMeta {
  op?: TableOp;
  prev: number;
  by: string;
  edit: string;
  /** Ids of the edits before this one (ConfigDoc.recent). */
  recent?: string[];
}

const SVC_FIELDS = ['af', 'protocol', 'addr', 'port', 'fwmark', 'scheduler', 'flags', 'timeout', 'netmask', 'pe'] as const satisfies readonly (keyof ServiceConfig)[];
const DEST_FIELDS = ['af', 'addr', 'port', 'method', 'weight', 'uThreshold', 'lThreshold', 'tunType', 'tunPort', 'tunCsum'] as const satisfies readonly (keyof DestConfig)[];
const DAEMON_FIELDS = ['state', 'mcastIfn', 'syncid', 'maxlen', 'group', 'port', 'ttl'] as const satisfies readonly (keyof DaemonConfig)[];

function pick<T, K extends keyof T>(o: T, keys: readonly K[]): Pick<T, K> {
  const r = {} as Pick<T, K>;
  for (const k of keys) r[k] = o[k];
  return r;
}

function same<T>(a: T, b: T, keys: readonly (keyof T)[]): boolean {
  return keys.every((k) => a[k] === b[k]);
}

/** The configuration part of a table (no ids, counters, trash or overload flags) as a document. */
export function docOfTable(t: CompiledTable, meta: DocMeta): ConfigDoc {
  const doc: ConfigDoc = {
    v: CONFIG_DOC_VERSION,
    services: t.services.map((s) => ({ svc: pick(s.config, SVC_FIELDS), dests: s.dests.map((d) => pick(d.config, DEST_FIELDS)) })),
    timeouts: { tcp: t.timeouts.tcp, tcpfin: t.timeouts.tcpfin, udp: t.timeouts.udp },
    daemons: t.daemons.map((d) => pick(d, DAEMON_FIELDS)),
    prev: meta.prev,
    by: meta.by,
    edit: meta.edit,
  };
  if (meta.op) doc.op = meta.op;
  if (meta.recent && meta.recent.length) doc.recent = meta.recent;
  return doc;
}

/** True when a table holds no configuration at all (no service, default timeouts, no sync daemon). */
export function isEmptyTable(t: CompiledTable): boolean {
  return t.services.length === 0 && t.daemons.length === 0 && same(t.timeouts, Defaults.timeouts, ['tcp', 'tcpfin', 'udp']);
}

function addServiceOps(s: ConfigDocService, out: TableOp[]): void {
  out.push({ op: 'add-service', svc: { ...s.svc } });
  // Dests are newest first and each -a goes to the head: add them oldest first.
  for (let i = s.dests.length - 1; i >= 0; i--) out.push({ op: 'add-dest', key: keyOf(s.svc), dest: { ...s.dests[i] } });
}

function keyOf(s: ServiceConfig): { af: ServiceConfig['af']; protocol: ServiceConfig['protocol']; addr: string; port: number; fwmark: number } {
  return { af: s.af, protocol: s.protocol, addr: s.addr, port: s.port, fwmark: s.fwmark };
}

function timeoutsDiffer(a: Timeouts, b: Timeouts): boolean {
  return !same(a, b, ['tcp', 'tcpfin', 'udp']);
}

/** The operations that build the document's table on an empty table, in order. */
export function buildOps(doc: ConfigDoc): TableOp[] {
  const out: TableOp[] = [];
  for (const s of doc.services) addServiceOps(s, out);
  if (timeoutsDiffer(doc.timeouts, Defaults.timeouts)) out.push({ op: 'set-timeout', ...doc.timeouts });
  for (const d of doc.daemons) out.push({ op: 'start-daemon', daemon: { ...d } });
  return out;
}

/** A fresh table holding the document, or why the document is not a valid table (the first refused operation). */
export function tableOfDoc(doc: ConfigDoc): { ok: true; table: IpvsTable } | { ok: false; detail: string } {
  const table = new IpvsTable();
  for (const op of buildOps(doc)) {
    let r;
    try {
      r = table.apply(op);
    } catch (e) {
      return { ok: false, detail: `${op.op}: ${(e as Error).message}` };
    }
    if (!r.ok) return { ok: false, detail: `${op.op}: ${r.errno}: ${r.detail}` };
  }
  return { ok: true, table };
}

/**
 * Applies `op` to the table of `base` (null: the key is absent, an empty table) with the kernel's checks. Returns
 * the new document (meta from `meta`), or the errno the table gives on that revision. `zero` is refused: counters
 * are per director and never stored.
 */
export function editDoc(base: ConfigDoc | null, op: TableOp, meta: Omit<DocMeta, 'op'>): { ok: true; doc: ConfigDoc } | { ok: false; errno: TableErrno; detail: string } {
  if (op.op === 'zero') return { ok: false, errno: 'EINVAL', detail: 'zero is not a configuration change (counters are per director)' };
  let table: IpvsTable;
  if (base === null) table = new IpvsTable();
  else {
    const b = tableOfDoc(base);
    if (!b.ok) return { ok: false, errno: 'EINVAL', detail: `the stored cluster table is not valid: ${b.detail}` };
    table = b.table;
  }
  const r = table.apply(op);
  if (!r.ok) return r;
  return { ok: true, doc: docOfTable(table.compiled(), { ...meta, op, recent: base ? recentAfter(base) : undefined }) };
}

/** The `recent` list of the revision written on top of `base`: its own list and its edit, the last CONFIG_RECENT_EDITS. */
function recentAfter(base: ConfigDoc): string[] {
  return [...(base.recent ?? []), ...(base.edit ? [base.edit] : [])].slice(-CONFIG_RECENT_EDITS);
}

/** True when `doc` is the revision edit `id` made, or one written after it (its id is in `recent`). */
export function docIncludesEdit(doc: ConfigDoc, id: string): boolean {
  return doc.edit === id || (doc.recent !== undefined && doc.recent.includes(id));
}

/** True when the table's configuration is exactly the document's (order of services and dests included). */
export function sameConfig(t: CompiledTable, doc: ConfigDoc): boolean {
  if (t.services.length !== doc.services.length || t.daemons.length !== doc.daemons.length) return false;
  if (timeoutsDiffer(t.timeouts, doc.timeouts)) return false;
  for (let i = 0; i < t.services.length; i++) {
    const a = t.services[i];
    const b = doc.services[i];
    if (!same<ServiceConfig>(a.config, b.svc, SVC_FIELDS) || a.dests.length !== b.dests.length) return false;
    for (let j = 0; j < a.dests.length; j++) if (!same<DestConfig>(a.dests[j].config, b.dests[j], DEST_FIELDS)) return false;
  }
  return t.daemons.every((d, i) => same<DaemonConfig>(d, doc.daemons[i], DAEMON_FIELDS));
}

/**
 * The operations that turn table `t` into the document's table, touching only what differs, so unchanged services
 * and real servers keep their ids (and counters, and the connections bound to them). Order is the kernel's: a new
 * service goes to the end and a new real server to the head of its list, so a service kept must sit in the same
 * place among the kept ones (else it is deleted and added again), and the real servers kept must be the oldest
 * ones of the document's list, in its order (the others are deleted and added again: a re-added real server comes
 * back from the trash with its id). Sync daemons are stopped first and started last.
 */
export function syncOps(t: CompiledTable, doc: ConfigDoc): TableOp[] {
  const out: TableOp[] = [];
  const want = new Map(doc.daemons.map((d) => [d.state, d]));
  for (const d of t.daemons) {
    const w = want.get(d.state);
    if (!w || !same<DaemonConfig>(d, w, DAEMON_FIELDS)) out.push({ op: 'stop-daemon', state: d.state });
  }
  const wantSvc = doc.services.map((s) => serviceKeyString(s.svc));
  const wantSet = new Set(wantSvc);
  const kept = t.services.filter((s) => wantSet.has(s.key));
  let k = 0;
  while (k < kept.length && k < wantSvc.length && kept[k].key === wantSvc[k]) k++;
  const keep = new Set(kept.slice(0, k).map((s) => s.key));
  for (const s of t.services) if (!keep.has(s.key)) out.push({ op: 'del-service', key: keyOf(s.config as ServiceConfig) });
  for (let i = 0; i < k; i++) {
    const cur = kept[i];
    const w = doc.services[i];
    if (!same<ServiceConfig>(cur.config, w.svc, SVC_FIELDS)) out.push({ op: 'edit-service', svc: { ...w.svc } });
    destOps(cur.dests.map((d) => d.config), w, out);
  }
  for (let i = k; i < doc.services.length; i++) addServiceOps(doc.services[i], out);
  if (timeoutsDiffer(t.timeouts, doc.timeouts)) out.push({ op: 'set-timeout', ...doc.timeouts });
  const have = new Map(t.daemons.map((d) => [d.state, d]));
  for (const d of doc.daemons) {
    const h = have.get(d.state);
    if (!h || !same<DaemonConfig>(h, d, DAEMON_FIELDS)) out.push({ op: 'start-daemon', daemon: { ...d } });
  }
  return out;
}

function destOps(cur: readonly Readonly<DestConfig>[], w: ConfigDocService, out: TableOp[]): void {
  const key = keyOf(w.svc);
  const wantKeys = w.dests.map((d) => destKeyString(d));
  const wantSet = new Set(wantKeys);
  const kept = cur.filter((d) => wantSet.has(destKeyString(d)));
  // The longest common tail of the kept list and the wanted list stays; everything before it is re-added.
  let t = 0;
  while (t < kept.length && t < wantKeys.length && destKeyString(kept[kept.length - 1 - t]) === wantKeys[wantKeys.length - 1 - t]) t++;
  const stay = new Set(wantKeys.slice(wantKeys.length - t));
  for (const d of cur) if (!stay.has(destKeyString(d))) out.push({ op: 'del-dest', key, dest: { af: d.af, addr: d.addr, port: d.port } });
  for (let i = wantKeys.length - t; i < wantKeys.length; i++) {
    const c = kept[kept.length - (wantKeys.length - i)];
    if (!same<DestConfig>(c, w.dests[i], DEST_FIELDS)) out.push({ op: 'edit-dest', key, dest: { ...w.dests[i] } });
  }
  for (let i = wantKeys.length - t - 1; i >= 0; i--) out.push({ op: 'add-dest', key, dest: { ...w.dests[i] } });
}

/** JSON of a document (the KV value). */
export function encodeDoc(doc: ConfigDoc): string {
  return JSON.stringify(doc);
}

/**
 * Reads a KV value: JSON of the right version and shape whose table the kernel's checks accept. Never throws; a bad
 * value (another version, garbage written by hand) is refused with the reason.
 */
export function parseDoc(text: string): { ok: true; doc: ConfigDoc } | { ok: false; detail: string } {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch (e) {
    return { ok: false, detail: `not JSON: ${(e as Error).message}` };
  }
  if (o === null || typeof o !== 'object' || Array.isArray(o)) return { ok: false, detail: 'not an object' };
  const d = o as Record<string, unknown>;
  if (d.v !== CONFIG_DOC_VERSION) return { ok: false, detail: `schema version ${JSON.stringify(d.v)}, this director reads ${CONFIG_DOC_VERSION}` };
  const problems: string[] = [];
  if (!Array.isArray(d.services)) problems.push('services: not a list');
  else {
    d.services.forEach((s: unknown, i) => {
      if (s === null || typeof s !== 'object') return problems.push(`services[${i}]: not an object`);
      const so = s as Record<string, unknown>;
      if (!isObject(so.svc)) problems.push(`services[${i}].svc: not an object`);
      else fieldTypes(so.svc, SVC_TYPES, `services[${i}].svc`, problems);
      if (!Array.isArray(so.dests)) problems.push(`services[${i}].dests: not a list`);
      else so.dests.forEach((x: unknown, j) => (isObject(x) ? fieldTypes(x, DEST_TYPES, `services[${i}].dests[${j}]`, problems) : problems.push(`services[${i}].dests[${j}]: not an object`)));
      return undefined;
    });
  }
  if (!isObject(d.timeouts)) problems.push('timeouts: not an object');
  else fieldTypes(d.timeouts, { tcp: 'number', tcpfin: 'number', udp: 'number' }, 'timeouts', problems);
  if (!Array.isArray(d.daemons)) problems.push('daemons: not a list');
  else d.daemons.forEach((x: unknown, j) => (isObject(x) ? fieldTypes(x, DAEMON_TYPES, `daemons[${j}]`, problems) : problems.push(`daemons[${j}]: not an object`)));
  if (typeof d.prev !== 'number' || typeof d.by !== 'string' || typeof d.edit !== 'string') problems.push('prev/by/edit: missing');
  if (d.op !== undefined && (!isObject(d.op) || !isTableOp(d.op as { op: string }))) problems.push('op: not a table operation');
  if (d.recent !== undefined && (!Array.isArray(d.recent) || !d.recent.every((x) => typeof x === 'string'))) problems.push('recent: not a list of edit ids');
  if (problems.length) return { ok: false, detail: problems.slice(0, 5).join('; ') };
  const doc = d as unknown as ConfigDoc;
  const b = tableOfDoc(doc);
  if (!b.ok) return { ok: false, detail: `refused by the table: ${b.detail}` };
  return { ok: true, doc };
}

type FieldType = 'number' | 'string';
const SVC_TYPES: Record<(typeof SVC_FIELDS)[number], FieldType> = {
  af: 'number', protocol: 'string', addr: 'string', port: 'number', fwmark: 'number', scheduler: 'string', flags: 'number', timeout: 'number', netmask: 'string', pe: 'string',
};
const DEST_TYPES: Record<(typeof DEST_FIELDS)[number], FieldType> = {
  af: 'number', addr: 'string', port: 'number', method: 'string', weight: 'number', uThreshold: 'number', lThreshold: 'number', tunType: 'string', tunPort: 'number', tunCsum: 'string',
};
const DAEMON_TYPES: Record<(typeof DAEMON_FIELDS)[number], FieldType> = {
  state: 'string', mcastIfn: 'string', syncid: 'number', maxlen: 'number', group: 'string', port: 'number', ttl: 'number',
};

function isObject(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}

function fieldTypes(o: Record<string, unknown>, types: Record<string, FieldType>, where: string, problems: string[]): void {
  for (const [k, t] of Object.entries(types)) {
    const v = o[k];
    if (typeof v !== t || (t === 'number' && !Number.isFinite(v))) problems.push(`${where}.${k}: want a ${t}, got ${JSON.stringify(v)}`);
  }
}
