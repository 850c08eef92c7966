// The cluster agent's settings: parsed from argv (`--nats URL[,URL]` …) with every problem collected, defaults
// that fit a director (25 ms heartbeats, 7 missed = dead in 175 ms), and checks that keep the timers consistent.

/** Everything the agent needs. Times in ms. */
export interface ClusterOptions {
  /** NATS server URLs. */
  nats: string[];
  /** NATS credentials file (.creds), or '' for none. */
  creds: string;
  /** This node's name: [A-Za-z0-9_-]{1,32}. */
  node: string;
  /** Cluster name: [A-Za-z0-9_-]{1,32}; part of every subject and of the KV bucket name. */
  cluster: string;
  /** 1..255, higher wins. */
  priority: number;
  nopreempt: boolean;
  preemptDelayMs: number;
  heartbeatMs: number;
  missBeats: number;
  /** Own heartbeats missing this long = cut off from NATS; default {@link defaultIsolationMs}. */
  isolationMs: number;
  startupWaitMs: number;
  /** Replicas of the term bucket (3 on a 3-node NATS cluster). */
  kvReplicas: number;
  /** Timeout of every KV operation, ms (a takeover retries its CAS at this pace while the store is unavailable). */
  kvTimeoutMs: number;
  /** While leading, keep the term stream's raft leader off this node's NATS server (see the agent). */
  termLeaderAway: boolean;
  /** Sync batching: records per batch and longest wait, ms (0: the records of one event-loop turn form a batch). */
  batchRecords: number;
  batchDelayMs: number;
  /** Entries the resend queue keeps. */
  resendEntries: number;
  /** Records per snapshot chunk. */
  snapshotChunk: number;
  vips: string[];
}

/**
 * The isolation time that leaves a margin between a cut-off leader's release and a peer's takeover. A peer declares
 * the leader dead `heartbeat × missBeats` after the last heartbeat it received, and that heartbeat may have left up
 * to one interval before the cut, while the leader's last own echo may come right at the cut: the leader must let
 * go at least one heartbeat earlier than detection, plus a guard for timer and event-queue delays (the larger of
 * one heartbeat and 35 ms). Never below two heartbeats (one late echo is no isolation). 25 ms × 7 → 115 ms: a leader whose server dies
 * must reconnect elsewhere and hear its own echo within it (90 ms, with 25 ms × 6, was too short in CI).
 */
export function defaultIsolationMs(heartbeatMs: number, missBeats: number): number {
  const detection = heartbeatMs * missBeats;
  return Math.max(2 * heartbeatMs, detection - heartbeatMs - Math.max(heartbeatMs, 35));
}

export function clusterDefaults(): ClusterOptions {
  return {
    nats: [], creds: '', node: '', cluster: 'tsvs', priority: 100, nopreempt: false, preemptDelayMs: 0, heartbeatMs: 25, missBeats: 7,
    isolationMs: 0, startupWaitMs: 0, kvReplicas: 3, kvTimeoutMs: 300, termLeaderAway: true, batchRecords: 1024, batchDelayMs: 0, resendEntries: 262_144,
    snapshotChunk: 16_384, vips: [],
  };
}

/** A usage problem; `problems` lists every one found. */
export class ClusterOptionsError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`cluster agent: ${problems.join('; ')}`);
    this.name = 'ClusterOptionsError';
    this.problems = problems;
  }
}

export const CLUSTER_USAGE = `usage: cluster-agent --nats URL[,URL...] --node NAME [options]
  --nats URLS            NATS servers, comma-separated (nats://127.0.0.1:4222)
  --creds FILE           NATS credentials file
  --node NAME            this director's name ([A-Za-z0-9_-], ≤32)
  --cluster NAME         cluster name (default tsvs)
  --priority N           1..255, higher leads (default 100)
  --nopreempt            never take leadership from a live lower-priority leader
  --preempt-delay MS     wait before preempting (default 0)
  --heartbeat MS         heartbeat interval (default 50)
  --miss-beats N         missed heartbeats before a peer is dead (default 3)
  --isolation MS         own heartbeats missing this long = cut off, release (default heartbeat × (miss-beats − 0.5))
  --startup-wait MS      listen for peers before leading (default heartbeat × miss-beats × 2)
  --kv-replicas N        replicas of the term bucket (default 3)
  --kv-timeout MS        KV operation timeout (default 300)
  --term-leader-anywhere do not move the term stream's raft leader off the leader's own NATS server
  --batch N              records per sync batch (default 1024)
  --batch-delay MS       longest batching delay; 0 = seal at the end of each event-loop turn (default 0)
  --resend-entries N     resend queue size (default 262144)
  --snapshot-chunk N     records per snapshot chunk (default 16384)
  --vip ADDR             a VIP the leader owns (repeatable, or comma-separated)`;

const NAME = /^[A-Za-z0-9_-]{1,32}$/;

/** Parses argv (without node and script). Throws ClusterOptionsError listing every problem. */
export function parseClusterArgs(argv: readonly string[]): ClusterOptions {
  const o = clusterDefaults();
  const problems: string[] = [];
  let isolationSet = false;
  let startupSet = false;
  const num = (flag: string, v: string | undefined, min: number, max: number): number => {
    const n = Number(v);
    if (v === undefined || v === '' || !Number.isInteger(n) || n < min || n > max) {
      problems.push(`${flag} needs an integer in ${min}..${max}, got ${v ?? 'nothing'}`);
      return min;
    }
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    switch (a) {
      case '--nats': o.nats.push(...(v ?? '').split(',').filter(Boolean)); i++; break;
      case '--creds': o.creds = v ?? ''; i++; break;
      case '--node': o.node = v ?? ''; i++; break;
      case '--cluster': o.cluster = v ?? ''; i++; break;
      case '--priority': o.priority = num(a, v, 1, 255); i++; break;
      case '--nopreempt': o.nopreempt = true; break;
      case '--preempt-delay': o.preemptDelayMs = num(a, v, 0, 3_600_000); i++; break;
      case '--heartbeat': o.heartbeatMs = num(a, v, 5, 10_000); i++; break;
      case '--miss-beats': o.missBeats = num(a, v, 2, 100); i++; break;
      case '--isolation': o.isolationMs = num(a, v, 1, 1_000_000); isolationSet = true; i++; break;
      case '--startup-wait': o.startupWaitMs = num(a, v, 0, 600_000); startupSet = true; i++; break;
      case '--kv-replicas': o.kvReplicas = num(a, v, 1, 5); i++; break;
      case '--kv-timeout': o.kvTimeoutMs = num(a, v, 50, 60_000); i++; break;
      case '--term-leader-anywhere': o.termLeaderAway = false; break;
      case '--batch': o.batchRecords = num(a, v, 1, 16_384); i++; break;
      case '--batch-delay': o.batchDelayMs = num(a, v, 0, 1000); i++; break;
      case '--resend-entries': o.resendEntries = num(a, v, 1, 1 << 24); i++; break;
      case '--snapshot-chunk': o.snapshotChunk = num(a, v, 1, 16_384); i++; break;
      case '--vip': o.vips.push(...(v ?? '').split(',').filter(Boolean)); i++; break;
      default: problems.push(`unknown option ${a}`);
    }
  }
  if (o.nats.length === 0) problems.push('--nats is required');
  for (const u of o.nats) if (!/^(nats|tls):\/\/[^\s]+$/.test(u) && !/^[\w.-]+:\d+$/.test(u)) problems.push(`bad NATS URL ${u}`);
  if (!NAME.test(o.node)) problems.push(`--node must match ${NAME.source}, got "${o.node}"`);
  if (!NAME.test(o.cluster)) problems.push(`--cluster must match ${NAME.source}, got "${o.cluster}"`);
  for (const v of o.vips) if (!/^\d{1,3}(\.\d{1,3}){3}(\/\d{1,2})?$/.test(v)) problems.push(`bad VIP ${v}`);
  if (!isolationSet) o.isolationMs = defaultIsolationMs(o.heartbeatMs, o.missBeats);
  if (!startupSet) o.startupWaitMs = o.heartbeatMs * o.missBeats * 2;
  const detection = o.heartbeatMs * o.missBeats;
  if (o.isolationMs + o.heartbeatMs >= detection) {
    problems.push(`--isolation ${o.isolationMs} plus one heartbeat (${o.heartbeatMs}) must be shorter than heartbeat × miss-beats (${detection}): `
      + `a leader cut off from NATS would still hold the VIPs when a peer takes them${isolationSet ? '' : '; raise --miss-beats'}`);
  }
  if (problems.length) throw new ClusterOptionsError(problems);
  return o;
}
