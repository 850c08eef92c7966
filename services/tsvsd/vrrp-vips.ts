// The VIPs of a keepalived.conf's virtual_ipaddress blocks, owned beside the table's VIPs whenever this director
// owns VIPs at all (it leads, or runs alone): those on the client interface join the reconciler's VIP set, those on
// another interface (`dev IF` or the instance's `interface`) get a set of their own there, like the gateway VIP.
import { dirname } from 'node:path';
import type { VipGrant } from '../../shared/rules/desired.ts';
import { LeasedIpVips, RecordedVipHost, vipRecordPath } from './cluster-vips.ts';
import type { Logger } from './log.ts';
import { RtnlVips, VipSet, type VipHost } from './vips.ts';

/** One virtual_ipaddress: an IPv4 address and its interface (null: the client interface). */
export interface VrrpVipSpec {
  readonly addr: string;
  readonly dev: string | null;
}

/** Whether a grant lets this director own VIPs at all (it leads, or runs alone). */
export function grantOwns(g: VipGrant): boolean {
  return g.kind === 'all' || g.vips.length > 0;
}

/**
 * Splits the specs: addresses on the client interface (or with no interface) and, per other interface, the
 * addresses owned there. `exclude` (the gateway VIP) is left to its own set. Addresses keep their first interface.
 */
export function splitVrrpVips(specs: readonly VrrpVipSpec[], clientIf: string, exclude: readonly string[] = []): { client: string[]; other: Map<string, string[]> } {
  const client: string[] = [];
  const other = new Map<string, string[]>();
  const seen = new Set(exclude);
  for (const s of specs) {
    if (seen.has(s.addr)) continue;
    seen.add(s.addr);
    if (s.dev === null || s.dev === clientIf) client.push(s.addr);
    else other.set(s.dev, [...(other.get(s.dev) ?? []), s.addr]);
  }
  return { client, other };
}

/** The keepalived VIPs of a running tsvsd. */
export class VrrpVips {
  readonly #client: readonly string[];
  readonly #sets: { iface: string; vips: string[]; set: VipSet; leased: LeasedIpVips | null }[] = [];
  #owned = false;

  /**
   * `leased`: in a cluster the addresses carry a renewed lifetime (cluster-vips.ts) so a killed director's expire;
   * `host` replaces the real rtnetlink address calls for every interface (tests). Leftovers a killed tsvsd recorded are removed.
   */
  constructor(o: { specs: readonly VrrpVipSpec[]; clientIf: string; exclude?: readonly string[]; socketPath: string; leased: boolean; log: Logger; host?: VipHost }) {
    const { client, other } = splitVrrpVips(o.specs, o.clientIf, o.exclude);
    this.#client = client;
    for (const [iface, vips] of other) {
      const leased = !o.host && o.leased ? new LeasedIpVips(iface, o.log) : null;
      leased?.start();
      const recorded = new RecordedVipHost(o.host ?? leased ?? new RtnlVips(iface, o.log), vipRecordPath(dirname(o.socketPath), `vrrp-${iface}`), o.log);
      recorded.removeLeftovers();
      this.#sets.push({ iface, vips, set: new VipSet(recorded, o.log), leased });
    }
  }

  /** The client interface's keepalived VIPs to hold beside `want` (the table's) while owning. */
  withClient(want: readonly string[]): string[] {
    if (!this.#owned || this.#client.length === 0) return [...want];
    return [...new Set([...want, ...this.#client])].sort();
  }

  /** Follows a grant: remembered for {@link withClient}, and the other interfaces' sets synced at once. */
  follow(g: VipGrant): void {
    this.#owned = grantOwns(g);
    for (const s of this.#sets) s.set.sync(this.#owned ? s.vips : []);
  }

  /** Removes every address this holds on the other interfaces and stops renewing. */
  stop(): void {
    this.#owned = false;
    for (const s of this.#sets) {
      s.set.releaseAll();
      s.leased?.stop();
    }
  }
}
