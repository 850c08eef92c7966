// `rs-agent setup|teardown`: the VIP on a non-ARP device plus the ARP and reverse-path sysctls a DR/TUN real
// server needs (arp_ignore=1, arp_announce=2, rp_filter=0), idempotent, with the previous values kept to undo.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { SysctlSet } from '../../shared/sys/sysctl.ts';
import { hasAddr, ip, netnsId } from './sys.ts';

/** What setup leaves behind for teardown: the device, and each sysctl it changed with the value before. */
interface SetupState {
  dev: string;
  sysctls: Record<string, string>;
}

export interface SetupOptions {
  vip: string;
  mode: 'dr' | 'tun';
  /** Device that carries the VIP (default lo). */
  dev: string;
}

/** Where the sysctl values found before setup are kept, per namespace and VIP (/run is shared by netns). */
function statePath(vip: string): string {
  return `/run/tsvs-rs-agent/${netnsId()}-${vip}.json`;
}

/** The sysctls setup changes, with the value it sets. */
export function sysctlPlan(o: SetupOptions): [string, string][] {
  const devs = [...new Set(['all', 'lo', o.dev])];
  const plan: [string, string][] = [];
  for (const d of devs) {
    plan.push([`net.ipv4.conf.${d}.arp_ignore`, '1'], [`net.ipv4.conf.${d}.arp_announce`, '2'], [`net.ipv4.conf.${d}.rp_filter`, '0']);
  }
  return plan;
}

/** Applies the setup; running it twice changes nothing the second time. Returns the actions taken. */
export function setup(o: SetupOptions): string[] {
  const done: string[] = [];
  const state = statePath(o.vip);
  // A second setup keeps the values found by the first: those are what teardown must put back.
  const prev = existsSync(state) ? (JSON.parse(readFileSync(state, 'utf8')) as SetupState) : null;
  const set = SysctlSet.from(prev?.sysctls ?? {});
  mkdirSync('/run/tsvs-rs-agent', { recursive: true });
  try {
    for (const [k, v] of sysctlPlan(o)) if (set.set(k, v)) done.push(`sysctl ${k}=${v}`);
  } finally {
    writeFileSync(state, JSON.stringify({ dev: prev?.dev ?? o.dev, sysctls: set.saved() } satisfies SetupState));
  }
  if (!hasAddr(o.dev, o.vip)) {
    ip('addr', 'add', `${o.vip}/32`, 'dev', o.dev);
    done.push(`ip addr add ${o.vip}/32 dev ${o.dev}`);
  }
  if (o.dev !== 'lo') ip('link', 'set', 'dev', o.dev, 'up');
  return done;
}

/** Removes the VIP and restores the sysctls saved by setup (if any). Idempotent. Returns the actions taken. */
export function teardown(vip: string, dev: string): string[] {
  const done: string[] = [];
  const state = statePath(vip);
  let d = dev;
  if (existsSync(state)) {
    const s = JSON.parse(readFileSync(state, 'utf8')) as SetupState;
    d = s.dev;
    const r = SysctlSet.from(s.sysctls).restore();
    for (const kv of r.restored) done.push(`sysctl ${kv}`);
    if (r.failed.length > 0) throw new Error(`teardown ${vip}: could not restore ${r.failed.join('; ')}`);
    rmSync(state);
  }
  if (hasAddr(d, vip)) {
    ip('addr', 'del', `${vip}/32`, 'dev', d);
    done.push(`ip addr del ${vip}/32 dev ${d}`);
  }
  return done;
}
