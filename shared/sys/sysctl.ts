// Kernel parameters under /proc/sys: read, write, and a save-and-restore set, so whatever tsvs changes on a
// host is put back as it was. Every sysctl write of the project goes through here.
import { readFileSync, writeFileSync } from 'node:fs';
import { SysError, toSysError } from './errors.ts';

/**
 * The /proc/sys path of a key. Dotted keys ("net.ipv4.conf.all.rp_filter") map dots to slashes; a key written
 * with slashes ("net/ipv4/conf/eth0.100/rp_filter", as sysctl(8) accepts) keeps its dots, for interface names
 * that contain one. Throws SysError EINVAL for an empty key or one with "..", spaces or other odd characters.
 */
export function sysctlPath(key: string): string {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.\-/]*$/.test(key) || key.includes('..') || key.includes('//')) {
    throw new SysError(`sysctl ${JSON.stringify(key)}`, 'EINVAL', 'not a sysctl key');
  }
  return `/proc/sys/${key.includes('/') ? key : key.replaceAll('.', '/')}`;
}

/** The value of `key` with surrounding whitespace trimmed, or null when the key does not exist here. */
export function readSysctl(key: string): string | null {
  try {
    return readFileSync(sysctlPath(key), 'utf8').trim();
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw toSysError(`sysctl ${key}`, e);
  }
}

/** Writes `value` to `key`. Throws SysError naming the key (ENOENT when absent, EACCES/EPERM without root, EINVAL). */
export function writeSysctl(key: string, value: string): void {
  try {
    writeFileSync(sysctlPath(key), value);
  } catch (e) {
    throw toSysError(`sysctl ${key}=${value}`, e);
  }
}

/** Options of {@link SysctlSet.set}. */
export interface SysctlSetOptions {
  /** A missing key is skipped instead of an error (e.g. bridge-nf-call-* without br_netfilter). */
  optional?: boolean;
}

/**
 * Sysctls changed on behalf of one owner, with the value each had before its first change, so that
 * {@link restore} puts the host back. Keys already at the wanted value are not recorded (nothing to undo).
 * The saved values are plain data ({@link saved}); a restarted owner rebuilds the set with {@link from}.
 */
export class SysctlSet {
  readonly #before = new Map<string, string>();

  /** A set that will restore `saved` (key → value before), e.g. read back from a state file. */
  static from(saved: Readonly<Record<string, string>>): SysctlSet {
    const s = new SysctlSet();
    for (const [k, v] of Object.entries(saved)) s.#before.set(k, v);
    return s;
  }

  /**
   * Sets `key` to `value`, remembering its previous value the first time. Returns true when it wrote, false when
   * the value was already right or (optional) the key does not exist. Throws SysError when the write fails.
   */
  set(key: string, value: string, o: SysctlSetOptions = {}): boolean {
    const cur = readSysctl(key);
    if (cur === null) {
      if (o.optional) return false;
      throw new SysError(`sysctl ${key}=${value}`, 'ENOENT', 'no such sysctl');
    }
    if (cur === value) return false;
    writeSysctl(key, value);
    if (!this.#before.has(key)) this.#before.set(key, cur);
    return true;
  }

  /** Key → value before the first change made through this set. */
  saved(): Record<string, string> {
    return Object.fromEntries(this.#before);
  }

  /** Number of keys this set changed. */
  get size(): number {
    return this.#before.size;
  }

  /**
   * Writes every saved value back (keys whose value is already the saved one, or gone, are not written) and
   * forgets them. Never throws: what it could not restore stays saved and is listed in `failed`.
   */
  restore(): SysctlRestore {
    const r: SysctlRestore = { restored: [], failed: [] };
    for (const [k, v] of this.#before) {
      try {
        const cur = readSysctl(k);
        if (cur !== null && cur !== v) {
          writeSysctl(k, v);
          r.restored.push(`${k}=${v}`);
        }
        this.#before.delete(k);
      } catch (e) {
        r.failed.push(`${k}=${v}: ${(e as Error).message}`);
      }
    }
    return r;
  }
}

/** What {@link SysctlSet.restore} did. */
export interface SysctlRestore {
  /** "key=value" written back. */
  restored: string[];
  /** "key=value: reason" that could not be written back (still saved in the set). */
  failed: string[];
}
