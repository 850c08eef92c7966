// An in-memory stand-in for tsvsd's admin API, enough to drive tsvsadm's run() in unit tests.
import type { AdminReply, AdminRequest } from '../../shared/proto/admin.ts';
import type { ConnSnapshot, DestSnapshot, ServiceSnapshot, TableSnapshot } from '../../shared/model/ipvs.ts';
import { Defaults, SCHEDULERS, destKeyString, serviceKeyString, zeroRates, zeroStats } from '../../shared/model/ipvs.ts';
import type { AdminClient } from '../../services/tsvsadm/client.ts';

/** Fake tsvsd: a table plus the request log; answers like the kernel for the common errors. */
export class FakeTsvsd {
  table: TableSnapshot = {
    version: Defaults.version,
    connTabSize: Defaults.connTabSize,
    services: [],
    timeouts: { ...Defaults.timeouts },
    daemons: [],
  };
  conns: ConnSnapshot[] = [];
  log: AdminRequest[] = [];

  client(): AdminClient {
    return { request: async (req) => this.handle(req), close: () => {} };
  }

  private find(key: { af: number; fwmark: number }): ServiceSnapshot | undefined {
    const k = serviceKeyString(key as ServiceSnapshot);
    return this.table.services.find((s) => s.af === key.af && serviceKeyString(s) === k);
  }

  handle(req: AdminRequest): AdminReply {
    this.log.push(req);
    const ok: AdminReply = { id: 0, ok: true };
    const err = (errno: 'EEXIST' | 'ESRCH' | 'ENOENT' | 'ERANGE'): AdminReply => ({ id: 0, ok: false, errno });
    switch (req.op) {
      case 'snapshot':
        return { id: 0, ok: true, snapshot: structuredClone(this.table) };
      case 'conns':
        return { id: 0, ok: true, conns: this.conns };
      case 'set-marks':
      case 'get-marks':
        return { id: 0, ok: false, errno: 'EOPNOTSUPP' };
      case 'stats':
        return { id: 0, ok: false, errno: 'EOPNOTSUPP' };
      case 'dataplane':
        return { id: 0, ok: true, dataplane: { forwarding: false, epoch: 0, workers: [], events: {}, orphansByWorker: [], forwardedByWorker: [] } };
      case 'flush':
        this.table.services = [];
        return ok;
      case 'add-service':
        if (this.find(req.svc)) return err('EEXIST');
        if (!(SCHEDULERS as readonly string[]).includes(req.svc.scheduler)) return err('ENOENT');
        this.table.services.push({ ...req.svc, dests: [], stats: zeroStats(), rate: zeroRates() });
        return ok;
      case 'edit-service': {
        const s = this.find(req.svc);
        if (!s) return err('ESRCH');
        Object.assign(s, req.svc);
        return ok;
      }
      case 'del-service': {
        const s = this.find(req.key);
        if (!s) return err('ESRCH');
        this.table.services = this.table.services.filter((x) => x !== s);
        return ok;
      }
      case 'add-dest': case 'edit-dest': case 'del-dest': {
        const s = this.find(req.key);
        if (!s) return err('ESRCH');
        const i = s.dests.findIndex((d) => destKeyString(d) === destKeyString(req.dest));
        if (req.op === 'add-dest') {
          if (i >= 0) return err('EEXIST');
          if (req.dest.lThreshold > req.dest.uThreshold && req.dest.uThreshold) return err('ERANGE');
          const d: DestSnapshot = { ...req.dest, activeConns: 0, inactConns: 0, persistConns: 0, overloaded: false, stats: zeroStats(), rate: zeroRates() };
          s.dests.unshift(d);
          return ok;
        }
        if (i < 0) return err('ENOENT');
        if (req.op === 'edit-dest') Object.assign(s.dests[i], req.dest);
        else s.dests.splice(i, 1);
        return ok;
      }
      case 'set-timeout':
        if (req.tcp) this.table.timeouts.tcp = req.tcp;
        if (req.tcpfin) this.table.timeouts.tcpfin = req.tcpfin;
        if (req.udp) this.table.timeouts.udp = req.udp;
        return ok;
      case 'start-daemon':
        if (this.table.daemons.some((d) => d.state === req.daemon.state)) return err('EEXIST');
        this.table.daemons.push(req.daemon);
        return ok;
      case 'stop-daemon':
        if (!this.table.daemons.some((d) => d.state === req.state)) return err('ESRCH');
        this.table.daemons = this.table.daemons.filter((d) => d.state !== req.state);
        return ok;
      case 'zero':
        if (req.key && !this.find(req.key)) return err('ESRCH');
        return ok;
    }
  }
}

/** What one tsvsadm run produced: exit status, stdout and stderr. */
export interface Captured {
  code: number;
  out: string;
  err: string;
}
