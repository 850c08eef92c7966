// cluster-consistent active-active, pure parts: when a director forwards (its agent's status), the ownership it
// hands the reconciler, tsvsd's --active-active flags, the nexthop probe's wire format, and the lab router's
// nexthop tracking (detection, rise, the `ip nexthop` commands).
import { describe, expect, it } from 'vitest';
import { ActiveActiveLink, activeActiveServing } from '../../services/tsvsd/active-active.ts';
import { parseCli } from '../../services/tsvsd/args.ts';
import type { ClusterStatus, ToClusterAgent } from '../../shared/proto/cluster.ts';
import { DEFAULT_PROBE_PORT, decodeProbeReply, decodeProbeRequest, encodeProbeReply, encodeProbeRequest } from '../../shared/proto/nexthop-probe.ts';
import type { VipGrant } from '../../shared/rules/desired.ts';
import { NexthopTracker, groupCommands } from '../../ops/lab/nexthops.ts';
import { plan } from '../../ops/lab/plan.ts';

function status(over: Partial<ClusterStatus> = {}, selfState: ClusterStatus['members'][number]['state'] = 'backup'): ClusterStatus {
  return {
    self: 'd2', cluster: 'tsvs', leader: 'd1', term: 3, nats: 'up', nats_server: '10.200.2.1:4222', ready: true,
    members: [{ name: 'd1', state: 'leader', priority: 200 }, { name: 'd2', state: selfState, priority: 190 }], vips: [],
    sync: { sent: 0, received: 0, gaps: 0, resyncs: 0, lost: 0, stale: 0, foreign: 0, malformed: 0, lag_p50_ms: 0, lag_p99_ms: 0, snapshot_entries: 0, snapshot_ms: 0 },
    ...over,
  };
}

describe('cluster-consistent active-active: when a director forwards', () => {
  it('active-active: a ready, connected backup or leader forwards; not before its snapshot, without NATS, or cut off', () => {
    expect(activeActiveServing(status())).toEqual({ serve: true, why: 'ready' });
    expect(activeActiveServing(status({ self: 'd1' }))).toEqual({ serve: true, why: 'ready (leader)' });
    expect(activeActiveServing(status({ ready: false })).serve).toBe(false);
    expect(activeActiveServing(status({ nats: 'down' })).serve).toBe(false);
    expect(activeActiveServing(status({}, 'isolated'))).toEqual({ serve: false, why: 'cut off from NATS (own heartbeats do not come back)' });
    expect(activeActiveServing(status({ self: 'd9' })).serve).toBe(false);
  });

  it('active-active: the link grants the table\'s VIPs while the agent says ready, withdraws on isolation, agent exit and hand-over', async () => {
    const sent: ToClusterAgent[] = [];
    const grants: VipGrant[] = [];
    const link = new ActiveActiveLink({ send: (m) => (sent.push(m), true), log: () => {} }, 60_000);
    link.start((g) => void grants.push(g));
    expect(grants).toEqual([{ kind: 'only', vips: [] }]);
    expect(link.serving).toBe(false);
    link.onStatus(status({ ready: false }));
    expect(grants).toHaveLength(1);
    link.onStatus(status());
    expect(grants.at(-1)).toEqual({ kind: 'all' });
    expect(link.serving).toBe(true);
    link.onStatus(status());
    expect(grants).toHaveLength(2); // no repeat without a change
    link.onStatus(status({}, 'isolated'));
    expect(grants.at(-1)).toEqual({ kind: 'only', vips: [] });
    link.onStatus(status());
    expect(link.serving).toBe(true);
    // The agent dies: void at once, whatever it said last; back only after it says ready again.
    link.onAgentExit('signal SIGKILL');
    expect(link.serving).toBe(false);
    expect(grants.at(-1)).toEqual({ kind: 'only', vips: [] });
    link.onStatus(null);
    expect(link.serving).toBe(false);
    // The leader's grant alone also serves (it is ready by construction).
    link.onMessage({ type: 'vip-grant', vips: [], term: 4 });
    expect(link.serving).toBe(true);
    // Graceful stop: withdraw first (the probe answers down at once), then the agent hands leadership over.
    const done = link.handOver(20);
    expect(link.serving).toBe(false);
    expect(sent.some((m) => m.type === 'stop')).toBe(true);
    await done;
    link.onStatus(status());
    expect(link.serving).toBe(false);
    link.stop();
  });
});

describe('cluster-consistent active-active: tsvsd flags', () => {
  it('active-active: --active-active needs --client-if, takes --probe-port, excludes --gateway-vip', () => {
    const r = parseCli(['--client-if', 'front', '--active-active'], { TSVS_LAB_NODE: 'd3' });
    expect(r.kind === 'run' && r.opts.activeActive).toEqual({ probePort: DEFAULT_PROBE_PORT, node: 'd3' });
    const c = parseCli(['--client-if', 'front', '--active-active', '--probe-port', '46400', '--nats', 'nats://x:4222', '--node', 'n7'], {});
    expect(c.kind === 'run' && c.opts.activeActive).toEqual({ probePort: 46400, node: 'n7' });
    expect(parseCli(['--active-active'], {})).toEqual({ kind: 'error', message: '--active-active needs --client-if' });
    expect(parseCli(['--client-if', 'front', '--probe-port', '1'], {})).toEqual({ kind: 'error', message: '--probe-port needs --active-active' });
    expect(parseCli(['--client-if', 'front', '--active-active', '--probe-port', '70000'], {}).kind).toBe('error');
    const both = parseCli(['--client-if', 'front', '--active-active', '--gateway-vip', '10.200.1.10'], {});
    expect(both.kind === 'error' && both.message).toMatch(/do not go together/);
  });
});

describe('cluster-consistent active-active: nexthop probe wire format', () => {
  it('active-active probe: request and reply round-trip; anything else is refused', () => {
    const q = encodeProbeRequest(0x1_0000_0005);
    expect(q).toHaveLength(12);
    expect(Buffer.from(q.subarray(0, 8)).toString('latin1')).toBe('TSVSPRB1');
    expect(decodeProbeRequest(q)).toBe(5);
    expect(decodeProbeReply(encodeProbeReply(5, true, 'd2'))).toEqual({ seq: 5, up: true, node: 'd2' });
    expect(decodeProbeReply(encodeProbeReply(7, false, 'dé'.repeat(40)))).toEqual({ seq: 7, up: false, node: 'd?'.repeat(32) });
    expect(decodeProbeRequest(new Uint8Array(12))).toBeNull();
    expect(decodeProbeRequest(q.subarray(0, 11))).toBeNull();
    expect(decodeProbeReply(q)).toBeNull();
    const bad = encodeProbeReply(1, true, 'd1');
    bad[12] = 2;
    expect(decodeProbeReply(bad)).toBeNull();
    const short = encodeProbeReply(1, true, 'd1');
    short[13] = 9;
    expect(decodeProbeReply(short)).toBeNull();
  });
});

describe('cluster-consistent active-active: the lab router follows the probes', () => {
  it('active-active nexthops: dropped after 3 silent rounds or one "down", back after 2 "up" rounds; late by one round still counts', () => {
    const t = new NexthopTracker(3);
    const all = (skip: number[] = [], down: number[] = []): void => {
      for (let i = 0; i < 3; i++) if (!skip.includes(i)) t.answer(i, t.seq, !down.includes(i));
    };
    all();
    expect(t.round()).toEqual([]);
    expect(t.live()).toEqual([0, 1, 2]);
    all([1]);
    expect(t.round()).toEqual([]);
    // d2's answer to the previous round arrives late: alive.
    t.answer(1, (t.seq - 1) >>> 0, true);
    all([1]);
    expect(t.round()).toEqual([]);
    all([1]);
    expect(t.round()).toEqual([]);
    all([1]);
    expect(t.round()).toEqual([]);
    all([1]);
    expect(t.round()).toEqual([{ index: 1, live: false, why: '3 probes unanswered' }]);
    expect(t.live()).toEqual([0, 2]);
    t.answer(1, (t.seq - 2) >>> 0, true); // too old
    all([1]);
    expect(t.round()).toEqual([]);
    all();
    expect(t.round()).toEqual([]);
    all();
    expect(t.round()).toEqual([{ index: 1, live: true, why: 'answered up 2 times' }]);
    all([], [2]);
    t.answer(2, t.seq, true); // a "down" in a round is not undone by another answer
    expect(t.round()).toEqual([{ index: 2, live: false, why: 'answered down (not forwarding)' }]);
    t.answer(7, t.seq, true);
    expect(t.live()).toEqual([0, 1]);
  });

  it('active-active nexthops: the router\'s VIP group and, in NAT, each real server\'s default group get the live members', () => {
    const p = plan({ directors: 3, servers: 2, mode: 'nat', router: true, nats: true });
    const cmds = groupCommands(p, [0, 2]);
    expect(cmds.map((c) => c.slice(0, 10).join(' '))).toEqual([
      'ip -n tsvs-router nexthop replace id 100 group 101/103 type',
      'ip -n tsvs-rs1 nexthop replace id 200 group 201/203 type',
      'ip -n tsvs-rs2 nexthop replace id 200 group 201/203 type',
    ]);
    expect(cmds[0].slice(9)).toEqual(['type', 'resilient', 'buckets', '128', 'idle_timer', '2', 'unbalanced_timer', '0']);
    expect(groupCommands(plan({ directors: 3, servers: 2, mode: 'dr', router: true, nats: false }), []).map((c) => c[8])).toEqual(['101/102/103']);
  });
});
