// The IPVS table as the kernel keeps it: every ipvsadm operation with the kernel's checks and errno answers.
import { ipv4FromText } from '../net/addr.ts';
import { overloadAfterBind, overloadAfterEdit, overloadAfterUnbind } from '../sched/overload.ts';
import type { TableErrno, TableOp, TableResult } from './ops.ts';
import {
  Defaults,
  PERSISTENCE_ENGINES,
  SCHEDULERS,
  destKeyString,
  serviceKeyString,
  zeroRates,
  zeroStats,
} from './ipvs.ts';
import type {
  DaemonConfig,
  DestConfig,
  DestKey,
  DestSnapshot,
  Rates,
  ServiceConfig,
  ServiceKey,
  ServiceSnapshot,
  Stats,
  TableSnapshot,
  Timeouts,
} from './ipvs.ts';

/** Milliseconds from a monotonic source. Injected so the table stays pure and tests drive time. */
export type Clock = () => number;

/**
 * How long a deleted dest stays revivable once it has no connections left, in ms
 * (IP_VS_DEST_TRASH_PERIOD, 120 s).
 */
export const DEST_TRASH_PERIOD_MS = 120_000;

/** Size of the mh (Maglev) lookup table with the kernel's default CONFIG_IP_VS_MH_TAB_INDEX (12). */
export const MH_TABLE_SIZE = 4093;

/**
 * Largest accepted --set timeout, in seconds: the kernel allows 0..INT_MAX/HZ; HZ = 250 as Debian builds
 * it. (ipvsadm itself stops at 2678400.)
 */
export const MAX_SET_TIMEOUT_S = Math.floor(0x7fffffff / 250);

/** Scheduler names the table accepts: the ones tsvs implements plus 'none' (a service without scheduler). */
export const ACCEPTED_SCHEDULERS: readonly string[] = [...SCHEDULERS, 'none'];

export type { TableResult };

/** Live per-dest numbers, as the data plane reports them. */
export interface DestCounters {
  activeConns: number;
  inactConns: number;
  persistConns: number;
  /** Cumulative since the dest was created (the table subtracts what -Z zeroed). */
  stats: Stats;
  rate: Rates;
}

/** Live per-service numbers, as the data plane reports them. */
export interface ServiceCounters {
  /** Cumulative since the service was created (the table subtracts what -Z zeroed). */
  stats: Stats;
  rate: Rates;
}

/**
 * Where counters come from: the forwarding workers' counter rows, summed (tsvsd's stats read model). Ids are the stable ids of
 * {@link CompiledService} / {@link CompiledDest}. `undefined` means "nothing counted yet" (zeros).
 * Must be cheap and must not call back into the table.
 */
export interface CounterProvider {
  service(id: number): ServiceCounters | undefined;
  dest(id: number): DestCounters | undefined;
}

/**
 * Connections (and templates) still bound to a dest, by dest id: the kernel's dest refcount. A deleted dest
 * with bound connections stays in the trash and can be revived. tsvsd counts them from the workers' counter rows;
 * without a data plane (no --client-if) nothing is ever bound: 0.
 */
export type BoundConnCounter = (destId: number) => number;

/** Construction options of {@link IpvsTable}; every hook has a neutral default. */
export interface IpvsTableOptions {
  /** Monotonic ms; default `() => 0` (time stands still, trash never expires on its own). */
  clock?: Clock;
  /** Default: nothing bound (0). */
  boundConns?: BoundConnCounter;
  /** Default: every counter is zero. */
  counters?: CounterProvider;
}

/** One real server in the compiled (worker-facing) view. Frozen. */
export interface CompiledDest {
  /** Stable for the life of the dest, kept across trash and revival (bound connections refer to it). */
  readonly id: number;
  readonly config: Readonly<DestConfig>;
  /** Latest non-zero weight (set on add even when 0); mh builds its table from it. */
  readonly lastWeight: number;
  readonly overloaded: boolean;
}

/** One virtual service in the compiled view. Frozen. */
export interface CompiledService {
  /** Stable for the life of the service; a deleted and re-added service gets a new id. */
  readonly id: number;
  /** {@link serviceKeyString} of the service. */
  readonly key: string;
  readonly config: Readonly<ServiceConfig>;
  /** Kernel list order: most recently added first. */
  readonly dests: readonly CompiledDest[];
}

/**
 * The immutable table of one epoch, the form a forwarding worker swaps in between batches. Deeply frozen;
 * the same object is returned until the next mutation.
 */
export interface CompiledTable {
  readonly epoch: number;
  /** Creation order. */
  readonly services: readonly CompiledService[];
  readonly timeouts: Readonly<Timeouts>;
  readonly daemons: readonly Readonly<DaemonConfig>[];
}

/** A deleted dest waiting in the trash (for inspection and tests). */
export interface TrashEntry {
  readonly serviceKey: string;
  readonly serviceId: number;
  readonly destId: number;
  readonly config: Readonly<DestConfig>;
  /** Monotonic ms since which it has had no bound connections; null while it still has some. */
  readonly idleSince: number | null;
}

interface DestState {
  id: number;
  config: DestConfig;
  lastWeight: number;
  overloaded: boolean;
}

interface ServiceState {
  id: number;
  key: string;
  config: ServiceConfig;
  /** Newest first. */
  dests: DestState[];
  /** The same dests by {@link destKeyString}. */
  byKey: Map<string, DestState>;
}

interface TrashState {
  serviceKey: string;
  serviceId: number;
  dest: DestState;
  idleSince: number | null;
}

const OK: TableResult = Object.freeze({ ok: true });

function fail(errno: TableErrno, detail: string): TableResult {
  return { ok: false, errno, detail };
}

/** Addresses the kernel refuses as a real server (inet_addr_type not LOCAL/UNICAST; IPv6 multicast). */
function notUnicast(af: 4 | 6, addr: string): boolean {
  if (af === 6) return addr.toLowerCase().startsWith('ff');
  const a = ipv4FromText(addr);
  if (a === undefined) return false;
  return (a >>> 28) === 0xe || a === 0xffffffff;
}

function subStats(a: Stats, b: Stats | undefined): Stats {
  if (!b) return { ...a };
  return {
    conns: Math.max(0, a.conns - b.conns),
    inpkts: Math.max(0, a.inpkts - b.inpkts),
    outpkts: Math.max(0, a.outpkts - b.outpkts),
    inbytes: Math.max(0, a.inbytes - b.inbytes),
    outbytes: Math.max(0, a.outbytes - b.outbytes),
  };
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as object)) deepFreeze(v);
  }
  return o;
}

/**
 * The director's IPVS table: services, their real servers, timeouts and sync daemons, with the kernel's
 * validation order and errno answers (reference: ipvs-semantics.md, ipvsadm-cli.md §2).
 *
 * Invariants: services keep creation order; a service's dests are newest first (edit does not move a
 * dest; delete + re-add puts it back at the head); every successful mutation bumps {@link epoch} by one
 * and a failed one changes nothing (no partial updates, even where the kernel leaves one — see
 * {@link editService}). No I/O, no timers: time comes from the injected clock, connection and traffic
 * numbers from the injected hooks. Inputs are assumed shape-checked (integers, canonical addresses);
 * the table checks what the kernel checks.
 */
export class IpvsTable {
  #epoch = 0;
  #nextId = 1;
  readonly #services = new Map<string, ServiceState>();
  #trash: TrashState[] = [];
  #timeouts: Timeouts = { ...Defaults.timeouts };
  #daemons: DaemonConfig[] = [];
  /** Counter values at the last -Z, by service or dest id: the snapshot shows live minus these. */
  readonly #zeroBase = new Map<number, Stats>();
  #compiled: CompiledTable | null = null;
  readonly #clock: Clock;
  readonly #boundConns: BoundConnCounter;
  #counters: CounterProvider | null;

  constructor(opts: IpvsTableOptions = {}) {
    this.#clock = opts.clock ?? (() => 0);
    this.#boundConns = opts.boundConns ?? (() => 0);
    this.#counters = opts.counters ?? null;
  }

  /** Number of successful mutations so far; starts at 0. */
  get epoch(): number {
    return this.#epoch;
  }

  /** Replaces the counter source (e.g. when workers start). Does not bump the epoch. */
  setCounterProvider(p: CounterProvider | null): void {
    this.#counters = p;
  }

  /** Applies one table operation (ipvsadm's command), with the kernel's checks. */
  apply(req: TableOp): TableResult {
    switch (req.op) {
      case 'add-service':
        return this.addService(req.svc);
      case 'edit-service':
        return this.editService(req.svc);
      case 'del-service':
        return this.delService(req.key);
      case 'flush':
        return this.flush();
      case 'add-dest':
        return this.addDest(req.key, req.dest);
      case 'edit-dest':
        return this.editDest(req.key, req.dest);
      case 'del-dest':
        return this.delDest(req.key, req.dest);
      case 'zero':
        return this.zero(req.key);
      case 'set-timeout':
        return this.setTimeout({ tcp: req.tcp, tcpfin: req.tcpfin, udp: req.udp });
      case 'start-daemon':
        return this.startDaemon(req.daemon);
      case 'stop-daemon':
        return this.stopDaemon(req.state);
    }
  }

  /**
   * -A. EEXIST if the service exists (checked first, as the kernel does); ENOENT for an unknown scheduler
   * or persistence engine; EINVAL for an IPv6 netmask outside 1..128.
   */
  addService(svc: ServiceConfig): TableResult {
    this.expireTrash();
    const key = serviceKeyString(svc);
    if (this.#services.has(key)) return fail('EEXIST', `service ${key} already exists`);
    const bad = this.#checkServiceConfig(svc, 0);
    if (bad) return bad;
    this.#services.set(key, { id: this.#nextId++, key, config: { ...svc }, dests: [], byKey: new Map() });
    return this.#bump();
  }

  /**
   * -E: replaces the whole definition (scheduler, flags, timeout, netmask, pe); dests are untouched.
   * ESRCH if absent; ENOENT / EINVAL as for -A; EINVAL when switching to mh with more dests than
   * {@link MH_TABLE_SIZE}. Unlike the kernel, which in that case keeps the new flags and leaves the service
   * without a scheduler, a failed edit changes nothing.
   */
  editService(svc: ServiceConfig): TableResult {
    this.expireTrash();
    const s = this.#services.get(serviceKeyString(svc));
    if (!s) return fail('ESRCH', `no service ${serviceKeyString(svc)}`);
    const bad = this.#checkServiceConfig(svc, s.dests.length);
    if (bad) return bad;
    s.config = { ...svc };
    return this.#bump();
  }

  /** -D. ESRCH if absent. Its dests go to the trash (see {@link delDest}). */
  delService(key: ServiceKey): TableResult {
    this.expireTrash();
    const k = serviceKeyString(key);
    const s = this.#services.get(k);
    if (!s) return fail('ESRCH', `no service ${k}`);
    this.#removeService(s);
    return this.#bump();
  }

  /** -C: deletes every service (their dests go to the trash). Always succeeds. */
  flush(): TableResult {
    this.expireTrash();
    for (const s of [...this.#services.values()]) this.#removeService(s);
    return this.#bump();
  }

  /**
   * -a. Kernel order of checks: ESRCH (service); EINVAL for a dest of another address family unless it is
   * a tunnel dest and no sync daemon runs; ERANGE for weight < 0 or l_threshold > u_threshold; EINVAL for
   * GUE with tun_port 0; EEXIST; then a matching dest in the trash is revived (same id, so its bound
   * connections come back; counters kept unless the service was re-created), else a new dest is made
   * (EINVAL for a multicast/broadcast address). EINVAL too when an mh service would exceed
   * {@link MH_TABLE_SIZE} dests (the kernel adds it and silently keeps a stale mh table; tsvs refuses).
   * The dest goes to the head of the list; lastWeight = weight.
   */
  addDest(key: ServiceKey, dest: DestConfig): TableResult {
    this.expireTrash();
    const s = this.#services.get(serviceKeyString(key));
    if (!s) return fail('ESRCH', `no service ${serviceKeyString(key)}`);
    const bad = this.#checkDestConfig(s, dest);
    if (bad) return bad;
    const dk = destKeyString(dest);
    if (s.byKey.has(dk)) return fail('EEXIST', `dest ${dk} already exists in ${s.key}`);
    if (s.config.scheduler === 'mh' && s.dests.length + 1 > MH_TABLE_SIZE) {
      return fail('EINVAL', `mh: more than ${MH_TABLE_SIZE} dests`);
    }
    const ti = this.#trash.findIndex((t) => t.serviceKey === s.key && destKeyString(t.dest.config) === dk);
    let d: DestState;
    if (ti >= 0) {
      const t = this.#trash[ti];
      this.#trash.splice(ti, 1);
      d = t.dest;
      if (t.serviceId !== s.id) this.#rebaseline(d.id, 'dest');
      this.#updateDest(d, dest, true);
    } else {
      if (notUnicast(dest.af, dest.addr)) return fail('EINVAL', `dest address ${dest.addr} is not unicast`);
      d = { id: this.#nextId++, config: { ...dest }, lastWeight: dest.weight, overloaded: false };
    }
    s.dests.unshift(d);
    s.byKey.set(dk, d);
    return this.#bump();
  }

  /**
   * -e: replaces the whole dest definition in place (list position unchanged). Same checks as -a, then
   * ENOENT if the dest is absent. lastWeight follows a non-zero weight; OVERLOAD is cleared when the new
   * u_threshold is 0 or larger than the old one (classic kernel rule).
   */
  editDest(key: ServiceKey, dest: DestConfig): TableResult {
    this.expireTrash();
    const s = this.#services.get(serviceKeyString(key));
    if (!s) return fail('ESRCH', `no service ${serviceKeyString(key)}`);
    const bad = this.#checkDestConfig(s, dest);
    if (bad) return bad;
    const dk = destKeyString(dest);
    const d = s.byKey.get(dk);
    if (!d) return fail('ENOENT', `no dest ${dk} in ${s.key}`);
    this.#updateDest(d, dest, false);
    return this.#bump();
  }

  /**
   * -d. ESRCH (service), ENOENT (dest). The dest moves to the trash, as in kernels since 3.10 (every
   * deleted dest, not only one with connections): it stays revivable while connections are bound to it and
   * for {@link DEST_TRASH_PERIOD_MS} after it was last seen without any (at deletion, or by
   * {@link expireTrash}). The kernel notices idleness on a 60 s timer, so it frees a little later.
   */
  delDest(key: ServiceKey, dest: DestKey): TableResult {
    this.expireTrash();
    const s = this.#services.get(serviceKeyString(key));
    if (!s) return fail('ESRCH', `no service ${serviceKeyString(key)}`);
    const dk = destKeyString(dest);
    const d = s.byKey.get(dk);
    if (!d) return fail('ENOENT', `no dest ${dk} in ${s.key}`);
    s.dests.splice(s.dests.indexOf(d), 1);
    s.byKey.delete(dk);
    this.#toTrash(s, d);
    return this.#bump();
  }

  /**
   * -Z: zeroes the stats (conns, packets, bytes) of one service and its dests, or of everything without
   * a key. ESRCH for an absent service. Connection counts are not counters and are not touched.
   */
  zero(key?: ServiceKey): TableResult {
    this.expireTrash();
    let targets: ServiceState[];
    if (key) {
      const s = this.#services.get(serviceKeyString(key));
      if (!s) return fail('ESRCH', `no service ${serviceKeyString(key)}`);
      targets = [s];
    } else {
      targets = [...this.#services.values()];
    }
    for (const s of targets) {
      this.#rebaseline(s.id, 'service');
      for (const d of s.dests) this.#rebaseline(d.id, 'dest');
    }
    return this.#bump();
  }

  /** --set tcp tcpfin udp, in seconds; 0 leaves that value unchanged. EINVAL outside 0..{@link MAX_SET_TIMEOUT_S}. */
  setTimeout(t: Timeouts): TableResult {
    for (const [name, v] of Object.entries(t)) {
      if (!Number.isInteger(v) || v < 0 || v > MAX_SET_TIMEOUT_S) return fail('EINVAL', `timeout ${name} ${v} out of range`);
    }
    this.#timeouts = {
      tcp: t.tcp || this.#timeouts.tcp,
      tcpfin: t.tcpfin || this.#timeouts.tcpfin,
      udp: t.udp || this.#timeouts.udp,
    };
    return this.#bump();
  }

  /**
   * --start-daemon. EEXIST when a daemon in that state already runs; EINVAL while any service has a dest
   * of another address family (the sync protocol cannot carry them).
   */
  startDaemon(d: DaemonConfig): TableResult {
    if (this.#daemons.some((x) => x.state === d.state)) return fail('EEXIST', `${d.state} sync daemon already runs`);
    for (const s of this.#services.values()) {
      if (s.dests.some((x) => x.config.af !== s.config.af)) return fail('EINVAL', `service ${s.key} has mixed-family dests`);
    }
    this.#daemons.push({ ...d });
    return this.#bump();
  }

  /** --stop-daemon. ESRCH when no daemon runs in that state. (The kernel ignores --syncid here.) */
  stopDaemon(state: 'master' | 'backup'): TableResult {
    const i = this.#daemons.findIndex((x) => x.state === state);
    if (i < 0) return fail('ESRCH', `no ${state} sync daemon runs`);
    this.#daemons.splice(i, 1);
    return this.#bump();
  }

  /**
   * Classic threshold rule after a connection was bound to dest `destId`, with `conns` = its active +
   * inactive connections (templates excluded) after binding: OVERLOAD is set when u_threshold != 0 and
   * conns >= u. For the data plane (or whoever sums the workers' counts). Bumps the epoch only when the
   * flag changes; returns whether it did. Unknown ids are ignored (false).
   */
  thresholdAfterBind(destId: number, conns: number): boolean {
    const d = this.#findDest(destId);
    if (!d) return false;
    const next = overloadAfterBind(d.overloaded, conns, d.config.uThreshold);
    if (next === d.overloaded) return false;
    d.overloaded = next;
    this.#bump();
    return true;
  }

  /**
   * Classic threshold rule after a connection left dest `destId` (`conns` counted after unbinding):
   * with l_threshold != 0 OVERLOAD clears when conns < l; else with u != 0 when conns * 4 < u * 3 (below
   * 75 % of u); with no thresholds it clears. Bumps the epoch only when the flag changes.
   */
  thresholdAfterUnbind(destId: number, conns: number): boolean {
    const d = this.#findDest(destId);
    if (!d) return false;
    const next = overloadAfterUnbind(d.overloaded, conns, d.config.uThreshold, d.config.lThreshold);
    if (next === d.overloaded) return false;
    d.overloaded = next;
    this.#bump();
    return true;
  }

  /**
   * Frees trash entries that have had no bound connections for {@link DEST_TRASH_PERIOD_MS}. Runs at the
   * start of every mutation; a caller with a timer may also run it periodically (the kernel does every
   * 60 s) so idleness is noticed between mutations. Never bumps the epoch: the trash is not forwarded to.
   */
  expireTrash(): void {
    const now = this.#clock();
    this.#trash = this.#trash.filter((t) => {
      if (this.#boundConns(t.dest.id) > 0) {
        t.idleSince = null;
        return true;
      }
      if (t.idleSince === null) {
        t.idleSince = now;
        return true;
      }
      if (now - t.idleSince < DEST_TRASH_PERIOD_MS) return true;
      this.#zeroBase.delete(t.dest.id);
      return false;
    });
  }

  /** The trash, oldest deletion first. */
  trash(): readonly TrashEntry[] {
    return this.#trash.map((t) => ({
      serviceKey: t.serviceKey,
      serviceId: t.serviceId,
      destId: t.dest.id,
      config: { ...t.dest.config },
      idleSince: t.idleSince,
    }));
  }

  /** A fresh, caller-owned copy of the table with counters merged in from the provider (zeros without one). */
  snapshot(): TableSnapshot {
    const services: ServiceSnapshot[] = [];
    for (const s of this.#services.values()) {
      const sc = this.#counters?.service(s.id);
      const dests: DestSnapshot[] = s.dests.map((d) => {
        const dc = this.#counters?.dest(d.id);
        return {
          ...d.config,
          activeConns: dc?.activeConns ?? 0,
          inactConns: dc?.inactConns ?? 0,
          persistConns: dc?.persistConns ?? 0,
          overloaded: d.overloaded,
          stats: dc ? subStats(dc.stats, this.#zeroBase.get(d.id)) : zeroStats(),
          rate: dc ? { ...dc.rate } : zeroRates(),
        };
      });
      services.push({
        ...s.config,
        dests,
        stats: sc ? subStats(sc.stats, this.#zeroBase.get(s.id)) : zeroStats(),
        rate: sc ? { ...sc.rate } : zeroRates(),
      });
    }
    return {
      version: Defaults.version,
      connTabSize: Defaults.connTabSize,
      services,
      timeouts: { ...this.#timeouts },
      daemons: this.#daemons.map((d) => ({ ...d })),
    };
  }

  /** The frozen worker-facing view of the current epoch; built once per epoch. */
  compiled(): CompiledTable {
    if (this.#compiled && this.#compiled.epoch === this.#epoch) return this.#compiled;
    const services: CompiledService[] = [...this.#services.values()].map((s) => ({
      id: s.id,
      key: s.key,
      config: { ...s.config },
      dests: s.dests.map((d) => ({ id: d.id, config: { ...d.config }, lastWeight: d.lastWeight, overloaded: d.overloaded })),
    }));
    this.#compiled = deepFreeze({
      epoch: this.#epoch,
      services,
      timeouts: { ...this.#timeouts },
      daemons: this.#daemons.map((d) => ({ ...d })),
    });
    return this.#compiled;
  }

  #findDest(id: number): DestState | undefined {
    for (const s of this.#services.values()) {
      const d = s.dests.find((x) => x.id === id);
      if (d) return d;
    }
    return undefined;
  }

  #bump(): TableResult {
    this.#epoch++;
    return OK;
  }

  #checkServiceConfig(svc: ServiceConfig, ndests: number): TableResult | null {
    if (svc.scheduler !== '' && !ACCEPTED_SCHEDULERS.includes(svc.scheduler)) {
      return fail('ENOENT', `scheduler '${svc.scheduler}' not found`);
    }
    if (svc.pe !== '' && !(PERSISTENCE_ENGINES as readonly string[]).includes(svc.pe)) {
      return fail('ENOENT', `persistence engine '${svc.pe}' not found`);
    }
    if (svc.af === 6) {
      const plen = Number(svc.netmask);
      if (!/^\d+$/.test(svc.netmask) || plen < 1 || plen > 128) return fail('EINVAL', `IPv6 netmask '${svc.netmask}' is not 1..128`);
    }
    if (svc.scheduler === 'mh' && ndests > MH_TABLE_SIZE) return fail('EINVAL', `mh: ${ndests} dests exceed ${MH_TABLE_SIZE}`);
    return null;
  }

  #checkDestConfig(s: ServiceState, dest: DestConfig): TableResult | null {
    if (dest.af !== s.config.af) {
      if (this.#daemons.length > 0) return fail('EINVAL', 'mixed address families while a sync daemon runs');
      if (dest.method !== 'tunnel') return fail('EINVAL', 'a dest of another address family must be a tunnel dest');
    }
    if (dest.weight < 0) return fail('ERANGE', 'server weight less than zero');
    if (dest.lThreshold > dest.uThreshold) return fail('ERANGE', 'lower threshold is higher than upper threshold');
    if (dest.method === 'tunnel' && dest.tunType === 'gue' && dest.tunPort === 0) return fail('EINVAL', 'GUE tunnel needs a port');
    return null;
  }

  /** __ip_vs_update_dest: the part of add (revival) and edit that sets weight, thresholds and flags. */
  #updateDest(d: DestState, dest: DestConfig, add: boolean): void {
    if (add || dest.weight > 0) d.lastWeight = dest.weight;
    d.overloaded = overloadAfterEdit(d.overloaded, d.config.uThreshold, dest.uThreshold);
    d.config = { ...dest };
  }

  #toTrash(s: ServiceState, d: DestState): void {
    const idleSince = this.#boundConns(d.id) > 0 ? null : this.#clock();
    this.#trash.push({ serviceKey: s.key, serviceId: s.id, dest: d, idleSince });
  }

  #removeService(s: ServiceState): void {
    this.#services.delete(s.key);
    for (const d of s.dests) this.#toTrash(s, d);
    s.dests = [];
    s.byKey.clear();
    this.#zeroBase.delete(s.id);
  }

  /** Remembers the live stats of a service or dest (ids are unique across both) as its new zero. */
  #rebaseline(id: number, kind: 'service' | 'dest'): void {
    const live = kind === 'service' ? this.#counters?.service(id)?.stats : this.#counters?.dest(id)?.stats;
    if (live) this.#zeroBase.set(id, { ...live });
    else this.#zeroBase.delete(id);
  }
}
