// VIPs a tsvsd holds, recorded in its runtime dir, so that the next tsvsd on this interface removes the ones a
// killed instance left in the kernel (an address left behind answers ARP beside the cluster's new owner); in a
// cluster, held on a TUN device that dies with the process (and with a short lifetime the running tsvsd renews),
// so the kernel drops them when nothing runs.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { vipHolderName } from '../../shared/cluster/vip-holder.ts';
import { sendGratuitousArp } from '../../shared/sys/arp.ts';
import { linkSetUp } from '../../shared/sys/rtnl.ts';
import { readSysctl, writeSysctl } from '../../shared/sys/sysctl.ts';
import { openTun, type TunDevice } from '../../shared/sys/tun.ts';
import type { Logger } from './log.ts';
import { vipDelete, vipReplace, type VipHost } from './vips.ts';

/** The record's path for a client interface: beside the admin socket's per-namespace dir. */
export function vipRecordPath(runDir: string, clientIf: string): string {
  return `${runDir}/vips-${clientIf}`;
}

/** Parses a record: one IPv4 address a line; anything else is ignored. */
export function parseVipRecord(text: string): string[] {
  return text.split('\n').map((l) => l.trim()).filter((l) => /^\d{1,3}(\.\d{1,3}){3}$/.test(l));
}

/** A {@link VipHost} that keeps the set of VIPs it added in a file (rewritten atomically on every change). */
export class RecordedVipHost implements VipHost {
  readonly #inner: VipHost;
  readonly #path: string;
  readonly #log: Logger;
  readonly #held = new Set<string>();

  constructor(inner: VipHost, path: string, log: Logger) {
    this.#inner = inner;
    this.#path = path;
    this.#log = log;
  }

  /** Removes the VIPs a previous instance recorded and did not remove (it was killed); returns them. */
  removeLeftovers(): string[] {
    let text: string;
    try {
      text = readFileSync(this.#path, 'utf8');
    } catch {
      return [];
    }
    const left = parseVipRecord(text);
    for (const vip of left) {
      this.#inner.del(vip);
      this.#log('vips: removed a VIP a previous tsvsd recorded (it did not stop cleanly)', { vip, record: this.#path });
    }
    this.#write();
    return left;
  }

  add(vip: string): boolean {
    // Recorded before it exists: a crash between the two leaves a record of an absent address (harmless), never
    // an address without a record.
    this.#held.add(vip);
    this.#write();
    const ok = this.#inner.add(vip);
    if (!ok) {
      this.#held.delete(vip);
      this.#write();
    }
    return ok;
  }

  del(vip: string): void {
    this.#inner.del(vip);
    this.#held.delete(vip);
    this.#write();
  }

  announce(vip: string): void {
    this.#inner.announce(vip);
  }

  #write(): void {
    try {
      mkdirSync(dirname(this.#path), { recursive: true, mode: 0o755 });
      const tmp = `${this.#path}.tmp`;
      writeFileSync(tmp, [...this.#held].map((v) => `${v}\n`).join(''), { mode: 0o644 });
      renameSync(tmp, this.#path);
    } catch (e) {
      this.#log('vips: cannot record held VIPs', { record: this.#path, error: (e as Error).message });
    }
  }
}

/** When a granted VIP is announced, ms after the grant: two frames 1 s apart, and the same again 3 s later. */
export const GARP_SCHEDULE_MS: readonly number[] = [0, 1000, 3000, 4000];

/**
 * VIPs a director in a cluster holds so that they die with it.
 *
 * The addresses go on a TUN device this process creates and keeps open (`tvip-IFACE`, not persistent): when every
 * process of the director is killed, the kernel closes the descriptor, deletes the device and every address on it
 * at once, and the director stops answering ARP for the VIP beside the new owner (issue 8: "a director whose
 * processes were all killed must not keep answering for the VIP"). With `arp_ignore` 0 (the default) the kernel
 * answers ARP on `iface` for an address on any of its interfaces, so nothing else changes: the gratuitous ARP goes
 * out on `iface`, packets to the VIP are delivered as before. Measured: gone within 50 ms of `kill -9`.
 *
 * The addresses also carry a lifetime (`valid_lft`/`preferred_lft`, seconds) renewed while this process runs: a
 * director whose processes hang (SIGSTOP) keeps the device open, and the kernel drops the address when the lifetime
 * runs out. When `arp_ignore` ≥ 1 on `iface` (the kernel would answer only for addresses on `iface` itself), or the
 * device cannot be created, the addresses go on `iface` with the lifetime alone (logged). `onIface` forces that
 * (active-active holds its VIPs on lo, where nobody ARPs for them).
 */
export class LeasedIpVips implements VipHost {
  readonly #iface: string;
  readonly #log: Logger;
  readonly #lifetimeS: number;
  readonly #held = new Set<string>();
  readonly #onIface: boolean;
  #holder: string;
  #tun: TunDevice | null = null;
  #timer: NodeJS.Timeout | null = null;

  /** `lifetimeS`: address lifetime in seconds (renewed every quarter of it). */
  constructor(iface: string, log: Logger, lifetimeS = 2, onIface = false) {
    this.#iface = iface;
    this.#log = log;
    this.#lifetimeS = lifetimeS;
    this.#onIface = onIface;
    this.#holder = iface;
  }

  /** The device the addresses are on (`tvip-IFACE`, or the interface itself). */
  get holder(): string {
    return this.#holder;
  }

  /** Creates the holding device and starts renewing the held addresses. */
  start(): void {
    if (!this.#onIface && this.#tun === null) this.#openHolder();
    this.#timer ??= setInterval(() => {
      for (const vip of this.#held) this.#replace(vip);
    }, (this.#lifetimeS * 1000) / 4);
    this.#timer.unref();
  }

  /** Stops renewing and closes the holding device (its addresses go with it). */
  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#tun?.close();
    this.#tun = null;
    this.#holder = this.#iface;
  }

  add(vip: string): boolean {
    const ok = this.#replace(vip);
    if (ok) this.#held.add(vip);
    return ok;
  }

  del(vip: string): void {
    this.#held.delete(vip);
    vipDelete(this.#holder, vip, this.#log);
    // An address an older tsvsd left on the interface itself (leftover removal comes here too).
    if (this.#holder !== this.#iface) vipDelete(this.#iface, vip, this.#log);
  }

  /**
   * keepalived's pattern: a burst of gratuitous ARP now, and again a few seconds later ({@link GARP_SCHEDULE_MS}).
   * Each frame goes only while the VIP is still held: a director that released it (a preempted or cut-off leader)
   * must not announce it beside the new owner.
   */
  announce(vip: string): void {
    const send = (): void => {
      if (!this.#held.has(vip)) return;
      void sendGratuitousArp(this.#iface, vip, { count: 1 }).catch((e: Error) => this.#log('vips: gratuitous ARP not sent', { vip, error: e.message }));
    };
    for (const at of GARP_SCHEDULE_MS) {
      if (at === 0) send();
      else setTimeout(send, at).unref();
    }
  }

  #openHolder(): void {
    const ignore = Math.max(Number(readSysctl('net.ipv4.conf.all.arp_ignore') ?? 0), Number(readSysctl(`net.ipv4.conf.${this.#iface}.arp_ignore`) ?? 0));
    if (ignore >= 1) {
      this.#log('vips: arp_ignore is set on the interface: the VIPs go on it, with a lifetime (a killed director answers ARP until it runs out)', { iface: this.#iface, arp_ignore: ignore });
      return;
    }
    const name = vipHolderName(this.#iface);
    try {
      this.#tun = openTun({ name, configure: false });
      linkSetUp(name);
      try {
        writeSysctl(`net.ipv6.conf.${name}.disable_ipv6`, '1');
      } catch {
        // IPv6 absent: nothing to quiet.
      }
      this.#holder = name;
    } catch (e) {
      this.#tun?.close();
      this.#tun = null;
      this.#log('vips: cannot create the VIP holding device: the VIPs go on the interface, with a lifetime', { device: name, iface: this.#iface, error: (e as Error).message });
    }
  }

  #replace(vip: string): boolean {
    return vipReplace(this.#holder, vip, this.#log, this.#lifetimeS);
  }
}
