// VIPs a tsvsd holds, recorded in its runtime dir, so that the next tsvsd on this interface removes the ones a
// killed instance left in the kernel (an address left behind answers ARP beside the cluster's new owner).
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from './log.ts';
import type { VipHost } from './vips.ts';

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
      this.#log('vips: removed an address a previous tsvsd left', { vip, record: this.#path });
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
