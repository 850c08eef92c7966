// VIPs a tsvsd holds, recorded in its runtime dir, so that the next tsvsd on this interface removes the ones a
// killed instance left in the kernel (an address left behind answers ARP beside the cluster's new owner); in a
// cluster, added with a short lifetime the running tsvsd renews, so the kernel drops them when nothing runs.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { sendGratuitousArp } from '../../shared/sys/arp.ts';
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
 * VIPs added with a lifetime (`valid_lft`/`preferred_lft`, seconds) and renewed while this process runs: if every
 * process of the director is killed (or hangs), the kernel itself removes the address within the lifetime, so a
 * dead director stops answering ARP for the VIP beside the new owner. Used in a cluster (tsvsd --nats).
 */
export class LeasedIpVips implements VipHost {
  readonly #iface: string;
  readonly #log: Logger;
  readonly #lifetimeS: number;
  readonly #held = new Set<string>();
  #timer: NodeJS.Timeout | null = null;

  /** `lifetimeS`: address lifetime in seconds (renewed every quarter of it). */
  constructor(iface: string, log: Logger, lifetimeS = 2) {
    this.#iface = iface;
    this.#log = log;
    this.#lifetimeS = lifetimeS;
  }

  /** Starts renewing the held addresses. */
  start(): void {
    this.#timer ??= setInterval(() => {
      for (const vip of this.#held) this.#replace(vip);
    }, (this.#lifetimeS * 1000) / 4);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  add(vip: string): boolean {
    const ok = this.#replace(vip);
    if (ok) this.#held.add(vip);
    return ok;
  }

  del(vip: string): void {
    this.#held.delete(vip);
    vipDelete(this.#iface, vip, this.#log);
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

  #replace(vip: string): boolean {
    return vipReplace(this.#iface, vip, this.#log, this.#lifetimeS);
  }
}
