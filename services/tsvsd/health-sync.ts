// tsvsd's health seam, pure part: the table operations that load a keepalived.conf's services, follow the health
// checker's view (HealthTable) and apply a reloaded file's service changes. keepalived works this way: its checker
// edits the IPVS table, so `tsvsadm -L -n` shows what is in force (a failed server gone or at weight 0, the sorry
// server when quorum is lost) and the forwarding table is compiled from it like any admin change.
import type { HealthTable } from '../../shared/health/table.ts';
import { keepalivedToIpvs } from '../../shared/keepalived/ipvs.ts';
import type { KeepalivedConfig } from '../../shared/keepalived/model.ts';
import type { DestConfig, ServiceConfig } from '../../shared/model/ipvs.ts';
import { destKeyString, serviceKeyString } from '../../shared/model/ipvs.ts';
import type { TableOp } from '../../shared/model/ops.ts';
import type { CompiledTable } from '../../shared/model/table.ts';

/** The services of a keepalived model, by {@link serviceKeyString}, in configuration order. */
export function keepalivedServices(cfg: KeepalivedConfig): Map<string, ServiceConfig> {
  return new Map(keepalivedToIpvs(cfg).map((s) => [serviceKeyString(s.svc), s.svc]));
}

/**
 * The operations that build keepalived's startup table: each service, then its startup dests (alive real servers at
 * their weight, inhibited dead ones at 0, the sorry server when quorum is not reached), as keepalived adds them.
 */
export function keepalivedStartOps(cfg: KeepalivedConfig): TableOp[] {
  const ops: TableOp[] = [];
  for (const s of keepalivedToIpvs(cfg)) {
    ops.push({ op: 'add-service', svc: s.svc });
    for (const d of s.dests) ops.push({ op: 'add-dest', key: s.svc, dest: d });
  }
  return ops;
}

function sameDest(a: Readonly<DestConfig>, b: Readonly<DestConfig>): boolean {
  return a.method === b.method && a.weight === b.weight && a.uThreshold === b.uThreshold && a.lThreshold === b.lThreshold && a.tunType === b.tunType && a.tunPort === b.tunPort && a.tunCsum === b.tunCsum;
}

/**
 * The dest operations that make each managed service of `table` hold exactly the dests health wants
 * (`health.dests`). Services health does not know yet, and services not in `managed`, are left alone. Dests are
 * edited in place (never removed and re-added), so a weight change keeps the dest's connections and counters.
 */
export function healthSyncOps(table: CompiledTable, managed: ReadonlySet<string>, health: HealthTable): TableOp[] {
  const ops: TableOp[] = [];
  for (const s of table.services) {
    if (!managed.has(s.key)) continue;
    const want = health.dests(s.key);
    if (want === undefined) continue;
    const have = new Map(s.dests.map((d) => [destKeyString(d.config), d.config]));
    const wanted = new Set<string>();
    for (const d of want) {
      const k = destKeyString(d);
      wanted.add(k);
      const h = have.get(k);
      if (h === undefined) ops.push({ op: 'add-dest', key: s.config, dest: d });
      else if (!sameDest(h, d)) ops.push({ op: 'edit-dest', key: s.config, dest: d });
    }
    for (const [k, d] of have) if (!wanted.has(k)) ops.push({ op: 'del-dest', key: s.config, dest: { af: d.af, addr: d.addr, port: d.port } });
  }
  return ops;
}

/**
 * The service operations a reload makes: services of the new file that the table lacks are added (their dests come
 * from the checker's transitions), changed ones edited, and services that were in the old file but not in the new
 * one deleted. Services in the table that the file never had (added with tsvsadm) are left alone.
 */
export function reloadServiceOps(table: CompiledTable, before: ReadonlySet<string>, after: ReadonlyMap<string, ServiceConfig>): TableOp[] {
  const ops: TableOp[] = [];
  const have = new Map(table.services.map((s) => [s.key, s.config]));
  for (const [k, svc] of after) {
    const h = have.get(k);
    if (h === undefined) ops.push({ op: 'add-service', svc });
    else if (h.scheduler !== svc.scheduler || h.flags !== svc.flags || h.timeout !== svc.timeout || h.netmask !== svc.netmask || h.pe !== svc.pe) ops.push({ op: 'edit-service', svc });
  }
  for (const k of before) {
    const h = have.get(k);
    if (!after.has(k) && h !== undefined) ops.push({ op: 'del-service', key: h });
  }
  return ops;
}
