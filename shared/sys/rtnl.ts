// rtnetlink sockets through koffi: a blocking request socket (dumps, acked requests) and a non-blocking monitor
// subscribed to multicast groups and read from the event loop. Bodies are parsed by rtnl-codec.ts.
import { C, SysError, bind, check, close, errno, ifIndex, raw, socket, uvPoll, type UvPollHandle } from './libc.ts';
import { IFF_UP, NlmF, Rtm, addrBody, linkBody, nlRequest, nlStats, walkMessages, type NlHandler, type NlStats } from './rtnl-codec.ts';

const NETLINK_ROUTE = 0;
const BUF_BYTES = 64 * 1024; // above the kernel's largest dump datagram (32 KiB)

function sockaddrNl(groups: number): Uint8Array {
  const a = new Uint8Array(12);
  const dv = new DataView(a.buffer);
  dv.setUint16(0, C.AF_NETLINK, true);
  dv.setUint32(8, groups, true);
  return a;
}

/** A blocking NETLINK_ROUTE socket for requests: each call is one round trip to the kernel. */
export class RtnlSocket {
  private readonly fd: number;
  private readonly stats: NlStats;
  private seq = 1;
  private readonly buf = new Uint8Array(BUF_BYTES);
  private readonly dv = new DataView(this.buf.buffer);
  private interrupted = false;
  private handler: NlHandler | null = null;
  private readonly relay: NlHandler = (type, flags, dv, body, end) => {
    if ((flags & NlmF.DUMP_INTR) !== 0) this.interrupted = true;
    return this.handler!(type, flags, dv, body, end);
  };

  /** `stats` counts malformed replies (shared with the owner's other sockets). Throws SysError. */
  constructor(stats: NlStats) {
    this.stats = stats;
    this.fd = socket(C.AF_NETLINK, C.SOCK_RAW | C.SOCK_CLOEXEC, NETLINK_ROUTE, 'socket(AF_NETLINK, NETLINK_ROUTE)');
    try {
      bind(this.fd, sockaddrNl(0), 'bind(netlink)');
    } catch (e) {
      close(this.fd);
      throw e;
    }
  }

  /**
   * Sends `type` with `flags` and `body`, hands every reply message to `onMsg` until NLMSG_DONE or the ack.
   * Returns true when the kernel flagged the dump interrupted (NLM_F_DUMP_INTR: the table changed under it;
   * what was read may be inconsistent, dump again). Throws SysError(`what`) on a socket error or an error reply.
   * The view `onMsg` gets is valid only during the call.
   */
  request(type: number, flags: number, body: Uint8Array, what: string, onMsg: NlHandler): boolean {
    const seq = this.seq++;
    const msg = nlRequest(type, flags, seq, body);
    check(raw.send(this.fd, msg, msg.byteLength, 0), `send(${what})`);
    this.interrupted = false;
    this.handler = onMsg;
    try {
      for (;;) {
        const n = raw.recv(this.fd, this.buf, this.buf.byteLength, 0);
        if (n < 0) {
          if (errno() === C.EINTR) continue;
          throw new SysError(`recv(${what})`, errno());
        }
        const r = walkMessages(this.dv, n, seq, this.relay, this.stats);
        if (r === 'done') return this.interrupted;
        if (r !== 'more') throw new SysError(what, r);
      }
    } finally {
      this.handler = null;
    }
  }

  /** A dump (NLM_F_REQUEST | NLM_F_DUMP); see {@link request}. */
  dump(type: number, body: Uint8Array, what: string, onMsg: NlHandler): boolean {
    return this.request(type, NlmF.REQUEST | NlmF.DUMP, body, what, onMsg);
  }

  close(): void {
    close(this.fd);
  }
}

/**
 * A non-blocking NETLINK_ROUTE socket bound to the multicast `groups` (RtmGrp bits), read from the event loop:
 * every message goes to `onMsg`. When the kernel dropped events (ENOBUFS: the socket's buffer overflowed)
 * `onOverrun` runs, and the owner must resynchronise (dump). Malformed messages are counted in `stats`.
 */
export class RtnlMonitor {
  private fd: number;
  private poller: UvPollHandle | null = null;
  private readonly buf = new Uint8Array(BUF_BYTES);
  private readonly dv = new DataView(this.buf.buffer);

  /** Subscribes now; messages are delivered from the next turn of the event loop. Throws SysError. */
  constructor(groups: number, what: string, onMsg: NlHandler, onOverrun: () => void, stats: NlStats) {
    this.fd = socket(C.AF_NETLINK, C.SOCK_RAW | C.SOCK_CLOEXEC | C.SOCK_NONBLOCK, NETLINK_ROUTE, `socket(netlink monitor, ${what})`);
    try {
      bind(this.fd, sockaddrNl(groups), `bind(netlink monitor, ${what})`);
    } catch (e) {
      close(this.fd);
      throw e;
    }
    this.poller = uvPoll(this.fd, { readable: true }, () => {
      for (;;) {
        const n = raw.recv(this.fd, this.buf, this.buf.byteLength, 0);
        if (n > 0) {
          walkMessages(this.dv, n, -1, onMsg, stats);
          continue;
        }
        if (n === 0) break;
        const e = errno();
        if (e === C.EINTR) continue;
        if (e === C.ENOBUFS) {
          stats.overruns++;
          try {
            onOverrun();
          } catch (err) {
            stats.errors++;
            stats.lastError = (err as Error).message;
          }
          continue;
        }
        if (e !== C.EAGAIN) {
          stats.errors++;
          stats.lastError = new SysError(`recv(netlink monitor, ${what})`, e).message;
        }
        break;
      }
    });
  }

  close(): void {
    if (this.poller) this.poller.close();
    this.poller = null;
    close(this.fd);
    this.fd = -1;
  }
}

/**
 * One acked rtnetlink request on a short-lived socket (control path: link changes at start-up). Throws SysError
 * naming `what` with the kernel's errno.
 */
export function rtnlRequest(type: number, flags: number, body: Uint8Array, what: string): void {
  const s = new RtnlSocket(nlStats());
  try {
    s.request(type, flags | NlmF.REQUEST | NlmF.ACK, body, what, () => true);
  } finally {
    s.close();
  }
}

/** Brings interface `ifname` up (`ip link set dev IFNAME up`). Throws SysError (ENODEV when it does not exist). */
export function linkSetUp(ifname: string): void {
  rtnlRequest(Rtm.NEWLINK, 0, linkBody(ifIndex(ifname), IFF_UP, IFF_UP), `RTM_NEWLINK ${ifname} up`);
}

/** Deletes interface `ifname` (`ip link del dev IFNAME`). Returns false when it does not exist. Throws SysError. */
export function linkDelete(ifname: string): boolean {
  const i = raw.if_nametoindex(ifname);
  if (i === 0) return false;
  try {
    rtnlRequest(Rtm.DELLINK, 0, linkBody(i), `RTM_DELLINK ${ifname}`);
  } catch (e) {
    if (e instanceof SysError && e.code === 'ENODEV') return false;
    throw e;
  }
  return true;
}

/**
 * Adds or replaces IPv4 `addr` (host-order u32) / `prefixLen` on `ifname` (`ip addr replace`), with a lifetime in
 * seconds when given (the kernel removes the address when it runs out unless it is replaced again). One netlink
 * round trip, no process spawned. Throws SysError (ENODEV when the interface does not exist).
 */
export function addressReplace(ifname: string, addr: number, prefixLen: number, lifetimeS?: number): void {
  rtnlRequest(Rtm.NEWADDR, NlmF.CREATE | NlmF.REPLACE, addrBody(ifIndex(ifname), addr, prefixLen, lifetimeS), `RTM_NEWADDR ${ifname}`);
}

/**
 * Removes IPv4 `addr` / `prefixLen` from `ifname` (`ip addr del`). Returns false when the address (or the
 * interface) was not there. Throws SysError on anything else.
 */
export function addressDelete(ifname: string, addr: number, prefixLen: number): boolean {
  const i = raw.if_nametoindex(ifname);
  if (i === 0) return false;
  try {
    rtnlRequest(Rtm.DELADDR, 0, addrBody(i, addr, prefixLen), `RTM_DELADDR ${ifname}`);
  } catch (e) {
    if (e instanceof SysError && (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOENT' || e.code === 'ENODEV')) return false;
    throw e;
  }
  return true;
}
