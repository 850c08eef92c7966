// A long-lived HTTP/1.1 client for lab tests: ONE TCP connection to host:port, one GET every `interval` ms for
// `duration` ms, each answered within `timeout` ms. Prints one JSON line {requests, ok, failed, bodies,
// localPort, closed} and exits 0 only if every request was answered on that same connection.
//   node keepalive-client.ts HOST PORT DURATION_MS INTERVAL_MS [TIMEOUT_MS]
import { connect } from 'node:net';

const [host, portS, durS, intS, toS] = process.argv.slice(2);
const port = Number(portS);
const duration = Number(durS);
const interval = Number(intS);
const timeout = Number(toS ?? 8000);
if (!host || !port || !duration || !interval) {
  process.stderr.write('usage: keepalive-client.ts HOST PORT DURATION_MS INTERVAL_MS [TIMEOUT_MS]\n');
  process.exit(2);
}

const sock = connect({ host, port });
let buf = '';
let requests = 0;
let ok = 0;
let failed = 0;
let closed = false;
const bodies: Record<string, number> = {};
let waiting: ((body: string | null) => void) | null = null;

sock.setEncoding('latin1');
sock.on('data', (d: string) => {
  buf += d;
  for (;;) {
    const h = buf.indexOf('\r\n\r\n');
    if (h < 0) return;
    const head = buf.slice(0, h);
    const m = /content-length:\s*(\d+)/i.exec(head);
    const len = m ? Number(m[1]) : 0;
    if (buf.length < h + 4 + len) return;
    const body = buf.slice(h + 4, h + 4 + len).trim();
    buf = buf.slice(h + 4 + len);
    const w = waiting;
    waiting = null;
    w?.(/^HTTP\/1\.1 200/.test(head) ? body : null);
  }
});
sock.on('close', () => {
  closed = true;
  waiting?.(null);
});
sock.on('error', () => undefined);

await new Promise<void>((r) => sock.once('connect', () => r()));
const localPort = sock.localPort;
const end = Date.now() + duration;
while (Date.now() < end && !closed) {
  requests++;
  const answer = new Promise<string | null>((r) => {
    waiting = r;
    setTimeout(() => r(null), timeout);
  });
  sock.write(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: keep-alive\r\n\r\n`);
  const body = await answer;
  if (body === null) {
    failed++;
    break;
  }
  ok++;
  bodies[body] = (bodies[body] ?? 0) + 1;
  await new Promise((r) => setTimeout(r, interval));
}
process.stdout.write(JSON.stringify({ requests, ok, failed, bodies, localPort, closed }) + '\n');
sock.destroy();
process.exit(failed === 0 && !closed && ok > 0 ? 0 : 1);
