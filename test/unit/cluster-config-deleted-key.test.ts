// cluster-config: the edit loop (services/cluster/config-kv.ts runEdit) over a key that was deleted: the read gives
// the delete marker's revision with no table, and the first edit is written conditionally on that revision (the
// stream-level check), so two first edits cannot both land; an in-memory store stands for the bucket.
import { describe, expect, it } from 'vitest';
import { parseDoc } from '../../shared/cluster/config-doc.ts';
import type { ServiceConfig } from '../../shared/model/ipvs.ts';
import { runEdit, type ConfigBackend, type EditTiming } from '../../services/cluster/config-kv.ts';

/** One key: `rev` is the stream's last sequence (a delete marker counts), `text` null while deleted. */
class DeletedKey implements ConfigBackend {
  rev = 7;
  text: string | null = null;
  expects: number[] = [];
  async read(): Promise<{ rev: number; text: string | null }> {
    await Promise.resolve();
    return { rev: this.rev, text: this.text };
  }
  async write(text: string, expectRev: number): Promise<{ ok: true; rev: number } | { ok: false; conflict: boolean; error: string }> {
    await Promise.resolve();
    this.expects.push(expectRev);
    if (expectRev !== this.rev) return { ok: false, conflict: true, error: `wrong last sequence: ${this.rev}` };
    this.text = text;
    return { ok: true, rev: ++this.rev };
  }
}

const timing = (): EditTiming => {
  let t = 0;
  return { deadlineMs: 3000, retryMs: 100, now: () => t, sleep: async (ms) => void (t += ms) };
};
const svc = (addr: string): ServiceConfig => ({ af: 4, protocol: 'tcp', addr, port: 80, fwmark: 0, scheduler: 'rr', flags: 0, timeout: 0, netmask: '255.255.255.255', pe: '' });

describe('cluster-config: first edits over a deleted key', () => {
  it('cluster-config: two first edits at once over a delete marker (revision 7): the first writes on 7, the other conflicts and replays on 8; both services in the table', async () => {
    const kv = new DeletedKey();
    const [a, b] = await Promise.all([
      runEdit(kv, { op: 'add-service', svc: svc('10.0.0.1') }, { by: 'd1', edit: 'd1/1/1' }, timing()),
      runEdit(kv, { op: 'add-service', svc: svc('10.0.0.2') }, { by: 'd2', edit: 'd2/1/1' }, timing()),
    ]);
    expect(a).toMatchObject({ ok: true, rev: 8, conflicts: 0 });
    expect(b).toMatchObject({ ok: true, rev: 9, conflicts: 1 });
    expect(kv.expects).toEqual([7, 7, 8]);
    const p = parseDoc(kv.text!);
    expect(p.ok && p.doc.services.map((s) => s.svc.addr)).toEqual(['10.0.0.1', '10.0.0.2']);
    expect(p.ok && p.doc.prev).toBe(8);
  });
});
