// Host configuration the agent applies: addresses through `ip` (sysctls go through shared/sys/sysctl.ts).
import { execFileSync } from 'node:child_process';

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
