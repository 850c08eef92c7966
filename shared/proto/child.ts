// tsvsd's children (forwarding workers, the cluster agent, the health checker): how tsvsd starts one, and the
// small envelope every child speaks on its IPC channel besides its own payload messages.

/** Version of the child envelope; a child announces it in `hello` and tsvsd refuses another. */
export const CHILD_PROTO_VERSION = 1;

/** Kinds of children tsvsd runs. Each kind defines its payload messages in its own shared/proto file. */
export const ChildKind = { worker: 'worker', cluster: 'cluster', health: 'health', telemetry: 'telemetry' } as const;
export type ChildKind = (typeof ChildKind)[keyof typeof ChildKind];

/**
 * How to run one child. tsvsd spawns `node [nodeArgs] entry [args]` (under `taskset -c cpu` when `cpu` is set)
 * with an IPC channel, restarts it when it exits (backoff doubling from `minBackoffMs` to `maxBackoffMs` while it
 * dies within `stableMs` of starting, reset once it lived longer), and stops it with SIGTERM, then SIGKILL after
 * `graceMs`.
 */
export interface ChildSpec {
  /** Unique name for logs and status, e.g. "worker 0", "cluster". */
  name: string;
  kind: ChildKind;
  /** Path of the child's main module (a .ts file run by node). */
  entry: string;
  args: readonly string[];
  /** Pin to this CPU (taskset); default: not pinned. */
  cpu?: number;
  /** Extra environment. */
  env?: Readonly<Record<string, string>>;
  /** Extra node flags. */
  nodeArgs?: readonly string[];
  /** Restart backoff bounds, ms. Defaults 100 and 5000. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** A child that lived this long (ms) restarts after minBackoffMs again. Default 10000. */
  stableMs?: number;
  /** SIGTERM → SIGKILL grace on stop, ms. Default 2000. */
  graceMs?: number;
  /** IPC serialization: 'json' (default) or 'advanced' (structured clone: typed arrays travel as such). */
  serialization?: 'json' | 'advanced';
}

/**
 * The envelope messages any child may send, besides its kind's payload messages (which carry other `type`s):
 * - hello: first message, names the child and its envelope version;
 * - ready: the child is serving (a worker's `ready` extends it: joined its fanout groups, shard attached);
 * - log: one line for tsvsd's log (children do not write tsvsd's log themselves);
 * - exit: the child is about to exit on its own, and why (a crash sends nothing: the exit status tells).
 */
export type ChildEnvelope =
  | { type: 'hello'; v: number; kind: ChildKind; pid: number }
  | { type: 'ready'; pid: number }
  | { type: 'log'; line: string }
  | { type: 'exit'; code: number; reason: string };

/** One child as tsvsd reports it. */
export interface ChildStatus {
  name: string;
  kind: ChildKind;
  /** Current pid, 0 while none runs (starting, or waiting to restart). */
  pid: number;
  alive: boolean;
  restarts: number;
  /** Wall-clock ms of the current (or last) start. */
  startedAt: number;
  /** How the last incarnation ended ("code 1", "SIGKILL"), or null if none ended yet. */
  lastExit: string | null;
}

/** True when `m` is a child envelope message rather than a kind's payload. */
export function isChildEnvelope(m: unknown): m is ChildEnvelope {
  if (m === null || typeof m !== 'object') return false;
  const t = (m as { type?: unknown }).type;
  return t === 'hello' || t === 'ready' || t === 'log' || t === 'exit';
}
