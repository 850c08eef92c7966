// A cluster agent process (services/cluster/main.ts) with the test as its parent tsvsd: edits sent as config-edit,
// answers and revisions kept, seed requests answered with no table, snapshots answered empty (integration tests).
import { fork, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import type { TableOp } from '../../shared/model/ops.ts';
import type { ConfigDoc, FromClusterAgent, ToClusterAgent } from '../../shared/proto/cluster.ts';

const root = resolve(import.meta.dirname, '../..');
const NODE = join(root, 'node_modules/.bin/node');
const AGENT = join(root, 'services/cluster/main.ts');

/** A cluster agent process with this test as its parent tsvsd: edits sent as config-edit, answers and revisions kept. */
export class AgentParent {
  readonly proc: ChildProcess;
  readonly answers = new Map<number, FromClusterAgent & { type: 'config-answer' }>();
  latest: { rev: number; doc: ConfigDoc } | null = null;
  readonly logs: string[] = [];
  /** Resolves when the agent found the bucket open and without a table (it asked for a seed). */
  readonly seedRequested: Promise<void>;
  #seedRequested = (): void => {};
  #waiters = new Map<number, () => void>();
  #next = 1;

  constructor(urls: readonly string[], name: string, cluster: string, extra: readonly string[] = []) {
    this.seedRequested = new Promise((r) => (this.#seedRequested = r));
    this.proc = fork(AGENT, ['--nats', urls.join(','), '--node', name, '--cluster', cluster, ...extra], { execPath: NODE, serialization: 'advanced', stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
    this.proc.on('message', (m: FromClusterAgent) => {
      if (m.type === 'config-seed-request') {
        this.send({ type: 'config-seed', doc: null });
        this.#seedRequested();
      }
      else if (m.type === 'config-revision' && (!this.latest || m.rev > this.latest.rev)) this.latest = { rev: m.rev, doc: m.doc };
      else if (m.type === 'config-answer') {
        this.answers.set(m.id, m);
        this.#waiters.get(m.id)?.();
      } else if (m.type === 'log') this.logs.push(m.line);
      else if (m.type === 'snapshot-done') this.send({ type: 'installed' });
      else if (m.type === 'snapshot-request') this.send({ type: 'snapshot-data', id: m.id, words: new Uint32Array(0), last: true });
    });
  }

  send(m: ToClusterAgent): void {
    if (this.proc.connected) this.proc.send(m);
  }

  edit(op: TableOp): Promise<FromClusterAgent & { type: 'config-answer' }> {
    const id = this.#next++;
    return new Promise((res) => {
      this.#waiters.set(id, () => res(this.answers.get(id)!));
      this.send({ type: 'config-edit', id, op });
    });
  }

  stop(): Promise<void> {
    return new Promise((res) => {
      if (this.proc.exitCode !== null) return res();
      this.proc.once('exit', () => res());
      this.send({ type: 'stop' });
      setTimeout(() => this.proc.kill('SIGKILL'), 3000).unref();
    });
  }
}
