// VIP ownership on the host: the VIPs this director holds on its client interface (added, removed, announced
// with a gratuitous ARP), kept equal to the reconciler's desired set; only VIPs this process added are removed.
import { spawnSync } from 'node:child_process';
import { sendGratuitousArp } from '../../shared/sys/arp.ts';
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

/** VIPs through `ip addr` on `iface`, announced with two gratuitous ARP requests 1 s apart (shared/sys/arp.ts). */
export class IpCommandVips implements VipHost {
  readonly #iface: string;
  readonly #log: Logger;

  constructor(iface: string, log: Logger) {
    this.#iface = iface;
    this.#log = log;
  }

  add(vip: string): boolean {
    const r = spawnSync('ip', ['addr', 'replace', `${vip}/32`, 'dev', this.#iface], { encoding: 'utf8' });
    if (r.status !== 0) this.#log('vips: ip addr replace failed', { vip, iface: this.#iface, error: (r.stderr ?? '').trim() });
    return r.status === 0;
  }

  del(vip: string): void {
    spawnSync('ip', ['addr', 'del', `${vip}/32`, 'dev', this.#iface], { encoding: 'utf8' });
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
