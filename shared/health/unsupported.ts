// What the health checker reads but does not act on: each a warning with file:line, so nothing is dropped silently.
import type { KeepalivedConfig } from '../keepalived/model.ts';
import type { KeepalivedWarning } from '../keepalived/errors.ts';
import { warning } from '../keepalived/errors.ts';

/** Warnings for settings tsvs's checker accepts but does not carry out (see docs/health.md). */
export function healthWarnings(cfg: KeepalivedConfig): KeepalivedWarning[] {
  const out: KeepalivedWarning[] = [];
  for (const vs of cfg.virtualServers) {
    if (vs.haSuspend) out.push(warning(vs, 'ha_suspend is not supported by tsvs: checkers run whether or not the VIP is present'));
    for (const rs of vs.realServers) {
      for (const c of rs.checkers) {
        if (c.kind !== 'MISC_CHECK' && c.bindIf !== null) out.push(warning(c, `${c.kind}: bind_if is not supported by tsvs: the route decides the interface`));
        if (c.kind !== 'MISC_CHECK' && c.fwmark !== null) out.push(warning(c, `${c.kind}: fwmark on checker packets is not supported by tsvs`));
        if (c.kind === 'MISC_CHECK' && c.user !== null) out.push(warning(c, `MISC_CHECK: user is not supported by tsvs: the script runs as the checker's user`));
        if ((c.kind === 'HTTP_GET' || c.kind === 'SSL_GET') && c.urls.length > 1 && !c.fastRecovery) {
          out.push(warning(c, `${c.kind}: tsvs checks every url in each run (as with fast_recovery), not one url per delay_loop while recovering`));
        }
      }
    }
  }
  if (cfg.globalDefs.lvsSyncDaemon && cfg.globalDefs.node) out.push(warning(cfg.globalDefs.node, 'lvs_sync_daemon is not run by tsvs\'s checker (the cluster syncs connections)'));
  for (const n of cfg.other) out.push(warning(n, `${n.keyword}: read but not acted on by tsvs`));
  return out;
}
