// The health checker's pure core: per-checker state machines with keepalived's semantics (plus HAProxy's
// rise/fall/fastinter/downinter), real servers alive when all their checkers are up, and per virtual server the
// actions keepalived takes (remove or inhibit, quorum with hysteresis, sorry server, notify scripts). No clock,
// no I/O: the shell feeds `now` and check results in and carries out the effects.
import type { DestConfig, DestKey, ServiceKey } from '../model/ipvs.ts';
import type { CheckerPlan, HealthPlan, RealServerPlan, VirtualServerPlan } from './plan.ts';

/** keepalived's BOOTSTRAP_DELAY (1 s) before a checker's first run; tsvs caps it at the checker's delay_loop. */
export const BOOTSTRAP_DELAY_MS = 1000;

export interface CheckerState {
  plan: CheckerPlan;
  up: boolean;
  /** Completed checks in a row that succeeded / failed (the other is 0). */
  okInRow: number;
  failInRow: number;
  /** keepalived's retry_it: failures retried so far while up. */
  retryIt: number;
  /** A run was handed to the shell and its result has not come back. */
  running: boolean;
  /** Token of the current run: a result with another seq is stale and dropped. */
  seq: number;
  /** When the next run is due (ms, the shell's clock); meaningless while running. */
  nextAt: number;
  lastError: string | null;
  /** When `up` last changed (ms), null if never. */
  lastChangeAt: number | null;
  lastResultAt: number | null;
  lastDurationMs: number | null;
  /** Weight set by MISC_CHECK misc_dynamic (exit status − 2), null when never set. */
  dynWeight: number | null;
  /** Checks completed and checks failed since the checker was created (kept across reloads that keep its state). */
  checks: number;
  failures: number;
}

export interface RealServerState {
  plan: RealServerPlan;
  /** All checkers up (no checker: always). */
  alive: boolean;
  /** Configured weight, or the last misc_dynamic weight. */
  weight: number;
  lastChangeAt: number | null;
  /** Transitions to alive / to not alive since the checker started (cumulative, kept across reloads). */
  ups: number;
  downs: number;
}

export interface VirtualServerState {
  plan: VirtualServerPlan;
  quorumUp: boolean;
  /** The dests this virtual server's services hold now, by `addr|port`. */
  dests: Map<string, DestConfig>;
}

/**
 * The whole checker. Functions below update it in place and return the effects; it holds no clock and does no
 * I/O, so a test drives it tick by tick with made-up times.
 */
export interface HealthState {
  plan: HealthPlan;
  checkers: Map<string, CheckerState>;
  realServers: Map<string, RealServerState>;
  virtualServers: Map<string, VirtualServerState>;
  nextSeq: number;
}

/** A dest's key inside a service. */
export function destKeyText(d: DestKey): string {
  return `${d.addr}|${d.port}`;
}

export type NotifyEvent = 'up' | 'down' | 'quorum_up' | 'quorum_down';

/** What the shell must do. */
export type HealthEffect =
  /** Start checker `checkerId` now; report its result with this `seq`; the whole check must end within timeoutMs. */
  | { readonly type: 'run'; readonly checkerId: string; readonly seq: number; readonly timeoutMs: number }
  /** Run a notify_up/notify_down/quorum_up/quorum_down script. */
  | { readonly type: 'notify'; readonly script: string; readonly event: NotifyEvent; readonly vsId: string; readonly rsId: string | null }
  /** A dest of every service of `vsId` changes: `dest` is its new config, null = removed from the table. */
  | { readonly type: 'change'; readonly vsId: string; readonly services: readonly ServiceKey[]; readonly key: DestKey; readonly dest: DestConfig | null }
  /** A line keepalived would log. */
  | { readonly type: 'log'; readonly text: string };

/** The outcome of one run of a checker, as the shell reports it. */
export interface CheckResult {
  readonly checkerId: string;
  readonly seq: number;
  readonly ok: boolean;
  /** Why it failed (timeout, refused, status 503, digest mismatch, exit 1, ...), null on success. */
  readonly error: string | null;
  /**
   * MISC_CHECK with misc_dynamic: exit status 2..255 sets the weight to status − 2; exit 0 gives null, back to the
   * configured weight (keepalived's check_misc.c, `effective_weight = rs->iweight`). Undefined: no change.
   */
  readonly weight?: number | null;
  readonly durationMs: number;
}

/** One checker in `status` (what `tsvsadm health --json` prints). */
export interface CheckerStatus {
  readonly vs: string;
  readonly rs: string;
  readonly checker: string;
  readonly kind: string;
  readonly target: string;
  readonly state: 'up' | 'down';
  readonly running: boolean;
  readonly okInRow: number;
  readonly failInRow: number;
  readonly lastError: string | null;
  /** Epoch ms of the last state change, null if never. */
  readonly lastChange: number | null;
  readonly lastResult: number | null;
  readonly lastDurationMs: number | null;
  /** Checks completed / failed since the checker was created (cumulative; absent from older checkers). */
  readonly checks?: number;
  readonly failures?: number;
}

export interface RealServerStatus {
  readonly vs: string;
  readonly rs: string;
  readonly alive: boolean;
  /** The weight it has in the table now, null when it is not in the table. */
  readonly tableWeight: number | null;
  readonly configuredWeight: number;
  readonly lastChange: number | null;
  readonly checkers: readonly CheckerStatus[];
  /** Transitions to alive / to not alive since the checker started (cumulative; absent from older checkers). */
  readonly ups?: number;
  readonly downs?: number;
}

export interface VirtualServerStatus {
  readonly vs: string;
  readonly quorumUp: boolean;
  readonly liveWeight: number;
  readonly quorum: number;
  readonly hysteresis: number;
  readonly sorryActive: boolean;
  readonly realServers: readonly RealServerStatus[];
  /** The IPVS services this virtual server stands for (absent from older checkers). */
  readonly services?: readonly ServiceKey[];
}

/** The table the checker wants: per virtual server, its IPVS services and the dests they hold. */
export interface HealthView {
  readonly virtualServers: readonly { readonly vsId: string; readonly services: readonly ServiceKey[]; readonly dests: readonly DestConfig[] }[];
}

function extended(t: CheckerPlan['timing']): boolean {
  return t.rise !== null || t.fall !== null || t.fastinterMs !== null || t.downinterMs !== null;
}

function newChecker(plan: CheckerPlan, now: number, rand: () => number): CheckerState {
  const t = plan.timing;
  const start = Math.min(BOOTSTRAP_DELAY_MS, t.delayLoopMs) + Math.floor(t.warmupMs * rand());
  return {
    plan,
    up: !t.alpha,
    okInRow: 0,
    failInRow: 0,
    // keepalived: "for non alpha mode, one failure is enough initially" (retry_it starts at retry).
    retryIt: t.retry,
    running: false,
    seq: 0,
    nextAt: now + start,
    lastError: null,
    lastChangeAt: null,
    lastResultAt: null,
    lastDurationMs: null,
    dynWeight: null,
    checks: 0,
    failures: 0,
  };
}

function weightOf(rs: RealServerPlan, checkers: Map<string, CheckerState>): number {
  let w = rs.dest.weight;
  for (const id of rs.checkerIds) {
    const c = checkers.get(id);
    if (c && c.dynWeight !== null) w = c.dynWeight;
  }
  return w;
}

function aliveOf(rs: RealServerPlan, checkers: Map<string, CheckerState>): boolean {
  return rs.checkerIds.every((id) => checkers.get(id)?.up ?? true);
}

function liveWeight(vs: VirtualServerState, state: HealthState): number {
  let sum = 0;
  for (const id of vs.plan.rsIds) {
    const rs = state.realServers.get(id);
    if (rs?.alive) sum += rs.weight;
  }
  return sum;
}

/** The dests keepalived keeps for `vs` now (reference §3, §4). */
function wantedDests(vs: VirtualServerState, state: HealthState): Map<string, DestConfig> {
  const out = new Map<string, DestConfig>();
  const sorryActive = !vs.quorumUp && vs.plan.sorry !== null;
  for (const id of vs.plan.rsIds) {
    const rs = state.realServers.get(id);
    if (!rs) continue;
    const d = rs.plan.dest;
    if (rs.alive && !sorryActive) out.set(destKeyText(d), { ...d, weight: rs.weight });
    else if (rs.plan.inhibitOnFailure) out.set(destKeyText(d), { ...d, weight: 0 });
  }
  const sorry = vs.plan.sorry;
  if (sorry) {
    const k = destKeyText(sorry.dest);
    if (sorryActive) out.set(k, { ...sorry.dest, weight: 1 });
    else if (sorry.inhibit && !out.has(k)) out.set(k, { ...sorry.dest, weight: 0 });
  }
  return out;
}

function sameDest(a: DestConfig, b: DestConfig): boolean {
  return a.weight === b.weight && a.method === b.method && a.uThreshold === b.uThreshold && a.lThreshold === b.lThreshold && a.af === b.af;
}

/** Applies the quorum rules (keepalived update_quorum_state) and brings `vs.dests` to what is wanted. */
function settle(vs: VirtualServerState, state: HealthState, fx: HealthEffect[]): void {
  const sum = liveWeight(vs, state);
  const { quorum, hysteresis } = vs.plan;
  if (vs.quorumUp && (sum < quorum - hysteresis || sum === 0)) {
    vs.quorumUp = false;
    fx.push({ type: 'log', text: `Lost quorum ${quorum}-${hysteresis}=${quorum - hysteresis} > ${sum} for VS ${vs.plan.id}` });
    if (vs.plan.quorumDown) fx.push({ type: 'notify', script: vs.plan.quorumDown, event: 'quorum_down', vsId: vs.plan.id, rsId: null });
  } else if (!vs.quorumUp && sum >= quorum + hysteresis) {
    vs.quorumUp = true;
    fx.push({ type: 'log', text: `Gained quorum ${quorum}+${hysteresis}=${quorum + hysteresis} <= ${sum} for VS ${vs.plan.id}` });
    if (vs.plan.quorumUp) fx.push({ type: 'notify', script: vs.plan.quorumUp, event: 'quorum_up', vsId: vs.plan.id, rsId: null });
  }
  diffInto(vs, wantedDests(vs, state), fx);
}

function diffInto(vs: VirtualServerState, want: Map<string, DestConfig>, fx: HealthEffect[]): void {
  for (const [k, d] of vs.dests) {
    if (!want.has(k)) fx.push({ type: 'change', vsId: vs.plan.id, services: vs.plan.services, key: { af: d.af, addr: d.addr, port: d.port }, dest: null });
  }
  for (const [k, d] of want) {
    const old = vs.dests.get(k);
    if (!old || !sameDest(old, d)) fx.push({ type: 'change', vsId: vs.plan.id, services: vs.plan.services, key: { af: d.af, addr: d.addr, port: d.port }, dest: d });
  }
  vs.dests = want;
}

function build(plan: HealthPlan, now: number, rand: () => number, old: HealthState | null): HealthState {
  const checkers = new Map<string, CheckerState>();
  for (const p of plan.checkers) {
    const prev = old?.checkers.get(p.id);
    if (prev && prev.plan.fingerprint === p.fingerprint) {
      prev.plan = p;
      checkers.set(p.id, prev);
    } else checkers.set(p.id, newChecker(p, now, rand));
  }
  const realServers = new Map<string, RealServerState>();
  for (const p of plan.realServers) {
    const prev = old?.realServers.get(p.id);
    realServers.set(p.id, { plan: p, alive: aliveOf(p, checkers), weight: weightOf(p, checkers), lastChangeAt: prev?.lastChangeAt ?? null, ups: prev?.ups ?? 0, downs: prev?.downs ?? 0 });
  }
  const state: HealthState = { plan, checkers, realServers, virtualServers: new Map(), nextSeq: old?.nextSeq ?? 1 };
  for (const p of plan.virtualServers) {
    const prev = old?.virtualServers.get(p.id);
    const vs: VirtualServerState = { plan: p, quorumUp: false, dests: prev?.dests ?? new Map() };
    vs.quorumUp = prev ? prev.quorumUp : liveWeight(vs, state) >= p.quorum + p.hysteresis;
    state.virtualServers.set(p.id, vs);
  }
  return state;
}

/**
 * Starts the checker: every checker up (down with alpha), first runs after min(1 s, delay_loop) plus a random part
 * of warmup (`rand()` in [0, 1)). The effects are the startup table as `change`s (keepalived's startup adds).
 */
export function startHealth(plan: HealthPlan, now: number, rand: () => number): { state: HealthState; effects: HealthEffect[] } {
  const state = build(plan, now, rand, null);
  const effects: HealthEffect[] = [];
  for (const vs of state.virtualServers.values()) diffInto(vs, wantedDests(vs, state), effects);
  return { state, effects };
}

/**
 * Reloads with a new plan (SIGHUP): a checker whose id and settings are unchanged keeps its state (up/down, counts,
 * next run; keepalived #1720), a virtual server keeps its quorum state; the effects are only what changes in the table.
 */
export function reloadHealth(old: HealthState, plan: HealthPlan, now: number, rand: () => number): { state: HealthState; effects: HealthEffect[] } {
  const state = build(plan, now, rand, old);
  const effects: HealthEffect[] = [];
  for (const [id, vs] of old.virtualServers) {
    if (!state.virtualServers.has(id)) diffInto(vs, new Map(), effects);
  }
  for (const rs of state.realServers.values()) {
    const prev = old.realServers.get(rs.plan.id);
    if (prev && prev.alive !== rs.alive) {
      rs.lastChangeAt = now;
      if (rs.alive) rs.ups++;
      else rs.downs++;
      notifyRs(rs, effects);
    }
  }
  for (const vs of state.virtualServers.values()) settle(vs, state, effects);
  return { state, effects };
}

/** When the next checker is due (ms), or Infinity when none is waiting. */
export function nextDueAt(state: HealthState): number {
  let t = Infinity;
  for (const c of state.checkers.values()) if (!c.running && c.nextAt < t) t = c.nextAt;
  return t;
}

/** Starts every checker that is due at `now`: one `run` effect each. */
export function dueChecks(state: HealthState, now: number): HealthEffect[] {
  const fx: HealthEffect[] = [];
  for (const c of state.checkers.values()) {
    if (c.running || c.nextAt > now) continue;
    c.running = true;
    c.seq = state.nextSeq++;
    fx.push({ type: 'run', checkerId: c.plan.id, seq: c.seq, timeoutMs: c.plan.timing.timeoutMs });
  }
  return fx;
}

function notifyRs(rs: RealServerState, fx: HealthEffect[]): void {
  const script = rs.alive ? rs.plan.notifyUp : rs.plan.notifyDown;
  if (script) fx.push({ type: 'notify', script, event: rs.alive ? 'up' : 'down', vsId: rs.plan.vsId, rsId: rs.plan.id });
}

/** Interval until the next run after a completed check (see docs/health.md). */
function interval(c: CheckerState, retrying: boolean): number {
  const t = c.plan.timing;
  if (!extended(t)) return retrying ? t.delayBeforeRetryMs : t.delayLoopMs;
  if (c.up) return c.failInRow === 0 ? t.delayLoopMs : (t.fastinterMs ?? t.delayBeforeRetryMs);
  return c.okInRow > 0 ? (t.fastinterMs ?? t.delayLoopMs) : (t.downinterMs ?? t.delayLoopMs);
}

/**
 * Takes one check result at `now` (when the check ended). Stale results (unknown checker, other seq) are dropped
 * without effect. The next run is armed from `now`, as keepalived arms its timer after the check completes.
 */
export function checkResult(state: HealthState, r: CheckResult, now: number): HealthEffect[] {
  const c = state.checkers.get(r.checkerId);
  if (!c || !c.running || c.seq !== r.seq) return [];
  c.running = false;
  c.lastResultAt = now;
  c.lastDurationMs = r.durationMs;
  c.checks++;
  if (!r.ok) c.failures++;
  const t = c.plan.timing;
  const fx: HealthEffect[] = [];
  const wasUp = c.up;
  let retrying = false;
  if (r.ok) {
    c.okInRow++;
    c.failInRow = 0;
    c.retryIt = 0;
    c.lastError = null;
    if (r.weight !== undefined) c.dynWeight = r.weight;
    if (!c.up && c.okInRow >= (extended(t) ? (t.rise ?? 1) : 1)) c.up = true;
  } else {
    c.failInRow++;
    c.okInRow = 0;
    c.lastError = r.error ?? 'failed';
    if (c.up) {
      if (extended(t)) {
        if (c.failInRow >= (t.fall ?? t.retry + 1)) c.up = false;
      } else if (c.retryIt < t.retry) {
        c.retryIt++;
        retrying = true;
      } else c.up = false;
    }
  }
  c.nextAt = now + interval(c, retrying);
  if (c.up !== wasUp) {
    c.lastChangeAt = now;
    fx.push({ type: 'log', text: c.up ? `${c.plan.checker.kind} on service ${c.plan.rsId} success.` : `${c.plan.checker.kind} on service ${c.plan.rsId} failed after ${c.failInRow} checks: ${c.lastError}` });
  }
  const rs = state.realServers.get(c.plan.rsId);
  if (!rs) return fx;
  const alive = aliveOf(rs.plan, state.checkers);
  const weight = weightOf(rs.plan, state.checkers);
  if (alive === rs.alive && weight === rs.weight) return fx;
  if (alive !== rs.alive) {
    rs.alive = alive;
    rs.lastChangeAt = now;
    if (alive) rs.ups++;
    else rs.downs++;
    fx.push({ type: 'log', text: `${alive ? 'Adding' : rs.plan.inhibitOnFailure ? 'Disabling' : 'Removing'} service ${rs.plan.id}` });
    notifyRs(rs, fx);
  }
  rs.weight = weight;
  const vs = state.virtualServers.get(rs.plan.vsId);
  if (vs) settle(vs, state, fx);
  return fx;
}

/**
 * Shutdown with omega (keepalived): for each virtual server with `omega`, notify_down of its alive real servers
 * and quorum_down if the quorum is up.
 */
export function shutdownHealth(state: HealthState): HealthEffect[] {
  const fx: HealthEffect[] = [];
  for (const vs of state.virtualServers.values()) {
    if (!vs.plan.omega) continue;
    for (const id of vs.plan.rsIds) {
      const rs = state.realServers.get(id);
      if (rs?.alive && rs.plan.notifyDown) fx.push({ type: 'notify', script: rs.plan.notifyDown, event: 'down', vsId: vs.plan.id, rsId: id });
    }
    if (vs.quorumUp && vs.plan.quorumDown) fx.push({ type: 'notify', script: vs.plan.quorumDown, event: 'quorum_down', vsId: vs.plan.id, rsId: null });
  }
  return fx;
}

/** The table the checker wants now. */
export function healthView(state: HealthState): HealthView {
  return { virtualServers: [...state.virtualServers.values()].map((vs) => ({ vsId: vs.plan.id, services: vs.plan.services, dests: [...vs.dests.values()] })) };
}

/** Every virtual server, real server and checker with its state (for `tsvsadm health`). */
export function healthStatus(state: HealthState): VirtualServerStatus[] {
  return [...state.virtualServers.values()].map((vs) => ({
    vs: vs.plan.id,
    quorumUp: vs.quorumUp,
    liveWeight: liveWeight(vs, state),
    quorum: vs.plan.quorum,
    hysteresis: vs.plan.hysteresis,
    sorryActive: !vs.quorumUp && vs.plan.sorry !== null,
    services: vs.plan.services,
    realServers: vs.plan.rsIds.flatMap((id) => {
      const rs = state.realServers.get(id);
      if (!rs) return [];
      const inTable = vs.dests.get(destKeyText(rs.plan.dest));
      return [{
        vs: vs.plan.id,
        rs: id,
        alive: rs.alive,
        tableWeight: inTable ? inTable.weight : null,
        configuredWeight: rs.plan.dest.weight,
        lastChange: rs.lastChangeAt,
        ups: rs.ups,
        downs: rs.downs,
        checkers: rs.plan.checkerIds.flatMap((cid) => {
          const c = state.checkers.get(cid);
          if (!c) return [];
          return [{
            vs: vs.plan.id, rs: id, checker: cid, kind: c.plan.checker.kind,
            target: c.plan.checker.kind === 'MISC_CHECK' ? c.plan.checker.path : c.plan.af === 6 ? `[${c.plan.host}]:${c.plan.port}` : `${c.plan.host}:${c.plan.port}`,
            state: c.up ? 'up' : 'down', running: c.running, okInRow: c.okInRow, failInRow: c.failInRow, lastError: c.lastError,
            lastChange: c.lastChangeAt, lastResult: c.lastResultAt, lastDurationMs: c.lastDurationMs,
            checks: c.checks, failures: c.failures,
          } satisfies CheckerStatus];
        }),
      } satisfies RealServerStatus];
    }),
  }));
}
