// Host configuration the agent applies: addresses through `ip`, sysctls through /proc/sys, both idempotent.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

/** Error from a host configuration step, naming the operation. */
export class HostConfigError extends Error {
  override name = 'HostConfigError';
}

/** Runs `ip ...args`; returns stdout. Throws HostConfigError with ip's message on failure. */
export function ip(...args: string[]): string {
  try {
    return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new HostConfigError(`ip ${args.join(' ')}: ${(err.stderr ?? err.message).trim()}`);
  }
}

function sysctlPath(key: string): string {
  return `/proc/sys/${key.replaceAll('.', '/')}`;
}

/** Reads a sysctl (dotted key, e.g. net.ipv4.conf.lo.arp_ignore); '' if absent. */
export function getSysctl(key: string): string {
  try {
    return readFileSync(sysctlPath(key), 'utf8').trim();
  } catch {
    return '';
  }
}

/** Writes a sysctl. Throws HostConfigError naming the key. */
export function setSysctl(key: string, value: string): void {
  try {
    writeFileSync(sysctlPath(key), value);
  } catch (e) {
    throw new HostConfigError(`sysctl ${key}=${value}: ${(e as Error).message}`);
  }
}

/** True when `dev` carries `addr`/32 (or any prefix of that exact address). */
export function hasAddr(dev: string, addr: string): boolean {
  const j = JSON.parse(ip('-j', 'addr', 'show', 'dev', dev)) as { addr_info?: { family: string; local: string }[] }[];
  return j.some((l) => (l.addr_info ?? []).some((a) => a.family === 'inet' && a.local === addr));
}

/** Identity of the current network namespace ("net:[4026531840]"), to keep per-namespace state apart. */
export function netnsId(): string {
  try {
    return execFileSync('readlink', ['/proc/self/ns/net'], { encoding: 'utf8' }).trim().replace(/[^0-9]/g, '');
  } catch {
    return 'unknown';
  }
}
