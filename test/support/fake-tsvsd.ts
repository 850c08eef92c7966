// An in-memory stand-in for tsvsd's admin API, enough to drive tsvsadm's run() in unit tests: the real IpvsTable
// (the kernel's errno rules) behind the admin protocol, with counters and connections the test sets.
import type { AdminReply, AdminRequest } from '../../shared/proto/admin.ts';
import type { ConnSnapshot, DestConfig, Rates, ServiceKey, Stats, TableSnapshot } from '../../shared/model/ipvs.ts';
import { destKeyString, serviceKeyString, zeroRates, zeroStats } from '../../shared/model/ipvs.ts';
import { isTableOp } from '../../shared/model/ops.ts';
import { IpvsTable, type DestCounters, type ServiceCounters } from '../../shared/model/table.ts';
import { notForwarding } from '../../shared/proto/stats.ts';
import type { AdminClient } from '../../services/tsvsadm/client.ts';

/** Fake tsvsd: an IpvsTable plus the request log; table operations get the table's (the kernel's) answers. */
export class FakeTsvsd {
  readonly ipvs: IpvsTable;
  conns: ConnSnapshot[] = [];
  log: AdminRequest[] = [];
  readonly #svc = new Map<string, ServiceCounters>();
  readonly #dest = new Map<string, DestCounters>();

  constructor() {
    const keyOf = (id: number): { s: string; d?: string } | undefined => {
      for (const cs of this.ipvs.compiled().services) {
        if (cs.id === id) return { s: cs.key };
        const cd = cs.dests.find((x) => x.id === id);
        if (cd) return { s: cs.key, d: destKeyString(cd.config) };
      }
      return undefined;
    };
    this.ipvs = new IpvsTable({
      counters: {
        service: (id) => this.#svc.get(keyOf(id)?.s ?? ''),
        dest: (id) => {
          const k = keyOf(id);
          return k?.d === undefined ? undefined : this.#dest.get(`${k.s}/${k.d}`);
        },
      },
    });
  }

  /** The table as tsvsd would answer `snapshot` (a fresh copy). */
  get table(): TableSnapshot {
    return this.ipvs.snapshot();
  }

  /** Sets the counters the snapshot shows for a service (by key). */
  setServiceCounters(key: ServiceKey, c: { stats?: Stats; rate?: Rates }): void {
    const k = serviceKeyString(key);
    const have = this.#svc.get(k) ?? { stats: zeroStats(), rate: zeroRates() };
    this.#svc.set(k, { ...have, ...c });
  }

  /** Sets the counters the snapshot shows for a real server of a service. */
  setDestCounters(key: ServiceKey, dest: Pick<DestConfig, 'af' | 'addr' | 'port'>, c: Partial<DestCounters>): void {
    const k = `${serviceKeyString(key)}/${destKeyString(dest)}`;
    const have = this.#dest.get(k) ?? { activeConns: 0, inactConns: 0, persistConns: 0, stats: zeroStats(), rate: zeroRates() };
    this.#dest.set(k, { ...have, ...c });
  }

  client(): AdminClient {
    return { request: async (req) => this.handle(req), close: () => {} };
  }

  handle(req: AdminRequest): AdminReply {
    this.log.push(req);
    if (isTableOp(req)) {
      const r = this.ipvs.apply(req);
      return r.ok ? { id: 0, ok: true } : { id: 0, ok: false, errno: r.errno, detail: r.detail };
    }
    switch (req.op) {
      case 'snapshot':
        return { id: 0, ok: true, snapshot: this.ipvs.snapshot() };
      case 'conns':
        return { id: 0, ok: true, conns: this.conns };
      case 'dataplane':
        return { id: 0, ok: true, dataplane: notForwarding(this.ipvs.epoch) };
      case 'stats':
        return { id: 0, ok: true, stats: { takenAt: 0, tableEpoch: this.ipvs.epoch, table: this.ipvs.snapshot(), dataplane: notForwarding(this.ipvs.epoch) } };
      case 'set-marks':
      case 'get-marks':
      case 'health':
      case 'cluster':
        return { id: 0, ok: false, errno: 'EOPNOTSUPP' };
    }
  }
}

/** What one tsvsadm run produced: exit status, stdout and stderr. */
export interface Captured {
  code: number;
  out: string;
  err: string;
}
