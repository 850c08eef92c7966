// tsvsd's cluster wiring, pure parts: the command line, the agent's argv, the link from agent messages to VIP
// ownership, and the record of held VIPs (a temp file) that lets the next tsvsd remove what a killed one left.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultNodeName, parseCli } from '../../services/tsvsd/args.ts';
import { ClusterLink, clusterAgentArgs, clusterChildSpec, NO_VIPS } from '../../services/tsvsd/cluster.ts';
import { parseVipRecord, RecordedVipHost } from '../../services/tsvsd/cluster-vips.ts';
import type { VipGrant } from '../../shared/rules/desired.ts';
import type { ClusterStatus, ToClusterAgent } from '../../shared/proto/cluster.ts';
import type { AdminReply } from '../../shared/proto/admin.ts';
import type { AdminClient } from '../../services/tsvsadm/client.ts';
import { formatCluster, runCluster } from '../../services/tsvsadm/cluster.ts';
import type { VipHost } from '../../services/tsvsd/vips.ts';

const quiet = (): void => {};

describe('tsvsd-cluster: command line', () => {
  it('tsvsd-cluster: --nats (or $TSVS_NATS_URL) turns the cluster on; the node defaults to $TSVS_LAB_NODE, else the host name', () => {
    const alone = parseCli([], {});
    expect(alone.kind === 'run' && alone.opts.cluster).toBeUndefined();
    const r = parseCli(['--nats', 'nats://10.0.0.1:4222', '--priority', '150', '--nopreempt', '--preempt-delay', '2000', '--heartbeat', '20'], { TSVS_LAB_NODE: 'd2' });
    expect(r.kind).toBe('run');
    const c = r.kind === 'run' ? r.opts.cluster! : undefined!;
    expect(c).toMatchObject({ nats: 'nats://10.0.0.1:4222', node: 'd2', priority: '150', nopreempt: true, preemptDelay: '2000', heartbeat: '20' });
    expect(clusterAgentArgs(c)).toEqual(['--nats', 'nats://10.0.0.1:4222', '--node', 'd2', '--priority', '150', '--nopreempt', '--preempt-delay', '2000', '--heartbeat', '20']);
    const env = parseCli(['--cluster', 'blue'], { TSVS_NATS_URL: 'nats://a:1,nats://b:2', TSVS_LAB_NODE: 'd1' });
    expect(env.kind === 'run' && env.opts.cluster).toMatchObject({ nats: 'nats://a:1,nats://b:2', node: 'd1', cluster: 'blue' });
    expect(defaultNodeName({}, 'dir-7.example.com')).toBe('dir-7');
    expect(defaultNodeName({}, 'a b')).toBe('a-b');
    const spec = clusterChildSpec('/repo/', c);
    expect(spec).toMatchObject({ name: 'cluster', kind: 'cluster', entry: '/repo/services/cluster/main.ts', serialization: 'advanced' });
  });
  it('tsvsd-cluster: cluster options without NATS, and values the agent would refuse, are usage errors', () => {
    expect(parseCli(['--priority', '10'], {})).toEqual({ kind: 'error', message: 'cluster options need --nats (or $TSVS_NATS_URL)' });
    const bad = parseCli(['--nats', 'nats://x:1', '--priority', '300', '--node', 'no/slash'], {});
    expect(bad.kind).toBe('error');
    expect(bad.kind === 'error' && bad.message).toMatch(/--priority needs an integer in 1\.\.255.*--node must match/);
    expect(parseCli(['--nats', 'http://x'], { TSVS_LAB_NODE: 'd1' }).kind).toBe('error');
    const gw = parseCli(['--client-if', 'front', '--server-if', 'back', '--gateway-vip', '10.200.1.10'], {});
    expect(gw.kind === 'run' && gw.opts.gatewayVip).toBe('10.200.1.10');
    expect(parseCli(['--gateway-vip', '10.200.1.10'], {})).toEqual({ kind: 'error', message: '--gateway-vip needs --client-if' });
    expect(parseCli(['--client-if', 'front', '--gateway-vip', '10.1.1.300'], {}).kind).toBe('error');
  });
});

function linkHarness() {
  const sent: ToClusterAgent[] = [];
  const grants: VipGrant[] = [];
  const logs: string[] = [];
  let running = true;
  const link = new ClusterLink({ send: (m) => (running ? (sent.push(m), true) : false), log: (l) => void logs.push(l) });
  link.start((g) => void grants.push(g));
  return { link, sent, grants, logs, setRunning: (v: boolean) => (running = v) };
}

describe('tsvsd-cluster: the link to the agent', () => {
  it('tsvsd-cluster: no VIP before a grant; a grant owns the table\'s VIPs; a release, an agent exit and stop own none', () => {
    const h = linkHarness();
    expect(h.grants).toEqual([NO_VIPS]);
    h.link.onMessage({ type: 'role', role: 'leader', term: 4, leader: 'd1' });
    h.link.onMessage({ type: 'vip-grant', vips: [], term: 4 });
    expect(h.grants.at(-1)).toEqual({ kind: 'all' });
    expect(h.link.granted).toBe(true);
    h.link.onMessage({ type: 'vip-release', vips: [], reason: 'isolated' });
    expect(h.grants.at(-1)).toEqual(NO_VIPS);
    h.link.onMessage({ type: 'vip-grant', vips: [], term: 5 });
    h.link.onAgentExit('SIGKILL');
    expect(h.grants.at(-1)).toEqual(NO_VIPS);
    expect(h.link.role.role).toBe('none');
    h.link.onMessage({ type: 'vip-grant', vips: [], term: 6 });
    h.link.stop();
    expect(h.grants.at(-1)).toEqual(NO_VIPS);
  });
  it('tsvsd-cluster: snapshot requests are answered, pulled snapshots confirmed, malformed messages neither crash nor grant', () => {
    const h = linkHarness();
    h.link.onMessage({ type: 'snapshot-request', id: 3 });
    expect(h.sent.at(-1)).toMatchObject({ type: 'snapshot-data', id: 3, last: true });
    h.link.onMessage({ type: 'snapshot-done', from: 'd1', entries: 0, ms: 1 });
    expect(h.sent.at(-1)).toEqual({ type: 'installed' });
    h.link.onMessage({ type: 'install', words: new Uint32Array(24), source: 'sync' });
    expect(h.link.dropped).toBe(2);
    for (const m of [null, 7, { type: 'vip-grant' }, { type: 'install', words: [1, 2] }, { type: 'role', role: 'king', term: 1, leader: 'x' }]) h.link.onMessage(m);
    expect(h.grants).toEqual([NO_VIPS]);
    expect(h.logs.filter((l) => l === 'cluster: message not understood')).toHaveLength(5);
  });
  it('tsvsd-cluster: a status request is answered by the intercepted reply, or fails when the agent is down or silent', async () => {
    const h = linkHarness();
    const p = h.link.status(500);
    const req = h.sent.at(-1) as { type: 'status-request'; id: number };
    expect(req.type).toBe('status-request');
    const status = { self: 'd1', leader: 'd1', term: 2 };
    expect(h.link.intercept({ type: 'status', id: req.id, status })).toBe(true);
    await expect(p).resolves.toEqual(status);
    await expect(h.link.status(20)).rejects.toThrow(/did not answer in 20 ms/);
    h.setRunning(false);
    await expect(h.link.status(20)).rejects.toThrow(/not running/);
  });
  it('tsvsd-cluster: hand-over sends stop and resolves on `stopped`, then owns no VIP', async () => {
    const h = linkHarness();
    h.link.onMessage({ type: 'vip-grant', vips: [], term: 1 });
    const done = h.link.handOver(5000);
    expect(h.sent.at(-1)).toEqual({ type: 'stop' });
    h.link.intercept({ type: 'stopped' });
    await done;
    expect(h.grants.at(-1)).toEqual(NO_VIPS);
  });
});

describe('tsvsd-cluster: recorded VIPs', () => {
  it('tsvsd-cluster: held VIPs are recorded; the next instance removes what the record lists', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsvs-vips-'));
    try {
      const path = join(dir, 'vips-front');
      const ops: string[] = [];
      const inner: VipHost = { add: (v) => (ops.push(`add ${v}`), v !== '10.0.0.9'), del: (v) => void ops.push(`del ${v}`), announce: () => {} };
      const a = new RecordedVipHost(inner, path, quiet);
      expect(a.removeLeftovers()).toEqual([]);
      expect(a.add('10.0.0.1')).toBe(true);
      expect(a.add('10.0.0.2')).toBe(true);
      expect(a.add('10.0.0.9')).toBe(false);
      a.del('10.0.0.2');
      expect(parseVipRecord(readFileSync(path, 'utf8'))).toEqual(['10.0.0.1']);
      // a killed instance: the next one removes its leftovers and starts with an empty record
      ops.length = 0;
      const b = new RecordedVipHost(inner, path, quiet);
      expect(b.removeLeftovers()).toEqual(['10.0.0.1']);
      expect(ops).toEqual(['del 10.0.0.1']);
      expect(readFileSync(path, 'utf8')).toBe('');
      writeFileSync(path, 'garbage\n10.1.1.1\n\n');
      expect(new RecordedVipHost(inner, path, quiet).removeLeftovers()).toEqual(['10.1.1.1']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('tsvsd-cluster: tsvsadm cluster', () => {
  const status: ClusterStatus = {
    self: 'd1', cluster: 'tsvs', leader: 'd1', term: 3, nats: 'up', nats_server: '10.200.2.1:4222', ready: true,
    members: [{ name: 'd2', state: 'backup', priority: 190 }, { name: 'd1', state: 'leader', priority: 200 }], vips: [],
    sync: { sent: 5, received: 2, gaps: 0, resyncs: 0, lost: 0, stale: 0, foreign: 1, malformed: 0, lag_p50_ms: 0.4, lag_p99_ms: 1.2, snapshot_entries: 0, snapshot_ms: 0 },
  };
  const client = (reply: AdminReply): (() => Promise<AdminClient>) => async () => ({ request: async () => reply, close: () => {} });
  it('tsvsd-cluster: prints the leader, members by priority and sync figures; --json prints the status object', async () => {
    let out = '';
    expect(await runCluster([], client({ id: 1, ok: true, cluster: status }), (s) => void (out += s), quiet)).toBe(0);
    expect(out).toContain('this node d1, leader d1, term 3');
    expect(out.indexOf('d1 ')).toBeLessThan(out.indexOf('d2 '));
    expect(out).toMatch(/d2\s+backup\s+190/);
    expect(formatCluster(status)).toContain('sent 5, received 2');
    expect(formatCluster(status)).not.toContain('workers:');
    const w = { written: 7, write_dropped: 0, created: 3, updated: 2, removed: 1, malformed: 0, no_service: 4, no_dest: 0, table_full: 0, pending: 0, pending_dropped: 0, held: 2, hold_released: 1, hold_timeout: 1 };
    const withWorkers = formatCluster({ ...status, sync: { ...status.sync, workers: w } });
    expect(withWorkers).toContain('workers: wrote 7 (ring full 0); installed 3 new, 2 updated, 1 removed');
    expect(withWorkers).toContain('no service 4');
    expect(withWorkers).toContain('held 2 (sent on 1, timed out 1)');
    out = '';
    expect(await runCluster(['--json'], client({ id: 1, ok: true, cluster: status }), (s) => void (out += s), quiet)).toBe(0);
    expect(JSON.parse(out)).toEqual(status);
  });
  it('tsvsd-cluster: a director alone, a silent agent and a bad argument are errors', async () => {
    let err = '';
    expect(await runCluster([], client({ id: 1, ok: false, errno: 'EOPNOTSUPP', detail: 'this director runs alone' }), quiet, (s) => void (err += s))).toBe(1);
    expect(err).toContain('runs alone');
    expect(await runCluster(['-x'], client({ id: 1, ok: true }), quiet, quiet)).toBe(2);
    expect(await runCluster([], client({ id: 1, ok: true }), quiet, quiet)).toBe(1);
  });
});
