// `tsvsadm health [--json]`: every real server of tsvsd's keepalived configuration with its checkers, state,
// consecutive results, last error and last change, from the health checker. Not an ipvsadm command (ipvsadm rejects
// a first argument that is not an option), so no valid ipvsadm command line changes meaning.
import type { VirtualServerStatus } from '../../shared/health/machine.ts';
import type { AdminClient } from './client.ts';

function when(ms: number | null): string {
  return ms === null ? 'never' : new Date(ms).toISOString();
}

/** Renders the health status for people: one block per virtual server, a line per real server and per checker. */
export function formatHealth(vss: readonly VirtualServerStatus[]): string {
  if (vss.length === 0) return 'no virtual server is checked\n';
  const lines: string[] = [];
  for (const v of vss) {
    const q = v.quorum > 1 || v.hysteresis > 0 ? `, quorum ${v.quorum} ± ${v.hysteresis}` : '';
    lines.push(`${v.vs}: quorum ${v.quorumUp ? 'up' : 'DOWN'} (live weight ${v.liveWeight}${q})${v.sorryActive ? ', sorry server in use' : ''}`);
    for (const r of v.realServers) {
      const w = r.tableWeight === null ? 'not in table' : `weight ${r.tableWeight}`;
      lines.push(`  ${r.rs}  ${r.alive ? 'alive' : 'DEAD'}  ${w} (configured ${r.configuredWeight})  last change ${when(r.lastChange)}`);
      for (const c of r.checkers) {
        const res = c.state === 'up' ? `ok ${c.okInRow} in a row` : `failed ${c.failInRow} in a row`;
        const dur = c.lastDurationMs === null ? '' : `, last run ${Math.round(c.lastDurationMs)} ms`;
        lines.push(`    ${c.kind} ${c.target}  ${c.state}  ${res}${dur}  last change ${when(c.lastChange)}${c.lastError ? `  last error: ${c.lastError}` : ''}`);
      }
    }
  }
  return lines.join('\n') + '\n';
}

/** Runs `health`; returns the exit code (0; 1 when tsvsd or its checker does not answer; 2 on a usage error). */
export async function runHealth(args: readonly string[], connect: () => Promise<AdminClient>, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const json = args.includes('--json');
  const bad = args.find((a) => a !== '--json');
  if (bad !== undefined) {
    err(`tsvsadm health: unknown argument ${bad} (usage: tsvsadm health [--json])\n`);
    return 2;
  }
  let client: AdminClient;
  try {
    client = await connect();
  } catch (e) {
    err(`tsvsadm health: tsvsd does not answer: ${(e as Error).message}\n`);
    return 1;
  }
  try {
    const r = await client.request({ op: 'health' });
    if (!r.ok || !r.health) {
      err(`tsvsadm health: ${r.ok ? 'no health status in the reply' : `${r.errno}${r.detail ? `: ${r.detail}` : ''}`}\n`);
      return 1;
    }
    out(json ? JSON.stringify(r.health) + '\n' : formatHealth(r.health));
    return 0;
  } finally {
    client.close();
  }
}
