// The leader's only nats-server — which also holds the raft leader of the term bucket's stream — is frozen
// (SIGSTOP), five times over a real 3-node nats-server cluster: the leader releases within 1 s, the backup takes
// over every time once JetStream has elected another stream leader (4–9 s on 2.9.10), never two owners. Each run
// is measured (release, stream leader elected, takeover). Needs /usr/sbin/nats-server; run it under
// `flock /tmp/tsvs-lab.lock` (ports 43551-43573).
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { startNatsCluster, type NatsCluster } from '../../ops/nats/cluster.ts';
import { Agent, holders, now, overlaps, sleep, waitFor } from './cluster-agent-harness.ts';

const CLUSTER = 'freeze';
const STREAM = `KV_tsvs_${CLUSTER}_term`;
let nats: NatsCluster;
let agents: Agent[] = [];

beforeAll(async () => {
  nats = await startNatsCluster({ base: 43550 });
  // The term bucket exists before the first run, so its stream leader is known before the leader's server is chosen
  // (created as the agents create it: R3, history 1).
  const nc = await connect({ servers: nats.urls });
  try {
    await waitFor('the term bucket', () => new Kvm(jetstream(nc, { timeout: 2000 })).create(`tsvs_${CLUSTER}_term`, { replicas: 3, history: 1 }).then(() => true, () => false), 30_000);
  } finally {
    await nc.close();
  }
}, 60_000);

afterEach(async () => {
  await Promise.all(agents.map((a) => a.kill9()));
  agents = [];
  for (let i = 0; i < 3; i++) if (nats.nodes[i].paused) nats.resume(i);
});

afterAll(async () => {
  await Promise.all(agents.map((a) => a.kill9()));
  await nats?.stop();
});

/**
 * Five runs: d1 (priority 150) leads through one server only, d2 (100) is on the two others; d1's server is
 * SIGSTOPped. `away` false: d1 runs with --term-leader-anywhere and its server holds the term stream's leader
 * (the worst case: no CAS can succeed before JetStream elects another stream leader). `away` true (the default):
 * d1 moved the stream leader off its server when it took the lead. Returns each run's dark time (freeze → VIPs
 * granted again, to whichever agent won) and a line per run.
 */
async function freezeRuns(away: boolean, boundMs: number): Promise<{ dark: number[]; rows: string[] }> {
  const rows: string[] = [];
  const dark: number[] = [];
  let hiccups = 0;
  for (let run = 1; run <= 5; run++) {
    // A whole raft group first: freezing a node while another replica still catches up would leave no quorum.
    await waitFor('the term stream whole again', () => nats.streamHealthy(STREAM, 3), 60_000);
    const sl = await waitFor('the term stream leader', () => nats.streamLeader(STREAM), 10_000);
    // Without the step-down d1 goes on the stream leader's server; with it, on any server (d1 moves the leader off).
    // With the default, not on JetStream's meta leader either (see metaHere below): the first server from run's turn on
    // that does not hold it.
    const meta = away ? ((await nats.metaLeader()) ?? '') : '';
    let li = away ? (run - 1) % 3 : nats.nodes.findIndex((n) => n.name === sl);
    if (away && nats.nodes[li].name === meta) li = (li + 1) % 3;
    const others = nats.nodes.filter((_, i) => i !== li).map((n) => n.url);
    const d1 = new Agent('d1', CLUSTER, ['--nats', nats.urls[li], '--priority', '150', ...(away ? [] : ['--term-leader-anywhere'])]);
    const d2 = new Agent('d2', CLUSTER, ['--nats', others.join(','), '--priority', '100', ...(away ? [] : ['--term-leader-anywhere'])]);
    agents = [d1, d2];
    await waitFor('d1 leads', () => d1.holdsVips(), 20_000);
    await waitFor('both ready', async () => (await Promise.all(agents.map((a) => a.status()))).every((s) => s.ready), 20_000);
    if (away) {
      // Settled, not just moved: the agent asks the stream leader to step down right after it leads, and a raft group
      // whose leader changed a few hundred ms ago can still fail every write for seconds when a member is frozen
      // (seen once: CAS timeouts for 2.4 s). The same leader, group whole, over 1.5 s.
      let since = 0;
      let seen = '';
      await waitFor('the term stream leader off d1\'s server, settled, group whole', async () => {
        const l = (await nats.streamLeader(STREAM)) ?? '';
        const ok = l !== nats.nodes[li].name && l !== '' && (await nats.streamHealthy(STREAM, 3));
        if (!ok || l !== seen) {
          seen = ok ? l : '';
          since = Date.now();
          return false;
        }
        return Date.now() - since >= 1500;
      }, 30_000)
        .catch((e: unknown) => {
          process.stdout.write(`run ${run}: agent logs:\n${agents.map((a) => a.logs.join('\n')).join('\n')}\n`);
          throw e;
        });
    }
    // Without the step-down the stream leader should still be on d1's server; if raft moved it meanwhile, the check
    // below (held === frozen) sets the case up again.
    await sleep(300);
    const frozen = nats.nodes[li].name;
    const held = await nats.streamLeader(STREAM);
    // On this shared 2-vCPU host a stall of a server or an agent over the 125 ms isolation time happens now and
    // then: the agent then reconnects elsewhere (and leads again at once). Such a run does not set up the case
    // under test (d1 leading through the frozen server, which holds — or does not hold — the stream leader): redo it.
    const st = await d1.status();
    // With the default, JetStream's meta leader must not be on the frozen server either: while it is frozen every
    // JetStream request answers "jetstream is not enabled" until the meta group elects another (seconds; seen in CI).
    // The agent moves the term stream's leader away from its server, not the meta leader (docs/cluster.md).
    const metaHere = away && (await nats.metaLeader()) === frozen;
    if (!d1.holdsVips() || !st.nats_server.endsWith(`:${nats.nodes[li].port}`) || (held === frozen) === away || metaHere) {
      if (++hiccups > 12) throw new Error(`could not set the case up: d1 on ${st.nats_server}, leading ${d1.holdsVips()}, stream leader ${held}`);
      process.stdout.write(`run ${run}: set-up disturbed (d1 on ${st.nats_server}, leading ${d1.holdsVips()}, stream leader ${held}${metaHere ? ', meta leader on it' : ''}): again\n`);
      await Promise.all(agents.map((a) => a.kill9()));
      agents = [];
      run--;
      continue;
    }
    const t0 = now();
    nats.pause(li);
    let streamLeaderAt = NaN;
    let took = true;
    const regranted = (): number[] => [...d1.grantsAfter(t0), ...d2.grantsAfter(t0)].sort((x, y) => x - y);
    await waitFor('the VIPs owned again', async () => {
      if (!away && Number.isNaN(streamLeaderAt)) {
        const l = await nats.streamLeader(STREAM);
        if (l && l !== frozen) streamLeaderAt = now();
      }
      return regranted().length > 0;
    }, boundMs + 5000).catch(() => (took = false));
    const rel = d1.releasesAfter(t0)[0];
    const dump = (): void => void process.stdout.write(`run ${run} (t0 ${new Date(t0).toISOString().slice(11, 23)}): agent logs:\n${agents.map((a) => a.logs.join('\n')).join('\n')}\n`);
    const grant = regranted()[0];
    const who = d2.grantsAfter(t0)[0] === grant ? 'd2' : 'd1';
    if (!took || rel === undefined || !(rel < grant) || !(grant - t0 < boundMs) || rel - t0 >= 1000) dump();
    rows.push(`run ${run} (froze ${frozen}, stream leader ${held}): d1 released ${(rel - t0).toFixed(0)} ms,${away ? '' : ` new stream leader seen ${(streamLeaderAt - t0).toFixed(0)} ms,`} ${who} granted ${(grant - t0).toFixed(0)} ms`);
    expect(took, `run ${run}: the VIPs owned again`).toBe(true);
    expect(rel - t0).toBeLessThan(1000);
    expect(rel).toBeLessThan(grant);
    expect(grant - t0).toBeLessThan(boundMs);
    dark.push(grant - t0);
    nats.resume(li);
    // Whoever leads now keeps or hands over leadership (d1 has the higher priority and preempts): one owner.
    await sleep(1000);
    await waitFor('one owner after the server resumes', () => holders(agents).length === 1, 20_000);
    if (overlaps(agents, 1) !== 0) {
      dump();
      for (const a of agents) process.stdout.write(`${a.name}: ${a.events.filter((e) => e.m.type === 'vip-grant' || e.m.type === 'vip-release').map((e) => `${e.m.type}@${new Date(e.t).toISOString().slice(17, 23)}`).join(' ')}\n`);
    }
    expect(overlaps(agents, 1)).toBe(0);
    await Promise.all(agents.map((a) => a.kill9()));
    agents = [];
  }
  return { dark, rows };
}

it('cluster freeze: the leader\'s only server, holding the term stream\'s leader, SIGSTOPped 5 times → 5 takeovers once JetStream elects a stream leader; never two owners', async () => {
  // JetStream's raft election of a new stream leader is nats-server's: 4–9 s measured here, 18.8 s once under a
  // loaded CI run. The bound only says that a takeover follows it.
  const { dark, rows } = await freezeRuns(false, 30_000);
  process.stdout.write(`cluster freeze, the term stream leader on the frozen server (--term-leader-anywhere), 5 runs:\n${rows.join('\n')}\n`);
  expect(dark.length).toBe(5);
}, 300_000);

it('cluster freeze: with the term stream\'s leader kept off the leader\'s server (default), 5 freezes → 5 takeovers within 2 s; never two owners', async () => {
  // Typically 120–150 ms; the bound leaves room for one KV timeout (300 ms) and a retry of the term CAS while the
  // raft group settles under load (CI measured 1131 ms once, a CAS timeout included).
  const { dark, rows } = await freezeRuns(true, 2000);
  process.stdout.write(`cluster freeze, the term stream leader kept away (default), 5 runs:\n${rows.join('\n')}\n`);
  expect(dark.length).toBe(5);
}, 300_000);
