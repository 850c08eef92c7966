// `rs-agent decap`: receives IPIP (raw IPPROTO_IPIP socket; this kernel has no ipip module) and optionally GUE
// (UDP socket), checks the inner IPv4 packet with shared/net and writes it into a TUN device so the local stack
// delivers it to the server listening on the VIP. Every packet is counted: decapsulated or dropped by reason.
import { NET_VERDICT_COUNT, NET_VERDICT_NAMES } from '../../shared/net/verdict.ts';
import { PacketMeta } from '../../shared/net/parse.ts';
import { decapGue, decapIpip, innerDeliverable } from '../../shared/net/tunnel.ts';
import { openTun } from '../../shared/sys/tun.ts';
import { AF_INET, IPPROTO_IPIP, SOCK_DGRAM, SOCK_NONBLOCK, SOCK_RAW, libc, onReadable, sockaddrIn } from './libc.ts';

export interface DecapOptions {
  /** VIPs (uint32) the inner packets must be addressed to; others are dropped as not-for-vip. */
  vips: number[];
  /** GUE UDP port to listen on, 0 for none. */
  guePort: number;
  /** TUN interface name (≤ 15 bytes). */
  tunName: string;
}

/** Counters of one decapsulator; `drops` is indexed by NetVerdict code. */
export interface DecapCounters {
  ipip: number;
  gue: number;
  bytes: number;
  drops: Float64Array;
  notForVip: number;
  writeErrors: number;
}

export interface Decapsulator {
  counters: DecapCounters;
  /** Stops polling and closes the sockets and the TUN device. */
  stop(): void;
}

/** Error from decapsulator socket setup, naming the step (TUN device failures are TunError from shared/sys/tun). */
export class DecapError extends Error {
  override name = 'DecapError';
}

/** Upper bound of packets handled per readiness event, so one busy socket cannot starve the other. */
const BATCH = 256;

/** Renders counters as one line of JSON, only non-zero drop reasons named. */
export function formatCounters(k: DecapCounters): string {
  const drops: Record<string, number> = {};
  for (let i = 0; i < k.drops.length; i++) if (k.drops[i] > 0) drops[NET_VERDICT_NAMES[i]] = k.drops[i];
  if (k.notForVip) drops.not_for_vip = k.notForVip;
  if (k.writeErrors) drops.tun_write_error = k.writeErrors;
  return JSON.stringify({ decapsulated: { ipip: k.ipip, gue: k.gue, bytes: k.bytes }, dropped: drops });
}

/**
 * Opens the sockets and the TUN device, brings the device up with rp_filter=0 and accept_local=1 (the inner
 * source is a remote client arriving on a device without a route back to it), and starts decapsulating on
 * the event loop. Throws DecapError / TunError on setup failure; never throws per packet.
 */
export function startDecap(o: DecapOptions): Decapsulator {
  const c = libc();
  const tun = openTun({ name: o.tunName });
  const k: DecapCounters = { ipip: 0, gue: 0, bytes: 0, drops: new Float64Array(NET_VERDICT_COUNT), notForVip: 0, writeErrors: 0 };
  const vips = new Set(o.vips.map((v) => v >>> 0));
  const buf = new Uint8Array(65536);
  const m = new PacketMeta();

  /** Writes the inner packet (at `m.l3Off` in `buf`) into the TUN device. */
  function inject(v: number): boolean {
    if (!innerDeliverable(v)) {
      k.drops[v]++;
      return false;
    }
    if (!vips.has(m.daddr)) {
      k.notForVip++;
      return false;
    }
    if (!tun.write(buf, m.l3Off, m.totalLen)) {
      k.writeErrors++;
      return false;
    }
    k.bytes += m.totalLen;
    return true;
  }

  const raw = c.socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK, IPPROTO_IPIP);
  if (raw < 0) throw new DecapError(`socket(AF_INET, SOCK_RAW, IPPROTO_IPIP): errno ${c.errno()}`);
  const handles = [
    onReadable(raw, () => {
      for (let i = 0; i < BATCH; i++) {
        const n = c.recv(raw, buf, buf.length, 0);
        if (n < 0) return;
        if (inject(decapIpip(buf, n, m))) k.ipip++;
      }
    }),
  ];
  const fds = [raw];
  if (o.guePort > 0) {
    const udp = c.socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (udp < 0) throw new DecapError(`socket(AF_INET, SOCK_DGRAM): errno ${c.errno()}`);
    const sa = sockaddrIn(0, o.guePort);
    if (c.bind(udp, sa, sa.length) < 0) throw new DecapError(`bind UDP port ${o.guePort}: errno ${c.errno()}`);
    fds.push(udp);
    handles.push(
      onReadable(udp, () => {
        for (let i = 0; i < BATCH; i++) {
          const n = c.recv(udp, buf, buf.length, 0);
          if (n < 0) return;
          if (inject(decapGue(buf, n, m))) k.gue++;
        }
      }),
    );
  }
  return {
    counters: k,
    stop(): void {
      for (const h of handles) h.close();
      for (const fd of fds) c.close(fd);
      tun.close();
    },
  };
}

