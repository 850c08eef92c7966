// The director's own IPv4 addresses, an input of the kernel rules (its own traffic must reach its stack).
import { execFileSync } from 'node:child_process';

/** The director's own IPv4 addresses (VIPs included). */
export interface OwnAddresses {
  /** The addresses now; cheap (cached). */
  list(): readonly string[];
  stop(): void;
}

/**
 * Own addresses read by spawning `ip -j -4 addr show`, at most once per `maxAgeMs`: every table change asks, and
 * `tsvsadm -R` makes one change per line. A failed read keeps the last list.
 */
export class IpCommandAddresses implements OwnAddresses {
  readonly #maxAgeMs: number;
  #cache: { at: number; addrs: string[] } | null = null;

  constructor(maxAgeMs = 1000) {
    this.#maxAgeMs = maxAgeMs;
  }

  list(): readonly string[] {
    const now = Date.now();
    if (this.#cache === null || now - this.#cache.at > this.#maxAgeMs) {
      try {
        const j = JSON.parse(execFileSync('ip', ['-j', '-4', 'addr', 'show'], { encoding: 'utf8' })) as { addr_info: { local: string }[] }[];
        this.#cache = { at: now, addrs: j.flatMap((l) => l.addr_info.map((a) => a.local)) };
      } catch {
        return this.#cache?.addrs ?? [];
      }
    }
    return this.#cache.addrs;
  }

  stop(): void {}
}
