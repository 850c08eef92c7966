// Which directors the lab's router sends VIP traffic to: a pure tracker of nexthop probe answers (a BFD-like
// detection: a director is dropped after a "down" answer or `missLimit` unanswered rounds, taken back after
// `rise` rounds answered "up"), and the `ip nexthop` commands that make the routes follow it.
import { NEXTHOP_GROUP_ARGS, RS_NEXTHOP_GROUP, VIP_NEXTHOP_GROUP, netnsOf } from './plan.ts';
import type { LabPlan } from './plan.ts';

/** Detection settings: one probe round every `intervalMs`. */
export interface TrackerOptions {
  /** Probe interval, ms (default 50). */
  intervalMs: number;
  /** Unanswered rounds after which a director is dropped (default 3: 150 ms). */
  missLimit: number;
  /** Rounds answered "up" in a row before a dropped director is taken back (default 2). */
  rise: number;
}

export const TRACKER_DEFAULTS: Readonly<TrackerOptions> = Object.freeze({ intervalMs: 50, missLimit: 3, rise: 2 });

/** One director as the tracker sees it. */
interface Hop {
  live: boolean;
  misses: number;
  ups: number;
  /** Answer heard during the current round: 'up', 'down' or none. */
  heard: 'up' | 'down' | null;
}

/** A change of a director's state, with why. */
export interface HopChange {
  index: number;
  live: boolean;
  why: string;
}

/**
 * Nexthop liveness of `n` directors (index 0 = d1). Every director starts live (the route is built with all of
 * them). Feed answers with {@link answer} and close each probe round with {@link round}.
 */
export class NexthopTracker {
  readonly #o: TrackerOptions;
  readonly #hops: Hop[];
  #seq = 0;

  constructor(n: number, o: Partial<TrackerOptions> = {}) {
    this.#o = { ...TRACKER_DEFAULTS, ...o };
    this.#hops = Array.from({ length: n }, () => ({ live: true, misses: 0, ups: 0, heard: null }));
  }

  /** The sequence number of the current round (requests carry it; older answers are ignored). */
  get seq(): number {
    return this.#seq;
  }

  /**
   * An answer from director `index` to request `seq`: up or down. An answer to the previous round's request still
   * counts (a director whose event loop was busy for a moment is late, not dead); older or out-of-range ones are
   * ignored.
   */
  answer(index: number, seq: number, up: boolean): void {
    const h = this.#hops[index];
    if (!h || (seq !== this.#seq && seq !== ((this.#seq - 1) >>> 0))) return;
    if (h.heard !== 'down') h.heard = up ? 'up' : 'down';
  }

  /** Ends the current round (what was heard decides), starts the next; returns the directors that changed. */
  round(): HopChange[] {
    const out: HopChange[] = [];
    this.#hops.forEach((h, index) => {
      if (h.heard === 'up') {
        h.misses = 0;
        h.ups++;
        if (!h.live && h.ups >= this.#o.rise) {
          h.live = true;
          out.push({ index, live: true, why: `answered up ${h.ups} times` });
        }
      } else if (h.heard === 'down') {
        h.misses = 0;
        h.ups = 0;
        if (h.live) {
          h.live = false;
          out.push({ index, live: false, why: 'answered down (not forwarding)' });
        }
      } else {
        h.ups = 0;
        h.misses++;
        if (h.live && h.misses >= this.#o.missLimit) {
          h.live = false;
          out.push({ index, live: false, why: `${h.misses} probes unanswered` });
        }
      }
      h.heard = null;
    });
    this.#seq = (this.#seq + 1) >>> 0;
    return out;
  }

  /** Indexes of the live directors. */
  live(): number[] {
    return this.#hops.flatMap((h, i) => (h.live ? [i] : []));
  }
}

/**
 * The `ip` commands that make the lab's multipath routes use exactly the directors in `live` (indexes, 0 = d1): the
 * router's VIP group and, with NAT, every real server's default-route group. With no director live the groups keep
 * every member (a resilient group cannot be empty, and nothing better can be done).
 */
export function groupCommands(p: LabPlan, live: readonly number[]): string[][] {
  const members = live.length ? live : Array.from({ length: p.options.directors }, (_, i) => i);
  const cmds: string[][] = [];
  for (const n of p.nodes) {
    for (const r of n.routes) {
      if (r.group !== VIP_NEXTHOP_GROUP && r.group !== RS_NEXTHOP_GROUP) continue;
      const ids = members.filter((i) => i < r.via.length).map((i) => r.group! + 1 + i);
      cmds.push(['ip', '-n', netnsOf(n.name), 'nexthop', 'replace', 'id', String(r.group), 'group', ids.join('/'), ...NEXTHOP_GROUP_ARGS]);
    }
  }
  return cmds;
}
