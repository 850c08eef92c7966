// The worker's table state: what a forwarding table becomes for the engine — service lookups by key and mark, dest
// liveness, NAT endpoints, the mark classifier — built as one pure assignment from the previous state and a new
// table, carrying each service's scheduler across the swap as the kernel would have seen the change.
import { compileMarkRules, type MarkClassifier } from '../../shared/fwd/classifier.ts';
import type { FwdDest, FwdService, FwdTable } from '../../shared/fwd/table.ts';
import { FwdCode } from '../../shared/model/ipvs.ts';
import { createScheduler } from '../../shared/sched/index.ts';
import type { DestView, Scheduler } from '../../shared/sched/types.ts';

/** One service as the engine uses it: its compiled record, its scheduler and the scheduler's dest views. */
export interface SvcState {
  svc: FwdService;
  sched: Scheduler | undefined;
  views: DestView[];
  /** Dest record by position, parallel to views. */
  dests: FwdDest[];
}

/** Everything the engine derives from one forwarding table. Built by {@link buildState}; never changed after. */
export interface TableState {
  epoch: number;
  /** Services by VIP then (protocol, port): both keys small integers, so lookups allocate nothing. */
  byKey: AddrPortMap<SvcState>;
  byFwmark: Map<number, SvcState>;
  /** Services by id (sparse). */
  byId: SvcState[];
  /** 1 at every dest id present in the table (availability). */
  destLive: Uint8Array<ArrayBuffer>;
  vips: Set<number>;
  /** (proto, addr, port) of every NAT dest, for orphan-reply detection. */
  natEndpoints: AddrPortMap<true>;
  /** The fwmark classifier, when the table has mark rules and fwmark services. */
  classifier: MarkClassifier | null;
  /** Connection timeouts, ms: TCP established, TCP FIN_WAIT, UDP. */
  timeoutsMs: { tcp: number; tcpfin: number; udp: number };
}

/** The state of a worker that has no table yet: nothing is ours. */
export function emptyState(): TableState {
  return {
    epoch: -1, byKey: new Map(), byFwmark: new Map(), byId: [], destLive: new Uint8Array(0), vips: new Set(), natEndpoints: new Map(),
    classifier: null, timeoutsMs: { tcp: 900_000, tcpfin: 120_000, udp: 300_000 },
  };
}

/**
 * The table swap as one assignment: builds the state of `table` from `prev`, keeping each service's scheduler
 * (and its position: rr's cursor, wrr's current weight, lblc's assignments) when its scheduler and flags are
 * unchanged, and reporting dest deletions, additions (at the head, newest first) and weight edits to it as the
 * kernel does; another scheduler, other flags or a new service get a fresh scheduler seeded with `rng`.
 * Pure apart from the schedulers it carries (their records are moved into the new state; `prev` must not be used
 * for forwarding afterwards).
 */
export function buildState(prev: TableState, table: FwdTable, rng: () => number): TableState {
  const old = prev.byId;
  const byKey: AddrPortMap<SvcState> = new Map();
  const byFwmark = new Map<number, SvcState>();
  const byId: SvcState[] = [];
  let maxDest = 0;
  for (const s of table.services) for (const d of s.dests) if (d.id + 1 > maxDest) maxDest = d.id + 1;
  const live = new Uint8Array(maxDest);
  const natEndpoints: AddrPortMap<true> = new Map();
  for (const s of table.services) {
    for (const d of s.dests) {
      live[d.id] = 1;
      if (d.method === FwdCode.masq && s.protocol !== 0) apSet(natEndpoints, s.protocol, d.addr, d.port, true);
    }
    const { sched, views } = carryScheduler(old[s.id], s, rng);
    const st: SvcState = { svc: s, sched, views, dests: s.dests };
    byId[s.id] = st;
    if (s.fwmark > 0) byFwmark.set(s.fwmark, st);
    else apSet(byKey, s.protocol, s.vaddr, s.vport, st);
  }
  return {
    epoch: table.epoch,
    byKey,
    byFwmark,
    byId,
    destLive: live,
    vips: new Set(table.vips),
    natEndpoints,
    classifier: table.marks && table.marks.length > 0 && byFwmark.size > 0 ? compileMarkRules(table.marks) : null,
    timeoutsMs: { tcp: table.timeouts.tcp * 1000, tcpfin: table.timeouts.tcpfin * 1000, udp: table.timeouts.udp * 1000 },
  };
}

function newView(d: FwdDest, i: number): DestView {
  return { index: i, addr: d.addr, port: d.port, weight: d.weight, lastWeight: d.lastWeight || d.weight, overloaded: false, available: true, activeConns: 0, inactConns: 0 };
}

function renumber(views: DestView[]): void {
  for (let i = 0; i < views.length; i++) views[i].index = i;
}

/**
 * Carries a service's scheduler across a table swap as the kernel would have seen the change: each deleted dest
 * reported at its position, each added one at the head (newest first), each changed weight as an edit — so rr
 * keeps its place and wrr its current weight (ip_vs_wrr_dest_changed) instead of starting over. A new service,
 * another scheduler or other flags start a fresh scheduler. View records are reused (lblc/lblcr hold them).
 */
function carryScheduler(prev: SvcState | undefined, s: FwdService, rng: () => number): { sched: Scheduler | undefined; views: DestView[] } {
  const fresh = (): { sched: Scheduler | undefined; views: DestView[] } => {
    const views = s.dests.map(newView);
    const sched = createScheduler(s.scheduler, { flags: s.flags, rng });
    try {
      sched?.update(views, { kind: 'init' });
      return { sched, views };
    } catch {
      return { sched: undefined, views };
    }
  };
  if (!prev || !prev.sched || prev.svc.scheduler !== s.scheduler || prev.svc.flags !== s.flags) return fresh();
  const sched = prev.sched;
  const views = prev.views.slice();
  const ids = prev.svc.dests.map((d) => d.id);
  const want = s.dests.map((d) => d.id);
  try {
    for (let i = ids.length - 1; i >= 0; i--) {
      if (want.includes(ids[i])) continue;
      views[i].available = false;
      views.splice(i, 1);
      ids.splice(i, 1);
      renumber(views);
      sched.update(views, { kind: 'del', at: i });
    }
    const added = want.filter((id) => !ids.includes(id));
    for (let k = added.length - 1; k >= 0; k--) {
      const d = s.dests.find((x) => x.id === added[k]) as FwdDest;
      views.unshift(newView(d, 0));
      ids.unshift(d.id);
      renumber(views);
      sched.update(views, { kind: 'add', at: 0 });
    }
    if (ids.length !== want.length || ids.some((id, i) => id !== want[i])) return fresh();
    for (let i = 0; i < views.length; i++) {
      const d = s.dests[i];
      const v = views[i];
      const lw = d.lastWeight || d.weight;
      if (v.weight !== d.weight || v.lastWeight !== lw) {
        v.weight = d.weight;
        v.lastWeight = lw;
        sched.update(views, { kind: 'edit', at: i });
      }
    }
    return { sched, views };
  } catch {
    return fresh();
  }
}

/**
 * A map keyed by (protocol, IPv4 address, port) through two levels of small-integer keys: the address as int32
 * (`addr | 0`), then `(protocol << 16) | port`. V8 boxes a Map key that is not a small integer on every lookup;
 * these never are boxed, so a lookup per packet allocates nothing.
 */
export type AddrPortMap<T> = Map<number, Map<number, T>>;

export function apSet<T>(m: AddrPortMap<T>, proto: number, addr: number, port: number, v: T): void {
  let inner = m.get(addr | 0);
  if (inner === undefined) m.set(addr | 0, (inner = new Map()));
  inner.set(((proto & 0xff) << 16) | port, v);
}

export function apGet<T>(m: AddrPortMap<T>, proto: number, addr: number, port: number): T | undefined {
  const inner = m.get(addr | 0);
  return inner === undefined ? undefined : inner.get(((proto & 0xff) << 16) | port);
}
