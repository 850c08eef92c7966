// `rs-agent decap`: receives IPIP (raw IPPROTO_IPIP socket; this kernel has no ipip module) and optionally GUE
// (UDP socket), checks the inner IPv4 packet with shared/net and writes it into a TUN device so the local stack
// delivers it to the server listening on the VIP. Every packet is counted: decapsulated or dropped by reason.
import { NET_VERDICT_COUNT, NET_VERDICT_NAMES } from '../../shared/net/verdict.ts';
import { PacketMeta } from '../../shared/net/parse.ts';
import { decapGue, decapIpip, innerDeliverable } from '../../shared/net/tunnel.ts';
import { openTun } from '../../shared/sys/tun.ts';
import { C, bind, close, onReadable, raw as libc, sockaddrIn, socket } from '../../shared/sys/libc.ts';

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
 * the event loop. Throws SysError (shared/sys) naming the failed step; never throws per packet.
 */
export function startDecap(o: DecapOptions): Decapsulator {
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

  const fds: number[] = [];
  const handles: { close(): void }[] = [];
  const stop = (): void => {
    for (const h of handles) h.close();
    for (const fd of fds) close(fd);
    tun.close();
  };
  try {
    const ipip = socket(C.AF_INET, C.SOCK_RAW | C.SOCK_NONBLOCK | C.SOCK_CLOEXEC, C.IPPROTO_IPIP, 'socket(AF_INET, SOCK_RAW, IPPROTO_IPIP)');
    fds.push(ipip);
    handles.push(onReadable(ipip, () => {
      for (let i = 0; i < BATCH; i++) {
        const n = libc.recv(ipip, buf, buf.length, 0);
        if (n < 0) return;
        if (inject(decapIpip(buf, n, m))) k.ipip++;
      }
    }));
    if (o.guePort > 0) {
      const udp = socket(C.AF_INET, C.SOCK_DGRAM | C.SOCK_NONBLOCK | C.SOCK_CLOEXEC, 0, 'socket(AF_INET, SOCK_DGRAM)');
      fds.push(udp);
      bind(udp, sockaddrIn(0, o.guePort), `bind UDP port ${o.guePort}`);
      handles.push(onReadable(udp, () => {
        for (let i = 0; i < BATCH; i++) {
          const n = libc.recv(udp, buf, buf.length, 0);
          if (n < 0) return;
          if (inject(decapGue(buf, n, m))) k.gue++;
        }
      }));
    }
  } catch (e) {
    stop();
    throw e;
  }
  return { counters: k, stop };
}

