// cluster agent entry point: `node services/cluster/main.ts --nats URLS --node NAME …` (normally forked by tsvsd
// with an IPC channel); without a parent it prints its events as JSON lines on stdout.
import { parseClusterArgs, ClusterOptionsError, CLUSTER_USAGE } from '../../shared/cluster/options.ts';
import type { FromClusterAgent, ToClusterAgent } from '../../shared/proto/cluster.ts';
import { ClusterAgent } from './agent.ts';

let opts;
try {
  opts = parseClusterArgs(process.argv.slice(2));
} catch (e) {
  if (!(e instanceof ClusterOptionsError)) throw e;
  process.stderr.write(`${e.message}\n${CLUSTER_USAGE}\n`);
  process.exit(2);
}

const ipc = typeof process.send === 'function';
const send = (m: FromClusterAgent): void => {
  if (ipc && process.connected) process.send!(m);
  else if (!ipc) process.stdout.write(`${JSON.stringify(m, (_k, v: unknown) => (v instanceof Uint32Array ? { records: v.length / 12 } : v))}\n`);
  if (m.type === 'stopped') setImmediate(() => process.exit(0));
};
const agent = new ClusterAgent(opts, { send, attached: ipc });
process.on('message', (m: ToClusterAgent) => agent.onParent(m));
// The parent died (or closed the channel): a director without its daemon must not keep the VIPs. It leaves without a
// `bye`: its tsvsd is gone, nobody can confirm the VIPs are out of the kernel yet (a dying process's TUN holding
// device goes only when the kernel has torn it down, tens of ms after the kill on a loaded host), and a `bye` would
// let a peer add them at once — CI saw both directors hold the VIP for 19 ms. Silent, the peers take over by
// detection (150 ms).
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => void agent.stop());
process.on('SIGINT', () => void agent.stop());
await agent.start();
