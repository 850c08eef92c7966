// tsvs-telemetry: the exporter child of tsvsd. Tails the workers' decision rings and exports sampled decisions and
// control events as OpenTelemetry spans over OTLP http/protobuf, so OTel never runs on tsvsd's loop or a worker.
//   node services/telemetry/main.ts [--ring PATH]... [--ring-dir DIR] [--otlp URL] [--trace-ratio R]
//        [--poll-ms N] [--poll-max-ms N] [--stats-ms N] [--queue N] [--export-delay-ms N]
import { parseArgs } from 'node:util';
import { traceSettings, TraceConfigError } from '../../shared/telemetry/attributes.ts';
import type { FromTelemetry, ToTelemetry } from '../../shared/proto/telemetry.ts';
import { SpanSink } from './exporter.ts';
import { RingTail } from './tail.ts';
import { nextPollDelay } from './poll-delay.ts';

const USAGE = 'usage: telemetry [--ring PATH]... [--ring-dir DIR] [--otlp URL] [--trace-ratio R] [--poll-ms N] [--poll-max-ms N] [--stats-ms N] [--queue N] [--export-delay-ms N]\n';

function send(m: FromTelemetry): void {
  if (process.send && process.connected) process.send(m);
}

function log(line: string): void {
  if (process.send && process.connected) send({ type: 'log', line });
  else process.stderr.write(`telemetry: ${line}\n`);
}

function intOpt(v: string | undefined, name: string, dflt: number, min: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < min) {
    process.stderr.write(`telemetry: ${name.startsWith('OTEL_') ? name : `--${name}`} ${v}: not an integer >= ${min}\n${USAGE}`);
    process.exit(2);
  }
  return n;
}

/** An environment variable's value, or undefined when unset or empty. */
function envInt(name: string): string | undefined {
  const v = process.env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

let args;
try {
  args = parseArgs({
    options: {
      ring: { type: 'string', multiple: true },
      'ring-dir': { type: 'string' },
      otlp: { type: 'string' },
      'trace-ratio': { type: 'string' },
      'poll-ms': { type: 'string' },
      'poll-max-ms': { type: 'string' },
      'stats-ms': { type: 'string' },
      queue: { type: 'string' },
      'export-delay-ms': { type: 'string' },
    },
    strict: true,
  }).values;
} catch (e) {
  process.stderr.write(`telemetry: ${(e as Error).message}\n${USAGE}`);
  process.exit(2);
}

let settings;
try {
  settings = traceSettings({ otlp: args.otlp, ratio: args['trace-ratio'] }, process.env);
} catch (e) {
  if (!(e instanceof TraceConfigError)) throw e;
  process.stderr.write(`telemetry: ${e.message}\n`);
  process.exit(2);
}

/** Shortest and longest sleep between two polls of the rings (the delay adapts to how fast they fill). */
const pollMs = intOpt(args['poll-ms'], 'poll-ms', 20, 1);
const pollMaxMs = Math.max(pollMs, intOpt(args['poll-max-ms'], 'poll-max-ms', 200, 1));
const statsMs = intOpt(args['stats-ms'], 'stats-ms', 1000, 10);
// The batch delay: --export-delay-ms, else OTEL_BSP_SCHEDULE_DELAY (the SDK's batch processor variable), else 1 s.
const delayMs = intOpt(args['export-delay-ms'] ?? envInt('OTEL_BSP_SCHEDULE_DELAY'), args['export-delay-ms'] !== undefined ? 'export-delay-ms' : 'OTEL_BSP_SCHEDULE_DELAY', 1000, 1);
const sink = new SpanSink({ settings, maxQueue: intOpt(args.queue, 'queue', 8192, 1), delayMs });
const tail = new RingTail(args.ring ?? [], args['ring-dir'] ?? null, log);
tail.rescan();

const onRecord = sink.sampled.bind(sink);
const onLoss = sink.ringLoss.bind(sink);
const keep = sink.keep;
const onSkip = sink.skipped;
let lastPoll = Date.now();
let lastRescan = lastPoll;
let delay = pollMs;
let poller: NodeJS.Timeout | null = null;
// One timer, re-armed after each poll with a delay that follows the rings' fill rate: a few wake-ups a second at
// thousands of decisions per second, never more than one per --poll-ms, aiming at a quarter of a ring between polls.
const pollOnce = (): void => {
  if (stopping) return;
  const now = Date.now();
  if (now - lastRescan >= 1000) {
    lastRescan = now;
    tail.rescan();
  }
  const fill = tail.poll(onRecord, onLoss, keep, onSkip);
  delay = nextPollDelay(delay, now - lastPoll, fill, pollMs, pollMaxMs);
  lastPoll = now;
  poller = setTimeout(pollOnce, delay);
};
poller = setTimeout(pollOnce, pollMs);
const reporter = setInterval(() => send({ type: 'stats', stats: sink.snapshot() }), statsMs);

let stopping = false;
async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  if (poller !== null) clearTimeout(poller);
  clearInterval(reporter);
  tail.poll(onRecord, onLoss, keep, onSkip);
  await sink.shutdown();
  send({ type: 'stats', stats: sink.snapshot() });
  tail.close();
  process.exit(code);
}

process.on('message', (m: ToTelemetry) => {
  if (m.type === 'rings') {
    tail.setPaths(m.paths);
    tail.rescan();
  } else if (m.type === 'control-event') sink.control(m.event);
  else if (m.type === 'stop') void stop(0);
});
process.on('disconnect', () => void stop(0));
process.once('SIGTERM', () => void stop(0));
process.once('SIGINT', () => void stop(0));
log(`started: ${settings.tracesUrl ?? 'no OTLP endpoint (counting only)'}, ratio ${settings.ratio}, ${tail.count} ring(s)`);
send({ type: 'ready', pid: process.pid, tracesUrl: settings.tracesUrl, ratio: settings.ratio });
