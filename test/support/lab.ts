// Helpers for lab tests: fail (never skip) when the lab cannot run here, bring a lab up for one describe block
// and always take it down, run commands in lab nodes.
import { beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DataplaneStatus } from '../../shared/proto/admin.ts';
import { down, execCapture, readState, up } from '../../ops/lab/index.ts';
import type { LabOptions, LabState } from '../../ops/lab/index.ts';

export const quiet = (): void => {};

/** Throws (the test fails with the reason) when the lab cannot run here: not root, tools missing, a lab up. */
export function requireLabHost(tools: string[] = ['ip', 'nginx', 'dnsmasq', 'nats-server', 'curl', 'dig']): void {
  if (process.getuid?.() !== 0) throw new Error('lab tests need root: they create network namespaces (run the suite as root: bash ops/test.sh)');
  const missing = tools.filter((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0);
  if (missing.length) throw new Error(`lab tests need host tools that are missing: ${missing.join(', ')} (install them: bash ops/setup.sh)`);
  if (readState()) throw new Error('a lab is already up (npm run lab -- status): the lab tests build their own; run npm run lab -- down first');
}

/** Runs a command in a lab node; throws with its stderr when it exits non-zero. Returns trimmed stdout. */
export function sh(node: string, cmd: string[], timeoutMs = 10_000): string {
  const r = execCapture(node, cmd, { timeoutMs });
  if (r.status !== 0) throw new Error(`${node}: ${cmd.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout.trim();
}

/** Brings a lab up for one describe block and always takes it down afterwards. */
export function labFor(options: Partial<LabOptions>, tools?: string[]): () => LabState {
  let state: LabState | undefined;
  beforeAll(async () => {
    requireLabHost(tools);
    state = (await up(options, quiet)).state;
  });
  afterAll(async () => {
    // Only a lab this block brought up: if a lab was already up, requireLabHost failed and that lab is left alone.
    if (state) await down(quiet);
  });
  return () => {
    if (!state) throw new Error('lab did not come up (see beforeAll)');
    return state;
  };
}

/** tsvsadm in director d1 (throws on a non-zero exit); trimmed stdout. */
export function tsvsadm(...args: string[]): string {
  return sh('d1', ['tsvsadm', ...args]);
}

/** d1's data plane as `tsvsadm status --json` reports it. */
export function dataplaneStatus(): DataplaneStatus {
  return JSON.parse(tsvsadm('status', '--json')) as DataplaneStatus;
}

/**
 * Polls `probe` every `everyMs` until it returns something other than undefined/false, and returns that; throws
 * naming `what` (and the last value seen, if `describe` is given) after `timeoutMs`. Lab tests wait for a
 * condition with this instead of sleeping a guessed time.
 */
export async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 10_000, everyMs = 50): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() >= until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Waits until d1's workers have applied the table's latest epoch (rules are live); throws after 5 s. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const s = dataplaneStatus();
    if (s.workers.length > 0 && s.workers.every((w) => w.alive && w.appliedEpoch === s.epoch)) return;
    await sleep(100);
  }
  throw new Error(`data plane did not apply the table: ${JSON.stringify(dataplaneStatus())}`);
}
