// A UDP probe for failover measurements: `_probe.ts send ADDR PORT INTERVAL_MS DURATION_MS` sends a numbered datagram
// every INTERVAL_MS and prints one JSON line at the end (every reply: seq, send and receive epoch ms, who answered);
// `_probe.ts answer PORT NAME` answers every datagram with `NAME <payload>` (run one in each node that may own the
// address). Runs inside lab namespaces (ip netns exec); loopback or lab addresses only.
import { createSocket } from 'node:dgram';

/** One reply the sender saw. */
export interface ProbeReply {
  seq: number;
  sentAt: number;
  at: number;
  from: string;
}

/** What the sender prints (one JSON line). */
export interface ProbeResult {
  sent: number;
  firstSentAt: number;
  lastSentAt: number;
  replies: ProbeReply[];
  /** Probes that got no answer: [seq, sent at]. */
  unanswered: [number, number][];
}

function answer(port: number, name: string): void {
  const s = createSocket('udp4');
  s.on('message', (msg, rinfo) => s.send(Buffer.concat([Buffer.from(`${name} `), msg]), rinfo.port, rinfo.address));
  s.bind(port, '0.0.0.0');
}

function send(addr: string, port: number, intervalMs: number, durationMs: number): void {
  const s = createSocket('udp4');
  const sentAt: number[] = [];
  const replies: ProbeReply[] = [];
  s.on('message', (msg) => {
    const text = msg.toString();
    const sp = text.indexOf(' ');
    const seq = Number(text.slice(sp + 1));
    if (sp < 0 || !Number.isInteger(seq) || seq >= sentAt.length) return;
    replies.push({ seq, sentAt: sentAt[seq], at: Date.now(), from: text.slice(0, sp) });
  });
  s.bind(0, () => {
    const t0 = Date.now();
    const tick = (): void => {
      const now = Date.now();
      if (now - t0 >= durationMs) {
        // Late replies to the last probes still count for a moment.
        setTimeout(() => {
          const answered = new Set(replies.map((x) => x.seq));
          const unanswered: [number, number][] = [];
          for (let i = 0; i < sentAt.length; i++) if (!answered.has(i)) unanswered.push([i, sentAt[i]]);
          const r: ProbeResult = { sent: sentAt.length, firstSentAt: sentAt[0] ?? t0, lastSentAt: sentAt.at(-1) ?? t0, replies, unanswered };
          process.stdout.write(`${JSON.stringify(r)}\n`);
          s.close();
        }, 200);
        return;
      }
      const seq = sentAt.length;
      sentAt.push(now);
      s.send(String(seq), port, addr);
      setTimeout(tick, intervalMs);
    };
    tick();
  });
}

const [mode, ...a] = process.argv.slice(2);
if (mode === 'answer' && a.length === 2) answer(Number(a[0]), a[1]);
else if (mode === 'send' && a.length === 4) send(a[0], Number(a[1]), Number(a[2]), Number(a[3]));
else {
  process.stderr.write('usage: _probe.ts answer PORT NAME | send ADDR PORT INTERVAL_MS DURATION_MS\n');
  process.exit(2);
}
