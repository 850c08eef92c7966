// tsvsd's watch on its cluster agent and health checker for the read model: polls their status on a timer (outside
// the event queue: both answers bypass it), keeps the latest views for /metrics, /api and the page, and turns what
// changed between polls into control events (health transitions, sync gaps, resyncs).
import type { VirtualServerStatus } from '../../shared/health/machine.ts';
import type { ClusterStatus } from '../../shared/proto/cluster.ts';
import type { ClusterView, HealthServerView } from '../../shared/proto/stats.ts';
import type { ControlEvent } from '../../shared/proto/telemetry.ts';
import { clusterUnavailable, clusterView, healthEvents, healthServers, syncEvents, type RoleSeen } from '../../shared/telemetry/observe.ts';
import type { ClusterLinkEvent } from './cluster.ts';
import type { Logger } from './log.ts';

/** Default poll period, ms. */
export const OBSERVE_INTERVAL_MS = 1000;

export interface ObserverDeps {
  /** This director's node name. */
  node: string;
  /** The cluster agent (tsvsd's ClusterLink): its status, and the role it last reported. Absent: runs alone. */
  cluster?: { status(timeoutMs?: number): Promise<ClusterStatus>; readonly role: RoleSeen };
  /** The health checker's status. Absent: no checker. */
  health?: () => Promise<VirtualServerStatus[]>;
  /** Sends a control event (an always-kept span). */
  control(e: ControlEvent): void;
  log: Logger;
  /** Poll period, ms (default {@link OBSERVE_INTERVAL_MS}). */
  intervalMs?: number;
  /** Wall clock, ms (default Date.now). */
  now?: () => number;
}

/**
 * The poller. {@link start} polls at once and then every interval; a poll never overlaps the previous one (an
 * agent that does not answer costs one timeout per poll, not a pile of them). {@link poke} polls again soon (a
 * health batch just arrived: its transition spans should not wait a whole interval).
 */
export class Observer {
  readonly #deps: ObserverDeps;
  #cluster: ClusterView | null = null;
  #health: HealthServerView[] | null = null;
  #timer: NodeJS.Timeout | null = null;
  #soon: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #again = false;
  #stopped = false;
  #healthError = '';

  constructor(deps: ObserverDeps) {
    this.#deps = deps;
  }

  /** The latest cluster view (null without a cluster). */
  cluster(): ClusterView | null {
    if (!this.#deps.cluster) return null;
    // Before the first answer: this director's own role is still known.
    return this.#cluster ?? clusterUnavailable(this.#deps.node, this.#deps.cluster.role, 'no status yet', null);
  }

  /** The latest health rows (null without a checker or before its first answer). */
  health(): HealthServerView[] | null {
    return this.#health;
  }

  start(): void {
    if (!this.#deps.cluster && !this.#deps.health) return;
    void this.poll();
    this.#timer = setInterval(() => void this.poll(), this.#deps.intervalMs ?? OBSERVE_INTERVAL_MS);
    this.#timer.unref();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    if (this.#soon) clearTimeout(this.#soon);
    this.#timer = this.#soon = null;
  }

  /** Polls within ~50 ms (coalesced). */
  poke(): void {
    if (this.#stopped || this.#soon) return;
    this.#soon = setTimeout(() => {
      this.#soon = null;
      void this.poll();
    }, 50);
    this.#soon.unref();
  }

  /** One poll of both; resolves when done. A poll asked for while one runs runs right after it. */
  poll(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = this.#pollOnce().finally(() => {
      this.#running = null;
      if (this.#again && !this.#stopped) {
        this.#again = false;
        void this.poll();
      }
    });
    return this.#running;
  }

  async #pollOnce(): Promise<void> {
    const { cluster, health } = this.#deps;
    const now = this.#deps.now ?? Date.now;
    await Promise.all([
      cluster
        ? cluster.status(800).then(
            (s) => this.#setCluster(clusterView(s, cluster.role, now())),
            (e: Error) => this.#setCluster(clusterUnavailable(this.#deps.node, cluster.role, e.message, this.#cluster)),
          )
        : undefined,
      health
        ? health().then(
            (st) => {
              const next = healthServers(st);
              for (const e of healthEvents(this.#health, next, now())) this.#deps.control(e);
              this.#health = next;
              this.#healthError = '';
            },
            (e: Error) => {
              if (e.message !== this.#healthError) this.#deps.log('observe: no health status', { error: e.message });
              this.#healthError = e.message;
            },
          )
        : undefined,
    ]);
  }

  #setCluster(v: ClusterView): void {
    if (this.#stopped) return;
    const now = this.#deps.now ?? Date.now;
    for (const e of syncEvents(this.#cluster, v, now())) this.#deps.control(e);
    // A view without an answer keeps the last good sync counters as the baseline for the next comparison.
    this.#cluster = v;
  }
}

/**
 * A cluster link event as a control event: `failover` for a role change of this director (from, to, term, leader),
 * `vip-grant` (term, VIPs) and `vip-release` (term, reason). A release (but at stop) or a fall to no role is an error span.
 */
export function clusterControlEvent(e: ClusterLinkEvent, node: string, timeMs: number): ControlEvent {
  switch (e.kind) {
    case 'role':
      return {
        name: 'failover',
        timeMs,
        attributes: { 'lvs.node': node, 'lvs.cluster.role.from': e.from.role, 'lvs.cluster.role.to': e.to.role, 'lvs.cluster.term': e.to.term, 'lvs.cluster.leader': e.to.role === 'leader' ? node : e.to.leader },
        error: e.to.role === 'none',
      };
    case 'grant':
      return { name: 'vip-grant', timeMs, attributes: { 'lvs.node': node, 'lvs.cluster.term': e.term, 'lvs.vips': e.vips.join(',') || 'all' } };
    case 'release':
      return { name: 'vip-release', timeMs, attributes: { 'lvs.node': node, 'lvs.cluster.term': e.term, 'lvs.reason': e.reason }, error: e.reason !== 'stopping' };
  }
}
