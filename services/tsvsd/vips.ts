// VIP ownership on the host: the VIPs this director holds on its client interface (added, removed, announced
// with a gratuitous ARP), kept equal to the reconciler's desired set; only VIPs this process added are removed.
import { ipv4FromText } from '../../shared/net/addr.ts';
import { sendGratuitousArp } from '../../shared/sys/arp.ts';
import { addressDelete, addressReplace } from '../../shared/sys/rtnl.ts';
import { setDiff } from '../../shared/rules/desired.ts';
import type { Logger } from './log.ts';

/** Adds and removes VIPs on an interface and announces new ones. */
export interface VipHost {
  /** Adds `vip`/32 to the interface; false (logged) when it could not. */
  add(vip: string): boolean;
  /** Removes `vip`/32 from the interface; missing is fine. */
  del(vip: string): void;
  /** Announces that this director now answers for `vip` (gratuitous ARP); never blocks. */
  announce(vip: string): void;
}

/**
 * `ip addr replace VIP/32 dev IF [valid_lft S preferred_lft S]` over rtnetlink: one round trip of well under a ms,
 * no process spawned (a spawn took tens of ms on a loaded host, with tsvsd's event loop blocked meanwhile — and a
 * release that lags lets two directors answer ARP for the VIP). False (logged) when the kernel refused.
 */
export function vipReplace(iface: string, vip: string, log: Logger, lifetimeS?: number): boolean {
  const a = ipv4FromText(vip);
  if (a === undefined) {
    log('vips: not an IPv4 address', { vip });
    return false;
  }
  try {
    addressReplace(iface, a, 32, lifetimeS);
    return true;
  } catch (e) {
    log('vips: adding the address failed', { vip, iface, error: (e as Error).message });
    return false;
  }
}

/** `ip addr del VIP/32 dev IF` over rtnetlink; an absent address is fine, anything else is logged. */
export function vipDelete(iface: string, vip: string, log: Logger): void {
  const a = ipv4FromText(vip);
  if (a === undefined) return;
  try {
    addressDelete(iface, a, 32);
  } catch (e) {
    log('vips: removing the address failed', { vip, iface, error: (e as Error).message });
  }
}

/** VIPs on `iface` over rtnetlink, announced with two gratuitous ARP requests 1 s apart (shared/sys/arp.ts). */
export class RtnlVips implements VipHost {
  readonly #iface: string;
  readonly #log: Logger;

  constructor(iface: string, log: Logger) {
    this.#iface = iface;
    this.#log = log;
  }

  add(vip: string): boolean {
    return vipReplace(this.#iface, vip, this.#log);
  }

  del(vip: string): void {
    vipDelete(this.#iface, vip, this.#log);
  }

  announce(vip: string): void {
    sendGratuitousArp(this.#iface, vip, { count: 2 }).catch((e: Error) => this.#log('vips: gratuitous ARP not sent', { vip, error: e.message }));
  }
}

/** The VIPs this process holds. */
export class VipSet {
  readonly #host: VipHost;
  readonly #log: Logger;
  readonly #held = new Set<string>();

  constructor(host: VipHost, log: Logger) {
    this.#host = host;
    this.#log = log;
  }

  /** Adds (and announces) what `want` has and this process does not hold; removes what it holds and `want` lacks. */
  sync(want: readonly string[]): void {
    const { add, del } = setDiff(this.#held, want);
    for (const vip of add) {
      if (!this.#host.add(vip)) continue;
      this.#held.add(vip);
      this.#host.announce(vip);
      this.#log('vips: owned', { vip });
    }
    for (const vip of del) {
      this.#host.del(vip);
      this.#held.delete(vip);
      this.#log('vips: released', { vip });
    }
  }

  /** The VIPs this process holds now, sorted. */
  get held(): string[] {
    return [...this.#held].sort();
  }

  /** Removes every VIP this process added. */
  releaseAll(): void {
    this.sync([]);
  }
}
