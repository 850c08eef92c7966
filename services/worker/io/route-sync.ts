// Keeps the worker's RouteTable equal to the kernel's main IPv4 table and the director's IPv4 addresses, over
// rtnetlink: a synchronous dump at open, then a subscription whose events mark the table stale and a fresh dump
// that replaces it from the event loop, coalesced to at most one per `minIntervalMs`. No process is spawned.
import { RouteCollector, type RouteTable } from '../route.ts';
import { RtnlMonitor, RtnlSocket } from '../../../shared/sys/rtnl.ts';
import { AF_INET, Rtm, RtmGrp, RtTable, addrMsg, familyBody, nlProblems, nlStats, parseAddrMsg, parseRouteMsg, routeMsg, type NlStats } from '../../../shared/sys/rtnl-codec.ts';

/** Options of {@link RouteSync.open}. */
export interface RouteSyncOptions {
  /** Least time between two dumps after changes, ms (default 100): a burst of changes costs one dump. */
  minIntervalMs?: number;
  /** Delay before retrying a dump that failed, ms (default 1000); the previous table stays in force meanwhile. */
  retryMs?: number;
}

/** What the sync did, for status and logs. */
export interface RouteSyncCounters {
  /** Dumps that replaced the table. */
  dumps: number;
  /** Dumps the kernel flagged interrupted (NLM_F_DUMP_INTR), repeated. */
  interrupted: number;
  /** Route, address and link messages heard on the monitor. */
  events: number;
  /** Routes in the table after the last dump. */
  routes: number;
}

// Interrupted dumps are repeated at once this many times, then the last one is used and another is scheduled.
const DUMP_ATTEMPTS = 3;

/**
 * The kernel side of a RouteTable. Events of RTNLGRP_IPV4_ROUTE and RTNLGRP_IPV4_IFADDR, and of RTNLGRP_LINK
 * (the kernel flushes a downed interface's IPv4 routes without announcing each), only mark the table dirty; the
 * re-dump runs in a timer on the event loop, never inside the packet path, and swaps the table in one `set`.
 * A monitor overrun (lost events) also triggers a dump. Malformed messages are skipped and counted in `stats`.
 */
export class RouteSync {
  /** Malformed messages skipped, overruns, failed dumps (see nlProblems). */
  readonly stats: NlStats = nlStats();
  readonly counters: RouteSyncCounters = { dumps: 0, interrupted: 0, events: 0, routes: 0 };
  private readonly table: RouteTable;
  private readonly sock: RtnlSocket;
  private readonly mon: RtnlMonitor;
  private readonly minIntervalMs: number;
  private readonly retryMs: number;
  private readonly collector = new RouteCollector();
  private readonly rm = routeMsg();
  private readonly am = addrMsg();
  private timer: NodeJS.Timeout | null = null;
  private lastDump = 0;
  private closed = false;
  private readonly reported = nlStats();

  private readonly onDump = (type: number, _flags: number, dv: DataView, p: number, end: number): boolean => {
    if (type === Rtm.NEWROUTE) {
      if (!parseRouteMsg(dv, p, end, this.rm)) return false;
      this.collector.addRoute(this.rm);
    } else if (type === Rtm.NEWADDR) {
      if (!parseAddrMsg(dv, p, end, this.am)) return false;
      this.collector.addAddr(this.am);
    }
    return true;
  };

  private readonly onEvent = (type: number, _flags: number, dv: DataView, p: number, end: number): boolean => {
    if (type === Rtm.NEWROUTE || type === Rtm.DELROUTE) {
      if (!parseRouteMsg(dv, p, end, this.rm)) return false;
      // Changes to the local table (addresses' own entries) come with an address event anyway.
      if (this.rm.family !== AF_INET || this.rm.table !== RtTable.MAIN) return true;
    } else if (type === Rtm.NEWADDR || type === Rtm.DELADDR) {
      if (!parseAddrMsg(dv, p, end, this.am)) return false;
      if (this.am.family !== AF_INET) return true;
    } else if (type !== Rtm.NEWLINK && type !== Rtm.DELLINK) {
      return true;
    }
    this.counters.events++;
    this.markDirty();
    return true;
  };

  private constructor(table: RouteTable, o: RouteSyncOptions) {
    this.table = table;
    this.minIntervalMs = o.minIntervalMs ?? 100;
    this.retryMs = o.retryMs ?? 1000;
    this.sock = new RtnlSocket(this.stats);
    try {
      // Subscribe before the first dump, so that no change between the two is missed.
      this.mon = new RtnlMonitor(RtmGrp.IPV4_ROUTE | RtmGrp.IPV4_IFADDR | RtmGrp.LINK, 'RTNLGRP_IPV4_ROUTE|RTNLGRP_IPV4_IFADDR|RTNLGRP_LINK', this.onEvent, () => this.markDirty(), this.stats);
    } catch (e) {
      this.sock.close();
      throw e;
    }
  }

  /**
   * Loads `table` from the kernel now (blocking: two dumps, start-up only) and keeps it current from then on.
   * Throws SysError when the first dump fails.
   */
  static open(table: RouteTable, options: RouteSyncOptions = {}): RouteSync {
    const s = new RouteSync(table, options);
    try {
      s.dump();
    } catch (e) {
      s.close();
      throw e;
    }
    return s;
  }

  /**
   * Dumps routes and addresses and swaps them into the table (blocking: a round trip per dump). Throws
   * SysError on failure, leaving the table as it was.
   */
  dump(): void {
    let consistent = false;
    for (let attempt = 0; attempt < DUMP_ATTEMPTS && !consistent; attempt++) {
      this.collector.reset();
      const a = this.sock.dump(Rtm.GETROUTE, familyBody(Rtm.GETROUTE, AF_INET), 'RTM_GETROUTE dump', this.onDump);
      const b = this.sock.dump(Rtm.GETADDR, familyBody(Rtm.GETADDR, AF_INET), 'RTM_GETADDR dump', this.onDump);
      consistent = !a && !b;
      if (!consistent) this.counters.interrupted++;
    }
    this.collector.applyTo(this.table);
    this.counters.dumps++;
    this.counters.routes = this.collector.routeCount;
    this.lastDump = Date.now();
    if (!consistent) this.markDirty();
  }

  /** What went wrong since the last call, as one log line, or null (for a caller that logs every few seconds). */
  problems(): string | null {
    return nlProblems('routes', this.stats, this.reported);
  }

  /** Unsubscribes and closes both sockets; the table keeps its last contents. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.mon.close();
    this.sock.close();
  }

  private markDirty(): void {
    if (this.timer || this.closed) return;
    this.schedule(Math.max(0, this.lastDump + this.minIntervalMs - Date.now()));
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.closed) return;
      try {
        this.dump();
      } catch (e) {
        this.stats.errors++;
        this.stats.lastError = (e as Error).message;
        if (!this.timer) this.schedule(this.retryMs);
      }
    }, ms);
    this.timer.unref();
  }
}
