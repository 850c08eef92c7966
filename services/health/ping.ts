// PING_CHECK: ICMP / ICMPv6 echo through the `raw-socket` native addon (needs CAP_NET_RAW). One socket per family
// serves every check; replies are matched to their request by identifier, sequence and source address.
import { createRequire } from 'node:module';

interface RawSocket {
  send(buf: Buffer, offset: number, length: number, address: string, before: (() => void) | null, after: (err: Error | null, bytes: number) => void): void;
  on(ev: 'message', cb: (buf: Buffer, source: string) => void): void;
  on(ev: 'error', cb: (err: Error) => void): void;
  close(): void;
}
interface RawModule {
  createSocket(opts: { protocol: number; addressFamily?: number }): RawSocket;
  Protocol: { ICMP: number; ICMPv6: number };
  AddressFamily: { IPv4: number; IPv6: number };
  createChecksum(buf: Buffer): number;
  writeChecksum(buf: Buffer, offset: number, checksum: number): void;
}

let raw: RawModule | null = null;
let loadError: string | null = null;

function load(): RawModule | null {
  if (raw || loadError) return raw;
  try {
    raw = createRequire(import.meta.url)('raw-socket') as RawModule;
  } catch (e) {
    loadError = `raw-socket cannot be loaded (${(e as Error).message.split('\n')[0]}); run ops/setup.sh to build it`;
  }
  return raw;
}

interface Pending {
  host: string;
  resolve: (err: string | null) => void;
}

const ident = process.pid & 0xffff;
let seq = 0;
const sockets = new Map<4 | 6, RawSocket>();
const pending = new Map<number, Pending>();

function socketFor(af: 4 | 6): RawSocket | string {
  const r = load();
  if (!r) return loadError as string;
  const have = sockets.get(af);
  if (have) return have;
  let s: RawSocket;
  try {
    s = af === 4 ? r.createSocket({ protocol: r.Protocol.ICMP }) : r.createSocket({ protocol: r.Protocol.ICMPv6, addressFamily: r.AddressFamily.IPv6 });
  } catch (e) {
    return `cannot open a raw ICMP socket (${(e as Error).message}); PING_CHECK needs root or CAP_NET_RAW`;
  }
  s.on('message', (buf, source) => {
    // IPv4 raw sockets hand over the IP header; ICMPv6 ones do not.
    const off = af === 4 ? (buf[0] & 0x0f) * 4 : 0;
    if (buf.length < off + 8) return;
    const type = buf[off];
    if (type !== (af === 4 ? 0 : 129)) return;
    if (buf.readUInt16BE(off + 4) !== ident) return;
    const p = pending.get(buf.readUInt16BE(off + 6));
    if (!p || p.host !== source) return;
    pending.delete(buf.readUInt16BE(off + 6));
    p.resolve(null);
  });
  s.on('error', () => {
    sockets.delete(af);
    s.close();
  });
  sockets.set(af, s);
  return s;
}

/**
 * Sends one echo request to `host` and resolves with null when its reply comes, or with why not (send error,
 * aborted by the caller's timeout, raw-socket missing). Never rejects.
 */
export function pingOnce(host: string, af: 4 | 6, signal: AbortSignal): Promise<string | null> {
  const s = socketFor(af);
  if (typeof s === 'string') return Promise.resolve(s);
  const r = raw as RawModule;
  seq = (seq + 1) & 0xffff;
  const mySeq = seq;
  const pkt = Buffer.alloc(16);
  pkt[0] = af === 4 ? 8 : 128;
  pkt.writeUInt16BE(ident, 4);
  pkt.writeUInt16BE(mySeq, 6);
  pkt.write('tsvs-hc\0', 8, 'latin1');
  if (af === 4) r.writeChecksum(pkt, 2, r.createChecksum(pkt));
  return new Promise((resolve) => {
    const done = (err: string | null) => {
      pending.delete(mySeq);
      resolve(err);
    };
    pending.set(mySeq, { host, resolve: done });
    signal.addEventListener('abort', () => done('aborted'), { once: true });
    s.send(pkt, 0, pkt.length, host, null, (err) => {
      if (err) done(`send: ${err.message}`);
    });
  });
}

/** Closes the ICMP sockets (at exit). */
export function closePing(): void {
  for (const s of sockets.values()) s.close();
  sockets.clear();
}
