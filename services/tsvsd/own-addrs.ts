// The director's own IPv4 addresses, an input of the kernel rules (its own traffic must reach its stack),
// followed over rtnetlink (shared/sys/addresses.ts): a change is reported so the daemon reconciles.
import { ipv4ToText } from '../../shared/net/addr.ts';
import { AddressWatch } from '../../shared/sys/addresses.ts';

/** The director's own IPv4 addresses (VIPs included). */
export interface OwnAddresses {
  /** The addresses now (dotted quads); cheap. */
  list(): readonly string[];
  stop(): void;
}

/**
 * Own addresses from an rtnetlink subscription: one dump at start, then re-dumped after address or link events
 * (coalesced); `onChange` is called after a re-dump that changed the list. Throws SysError when the first dump
 * fails (start-up).
 */
export class RtnlAddresses implements OwnAddresses {
  readonly #watch: AddressWatch;
  #list: string[] = [];

  constructor(onChange: () => void) {
    this.#watch = AddressWatch.open({
      onChange: (addrs) => {
        this.#list = addrs.map((a) => ipv4ToText(a.addr));
        onChange();
      },
    });
    this.#list = this.#watch.list().map((a) => ipv4ToText(a.addr));
  }

  list(): readonly string[] {
    return this.#list;
  }

  stop(): void {
    this.#watch.close();
  }
}
