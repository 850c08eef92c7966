// Active-active (tsvsd --active-active): every ready director forwards the VIPs behind an ECMP router, while the
// cluster's leader still coordinates. The VIPs go on `lo` (no ARP: the router routes them to each director's own
// address), the client interface stops answering ARP for them, and a UDP probe tells the router whether this
// director forwards now, so that a dead, frozen, cut-off or not-yet-ready director leaves the route.
import { createSocket, type Socket } from 'node:dgram';
import { decodeProbeRequest, encodeProbeReply } from '../../shared/proto/nexthop-probe.ts';
import type { ClusterStatus } from '../../shared/proto/cluster.ts';
import type { VipGrant } from '../../shared/rules/desired.ts';
import { SysctlSet } from '../../shared/sys/sysctl.ts';
import { ClusterLink, NO_VIPS, type ClusterLinkDeps } from './cluster.ts';
import { LeasedIpVips } from './cluster-vips.ts';
import type { Logger } from './log.ts';
import { RtnlVips, type VipHost } from './vips.ts';

/**
 * Whether a director in active-active forwards, from its agent's status: it must have installed its snapshot
 * (`ready`: it can continue its peers' flows), be connected to NATS, and not be cut off (its own heartbeats come
 * back: it syncs what it forwards). The leader is no exception. Pure.
 */
export function activeActiveServing(s: ClusterStatus): { serve: boolean; why: string } {
  if (!s.ready) return { serve: false, why: 'snapshot not installed yet' };
  if (s.nats !== 'up') return { serve: false, why: 'NATS down' };
  const self = s.members.find((m) => m.name === s.self);
  if (!self) return { serve: false, why: 'not in its own member list' };
  if (self.state === 'isolated') return { serve: false, why: 'cut off from NATS (own heartbeats do not come back)' };
  if (self.state !== 'leader' && self.state !== 'backup') return { serve: false, why: `member state ${self.state}` };
  return { serve: true, why: self.state === 'leader' ? 'ready (leader)' : 'ready' };
}

/**
 * The cluster as an ownership source for active-active: the table's VIPs while the agent says this director is
 * ready and connected (polled every `pollMs`: a backup gets no grant message), or while it leads; none before, on
 * isolation, when the agent exits, and from the start of a graceful stop (withdraw first, then hand over).
 */
export class ActiveActiveLink extends ClusterLink {
  readonly #pollMs: number;
  readonly #log: Logger;
  #out: ((g: VipGrant) => void) | null = null;
  #timer: NodeJS.Timeout | null = null;
  #polling = false;
  #agentSays = false;
  #why = 'starting';
  #serving = false;
  #stopping = false;

  /** `pollMs`: how often the agent's status is read (default 50 ms, one heartbeat). */
  constructor(deps: ClusterLinkDeps, pollMs = 50) {
    super(deps);
    this.#pollMs = pollMs;
    this.#log = deps.log;
  }

  /** Whether this director forwards the VIPs now (what the nexthop probe answers). */
  get serving(): boolean {
    return this.#serving;
  }

  override start(emit: (g: VipGrant) => void): void {
    this.#out = emit;
    super.start(() => {
      // The leader's grant or a release; an agent exit resets the role to none: whatever the agent said is void.
      if (this.role.role === 'none') this.#agentSays = false;
      this.#recompute();
    });
    emit(NO_VIPS);
    this.#timer = setInterval(() => void this.#poll(), this.#pollMs);
    this.#timer.unref();
  }

  override stop(): void {
    this.#halt();
    super.stop();
    this.#out = null;
  }

  override async handOver(timeoutMs = 1000): Promise<void> {
    this.#halt();
    await super.handOver(timeoutMs);
  }

  /** Feeds one status answer (the poll's; also for tests). */
  onStatus(s: ClusterStatus | null): void {
    const v = s ? activeActiveServing(s) : { serve: false, why: 'the cluster agent does not answer' };
    this.#agentSays = v.serve;
    this.#why = v.why;
    this.#recompute();
  }

  #halt(): void {
    this.#stopping = true;
    this.#why = 'stopping';
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#recompute();
  }

  async #poll(): Promise<void> {
    if (this.#polling || this.#stopping) return;
    this.#polling = true;
    try {
      this.onStatus(await this.status(this.#pollMs * 4));
    } catch {
      this.onStatus(null);
    } finally {
      this.#polling = false;
    }
  }

  #recompute(): void {
    const want = !this.#stopping && (this.granted || this.#agentSays);
    if (want === this.#serving) return;
    this.#serving = want;
    this.#log(want ? 'active-active: forwarding the VIPs' : 'active-active: not forwarding the VIPs', { why: want && this.granted ? 'leader' : this.#why });
    this.#out?.(want ? { kind: 'all' } : NO_VIPS);
  }
}

/**
 * VIPs on `lo`: local to the director (its kernel answers pings to them, and never forwards them back to the
 * router), announced by nobody (no gratuitous ARP: the router routes them). In a cluster they carry a lifetime this
 * process renews (a dead director's VIPs vanish with it, which also withdraws them from a BGP speaker exporting
 * lo's addresses).
 */
export class LoopbackVips implements VipHost {
  readonly #inner: VipHost;
  readonly #leased: LeasedIpVips | null;
  readonly #held = new Set<string>();

  constructor(log: Logger, leased: boolean) {
    this.#leased = leased ? new LeasedIpVips('lo', log, 2, true) : null;
    this.#inner = this.#leased ?? new RtnlVips('lo', log);
  }

  start(): void {
    this.#leased?.start();
  }

  stop(): void {
    this.#leased?.stop();
  }

  add(vip: string): boolean {
    const ok = this.#inner.add(vip);
    if (ok) this.#held.add(vip);
    return ok;
  }

  del(vip: string): void {
    this.#held.delete(vip);
    this.#inner.del(vip);
  }

  /** The VIPs on `lo` now (added and not removed since), sorted: what this director forwards (`tsvsadm cluster`). */
  get held(): string[] {
    return [...this.#held].sort();
  }

  announce(): void {
    // Nothing to announce: nobody ARPs for a routed VIP.
  }
}

/**
 * The client interface must not answer ARP for addresses on `lo` (the VIPs): `arp_ignore=1` (answer only for
 * addresses of the interface asked) and `arp_announce=2` (never use a VIP as ARP source), as the real servers of DR
 * do. Returns the set, to restore on stop. Throws SysError when a write fails.
 */
export function quietArp(clientIf: string): SysctlSet {
  const s = new SysctlSet();
  s.set(`net/ipv4/conf/${clientIf}/arp_ignore`, '1');
  s.set(`net/ipv4/conf/${clientIf}/arp_announce`, '2');
  return s;
}

/**
 * Answers nexthop probes (shared/proto/nexthop-probe.ts) on UDP `port` of every address: up while `serving()`,
 * down otherwise. Malformed datagrams are counted and ignored.
 */
export class ProbeResponder {
  readonly #sock: Socket;
  readonly #serving: () => boolean;
  readonly #node: string;
  /** Datagrams that were not probe requests. */
  malformed = 0;
  /** Requests answered. */
  answered = 0;

  constructor(node: string, serving: () => boolean) {
    this.#node = node;
    this.#serving = serving;
    this.#sock = createSocket({ type: 'udp4', reuseAddr: false });
    this.#sock.on('message', (msg, rinfo) => {
      const seq = decodeProbeRequest(msg);
      if (seq === null) {
        this.malformed++;
        return;
      }
      this.answered++;
      this.#sock.send(encodeProbeReply(seq, this.#serving(), this.#node), rinfo.port, rinfo.address);
    });
  }

  /** Binds; rejects when the port is taken. */
  listen(port: number, address = '0.0.0.0'): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error): void => reject(e);
      this.#sock.once('error', onError);
      this.#sock.bind(port, address, () => {
        this.#sock.off('error', onError);
        this.#sock.on('error', () => {});
        resolve();
      });
    });
  }

  /** The bound port (after listen). */
  get port(): number {
    return this.#sock.address().port;
  }

  close(): void {
    try {
      this.#sock.close();
    } catch {
      // already closed
    }
  }
}
