// The forwarding worker process: one per CPU, started and supervised by tsvsd (see worker.ts for what it does).
import type { FromWorker, ToWorker } from '../../shared/proto/worker.ts';
import { WORKER_USAGE, parseWorkerArgs } from './args.ts';
import { startWorker } from './worker.ts';

const o = parseWorkerArgs(process.argv.slice(2));
if ('error' in o) {
  process.stderr.write(`worker: ${o.error}\n${WORKER_USAGE}\n`);
  process.exit(2);
}
const send = (m: FromWorker): void => {
  if (process.send) process.send(m);
};
let w;
try {
  w = startWorker(o, send);
} catch (e) {
  process.stderr.write(`worker ${o.index}: ${(e as Error).message}\n`);
  process.exit(1);
}
const worker = w;
const exit = (): void => {
  worker.stop();
  process.exit(0);
};
process.on('message', (msg: ToWorker) => {
  worker.message(msg);
  if (msg.type === 'stop') process.exit(0);
});
process.on('SIGTERM', exit);
process.on('SIGINT', exit);
process.on('disconnect', exit);
