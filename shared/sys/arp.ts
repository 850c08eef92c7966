// Sending ARP: gratuitous (unsolicited) ARP announcing an address this host now owns, over an AF_PACKET socket,
// with frames built by the pure codec in shared/net/arp.ts. This is the project's one ARP sender.
import { ARP_FRAME_LEN, buildGratuitousArp } from '../net/arp.ts';
import { formatMac, ipv4FromText } from '../net/addr.ts';
import { NetVerdict } from '../net/verdict.ts';
import { SysError } from './errors.ts';
import { C, bind, close, errno, htons, ifIndex, raw, socket } from './libc.ts';

const SIOCGIFHWADDR = 0x8927;
const ARPHRD_ETHER = 1;
/** Ethernet frames shorter than this are padded by the sender (as arping and the kernel do). */
const MIN_FRAME = 60;

/** Options of {@link sendGratuitousArp}. */
export interface GratuitousArpOptions {
  /** Frames to send, ≥ 1 (default 2, as `arping -U -c 2`). */
  count?: number;
  /** Wait between two frames, ms (default 1000, arping's interval). */
  intervalMs?: number;
}

/** What {@link sendGratuitousArp} sent. */
export interface GratuitousArpResult {
  ifname: string;
  /** Frames the kernel accepted. */
  sent: number;
  /** The sender MAC announced, aa:bb:cc:dd:ee:ff. */
  mac: string;
}

/**
 * The hardware address of Ethernet interface `ifname` (SIOCGIFHWADDR). Throws SysError: ENODEV when the interface
 * does not exist, EINVAL when it is not Ethernet.
 */
export function interfaceMac(ifname: string): Uint8Array {
  const name = new TextEncoder().encode(ifname);
  if (name.length === 0 || name.length >= 16) throw new SysError(`SIOCGIFHWADDR ${ifname}`, 'EINVAL', 'interface name must be 1..15 bytes');
  const fd = socket(C.AF_INET, C.SOCK_DGRAM | C.SOCK_CLOEXEC, 0, `socket for SIOCGIFHWADDR ${ifname}`);
  try {
    const ifr = new Uint8Array(40);
    ifr.set(name, 0);
    if (raw.ioctlPtr(fd, SIOCGIFHWADDR, ifr) < 0) throw new SysError(`SIOCGIFHWADDR ${ifname}`, errno());
    const family = ifr[16] | (ifr[17] << 8);
    if (family !== ARPHRD_ETHER) throw new SysError(`SIOCGIFHWADDR ${ifname}`, 'EINVAL', `not an Ethernet interface (hardware type ${family})`);
    return ifr.slice(18, 24);
  } finally {
    close(fd);
  }
}

function sockaddrLl(ifindex: number): Uint8Array {
  const a = new Uint8Array(20);
  const dv = new DataView(a.buffer);
  dv.setUint16(0, C.AF_PACKET, true);
  dv.setUint16(2, htons(C.ETH_P_ARP), true);
  dv.setInt32(4, ifindex, true);
  return a;
}

/**
 * Announces that `ipv4` (dotted quad, or host-order uint32) is at `ifname`'s MAC: `count` broadcast gratuitous ARP
 * requests (sender = target = `ipv4`, as `arping -U` and keepalived send them), `intervalMs` apart, from an
 * AF_PACKET socket bound to the interface. Needs CAP_NET_RAW. Rejects with SysError naming the step (EINVAL for
 * a bad address or options, ENODEV for a missing interface, EPERM without privilege, the send's errno); frames
 * already sent stay sent. The socket is closed when the promise settles.
 */
export async function sendGratuitousArp(ifname: string, ipv4: string | number, o: GratuitousArpOptions = {}): Promise<GratuitousArpResult> {
  const what = `gratuitous ARP ${typeof ipv4 === 'number' ? ipv4 >>> 0 : ipv4} on ${ifname}`;
  const ip = typeof ipv4 === 'number' ? ipv4 : (ipv4FromText(ipv4) ?? -1);
  const count = o.count ?? 2;
  const intervalMs = o.intervalMs ?? 1000;
  if (!Number.isInteger(ip) || ip < 0 || ip > 0xffffffff) throw new SysError(what, 'EINVAL', 'not an IPv4 address');
  if (!Number.isInteger(count) || count < 1) throw new SysError(what, 'EINVAL', `count must be ≥ 1, got ${count}`);
  if (!(intervalMs >= 0)) throw new SysError(what, 'EINVAL', `intervalMs must be ≥ 0, got ${intervalMs}`);
  const ifindex = ifIndex(ifname);
  const mac = interfaceMac(ifname);
  const frame = new Uint8Array(MIN_FRAME);
  if (buildGratuitousArp(frame, 0, mac, ip >>> 0) !== NetVerdict.OK) throw new SysError(what, 'EINVAL', 'frame does not fit');
  const fd = socket(C.AF_PACKET, C.SOCK_RAW | C.SOCK_CLOEXEC, htons(C.ETH_P_ARP), `socket(AF_PACKET) for ${what}`);
  let sent = 0;
  try {
    bind(fd, sockaddrLl(ifindex), `bind(AF_PACKET, ${ifname})`);
    for (let i = 0; i < count; i++) {
      if (i > 0 && intervalMs > 0) await new Promise((r) => setTimeout(r, intervalMs));
      const n = raw.send(fd, frame, frame.length, 0);
      if (n < 0) throw new SysError(`send(${what})`, errno());
      if (n >= ARP_FRAME_LEN) sent++;
    }
  } finally {
    close(fd);
  }
  return { ifname, sent, mac: formatMac(mac) };
}
