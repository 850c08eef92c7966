// An ARP watcher for failover tests: in a lab node (the client), tcpdump records every ARP frame about an address
// (the VIP) while arping keeps asking for it by broadcast; the analysis says which MAC answered when, and whether a
// request was ever answered by two MACs (two owners at once).
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { netnsOf } from './plan.ts';

/** One ARP frame about the watched address, as tcpdump printed it. */
export interface ArpEvent {
  /** Epoch ms (tcpdump -tt). */
  at: number;
  /** 'request': someone asks who has the address; 'reply': MAC answers for it; 'gratuitous': MAC announces it. */
  kind: 'request' | 'reply' | 'gratuitous';
  /** The MAC that answers or announces (requests: the asker's MAC). */
  mac: string;
  /** Requests: the asker's IPv4 address. */
  from?: string;
}

const MAC = '([0-9a-f]{2}(?::[0-9a-f]{2}){5})';

/**
 * Parses one line of `tcpdump -n -l -e -tt arp` about `ip`; null for lines about other addresses or not ARP.
 * Handles `Request who-has IP tell X`, `Reply IP is-at MAC` and `Announcement IP` (tcpdump's word for a gratuitous
 * request), with the Ethernet source MAC from `-e`.
 */
export function parseTcpdumpArp(line: string, ip: string): ArpEvent | null {
  const head = new RegExp(`^(\\d+\\.\\d+) ${MAC} > ${MAC}`).exec(line);
  if (!head) return null;
  const at = Math.round(Number(head[1]) * 1000);
  const src = head[2];
  const esc = ip.replace(/\./g, '\\.');
  const reply = new RegExp(`Reply ${esc} is-at ${MAC}`).exec(line);
  if (reply) return { at, kind: 'reply', mac: reply[1] };
  if (new RegExp(`Announcement ${esc}(?:,|\\s|$)`).test(line)) return { at, kind: 'gratuitous', mac: src };
  const req = new RegExp(`Request who-has ${esc}(?: \\(${MAC}\\))? tell (\\d+\\.\\d+\\.\\d+\\.\\d+)`).exec(line);
  if (req) return req[2] === ip ? { at, kind: 'gratuitous', mac: src } : { at, kind: 'request', mac: src, from: req[2] };
  return null;
}

/** What the watcher saw. */
export interface ArpReport {
  /** Requests for the address sent by the asker. */
  requests: number;
  /** Requests that got at least one answer. */
  answered: number;
  /** Requests answered by more than one MAC (before the next request): two owners at once. */
  overlaps: { at: number; macs: string[] }[];
  /** Every MAC that answered or announced, with its first and last time (epoch ms). */
  macs: { mac: string; first: number; last: number; answers: number }[];
  /** Answers (replies and announcements) in time order, collapsed into runs of one MAC: who owned it when. */
  owners: { mac: string; from: number; to: number }[];
  /** Longest time between two answered requests, ms (a gap without an owner, as the asker saw it). */
  max_unanswered_ms: number;
}

/**
 * Analyses ARP events (any order): a request's answers are the replies from its time until the next request
 * (at most `windowMs`); gratuitous announcements count as answers in the ownership runs but not per request.
 */
export function analyseArp(events: readonly ArpEvent[], asker: string, windowMs = 1000): ArpReport {
  const ev = [...events].sort((a, b) => a.at - b.at);
  const reqTimes = ev.filter((e) => e.kind === 'request' && e.from === asker).map((e) => e.at);
  const overlaps: ArpReport['overlaps'] = [];
  let answered = 0;
  const answeredAt: number[] = [];
  for (let k = 0; k < reqTimes.length; k++) {
    const from = reqTimes[k];
    const to = Math.min(reqTimes[k + 1] ?? Infinity, from + windowMs);
    const macs = new Set(ev.filter((e) => e.kind === 'reply' && e.at >= from && e.at < to).map((e) => e.mac));
    if (macs.size) {
      answered++;
      answeredAt.push(from);
    }
    if (macs.size > 1) overlaps.push({ at: from, macs: [...macs].sort() });
  }
  const byMac = new Map<string, { mac: string; first: number; last: number; answers: number }>();
  const owners: ArpReport['owners'] = [];
  for (const e of ev) {
    if (e.kind === 'request') continue;
    const m = byMac.get(e.mac) ?? { mac: e.mac, first: e.at, last: e.at, answers: 0 };
    m.last = e.at;
    m.answers++;
    byMac.set(e.mac, m);
    const cur = owners.at(-1);
    if (cur && cur.mac === e.mac) cur.to = e.at;
    else owners.push({ mac: e.mac, from: e.at, to: e.at });
  }
  let maxGap = 0;
  for (let i = 1; i < answeredAt.length; i++) maxGap = Math.max(maxGap, answeredAt[i] - answeredAt[i - 1]);
  return { requests: reqTimes.length, answered, overlaps, macs: [...byMac.values()], owners, max_unanswered_ms: maxGap };
}

/** A running watcher: stop() ends tcpdump and arping (by their pids) and returns the events. */
export interface ArpWatch {
  events: ArpEvent[];
  stop(): Promise<ArpEvent[]>;
}

/**
 * Starts tcpdump (ARP about `ip` on `dev`) and, after tcpdump is listening, a loop asking for `ip` by broadcast
 * (arping) every `everyMs` (≥ 10) in lab node `node`; stop() kills the loop (its last arpings end within 1 s). Rejects if tcpdump does not start within 5 s.
 */
export async function startArpWatch(node: string, dev: string, ip: string, everyMs = 20): Promise<ArpWatch> {
  const ns = netnsOf(node);
  const events: ArpEvent[] = [];
  const dump = spawn('ip', ['netns', 'exec', ns, 'tcpdump', '-i', dev, '-n', '-l', '-e', '-tt', '-U', 'arp', 'and', 'host', ip], { stdio: ['ignore', 'pipe', 'pipe'] });
  let buf = '';
  dump.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const e = parseTcpdumpArp(buf.slice(0, nl), ip);
      buf = buf.slice(nl + 1);
      if (e) events.push(e);
    }
  });
  let err = '';
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`arp watch: tcpdump in ${node} did not start: ${err}`)), 5000);
    dump.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (/listening on/.test(err)) {
        clearTimeout(t);
        resolve();
      }
    });
    dump.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`arp watch: tcpdump in ${node} exited ${code}: ${err}`));
    });
  });
  // iputils arping takes whole seconds for -i: one arping per request instead, in the background every `everyMs`, each
  // quitting at its first reply (-f) or after 1 s; -b broadcasts (a unicast request would hide a second owner).
  const sleepS = (Math.max(10, everyMs) / 1000).toFixed(3);
  const asker: ChildProcess = spawn('ip', ['netns', 'exec', ns, 'sh', '-c', `while :; do arping -q -f -b -c 1 -w 1 -I ${dev} ${ip} & sleep ${sleepS}; done`], { stdio: 'ignore' });
  const killed = (p: ChildProcess): Promise<void> => new Promise((r) => {
    if (p.exitCode !== null || p.signalCode !== null) return r();
    p.once('exit', () => r());
    p.kill('SIGTERM');
  });
  return {
    events,
    async stop() {
      await killed(asker);
      // Let the last answers in before tcpdump goes.
      await new Promise((r) => setTimeout(r, 100));
      await killed(dump);
      return events;
    },
  };
}
