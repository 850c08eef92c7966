// tsvsd-health-sync: the table operations that load a keepalived.conf, follow the checker's view and apply a reload;
// the `health` admin op and tsvsadm health's format.
import { describe, expect, it } from 'vitest';
import { HealthTable } from '../../shared/health/table.ts';
import { emptyKeepalivedFs, readKeepalivedConfig } from '../../shared/keepalived/index.ts';
import type { DestConfig, ServiceKey } from '../../shared/model/ipvs.ts';
import { IpvsTable } from '../../shared/model/table.ts';
import { healthSyncOps, keepalivedServices, keepalivedStartOps, reloadServiceOps } from '../../services/tsvsd/health-sync.ts';
import { handleAdmin } from '../../services/tsvsd/admin-handlers.ts';
import { LocalConfigStore } from '../../services/tsvsd/config-store.ts';
import { parseRequestLine } from '../../services/tsvsd/request.ts';
import { StatsModel } from '../../services/tsvsd/stats.ts';
import { formatHealth } from '../../services/tsvsadm/health.ts';

const CONF = `virtual_server 10.0.0.10 80 {
  delay_loop 1
  lb_algo wrr
  protocol TCP
  sorry_server 10.0.1.9 80
  real_server 10.0.1.1 80 {
    weight 3
    TCP_CHECK {
    }
  }
  real_server 10.0.1.2 80 {
    weight 1
    inhibit_on_failure
    TCP_CHECK {
    }
  }
}
`;
const key: ServiceKey = { af: 4, protocol: 'tcp', addr: '10.0.0.10', port: 80, fwmark: 0 };
const K = 'tcp|4|10.0.0.10|80';
function dest(addr: string, weight: number): DestConfig {
  return { af: 4, addr, port: 80, method: 'masq', weight, uThreshold: 0, lThreshold: 0, tunType: 'ipip', tunPort: 0, tunCsum: '' };
}
function loaded(): IpvsTable {
  const t = new IpvsTable({ clock: () => 0 });
  for (const op of keepalivedStartOps(readKeepalivedConfig('k.conf', CONF, emptyKeepalivedFs))) expect(t.apply(op)).toEqual({ ok: true });
  return t;
}
const dests = (t: IpvsTable) => t.compiled().services[0].dests.map((d) => `${d.config.addr} ${d.config.weight}`).sort();

describe('tsvsd-health-sync', () => {
  it('tsvsd-health-sync: the startup ops build keepalived startup table', () => {
    const t = loaded();
    expect(t.compiled().services.map((s) => `${s.key} ${s.config.scheduler}`)).toEqual([`${K} wrr`]);
    expect(dests(t)).toEqual(['10.0.1.1 3', '10.0.1.2 1']);
  });

  it('tsvsd-health-sync: the dests follow the health table: removed, inhibited at 0 in place, sorry server added', () => {
    const t = loaded();
    const h = new HealthTable();
    h.reset({ virtualServers: [{ vsId: 'vs', services: [key], dests: [dest('10.0.1.1', 3), dest('10.0.1.2', 1)] }] }, 1);
    expect(healthSyncOps(t.compiled(), new Set([K]), h)).toEqual([]);
    h.apply(1, 1, [{ vsId: 'vs', services: [key], key: dest('10.0.1.2', 0), dest: dest('10.0.1.2', 0) }]);
    const ops = healthSyncOps(t.compiled(), new Set([K]), h);
    expect(ops.map((o) => o.op)).toEqual(['edit-dest']);
    for (const op of ops) t.apply(op);
    expect(dests(t)).toEqual(['10.0.1.1 3', '10.0.1.2 0']);
    h.apply(1, 2, [
      { vsId: 'vs', services: [key], key: dest('10.0.1.1', 3), dest: null },
      { vsId: 'vs', services: [key], key: dest('10.0.1.9', 1), dest: dest('10.0.1.9', 1) },
    ]);
    for (const op of healthSyncOps(t.compiled(), new Set([K]), h)) expect(t.apply(op)).toEqual({ ok: true });
    expect(dests(t)).toEqual(['10.0.1.2 0', '10.0.1.9 1']);
    // A service not managed by the file is left alone.
    expect(healthSyncOps(t.compiled(), new Set(), new HealthTable())).toEqual([]);
  });

  it('tsvsd-health-sync: a reload adds, edits and deletes only the file services', () => {
    const t = loaded();
    t.apply({ op: 'add-service', svc: { ...key, addr: '10.0.0.99', scheduler: 'rr', flags: 0, timeout: 0, netmask: '255.255.255.255', pe: '' } });
    const next = readKeepalivedConfig('k.conf', CONF.replace('lb_algo wrr', 'lb_algo rr').concat('virtual_server 10.0.0.11 80 {\n  protocol TCP\n  real_server 10.0.1.5 80 {\n  }\n}\n'), emptyKeepalivedFs);
    const ops = reloadServiceOps(t.compiled(), new Set([K]), keepalivedServices(next));
    expect(ops.map((o) => `${o.op} ${'svc' in o ? o.svc.addr : ''}`)).toEqual(['edit-service 10.0.0.10', 'add-service 10.0.0.11']);
    const gone = reloadServiceOps(t.compiled(), new Set([K]), new Map());
    expect(gone).toEqual([{ op: 'del-service', key: t.compiled().services[0].config }]);
  });
});

describe('tsvsadm health: the human format', () => {
  it('tsvsadm health: one block per virtual server, a line per real server and checker, errors and changes shown', () => {
    const text = formatHealth([{
      vs: '10.0.0.10:80/tcp', quorumUp: false, liveWeight: 0, quorum: 1, hysteresis: 0, sorryActive: true,
      realServers: [{
        vs: '10.0.0.10:80/tcp', rs: '10.0.1.2:80', alive: false, tableWeight: 0, configuredWeight: 2, lastChange: Date.UTC(2026, 11, 5, 22, 0, 0),
        checkers: [{ vs: 'v', rs: 'r', checker: 'c', kind: 'TCP_CHECK', target: '10.0.1.2:80', state: 'down', running: false, okInRow: 0, failInRow: 3, lastError: 'connection refused', lastChange: Date.UTC(2026, 11, 5, 22, 0, 0), lastResult: null, lastDurationMs: 1.4 }],
      }],
    }]);
    expect(text).toBe(
      '10.0.0.10:80/tcp: quorum DOWN (live weight 0), sorry server in use\n' +
      '  10.0.1.2:80  DEAD  weight 0 (configured 2)  last change 2026-12-05T22:00:00.000Z\n' +
      '    TCP_CHECK 10.0.1.2:80  down  failed 3 in a row, last run 1 ms  last change 2026-12-05T22:00:00.000Z  last error: connection refused\n',
    );
    expect(formatHealth([])).toBe('no virtual server is checked\n');
  });

  it('tsvsadm health: the admin op parses, and a tsvsd without a checker answers EOPNOTSUPP', async () => {
    const p = parseRequestLine(JSON.stringify({ v: 1, id: 7, op: 'health' }));
    expect(p).toEqual({ ok: true, env: { v: 1, id: 7, op: 'health' } });
    const table = new IpvsTable({ clock: () => 0 });
    const ctx = { store: new LocalConfigStore(table), stats: new StatsModel(table), log: () => {}, forwarding: false };
    expect((await handleAdmin({ v: 1, id: 7, op: 'health' }, ctx)).reply).toMatchObject({ id: 7, ok: false, errno: 'EOPNOTSUPP' });
    const withChecker = { ...ctx, health: async () => [] };
    expect((await handleAdmin({ v: 1, id: 8, op: 'health' }, withChecker)).reply).toEqual({ id: 8, ok: true, health: [] });
  });
});
