// The health checker's shell: owns the pure machine, one timer for the next due check, the running checks, notify
// scripts, and the batching of transitions into `transitions` messages.
import { spawn } from 'node:child_process';
import type { KeepalivedConfig } from '../../shared/keepalived/model.ts';
import type { HealthEffect, HealthState } from '../../shared/health/machine.ts';
import { checkResult, dueChecks, healthStatus, healthView, nextDueAt, reloadHealth, shutdownHealth, startHealth } from '../../shared/health/machine.ts';
import { healthPlan } from '../../shared/health/plan.ts';
import { healthWarnings } from '../../shared/health/unsupported.ts';
import type { FromHealth, HealthTransition } from '../../shared/proto/health.ts';
import { runCheck } from './checkers.ts';
import { closePing } from './ping.ts';

export interface RunnerOptions {
  /** Where messages go (process.send in the child). */
  send(msg: FromHealth): void;
  /** Transitions within this window go out in one batch (ms, default 10). */
  batchMs?: number;
  /** Longest a notify script may run (ms, default 10 000); then it is killed. */
  notifyTimeoutMs?: number;
}

/** Runs the checks of one configuration at a time; see shared/proto/health.ts for the messages it sends. */
export class HealthRunner {
  private state: HealthState | null = null;
  private epoch = 0;
  private seq = 0;
  private pending: HealthTransition[] = [];
  private flushTimer: NodeJS.Timeout | null = null;
  private wake: NodeJS.Timeout | null = null;
  private wakeAt = Infinity;
  private stopped = false;
  private readonly send: (msg: FromHealth) => void;
  private readonly batchMs: number;
  private readonly notifyTimeoutMs: number;
  /** Checks running now. */
  running = 0;

  constructor(opts: RunnerOptions) {
    this.send = opts.send;
    this.batchMs = opts.batchMs ?? 10;
    this.notifyTimeoutMs = opts.notifyTimeoutMs ?? 10_000;
  }

  /** Starts checking `config`; sends `ready` with the startup view. */
  init(config: KeepalivedConfig, epoch: number): void {
    const { state } = startHealth(healthPlan(config), Date.now(), Math.random);
    this.state = state;
    this.epoch = epoch;
    this.send({ v: 1, type: 'ready', epoch, pid: process.pid, view: healthView(state), warnings: warningLines(config) });
    this.arm();
  }

  /** Takes a new configuration, keeping unchanged checkers' state; sends `configured`, then the transitions. */
  reconfigure(config: KeepalivedConfig, epoch: number): void {
    if (!this.state) {
      this.init(config, epoch);
      return;
    }
    let r: ReturnType<typeof reloadHealth>;
    try {
      r = reloadHealth(this.state, healthPlan(config), Date.now(), Math.random);
    } catch (e) {
      this.send({ v: 1, type: 'config-error', epoch, message: (e as Error).message });
      return;
    }
    this.state = r.state;
    this.epoch = epoch;
    this.send({ v: 1, type: 'configured', epoch, warnings: warningLines(config) });
    this.apply(r.effects);
    this.arm();
  }

  status(id: number): void {
    this.send({ v: 1, type: 'status', id, epoch: this.epoch, virtualServers: this.state ? healthStatus(this.state) : [] });
  }

  view(id: number): void {
    this.flush();
    this.send({ v: 1, type: 'view', id, epoch: this.epoch, seq: this.seq, view: this.state ? healthView(this.state) : { virtualServers: [] } });
  }

  /** Stops checking; runs omega scripts and waits for them (bounded by the notify timeout). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.wake) clearTimeout(this.wake);
    this.flush();
    const waits: Promise<void>[] = [];
    if (this.state) for (const e of shutdownHealth(this.state)) if (e.type === 'notify') waits.push(this.notify(e));
    await Promise.all(waits);
    closePing();
  }

  private arm(): void {
    if (this.stopped || !this.state) return;
    const t = nextDueAt(this.state);
    if (t === this.wakeAt && this.wake) return;
    if (this.wake) clearTimeout(this.wake);
    this.wake = null;
    this.wakeAt = t;
    if (t === Infinity) return;
    this.wake = setTimeout(() => this.fire(), Math.max(0, t - Date.now()));
  }

  private fire(): void {
    this.wake = null;
    this.wakeAt = Infinity;
    const state = this.state;
    if (this.stopped || !state) return;
    for (const e of dueChecks(state, Date.now())) {
      if (e.type !== 'run') continue;
      const c = state.checkers.get(e.checkerId);
      if (!c) continue;
      // The duration on the monotonic clock, to the µs: a loopback TCP check takes well under a millisecond, and
      // Date.now() would report it as 0.
      const started = performance.now();
      this.running++;
      void runCheck(c.plan, e.timeoutMs).then((o) => {
        this.running--;
        if (this.stopped || this.state === null) return;
        const now = Date.now();
        this.apply(checkResult(this.state, { checkerId: e.checkerId, seq: e.seq, ok: o.ok, error: o.error, weight: o.weight, durationMs: performance.now() - started }, now));
        this.arm();
      });
    }
    this.arm();
  }

  private apply(effects: HealthEffect[]): void {
    for (const e of effects) {
      if (e.type === 'change') {
        this.pending.push({ vsId: e.vsId, services: [...e.services], key: e.key, dest: e.dest });
        if (!this.flushTimer) this.flushTimer = setTimeout(() => this.flush(), this.batchMs);
      } else if (e.type === 'notify') void this.notify(e);
      else if (e.type === 'log') this.send({ v: 1, type: 'log', line: e.text });
    }
  }

  private flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    if (this.pending.length === 0) return;
    const changes = this.pending;
    this.pending = [];
    this.send({ v: 1, type: 'transitions', epoch: this.epoch, seq: ++this.seq, changes });
  }

  private notify(e: Extract<HealthEffect, { type: 'notify' }>): Promise<void> {
    return new Promise((resolve) => {
      const child = spawn('/bin/sh', ['-c', e.script], { stdio: 'ignore', detached: true });
      const timer = setTimeout(() => { try { if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }, this.notifyTimeoutMs);
      const done = (exitCode: number | null, error: string | null) => {
        clearTimeout(timer);
        this.send({ v: 1, type: 'notified', event: e.event, script: e.script, vsId: e.vsId, rsId: e.rsId, exitCode, error });
        resolve();
      };
      child.once('error', (err) => done(null, err.message));
      child.once('exit', (code, signal) => done(code, signal ? `killed by ${signal}` : null));
    });
  }
}

function warningLines(config: KeepalivedConfig): string[] {
  return [...config.warnings, ...healthWarnings(config)].map((w) => w.message);
}
