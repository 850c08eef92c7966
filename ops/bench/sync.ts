// npm run bench -- sync [--seconds 5] [--rate 50000] [--snapshot 1000000] [--base 44100] [--batch-delay MS]:
// connection-sync figures between two cluster agents (services/cluster) over a real 3-node nats-server cluster on
// loopback (ports base+1..base+23, default 44101-44123); --batch-delay is passed to the agents (default theirs).
// This process is both agents' parent (as tsvsd would be): it feeds records to d1 and counts what d2 installs.
// Phases: (1) throughput with 0 lost (flow-controlled: at most `window` records in flight), CPU µs per update of
// both agents from /proc; (2) lag p50/p99 at a paced rate, from d2's batch-lag histogram (fresh pair); (3) a new
// director d3 pulls a snapshot of `--snapshot` entries from d1. Ends with one JSON line. Run under
// `flock /tmp/tsvs-lab.lock`.
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { startNatsCluster, type NatsCluster } from '../nats/cluster.ts';
import type { ClusterStatus, FromClusterAgent, ToClusterAgent } from '../../shared/proto/cluster.ts';
import { RECORD_WORDS, RecordOp, writeRecord } from '../../shared/sync/record.ts';
import { log, NODE, ROOT, table } from './_lib.ts';

const CLK_TCK = 100;

class BenchAgent {
  readonly proc: ChildProcess;
  installed = 0;
  snapshotDone: { entries: number; ms: number } | null = null;
  leader = false;
  ready = false;
  /** The state this director serves when a peer pulls a snapshot. */
  state: Uint32Array = new Uint32Array(0);
  private waiters = new Map<number, (s: ClusterStatus) => void>();
  private id = 1;

  constructor(name: string, priority: number, urls: string[], extra: string[] = []) {
    this.proc = fork(`${ROOT}services/cluster/main.ts`, ['--nats', urls.join(','), '--node', name, '--cluster', 'bench', '--priority', String(priority), '--batch', '4096', '--snapshot-chunk', '16384', ...extra], {
      execPath: NODE, serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.proc.on('message', (m: FromClusterAgent) => {
      switch (m.type) {
        case 'install':
          this.installed += m.words.length / RECORD_WORDS;
          break;
        case 'snapshot-done':
          this.snapshotDone = { entries: m.entries, ms: m.ms };
          this.send({ type: 'installed' });
          break;
        case 'snapshot-request': {
          const chunk = 65_536 * RECORD_WORDS;
          for (let off = 0; off < this.state.length || off === 0; off += chunk) {
            const end = Math.min(this.state.length, off + chunk);
            this.send({ type: 'snapshot-data', id: m.id, words: this.state.slice(off, end), last: end >= this.state.length });
            if (end >= this.state.length) break;
          }
          break;
        }
        case 'log':
          // The agents' own account (reconnects, gaps, resyncs): a run that loses records explains itself.
          log(`  ${m.line}`);
          break;
        case 'vip-grant':
          this.leader = true;
          break;
        case 'vip-release':
          this.leader = false;
          break;
        case 'status':
          this.waiters.get(m.id)?.(m.status);
          this.waiters.delete(m.id);
          break;
        default:
          break;
      }
    });
  }

  send(m: ToClusterAgent): void {
    if (this.proc.connected) this.proc.send(m);
  }

  status(): Promise<ClusterStatus> {
    const id = this.id++;
    return new Promise((res, rej) => {
      this.waiters.set(id, res);
      this.send({ type: 'status-request', id });
      setTimeout(() => rej(new Error('no status')), 5000);
    });
  }

  /** utime + stime of the agent process, µs. */
  cpuUs(): number {
    const f = readFileSync(`/proc/${this.proc.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(f[11]) + Number(f[12])) / CLK_TCK) * 1e6;
  }

  kill(): void {
    this.proc.kill('SIGKILL');
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, f: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const t0 = Date.now();
  while (!(await f())) {
    if (Date.now() - t0 > ms) throw new Error(`bench sync: timed out waiting for ${what}`);
    await sleep(5);
  }
}

function records(n: number, start: number): Uint32Array {
  const w = new Uint32Array(n * RECORD_WORDS);
  for (let i = 0; i < n; i++) {
    const j = start + i;
    writeRecord(w, i * RECORD_WORDS, {
      op: RecordOp.UPDATE, proto: 6, state: 1 + (j % 10), flags: 0x0100, shard: 0, caddr: 0xc6330000 + ((j >>> 16) & 0xffff), cport: j & 0xffff,
      vaddr: 0x0a09000a, vport: 80, daddr: 0x0a090165, dport: 80, fwmark: 0, timeoutMs: 900_000, remainingMs: 899_000,
    });
  }
  return w;
}

async function pair(urls: string[], extra: string[]): Promise<[BenchAgent, BenchAgent]> {
  const a = new BenchAgent('d1', 150, [urls[0]], extra);
  const b = new BenchAgent('d2', 100, [urls[1]], extra);
  await until('d1 leads', () => a.leader, 30_000);
  await until('both ready', async () => (await a.status()).ready && (await b.status()).ready, 30_000);
  return [a, b];
}

export async function main(args: string[]): Promise<void> {
  const arg = (k: string, d: number): number => {
    const i = args.indexOf(k);
    return i >= 0 ? Number(args[i + 1]) : d;
  };
  const seconds = arg('--seconds', 5);
  const rate = arg('--rate', 50_000);
  const snapN = arg('--snapshot', 1_000_000);
  const window = arg('--window', 100_000);
  const base = arg('--base', 44100);
  const delayAt = args.indexOf('--batch-delay');
  const extra = delayAt >= 0 ? ['--batch-delay', args[delayAt + 1]] : [];
  log(`starting a 3-node nats-server cluster on 127.0.0.1:${base + 1}-${base + 3}${extra.length ? `; agents with ${extra.join(' ')}` : ''}`);
  const nats: NatsCluster = await startNatsCluster({ base });
  const procs: BenchAgent[] = [];
  try {
    // (1) throughput, flow-controlled, 0 lost
    let [a, b] = await pair(nats.urls, extra);
    procs.push(a, b);
    // 32 chunks of distinct entries (131072, within the resend queue): a gap repaired by a resend carries the
    // entries it missed. (One chunk sent over and over made every resend empty — each entry's latest state had
    // already come in a later batch — and counted those updates as lost.)
    const chunks = Array.from({ length: 32 }, (_, i) => records(4096, i * 4096));
    const cpu0 = a.cpuUs() + b.cpuUs();
    const t0 = performance.now();
    let sent = 0;
    while (performance.now() - t0 < seconds * 1000) {
      if (sent - b.installed < window) {
        a.send({ type: 'publish', words: chunks[(sent / 4096) % 32] });
        sent += 4096;
        if (sent % (4096 * 8) === 0) await new Promise((r) => setImmediate(r));
      } else {
        await sleep(1);
      }
    }
    // Wait for the tail (and any NACK repair); what never arrives is reported as lost, not hidden.
    await until('d2 installed everything', () => b.installed >= sent, 10_000).catch(() => undefined);
    const elapsed = (performance.now() - t0) / 1000;
    const cpuUs = a.cpuUs() + b.cpuUs() - cpu0;
    log(`throughput phase: sent ${sent}, installed ${b.installed}, ${elapsed.toFixed(2)} s, agents' CPU ${(cpuUs / 1e6).toFixed(2)} s`);
    const st1 = await b.status();
    const updatesPerS = Math.round(b.installed / elapsed);
    const lost = Math.max(0, sent - b.installed);
    const cpuPerUpdate = Math.round((cpuUs / b.installed) * 100) / 100;
    a.kill();
    b.kill();
    await sleep(300);

    // (2) lag at a paced rate, fresh pair
    [a, b] = await pair(nats.urls, extra);
    procs.push(a, b);
    const small = records(100, 0);
    const t1 = performance.now();
    let paced = 0;
    while (performance.now() - t1 < seconds * 1000) {
      const due = Math.floor(((performance.now() - t1) / 1000) * rate);
      while (paced + 100 <= due) {
        a.send({ type: 'publish', words: small });
        paced += 100;
      }
      await sleep(1);
    }
    await until('d2 installed the paced records', () => b.installed >= paced, 10_000).catch(() => undefined);
    const st2 = await b.status();

    // (3) snapshot of snapN entries from d1 to a new director
    a.state = records(snapN, 0);
    const c = new BenchAgent('d3', 50, [nats.urls[2]]);
    procs.push(c);
    await until('d3 pulled the snapshot', () => c.snapshotDone !== null && c.installed >= snapN, 120_000);
    const snap = c.snapshotDone!;

    const out = {
      updates_per_s: updatesPerS, lost, gaps: st1.sync.gaps, resyncs: st1.sync.resyncs, cpu_us_per_update: cpuPerUpdate,
      rate_paced: rate, lag_p50_ms: st2.sync.lag_p50_ms, lag_p99_ms: st2.sync.lag_p99_ms, paced_lost: Math.max(0, paced - b.installed),
      snapshot_entries: snap.entries, snapshot_ms: snap.ms,
    };
    table([
      ['figure', 'value'],
      ['updates/s d1→d2 (0 lost, flow-controlled)', out.updates_per_s],
      ['lost / gaps / resyncs', `${out.lost} / ${out.gaps} / ${out.resyncs}`],
      ['CPU µs per update (both agents)', out.cpu_us_per_update],
      [`lag p50 / p99 at ${rate}/s, ms`, `${out.lag_p50_ms} / ${out.lag_p99_ms}`],
      [`snapshot of ${snap.entries} entries, ms`, out.snapshot_ms],
    ]);
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } finally {
    for (const p of procs) p.kill();
    await nats.stop();
  }
}
