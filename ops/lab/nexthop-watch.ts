// The lab router's nexthop watcher (runs in tsvs-router): probes every director's tsvsd over UDP every 50 ms and
// keeps the VIP's ECMP route (and, with NAT, the real servers' multipath default routes) on the directors that
// answer "up" — the lab's stand-in for BGP with BFD. Usage: nexthop-watch.ts --directors N --servers N --mode M
// [--probe-port P] [--interval MS] [--miss N] [--rise N].
import { spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { parseArgs } from 'node:util';
import { DEFAULT_PROBE_PORT, decodeProbeReply, encodeProbeRequest } from '../../shared/proto/nexthop-probe.ts';
import { NexthopTracker, TRACKER_DEFAULTS, groupCommands } from './nexthops.ts';
import { directorFrontIp, plan, validateOptions } from './plan.ts';
import type { LabMode } from './plan.ts';

const { values: v } = parseArgs({
  options: {
    directors: { type: 'string' },
    servers: { type: 'string' },
    mode: { type: 'string' },
    'probe-port': { type: 'string' },
    interval: { type: 'string' },
    miss: { type: 'string' },
    rise: { type: 'string' },
  },
  strict: true,
});
const options = validateOptions({ directors: Number(v.directors ?? 1), servers: Number(v.servers ?? 2), mode: (v.mode ?? 'nat') as LabMode, router: true, nats: false });
const p = plan(options);
const port = Number(v['probe-port'] ?? DEFAULT_PROBE_PORT);
const intervalMs = Number(v.interval ?? TRACKER_DEFAULTS.intervalMs);
const tracker = new NexthopTracker(options.directors, { intervalMs, missLimit: Number(v.miss ?? TRACKER_DEFAULTS.missLimit), rise: Number(v.rise ?? TRACKER_DEFAULTS.rise) });
const addrs = Array.from({ length: options.directors }, (_, i) => directorFrontIp(i + 1));
const index = new Map(addrs.map((a, i) => [a, i]));

function log(line: string): void {
  process.stdout.write(`${new Date().toISOString()} nexthop-watch: ${line}\n`);
}

const sock = createSocket('udp4');
let bad = 0;
sock.on('message', (msg, rinfo) => {
  const i = index.get(rinfo.address);
  const r = decodeProbeReply(msg);
  if (i === undefined || r === null) {
    if (bad++ % 100 === 0) log(`ignored a datagram from ${rinfo.address}:${rinfo.port} (not a probe reply from a director)`);
    return;
  }
  tracker.answer(i, r.seq, r.up);
});
sock.on('error', (e) => log(`socket error: ${e.message}`));
sock.bind(0, '10.200.0.1', () => {
  log(`probing ${addrs.join(' ')} on UDP ${port} every ${intervalMs} ms`);
  setInterval(() => {
    const changes = tracker.round();
    if (changes.length) {
      const live = tracker.live();
      for (const c of changes) log(`d${c.index + 1} ${c.live ? 'up' : 'down'} (${c.why})`);
      for (const cmd of groupCommands(p, live)) {
        const r = spawnSync(cmd[0], cmd.slice(1), { encoding: 'utf8' });
        if (r.status !== 0) log(`\`${cmd.join(' ')}\` failed: ${(r.stderr ?? '').trim()}`);
      }
      log(`route: ${live.length ? live.map((i) => `d${i + 1}`).join(' ') : 'no director answers: every nexthop kept'}`);
    }
    const req = encodeProbeRequest(tracker.seq);
    for (const a of addrs) sock.send(req, port, a);
  }, intervalMs);
});
process.on('SIGTERM', () => process.exit(0));
