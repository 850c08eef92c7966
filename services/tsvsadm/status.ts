// `tsvsadm status [--json]`: tsvs's own view of the data plane (workers, their CPUs and restarts, drops by
// reason, orphan replies). Not an ipvsadm command: ipvsadm rejects a first argument that is not an option,
// so no valid ipvsadm command line changes meaning.
import type { DataplaneStatus } from '../../shared/proto/admin.ts';
import type { AdminClient } from './client.ts';

/** Renders the status for people. */
export function formatStatus(d: DataplaneStatus): string {
  if (!d.forwarding) return `tsvsd keeps the table (epoch ${d.epoch}) but forwards nothing: it runs without --client-if\n`;
  const lines = [`data plane: ${d.workers.length} worker(s), table epoch ${d.epoch}`];
  lines.push('worker  cpu  pid      alive  restarts  epoch  forwarded  orphans');
  for (const w of d.workers) {
    lines.push(`${String(w.index).padEnd(6)}  ${String(w.cpu).padEnd(3)}  ${String(w.pid).padEnd(7)}  ${(w.alive ? 'yes' : 'no').padEnd(5)}  ${String(w.restarts).padEnd(8)}  ${String(w.appliedEpoch).padEnd(5)}  ${String(d.forwardedByWorker[w.index] ?? 0).padEnd(9)}  ${d.orphansByWorker[w.index] ?? 0}`);
  }
  const ev = Object.entries(d.events).sort(([a], [b]) => a.localeCompare(b));
  if (ev.length) {
    lines.push('counters:');
    for (const [k, v] of ev) lines.push(`  ${k.padEnd(24)} ${v}`);
  }
  return lines.join('\n') + '\n';
}

/** Runs `status`; returns the exit code (0, or 1 when tsvsd does not answer). */
export async function runStatus(args: readonly string[], connect: () => Promise<AdminClient>, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const json = args.includes('--json');
  const bad = args.find((a) => a !== '--json');
  if (bad !== undefined) {
    err(`tsvsadm status: unknown argument ${bad} (usage: tsvsadm status [--json])\n`);
    return 2;
  }
  let client: AdminClient;
  try {
    client = await connect();
  } catch (e) {
    err(`tsvsadm status: tsvsd does not answer: ${(e as Error).message}\n`);
    return 1;
  }
  try {
    const r = await client.request({ op: 'dataplane' });
    if (!r.ok || !r.dataplane) {
      err(`tsvsadm status: ${r.ok ? 'no data plane in the reply' : r.errno}\n`);
      return 1;
    }
    out(json ? JSON.stringify(r.dataplane) + '\n' : formatStatus(r.dataplane));
    return 0;
  } finally {
    client.close();
  }
}
