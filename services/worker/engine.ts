// The forwarding engine of one worker: classify → connection lookup → schedule → rewrite → transmit, for
// every frame the packet ports deliver. No allocation, no exceptions, no closures per packet: every outcome
// is a verdict, and every drop a named counter in this worker's row of the shared counters.
import { ConnFlag, ConnTable, NO_DEST, destConnFlags } from '../../shared/conntab/conn-table.ts';
import { Dir, TcpState } from '../../shared/conntab/tcp-state.ts';
import { IpProto, PacketMeta, TcpFlag, isIcmpError, parseFrame, parseIpv4, rebaseMeta } from '../../shared/net/parse.ts';
import { NetVerdict } from '../../shared/net/verdict.ts';
import { decTtl, encapGue, encapIpip, finishPartial, natIcmpIn, natIcmpOut, natIn, natOut, setMacs, writeEth, IPIP_OVERHEAD, GUE_OVERHEAD } from '../../shared/net/rewrite.ts';
import { buildIcmpUnreach } from '../../shared/net/icmp.ts';
import { buildTcpRst } from '../../shared/net/tcp-rst.ts';
import { defaultGuard, SourceLimiter, type GuardOptions } from '../../shared/fwd/guard.ts';
import { overloadAt } from '../../shared/sched/overload.ts';
import type { SchedInput } from '../../shared/sched/types.ts';
import { FwdCode, SvcFlag } from '../../shared/model/ipvs.ts';
import { ConnCount, Ev, NET_EVENT_BASE, Stat, type CounterRow, type Counters } from '../../shared/fwd/counters.ts';
import type { FwdDest, FwdTable } from '../../shared/fwd/table.ts';
import type { MarkClassifier } from '../../shared/fwd/classifier.ts';
import { copyBytes } from '../../shared/sys/libc.ts';
import type { TxPort, VerdictPort } from './io/port.ts';
import { apGet, buildState, emptyState, type AddrPortMap, type SvcState, type TableState } from './state.ts';
import { Outcome, TemplateUse, noneReason, schedulerIndex } from '../../shared/telemetry/decision-ring.ts';
import type { DecisionWriter } from '../../shared/telemetry/decision-ring.ts';
import { RECORD_TEMPLATE_FLAG, RecordOp } from '../../shared/sync/record.ts';
import type { SyncRing } from '../../shared/sync/ring.ts';
import { Install, installRecord, writeEntryRecord, type SyncResolver, type SyncService } from '../../shared/sync/conn-sync.ts';
import { SyncHold } from './sync-hold.ts';

/** What the engine did with a frame. */
export const Verdict = {
  /** Forwarded (a frame was committed to a TX port). */
  FORWARD: 0,
  /** Not for the director's data plane (the kernel handles its own copy). */
  NOT_OURS: 1,
  /** Dropped; the reason was counted. */
  DROP: 2,
} as const;

export type { TxPort } from './io/port.ts';

/** The next hop for a destination: egress interface, MACs, and the director's address there. */
export interface Hop {
  ifindex: number;
  dstMac: Uint8Array;
  srcMac: Uint8Array;
  /** The director's IPv4 address on the egress interface (outer source of tunnels), host order. */
  srcIp: number;
}

/** Resolves the L2 next hop of an IPv4 destination (route + neighbour). Fills `hop`; false when unknown. */
export interface L2Resolver {
  resolve(daddr: number, hop: Hop): boolean;
  /** True when `addr` is the director's own: a real server on the director (local node). */
  isLocal(addr: number): boolean;
  /** The director's source address toward `daddr` (outer source of tunnels in L3 mode); 0 when unroutable. */
  sourceFor(daddr: number): number;
  /**
   * After `resolve` failed: a TxPort that holds one frame for `daddr`'s next hop until its MAC is known (issue 11:
   * the kernel's unres_qlen), with `hop` filled but for `dstMac`; the engine writes the finished frame into it as
   * into a real port. Null when the packet cannot be held (no route, no queue free): the engine then falls back.
   */
  hold(daddr: number, hop: Hop): TxPort | null;
  /**
   * A peer's connection from client `caddr` was installed: resolve the next hop toward the client now (a probe if the
   * MAC is unknown), so that a backup taking over does not wait on ARP with the flows' replies piling up in the
   * hold queue. Called once per client (a small cache dedups), off the packet path.
   */
  prepare?(caddr: number): void;
}

/** Delivery into the director's own stack (a TUN device queue): one IPv4 packet per call. */
export interface LocalSink {
  write(buf: Uint8Array, off: number, len: number): boolean;
}

/** Engine options. */
export interface EngineOptions {
  /** Connection table of this worker's shard. */
  conns: ConnTable;
  /** Shared counters (all rows, for global per-dest counts) and this worker's index (its row). */
  counters: Counters;
  worker: number;
  l2: L2Resolver;
  /** TX ports by ifindex. */
  ports: Map<number, TxPort>;
  /** The clock, ms. */
  now: () => number;
  /** Random source for twos. */
  rng?: () => number;
  /** ICMP port-unreachable replies per second at most (kernel icmp_ratelimit-like). Default 100. */
  icmpPerSec?: number;
  /** Where packets for a real server on the director itself go; without it they are dropped (counted). */
  local?: LocalSink | null;
  /** This worker's decision ring (shared/telemetry): one record per scheduling decision; null = tracing off. */
  decisions?: DecisionWriter | null;
  /** Dead destinations and flood defence (shared/fwd/guard.ts); unset fields take defaultGuard()'s values. */
  guard?: Partial<GuardOptions>;
  /**
   * Connection sync (a cluster): this worker's rings (shared/sync/ring.ts). Every new, changed and removed
   * connection and template is written to `outbound`; peers' records in `inbound` are installed into the shard.
   */
  sync?: { outbound: SyncRing; inbound: SyncRing; shard: number } | null;
}

/** Records installed per drain at most (a batch end); a lookup miss drains everything that is waiting. */
const SYNC_DRAIN_BATCH = 4096;


const VNET_NEEDS_CSUM = 1;
const ETH_HLEN = 14;

/**
 * A worker's forwarding engine. Create one per worker; feed it frames with {@link frame}, call
 * {@link endBatch} after each RX batch (expires connections with bounded work), and swap tables with
 * {@link setTable} between batches.
 */
export class Engine {
  readonly m = new PacketMeta();
  private readonly ct: ConnTable;
  private readonly counters: Counters;
  private readonly row: CounterRow;
  private readonly ev: Float64Array;
  private readonly l2: L2Resolver;
  private readonly ports: Map<number, TxPort>;
  private readonly now: () => number;
  private readonly rng: () => number;
  private readonly hop: Hop = { ifindex: 0, dstMac: new Uint8Array(6), srcMac: new Uint8Array(6), srcIp: 0 };
  private readonly si: SchedInput = { saddr: 0, sport: 0, daddr: 0, dport: 0 };
  private readonly scratch = new Uint8Array(2048);
  /** Services by (proto << 48 | vaddr << 16 | vport) as a number key: exact match. */
  /** Services by VIP then (protocol, port): both keys small integers, so lookups allocate nothing. */
  private byKey: AddrPortMap<SvcState> = new Map();
  private byFwmark = new Map<number, SvcState>();
  private byId: SvcState[] = [];
  /** Dest ids present in the current table (availability). */
  private destLive = new Uint8Array(0);
  private vips = new Set<number>();
  /** (proto, addr, port) of every NAT dest, for orphan-reply detection. */
  private natEndpoints: AddrPortMap<true> = new Map();
  private epoch = -1;
  /** The table state in force (see state.ts); its fields are copied below for the hot path. */
  private state: TableState = emptyState();
  private icmpTokens = 0;
  private icmpLastMs = 0;
  private readonly icmpPerSec: number;
  private readonly local: LocalSink | null;
  /** The clock as of the last refresh (see dispatch); table time when the worker runs on it. */
  private nowMs: number;
  private sinceClock = 0;
  /** The NFQUEUE port of the packet being handled (L3 mode), else null. */
  private l3: VerdictPort | null = null;
  private l3Id = 0;
  private classifier: MarkClassifier | null = null;
  private readonly dw: DecisionWriter | null;
  /** Scheduler index (shared/telemetry schedulerIndex) by service id, refreshed on every table swap. */
  private schedIdx = new Uint8Array(0);
  private readonly g: GuardOptions;
  /** 1 for dest ids of weight 0 in the current table (quiescent). */
  private destQuiet = new Uint8Array(0);
  private readonly limiter: SourceLimiter | null;
  /** Table fill (entries) from which SYN_RECV gets the pressure timeout, and back below which it is restored. */
  private readonly pressureOn: number;
  private readonly pressureOff: number;
  private readonly synRecvMs: number;
  private pressure = false;
  private readonly syncOut: SyncRing | null;
  private readonly syncIn: SyncRing | null;
  private readonly syncShard: number;
  /** Table time (ms) each entry was last written to the outbound ring, by entry index. */
  private readonly lastSync: Uint32Array;
  /** The connection being created: its first packet's state change is part of its NEW record. */
  private fresh = -1;
  /** Services as the sync installer sees them, by service id (rebuilt on every table swap). */
  private syncSvcs: SyncService[] = [];
  private readonly syncResolver: SyncResolver;
  /** Clients whose next hop was prepared ({@link prepareClient}), by a hash of the address (0: none). */
  private readonly prepared = new Uint32Array(256);
  /** Mid-flow TCP segments waiting for their synced entry (AF_PACKET only), replayed between batches. */
  private readonly hold: SyncHold | null;
  private readonly holdFrame: Uint8Array;
  private readonly holdMeta = new Float64Array(2);
  private replaying = false;
  private holdAgain = false;
  /** Records were installed since held frames were last replayed (a batch end replays only then). */
  private installedSinceReplay = false;

  constructor(o: EngineOptions) {
    this.ct = o.conns;
    this.counters = o.counters;
    this.row = o.counters.rows[o.worker];
    this.ev = this.row.events;
    this.l2 = o.l2;
    this.ports = o.ports;
    this.now = o.now;
    this.rng = o.rng ?? Math.random;
    this.icmpPerSec = o.icmpPerSec ?? 100;
    this.local = o.local ?? null;
    this.dw = o.decisions ?? null;
    this.nowMs = o.now();
    this.g = { ...defaultGuard(), ...o.guard };
    this.limiter = this.g.newConnRate > 0 ? new SourceLimiter(this.g.newConnRate, this.g.newConnBurst || 2 * this.g.newConnRate) : null;
    this.pressureOn = Math.max(1, Math.floor((this.ct.capacity * this.g.pressurePct) / 100));
    this.pressureOff = Math.floor((this.pressureOn * 7) / 8);
    this.synRecvMs = this.ct.timeouts.tcp[TcpState.SYN_RECV];
    this.syncOut = o.sync?.outbound ?? null;
    this.syncIn = o.sync?.inbound ?? null;
    this.syncShard = o.sync?.shard ?? 0;
    this.lastSync = new Uint32Array(o.sync ? this.ct.capacity : 0);
    this.hold = o.sync ? new SyncHold() : null;
    this.holdFrame = new Uint8Array(this.hold !== null ? this.hold.opts.slotBytes : 0);
    this.syncResolver = {
      service: (proto, vaddr, vport, fwmark) => {
        const st = fwmark !== 0 ? this.byFwmark.get(fwmark) : (apGet(this.byKey, proto, vaddr, vport) ?? apGet(this.byKey, proto, vaddr, 0));
        return st === undefined ? undefined : this.syncSvcs[st.svc.id];
      },
    };
  }

  get tableEpoch(): number {
    return this.epoch;
  }

  /**
   * Swaps in a new forwarding table (control path, between batches). Scheduler state is kept for services
   * whose scheduler, flags and dest list are unchanged; otherwise rebuilt as the kernel does on an edit.
   */
  setTable(t: FwdTable): void {
    const st = buildState(this.state, t, this.rng);
    this.state = st;
    this.byKey = st.byKey;
    this.byFwmark = st.byFwmark;
    this.byId = st.byId;
    this.destLive = st.destLive;
    this.vips = st.vips;
    this.classifier = st.classifier;
    this.natEndpoints = st.natEndpoints;
    const quiet = new Uint8Array(st.destLive.length);
    for (const s of t.services) for (const d of s.dests) if (d.weight === 0) quiet[d.id] = 1;
    this.destQuiet = quiet;
    this.ct.timeouts.tcp[TcpState.ESTABLISHED] = st.timeoutsMs.tcp;
    this.ct.timeouts.tcp[TcpState.FIN_WAIT] = st.timeoutsMs.tcpfin;
    this.ct.timeouts.udp = st.timeoutsMs.udp;
    this.epoch = st.epoch;
    if (this.dw !== null) {
      const idx = new Uint8Array(st.byId.length);
      for (let i = 0; i < st.byId.length; i++) if (st.byId[i] !== undefined) idx[i] = schedulerIndex(st.byId[i].svc.scheduler);
      this.schedIdx = idx;
    }
    if (this.syncIn !== null) {
      const svcs: SyncService[] = [];
      for (const s of t.services) {
        svcs[s.id] = { id: s.id, netmask: s.netmask, persistMs: s.persistMs, fwmark: s.fwmark, vport: s.vport, persistent: (s.flags & SvcFlag.PERSISTENT) !== 0, dests: s.dests };
      }
      this.syncSvcs = svcs;
    }
    this.nowMs = this.now();
    this.ev[Ev.table_swaps]++;
  }

  /**
   * Installs peers' records waiting in the inbound ring (at most `max`) into this shard; each outcome is counted
   * (sync_created + Install code). Returns how many were taken. Between batches, and on a lookup miss.
   */
  syncDrain(max = SYNC_DRAIN_BATCH): number {
    const r = this.syncIn;
    // Before its first table the worker knows no service: peers' records wait in the ring until it has one.
    if (r === null || this.epoch < 0) return 0;
    const n = Math.min(r.available(), max);
    if (n === 0) return 0;
    const now = this.nowMs;
    const words = r.words;
    for (let i = 0; i < n; i++) {
      const off = r.offsetAt(i);
      const code = installRecord(this.ct, words, off, this.syncResolver, now);
      this.ev[Ev.sync_created + code]++;
      if (code === Install.CREATED && (words[off + 1] & RECORD_TEMPLATE_FLAG) === 0) this.prepareClient(words[off + 2]);
    }
    r.release(n);
    this.installedSinceReplay = true;
    return n;
  }

  /**
   * A peer's connection from `caddr` is now in this shard: its client-side next hop is resolved ahead of the traffic
   * a takeover brings (the replies of every synced flow would otherwise wait on one ARP round, and overflow the
   * neighbour's hold queue). A direct-mapped cache of recent clients keeps this to one resolver call per client.
   */
  private prepareClient(caddr: number): void {
    if (this.l2.prepare === undefined) return;
    const slot = Math.imul(caddr, 0x9e3779b1) >>> 24;
    if (this.prepared[slot] === caddr >>> 0) return;
    this.prepared[slot] = caddr >>> 0;
    this.l2.prepare(caddr >>> 0);
  }

  /** Idle path (a timer): refreshes the clock and installs what peers sent. */
  syncPoll(): number {
    if (this.syncIn === null) return 0;
    const held = this.hold !== null && this.hold.size > 0;
    if (this.syncIn.available() === 0 && !held) return 0;
    this.nowMs = this.now();
    const n = this.syncDrain();
    if (held) this.replayHeld();
    return n;
  }

  /**
   * Holds a frame that found no entry while a peer's record for it may be on its way (AF_PACKET, in a cluster);
   * during a replay it marks the frame to wait on. False when it cannot wait (no sync, NFQUEUE, queue full).
   */
  private holdForSync(buf: Uint8Array, off: number, len: number, partial: boolean, now: number): boolean {
    if (this.hold === null || this.l3 !== null) return false;
    if (this.replaying) {
      this.holdAgain = true;
      return true;
    }
    if (!this.hold.put(buf, off, len, partial, now)) return false;
    this.ev[Ev.sync_held]++;
    return true;
  }

  /**
   * Between batches: every held frame is handled again; one whose entry has arrived is forwarded (counted
   * released), one still without an entry waits on until its hold time is over (then dropped, counted).
   */
  private replayHeld(): void {
    const h = this.hold as SyncHold;
    if (this.replaying) return;
    this.replaying = true;
    this.installedSinceReplay = false;
    const now = this.nowMs;
    const f = this.holdFrame;
    const meta = this.holdMeta;
    for (let k = h.size; k > 0; k--) {
      const len = h.take(f, meta);
      if (len < 0) break;
      if (now - meta[0] > h.opts.holdMs) {
        this.ev[Ev.sync_hold_timeout]++;
        continue;
      }
      this.holdAgain = false;
      this.dispatch(f, 0, len, meta[1] === 1, parseFrame(f, len, this.m, 0));
      if (this.holdAgain) h.put(f, 0, len, meta[1] === 1, meta[0]);
      else this.ev[Ev.sync_hold_released]++;
    }
    this.replaying = false;
  }

  /** Writes entry `e` to the outbound ring as `op` (a full ring counts the record as dropped). No allocation. */
  private syncEmit(op: number, e: number, now: number): void {
    const r = this.syncOut as SyncRing;
    const off = r.reserve();
    if (off < 0) {
      this.ev[Ev.sync_out_dropped]++;
      return;
    }
    const ct = this.ct;
    const st = this.byId[ct.service(e)];
    writeEntryRecord(r.words, off, ct, e, op, this.syncShard, st === undefined ? 0 : st.svc.fwmark, this.stateTimeout(e, st), now);
    r.commit();
    this.lastSync[e] = now >>> 0;
    this.ev[Ev.sync_sent]++;
  }

  /** The full timeout of entry `e`'s current state, ms (a template: its service's persistence timeout). */
  private stateTimeout(e: number, st: SvcState | undefined): number {
    const ct = this.ct;
    if (ct.isTemplate(e)) return st === undefined ? 0 : st.svc.persistMs;
    return ct.proto(e) === IpProto.TCP ? ct.timeouts.tcp[ct.state(e)] : ct.timeouts.udp;
  }

  /**
   * After a packet of entry `e` (state `before` → `after`): a state change is synced at once; an entry whose state
   * stays is synced again once an eighth of its timeout (at least 1 s) has passed since it last was, so a peer's
   * copy never expires while the flow is alive here (IPVS's sync_refresh_period idea).
   */
  private syncTouch(e: number, before: number, after: number, now: number): void {
    if (e === this.fresh) return;
    if (before !== after) {
      this.syncEmit(RecordOp.UPDATE, e, now);
      return;
    }
    const t = this.stateTimeout(e, this.byId[this.ct.service(e)]);
    const every = t >>> 3 > 1000 ? t >>> 3 : 1000;
    if (((now - this.lastSync[e]) >>> 0) >= every) this.syncEmit(RecordOp.UPDATE, e, now);
  }

  /** After each RX batch: expire due connections (bounded work). */
  endBatch(): void {
    this.ev[Ev.batches]++;
    this.nowMs = this.now();
    if (this.syncIn !== null) {
      this.syncDrain();
      if (this.installedSinceReplay && this.hold !== null && this.hold.size > 0) this.replayHeld();
    }
    const n = this.ct.expire(this.nowMs, 4096);
    if (n > 0) this.ev[Ev.conns_expired] += n;
    // Under pressure (secure_tcp's idea, keyed on the table's fill): new embryonic entries get a short SYN_RECV
    // timeout, so a flood's half-open entries leave within seconds; restored once the table has drained.
    const live = this.ct.size;
    if (!this.pressure && live >= this.pressureOn) {
      this.pressure = true;
      this.ct.timeouts.tcp[TcpState.SYN_RECV] = Math.min(this.synRecvMs, this.g.pressureSynRecvMs);
      this.ev[Ev.table_pressure]++;
    } else if (this.pressure && live < this.pressureOff) {
      this.pressure = false;
      this.ct.timeouts.tcp[TcpState.SYN_RECV] = this.synRecvMs;
    }
  }

  /** Whether the table is under pressure (embryonic entries get the short timeout). */
  get underPressure(): boolean {
    return this.pressure;
  }

  /**
   * Handles one received frame `buf[off, off+len)`. `partial` says the L4 checksum is CHECKSUM_PARTIAL.
   * Returns a Verdict. Never throws on any input.
   */
  frame(buf: Uint8Array, off: number, len: number, partial: boolean): number {
    this.ev[Ev.rx_frames]++;
    return this.dispatch(buf, off, len, partial, parseFrame(buf, len, this.m, off));
  }

  /**
   * Handles one IPv4 packet `buf[off, off+len)` from NFQUEUE (safe mode: the kernel routes, resolves neighbours
   * and keeps checksums complete) and gives it exactly one verdict on `port`: a rewritten payload (NAT, TUN), a
   * routing mark (DR), accept (not ours, local node) or drop. Returns the Verdict. Never throws.
   */
  packet(buf: Uint8Array, off: number, len: number, id: number, port: VerdictPort): number {
    this.ev[Ev.rx_frames]++;
    this.l3 = port;
    this.l3Id = id;
    const v = this.dispatch(buf, off, len, false, parseIpv4(buf, off, off + len, this.m));
    if (v === Verdict.DROP) port.drop(id);
    else if (v === Verdict.NOT_OURS) port.accept(id);
    this.l3 = null;
    return v;
  }

  private dispatch(buf: Uint8Array, off: number, len: number, partial: boolean, pv: number): number {
    const m = this.m;
    if (pv !== NetVerdict.OK) {
      if (pv === NetVerdict.DROP_NOT_IPV4) return Verdict.NOT_OURS;
      // Every malformed or fragmented frame is counted by reason. Those for a VIP are ours to drop (the
      // kernel's copy is dropped by the raw rules); others the kernel judges for itself.
      this.ev[NET_EVENT_BASE + pv]++;
      return m.daddr !== 0 && this.vips.has(m.daddr) ? Verdict.DROP : Verdict.NOT_OURS;
    }
    const proto = m.proto;
    if (proto === IpProto.TCP || proto === IpProto.UDP) {
      // The clock is read per batch, not per packet: reading it allocates (Date.now() is boxed), and a
      // collection pauses forwarding. endBatch() — after every batch, and every 250 ms when idle — and every
      // 64th packet refresh it, so it is never more than a batch or 250 ms old, far below any IPVS timeout.
      if ((++this.sinceClock & 63) === 0) this.nowMs = this.now();
      const now = this.nowMs;
      let e = this.ct.lookupIn(proto, m.saddr, m.sport, m.daddr, m.dport);
      if (e >= 0 && proto === IpProto.TCP && (m.tcpFlags & TcpFlag.SYN) !== 0 && this.reusable(e)) {
        if (this.syncOut !== null) this.syncEmit(RecordOp.CLOSE, e, now);
        this.ct.remove(e);
        e = -1;
      }
      if (e >= 0) return this.inbound(buf, off, len, partial, e, now);
      e = this.ct.lookupOut(proto, m.daddr, m.dport, m.saddr, m.sport);
      if (e >= 0) return this.outbound(buf, off, len, partial, e, now);
      // A flow this shard does not know may be one a peer synced a moment ago (a takeover, a flow that moved in
      // active-active): install what is waiting and look again before scheduling it afresh or dropping it.
      if (this.syncIn !== null && this.syncIn.available() > 0 && this.syncDrain(0x7fffffff) > 0) {
        e = this.ct.lookupIn(proto, m.saddr, m.sport, m.daddr, m.dport);
        if (e >= 0) return this.inbound(buf, off, len, partial, e, now);
        e = this.ct.lookupOut(proto, m.daddr, m.dport, m.saddr, m.sport);
        if (e >= 0) return this.outbound(buf, off, len, partial, e, now);
      }
      const st = this.findService(proto, m.daddr, m.dport);
      if (st === undefined) {
        if (this.isNatReplyCandidate()) {
          if (this.holdForSync(buf, off, len, partial, now)) return Verdict.DROP;
          this.ev[Ev.orphan_replies]++;
          return Verdict.DROP;
        }
        this.ev[Ev.not_ours]++;
        return Verdict.NOT_OURS;
      }
      return this.newConn(buf, off, len, partial, st, now);
    }
    if (proto === IpProto.ICMP && m.innerL4Off >= 0 && isIcmpError(m.icmpType)) return this.icmpError(buf, off, len);
    this.ev[Ev.not_ours]++;
    return Verdict.NOT_OURS;
  }

  /** A rewrite refused the packet (TTL expired, no room, ...): counted by its shared/net reason. */
  private dropNet(v: number): number {
    this.ev[NET_EVENT_BASE + v]++;
    return Verdict.DROP;
  }

  /**
   * A packet whose source is a NAT real server's address and port, yet no connection of this shard knows it:
   * a reply that reached the wrong worker (fanout mismatch) or outlived its connection. Counted as an orphan.
   */
  private isNatReplyCandidate(): boolean {
    const m = this.m;
    return apGet(this.natEndpoints, m.proto, m.saddr, m.sport) !== undefined;
  }

  /**
   * The service of a new connection, in the kernel's order (ip_vs_service_find): a fwmark service when the
   * packet classifies to a mark that has one, then the exact <proto, VIP, port>, then the VIP's port-0 service.
   */
  private findService(proto: number, daddr: number, dport: number): SvcState | undefined {
    if (this.classifier !== null) {
      const m = this.m;
      const mark = this.classifier.classify(proto, m.saddr, daddr, m.sport, dport);
      if (mark !== 0) {
        const st = this.byFwmark.get(mark);
        if (st !== undefined) return st;
      }
    }
    return apGet(this.byKey, proto, daddr, dport) ?? apGet(this.byKey, proto, daddr, 0);
  }

  /** Refreshes a service's dest views from the shared counters (global across workers) and thresholds. */
  private refreshViews(st: SvcState): void {
    const c = this.counters;
    for (let i = 0; i < st.views.length; i++) {
      const v = st.views[i];
      const d = st.dests[i];
      const act = c.destConns(d.id, ConnCount.active);
      const ina = c.destConns(d.id, ConnCount.inactive);
      v.activeConns = act;
      v.inactConns = ina;
      v.overloaded = overloadAt(v.overloaded, act + ina, d.uThreshold, d.lThreshold);
    }
  }

  private schedule(st: SvcState, now: number): number {
    if (st.sched === undefined) return -1;
    this.refreshViews(st);
    const si = this.si;
    const m = this.m;
    si.saddr = m.saddr;
    si.sport = m.sport;
    si.daddr = m.daddr;
    si.dport = m.dport;
    return st.sched.schedule(st.views, si, now);
  }

  private newConn(buf: Uint8Array, off: number, len: number, partial: boolean, st: SvcState, now: number): number {
    const m = this.m;
    const svc = st.svc;
    if (m.proto === IpProto.TCP && ((m.tcpFlags & TcpFlag.SYN) === 0 || (m.tcpFlags & TcpFlag.RST) !== 0)) {
      // In a cluster, a segment in the middle of a flow may have outrun its synced entry: it waits for it (bounded).
      if ((m.tcpFlags & TcpFlag.RST) === 0 && this.holdForSync(buf, off, len, partial, now)) return Verdict.DROP;
      this.ev[Ev.drop_no_conn]++;
      return Verdict.DROP;
    }
    if (this.limiter !== null && !this.limiter.take(m.saddr, now)) {
      this.ev[Ev.drop_rate_limit]++;
      return Verdict.DROP;
    }
    let pos = -1;
    let dport = m.dport;
    let tmpl = -1;
    let tuse: number = TemplateUse.none;
    if ((svc.flags & SvcFlag.PERSISTENT) !== 0) {
      tuse = TemplateUse.miss;
      const caddr = (m.saddr & svc.netmask) >>> 0;
      const fw = svc.fwmark > 0;
      const tproto = fw ? 0 : m.proto;
      const tvaddr = fw ? svc.fwmark : m.daddr;
      const tvport = fw || svc.vport === 0 || svc.vport === 21 ? 0 : m.dport;
      tmpl = this.ct.lookupTemplate(tproto, caddr, tvaddr, tvport);
      if (tmpl >= 0) {
        const did = this.ct.destId(tmpl);
        pos = this.destPos(st, did);
        if (pos >= 0 && this.g.expireQuiescentTemplate && st.dests[pos].weight === 0) {
          // expire_quiescent_template: the template's server is quiescent; schedule the client afresh.
          this.ev[Ev.quiescent_templates_expired]++;
          pos = -1;
        }
        if (pos < 0) {
          this.ct.invalidateTemplate(tmpl);
          tmpl = -1;
        } else {
          tuse = TemplateUse.hit;
        }
      }
      if (tmpl < 0) {
        pos = this.schedule(st, now);
        if (pos >= 0) {
          const d = st.dests[pos];
          tmpl = this.ct.insertTemplate(tproto, caddr, tvaddr, tvport, d.addr, tvport === 0 ? 0 : d.port, destConnFlags(d.method), d.id, svc.id, svc.persistMs, now);
          if (tmpl >= 0) {
            this.ev[Ev.templates_created]++;
            if (this.syncOut !== null) this.syncEmit(RecordOp.NEW, tmpl, now);
          }
        }
      } else {
        this.ct.rearm(tmpl, now, svc.persistMs);
        if (this.syncOut !== null) this.syncTouch(tmpl, 0, 0, now);
      }
      if (pos >= 0 && m.dport === svc.vport && svc.fwmark === 0) dport = st.dests[pos].port || m.dport;
    } else {
      if (svc.vport === 0 && svc.fwmark === 0) {
        this.ev[Ev.drop_no_service]++;
        return Verdict.DROP;
      }
      pos = this.schedule(st, now);
      if (pos >= 0) dport = st.dests[pos].port || m.dport;
    }
    if (pos < 0) {
      if (this.dw !== null) this.trace(st, -1, noneReason(st.views), tuse, 0, now);
      this.ev[Ev.drop_no_dest]++;
      this.sendUnreachable(buf, off, len, now);
      return Verdict.DROP;
    }
    const d = st.dests[pos];
    let flags = destConnFlags(d.method);
    if ((svc.flags & SvcFlag.ONEPACKET) !== 0 && m.proto === IpProto.UDP) flags |= ConnFlag.ONE_PACKET;
    let e = this.ct.insert(m.proto, m.saddr, m.sport, m.daddr, m.dport, d.addr, dport, flags, d.id, svc.id, now);
    if (e < 0 && this.ct.evictEmbryonic() >= 0) {
      // Full: the oldest half-open TCP entry makes room (a flood's entries, not established connections).
      this.ev[Ev.evict_embryonic]++;
      e = this.ct.insert(m.proto, m.saddr, m.sport, m.daddr, m.dport, d.addr, dport, flags, d.id, svc.id, now);
    }
    if (this.dw !== null) this.trace(st, pos, e < 0 ? Outcome.tableFull : tuse === TemplateUse.hit ? Outcome.persistent : Outcome.scheduled, tuse, dport, now);
    if (e < 0) {
      this.ev[Ev.drop_table_full]++;
      return Verdict.DROP;
    }
    if (tmpl >= 0) this.ct.control(e, tmpl);
    this.ev[Ev.conns_created]++;
    this.row.svcStats[svc.id * Stat.width + Stat.conns]++;
    this.row.destStats[d.id * Stat.width + Stat.conns]++;
    this.fresh = e;
    const v = this.inbound(buf, off, len, partial, e, now);
    this.fresh = -1;
    if ((flags & ConnFlag.ONE_PACKET) !== 0) this.ct.remove(e);
    else if (this.syncOut !== null && this.ct.isLive(e)) this.syncEmit(RecordOp.NEW, e, now);
    return v;
  }

  /**
   * Writes this decision's record (numbers only: no allocation). The candidates are the views the scheduler
   * compared; a template hit compared none, so it records only the dest the template named.
   */
  private trace(st: SvcState, pos: number, outcome: number, tuse: number, dport: number, now: number): void {
    const w = this.dw!;
    const m = this.m;
    const svc = st.svc;
    w.begin(now, m.proto, m.saddr, m.sport, m.daddr, m.dport, svc.fwmark, svc.id);
    if (tuse !== TemplateUse.hit) w.candidates(this.schedIdx[svc.id] ?? 255, st.views, pos);
    if (pos < 0) {
      w.commit(outcome, tuse, -1, 0, 0, 255);
    } else {
      const d = st.dests[pos];
      w.commit(outcome, tuse, d.id, d.addr, dport, d.method);
    }
  }

  private destPos(st: SvcState, id: number): number {
    const ds = st.dests;
    for (let i = 0; i < ds.length; i++) if (ds[i].id === id) return i;
    return -1;
  }

  /**
   * Port reuse, IPVS's conn_reuse_mode 1 (the default; ip_vs_in's is_new_conn + is_new_conn_expected): a TCP
   * packet with SYN set on connection `e` means the client reuses the port of an old connection when that
   * connection is not controlled by a template and is in TIME_WAIT or CLOSE. The caller then removes the old
   * entry and handles the packet as a new connection: the service is looked up again and the connection is
   * scheduled afresh (so it may go to another real server), before any check of the old dest — a SYN on a
   * TIME_WAIT connection whose real server was deleted is rescheduled, not dropped. Not reused: ESTABLISHED and
   * the other states (a retransmitted SYN), FIN_WAIT even without replies (that is mode bit 2, not implemented),
   * and template-controlled connections (persistence keeps them on their real server).
   */
  private reusable(e: number): boolean {
    if (this.ct.controlOf(e) >= 0) return false;
    const s = this.ct.state(e);
    return s === TcpState.TIME_WAIT || s === TcpState.CLOSE;
  }

  /**
   * expire_nodest_conn: a client packet of connection `e`, whose real server is gone (or, UDP, quiescent): the
   * connection ends now. UDP, and a TCP SYN (a handshake still retrying), are scheduled afresh as a new
   * connection; other TCP packets are dropped and, with nodestTcp 'rst', answered by a reset to the client.
   */
  private nodest(buf: Uint8Array, off: number, len: number, partial: boolean, e: number, now: number): number {
    const m = this.m;
    if (this.syncOut !== null) this.syncEmit(RecordOp.CLOSE, e, now);
    this.ct.remove(e);
    this.ev[Ev.nodest_expired]++;
    const syn = m.proto === IpProto.TCP && (m.tcpFlags & (TcpFlag.SYN | TcpFlag.RST)) === TcpFlag.SYN;
    if (m.proto === IpProto.UDP || syn) {
      const st = this.findService(m.proto, m.daddr, m.dport);
      if (st !== undefined) {
        this.ev[Ev.nodest_rescheduled]++;
        return this.newConn(buf, off, len, partial, st, now);
      }
    } else if (m.proto === IpProto.TCP && (m.tcpFlags & TcpFlag.RST) === 0 && this.g.nodestTcp === 'rst' && this.replyToken(now)) {
      this.sendRst(buf);
    }
    this.ev[Ev.drop_dest_gone]++;
    return Verdict.DROP;
  }

  /** A TCP reset to the client of the packet being handled (L2: a TX slot; L3: the local sink). */
  private sendRst(buf: Uint8Array): void {
    const m = this.m;
    if (this.l3 !== null) {
      if (this.local === null) return;
      const n = buildTcpRst(buf, m, this.scratch, 0, this.hop.dstMac, this.hop.srcMac);
      if (n > 14 && this.local.write(this.scratch, 14, n - 14)) this.ev[Ev.nodest_rst_sent]++;
      return;
    }
    if (!this.l2.resolve(m.saddr, this.hop)) return;
    const port = this.ports.get(this.hop.ifindex);
    if (port === undefined) return;
    const slot = port.txReserve();
    if (slot < 0) return;
    const n = buildTcpRst(buf, m, port.txBuf, slot, this.hop.dstMac, this.hop.srcMac);
    if (n <= 0) return;
    port.txCommit(n, 0, 0, 0);
    this.ev[Ev.tx_frames]++;
    this.ev[Ev.nodest_rst_sent]++;
  }

  /** Client → director packet of an existing connection. */
  private inbound(buf: Uint8Array, off: number, len: number, partial: boolean, e: number, now: number): number {
    const m = this.m;
    const ct = this.ct;
    const did = ct.destId(e);
    if (did === NO_DEST || did >= this.destLive.length || this.destLive[did] === 0) {
      if (this.g.expireNodestConn) return this.nodest(buf, off, len, partial, e, now);
      this.ev[Ev.drop_dest_gone]++;
      return Verdict.DROP;
    }
    if (m.proto === IpProto.UDP && this.destQuiet[did] === 1 && this.g.expireQuiescentTemplate) return this.nodest(buf, off, len, partial, e, now);
    const fwd = ct.flags(e) & ConnFlag.FWD_MASK;
    const daddr = ct.daddr(e);
    const dport = ct.dport(e);
    if (this.syncOut !== null) {
      const before = ct.state(e);
      this.syncTouch(e, before, ct.onPacket(e, Dir.INPUT, m.tcpFlags, now), now);
    } else {
      ct.onPacket(e, Dir.INPUT, m.tcpFlags, now);
    }
    const bytes = m.totalLen;
    const svc = ct.service(e);
    if (this.l3 !== null) {
      const v = this.l3In(buf, fwd, daddr, dport, svc, did);
      if (v === Verdict.FORWARD) this.countIn(svc, did, bytes);
      return v;
    }
    if (this.l2.isLocal(daddr)) return this.toLocal(buf, partial, svc, did, bytes);
    let port: TxPort | undefined;
    if (this.l2.resolve(daddr, this.hop)) {
      port = this.ports.get(this.hop.ifindex);
      if (port === undefined) return this.count(Ev.drop_no_neigh);
    } else {
      // The next hop's MAC is being resolved: the frame is finished into its neighbour's hold queue and sent when
      // the MAC arrives. Without a queue (no route, none free), NAT goes through the kernel; others drop.
      const held = this.l2.hold(daddr, this.hop);
      if (held === null) {
        if (fwd !== FwdCode.masq) return this.count(Ev.drop_no_neigh);
        const v = this.viaKernel(buf, partial, daddr, dport, true);
        if (v === Verdict.FORWARD) this.countIn(svc, did, bytes);
        return v;
      }
      port = held;
    }
    let v: number;
    if (fwd === FwdCode.masq) v = this.txNat(buf, off, len, partial, port, daddr, dport, true);
    else if (fwd === FwdCode.tunnel) v = this.txTunnel(buf, partial, port, daddr, svc, did);
    else v = this.txRoute(buf, off, len, partial, port);
    if (v === Verdict.FORWARD) this.countIn(svc, did, bytes);
    return v;
  }

  /**
   * L3 (NFQUEUE) transmission of a client's packet: NAT rewrites in place (the kernel forwards and decrements
   * the TTL), DR marks the packet for the dest's policy route, TUN grows it by an outer header, a local real
   * server gets it unchanged (the VIP is local). Issues the verdict; returns FORWARD or a drop.
   */
  private l3In(buf: Uint8Array, fwd: number, daddr: number, dport: number, svc: number, did: number): number {
    const m = this.m;
    const port = this.l3 as VerdictPort;
    if (this.l2.isLocal(daddr)) {
      port.accept(this.l3Id);
      this.ev[Ev.local_delivered]++;
      return Verdict.FORWARD;
    }
    if (fwd === FwdCode.masq) return this.l3Modified(natIn(buf, m, daddr, dport, false, false), buf);
    const st = this.byId[svc];
    const pos = st === undefined ? -1 : this.destPos(st, did);
    const d = pos < 0 ? undefined : (st as SvcState).dests[pos];
    if (fwd === FwdCode.route) {
      if (d === undefined || !d.drMark) return this.count(Ev.drop_no_neigh);
      port.acceptMark(this.l3Id, d.drMark);
      this.ev[Ev.tx_frames]++;
      return Verdict.FORWARD;
    }
    const gue = d !== undefined && d.tunType === 'gue';
    const total = (gue ? GUE_OVERHEAD : IPIP_OVERHEAD) + m.totalLen;
    const o = port.reserveModified(this.l3Id, total);
    if (o < 0) return this.count(Ev.tx_errors);
    const src = this.l2.sourceFor(daddr);
    const v = gue
      ? encapGue(buf, m, port.verdictBuf, o, src, daddr, 0xc000 | ((m.saddr ^ m.sport) & 0x3fff), (d as FwdDest).tunPort, (d as FwdDest).tunCsum === 'csum', 0)
      : encapIpip(buf, m, port.verdictBuf, o, src, daddr, 0);
    if (v !== NetVerdict.OK) {
      port.dropReserved();
      this.ev[NET_EVENT_BASE + v]++;
      return Verdict.FORWARD;
    }
    this.ev[Ev.tx_frames]++;
    return Verdict.FORWARD;
  }

  /** L3: the result of an in-place rewrite of `buf` becomes the packet's verdict (modified payload or drop). */
  private l3Modified(v: number, buf: Uint8Array): number {
    if (v !== NetVerdict.OK) return this.dropNet(v);
    const m = this.m;
    if (!(this.l3 as VerdictPort).acceptModified(this.l3Id, buf, m.l3Off, m.totalLen)) return this.count(Ev.tx_errors);
    this.ev[Ev.tx_frames]++;
    return Verdict.FORWARD;
  }

  private countIn(svc: number, did: number, bytes: number): void {
    this.ev[Ev.forwarded_in]++;
    this.row.svcStats[svc * Stat.width + Stat.inpkts]++;
    this.row.svcStats[svc * Stat.width + Stat.inbytes] += bytes;
    this.row.destStats[did * Stat.width + Stat.inpkts]++;
    this.row.destStats[did * Stat.width + Stat.inbytes] += bytes;
  }

  private countOut(svc: number, did: number, bytes: number): void {
    this.ev[Ev.forwarded_out]++;
    this.row.svcStats[svc * Stat.width + Stat.outpkts]++;
    this.row.svcStats[svc * Stat.width + Stat.outbytes] += bytes;
    if (did !== NO_DEST) {
      this.row.destStats[did * Stat.width + Stat.outpkts]++;
      this.row.destStats[did * Stat.width + Stat.outbytes] += bytes;
    }
  }

  /**
   * The next hop's MAC is not known yet (the probe is under way): NAT the packet in place and hand it to the
   * kernel's forwarding path through the TUN queue, which resolves the neighbour and queues the packet as it
   * does for its own traffic. Later packets take the fast path once the neighbour table has the entry. (The
   * kernel decrements the TTL once more on this path.)
   */
  private viaKernel(buf: Uint8Array, partial: boolean, addr: number, aport: number, toServer: boolean): number {
    const m = this.m;
    if (this.local === null) return this.count(Ev.drop_no_neigh);
    const v = toServer ? natIn(buf, m, addr, aport, partial) : natOut(buf, m, addr, aport, partial);
    if (v !== NetVerdict.OK) return this.dropNet(v);
    if (partial) finishPartial(buf, m);
    if (!this.local.write(buf, m.l3Off, m.totalLen)) return this.count(Ev.drop_no_neigh);
    this.ev[Ev.via_kernel]++;
    return Verdict.FORWARD;
  }

  /**
   * A real server on the director itself: the packet goes to the local stack unchanged (destination VIP:vport,
   * as IPVS delivers to a local real server), through a TUN queue; the local server answers the client directly.
   * NAT with another port: tsvsd's DNAT rule on the TUN device maps the port, and conntrack maps the replies back.
   */
  private toLocal(buf: Uint8Array, partial: boolean, svc: number, did: number, bytes: number): number {
    const m = this.m;
    if (this.local === null) return this.count(Ev.drop_no_local);
    if (partial) finishPartial(buf, m);
    if (!this.local.write(buf, m.l3Off, m.totalLen)) return this.count(Ev.drop_no_local);
    this.ev[Ev.local_delivered]++;
    this.countIn(svc, did, bytes);
    return Verdict.FORWARD;
  }

  /** Real server → client reply of a NAT connection. */
  private outbound(buf: Uint8Array, off: number, len: number, partial: boolean, e: number, now: number): number {
    const m = this.m;
    const ct = this.ct;
    if ((ct.flags(e) & ConnFlag.FWD_MASK) !== FwdCode.masq) {
      this.ev[Ev.not_ours]++;
      return Verdict.NOT_OURS;
    }
    if (this.syncOut !== null) {
      const before = ct.state(e);
      this.syncTouch(e, before, ct.onPacket(e, Dir.OUTPUT, m.tcpFlags, now), now);
    } else {
      ct.onPacket(e, Dir.OUTPUT, m.tcpFlags, now);
    }
    const caddr = ct.caddr(e);
    if (this.l3 !== null) {
      const bytes = m.totalLen;
      const v = this.l3Modified(natOut(buf, m, ct.vaddr(e), ct.vport(e), false, false), buf);
      if (v === Verdict.FORWARD) this.countOut(ct.service(e), ct.destId(e), bytes);
      return v;
    }
    let port: TxPort | undefined;
    if (this.l2.resolve(caddr, this.hop)) {
      port = this.ports.get(this.hop.ifindex);
      if (port === undefined) return this.count(Ev.drop_no_neigh);
    } else {
      const held = this.l2.hold(caddr, this.hop);
      if (held === null) {
        const bytes = m.totalLen;
        const v = this.viaKernel(buf, partial, ct.vaddr(e), ct.vport(e), false);
        if (v === Verdict.FORWARD) this.countOut(ct.service(e), ct.destId(e), bytes);
        return v;
      }
      port = held;
    }
    const bytes = m.totalLen;
    const v = this.txNat(buf, off, len, partial, port, ct.vaddr(e), ct.vport(e), false);
    if (v === Verdict.FORWARD) this.countOut(ct.service(e), ct.destId(e), bytes);
    return v;
  }

  /** Copies the frame into a TX slot of `port`; returns the slot offset or -1. */
  private copyToSlot(buf: Uint8Array, off: number, len: number, port: TxPort): number {
    if (len > port.txFrameMax) {
      this.ev[Ev.tx_errors]++;
      return -1;
    }
    const slot = port.txReserve();
    if (slot < 0) {
      this.ev[Ev.tx_errors]++;
      return -1;
    }
    copyBytes(port.txBuf, slot, buf, off, len);
    return slot;
  }

  private commit(port: TxPort, len: number, partial: boolean, l4Off: number, proto: number, slot: number): void {
    if (partial && (proto === IpProto.TCP || proto === IpProto.UDP)) port.txCommit(len, VNET_NEEDS_CSUM, l4Off - slot, proto === IpProto.TCP ? 16 : 6);
    else port.txCommit(len, 0, 0, 0);
    this.ev[Ev.tx_frames]++;
  }

  private txNat(buf: Uint8Array, off: number, len: number, partial: boolean, port: TxPort, addr: number, aport: number, toServer: boolean): number {
    const slot = this.copyToSlot(buf, off, len, port);
    if (slot < 0) return Verdict.DROP;
    const out = port.txBuf;
    const m = this.m;
    rebaseMeta(m, slot - off);
    const v = toServer ? natIn(out, m, addr, aport, partial) : natOut(out, m, addr, aport, partial);
    if (v !== NetVerdict.OK) return this.dropNet(v);
    setMacs(out, this.hop.dstMac, this.hop.srcMac, slot);
    this.commit(port, len, partial, m.l4Off, m.proto, slot);
    return Verdict.FORWARD;
  }

  private txRoute(buf: Uint8Array, off: number, len: number, partial: boolean, port: TxPort): number {
    const slot = this.copyToSlot(buf, off, len, port);
    if (slot < 0) return Verdict.DROP;
    const out = port.txBuf;
    const m = this.m;
    rebaseMeta(m, slot - off);
    // IPVS decrements the TTL for DR too (Linux >= 5.3): the only change besides the MACs.
    const v = decTtl(out, m);
    if (v !== NetVerdict.OK) return this.dropNet(v);
    setMacs(out, this.hop.dstMac, this.hop.srcMac, slot);
    this.commit(port, len, partial, m.l4Off, m.proto, slot);
    return Verdict.FORWARD;
  }

  private txTunnel(buf: Uint8Array, partial: boolean, port: TxPort, daddr: number, svc: number, did: number): number {
    const m = this.m;
    const st = this.byId[svc];
    let gue = false;
    let gport = 0;
    let gcsum = false;
    if (st !== undefined) {
      const pos = this.destPos(st, did);
      if (pos >= 0 && st.dests[pos].tunType === 'gue') {
        gue = true;
        gport = st.dests[pos].tunPort;
        gcsum = st.dests[pos].tunCsum === 'csum';
      }
    }
    // The inner packet's partial checksum must be completed before it is wrapped (receivers decapsulate in
    // software and hand the inner packet to their stack as-is).
    if (partial) finishPartial(buf, m);
    const over = gue ? GUE_OVERHEAD : IPIP_OVERHEAD;
    const total = ETH_HLEN + over + m.totalLen;
    if (total > port.txFrameMax) {
      this.ev[Ev.tx_errors]++;
      return Verdict.DROP;
    }
    const slot = port.txReserve();
    if (slot < 0) {
      this.ev[Ev.tx_errors]++;
      return Verdict.DROP;
    }
    const out = port.txBuf;
    const v = gue
      ? encapGue(buf, m, out, slot + ETH_HLEN, this.hop.srcIp, daddr, 0xc000 | ((m.saddr ^ m.sport) & 0x3fff), gport, gcsum, 0)
      : encapIpip(buf, m, out, slot + ETH_HLEN, this.hop.srcIp, daddr, 0);
    if (v !== NetVerdict.OK) return this.dropNet(v);
    writeEth(out, slot, this.hop.dstMac, this.hop.srcMac, 0x0800);
    port.txCommit(total, 0, 0, 0);
    this.ev[Ev.tx_frames]++;
    return Verdict.FORWARD;
  }

  /** ICMP errors: from a NAT real server about a client's packet, or from the client side about a reply. */
  private icmpError(buf: Uint8Array, off: number, len: number): number {
    const m = this.m;
    const ip = m.innerProto;
    if (ip !== IpProto.TCP && ip !== IpProto.UDP) {
      this.ev[Ev.not_ours]++;
      return Verdict.NOT_OURS;
    }
    // Error about client → RIP (sent by the real server to the client): embedded src = client.
    let e = this.ct.lookupOut(ip, m.innerSaddr, m.innerSport, m.innerDaddr, m.innerDport);
    if (e >= 0 && (this.ct.flags(e) & ConnFlag.FWD_MASK) === FwdCode.masq) return this.icmpNat(buf, off, len, e, true);
    // Error about VIP → client (our reply), sent to the VIP: embedded dst = client.
    e = this.ct.lookupIn(ip, m.innerDaddr, m.innerDport, m.innerSaddr, m.innerSport);
    if (e >= 0 && (this.ct.flags(e) & ConnFlag.FWD_MASK) === FwdCode.masq) return this.icmpNat(buf, off, len, e, false);
    if (this.vips.has(m.daddr)) return this.count(Ev.drop_icmp_unmatched);
    this.ev[Ev.not_ours]++;
    return Verdict.NOT_OURS;
  }

  /**
   * Translates an ICMP error of NAT connection `e`: toward the client (`toClient`: outer source and embedded
   * destination become VIP:vport) or toward the real server (outer destination and embedded source become
   * RIP:rport), and sends it (L2: a TX slot; L3: the packet's verdict).
   */
  private icmpNat(buf: Uint8Array, off: number, len: number, e: number, toClient: boolean): number {
    const m = this.m;
    const ct = this.ct;
    const addr = toClient ? ct.vaddr(e) : ct.daddr(e);
    const port16 = toClient ? ct.vport(e) : ct.dport(e);
    this.ev[Ev.icmp_translated]++;
    if (this.l3 !== null) return this.l3Modified(toClient ? natIcmpOut(buf, m, addr, port16, false) : natIcmpIn(buf, m, addr, port16, false), buf);
    if (!this.l2.resolve(toClient ? ct.caddr(e) : ct.daddr(e), this.hop)) return this.count(Ev.drop_no_neigh);
    const port = this.ports.get(this.hop.ifindex);
    if (port === undefined) return this.count(Ev.drop_no_neigh);
    const slot = this.copyToSlot(buf, off, len, port);
    if (slot < 0) return Verdict.DROP;
    const out = port.txBuf;
    rebaseMeta(m, slot - off);
    const v = toClient ? natIcmpOut(out, m, addr, port16) : natIcmpIn(out, m, addr, port16);
    if (v !== NetVerdict.OK) return this.dropNet(v);
    setMacs(out, this.hop.dstMac, this.hop.srcMac, slot);
    port.txCommit(len, 0, 0, 0);
    this.ev[Ev.tx_frames]++;
    return Verdict.FORWARD;
  }

  private count(ev: number): number {
    this.ev[ev]++;
    return Verdict.DROP;
  }

  /** One token of the director's own replies (ICMP unreachable, resets): `icmpPerSec` per second at most. */
  private replyToken(now: number): boolean {
    const elapsed = now - this.icmpLastMs;
    this.icmpLastMs = now;
    this.icmpTokens = Math.min(this.icmpPerSec, this.icmpTokens + (elapsed * this.icmpPerSec) / 1000);
    if (this.icmpTokens < 1) return false;
    this.icmpTokens -= 1;
    return true;
  }

  /** ICMP port unreachable to the client when no real server is available (ip_vs_leave), rate-limited. */
  private sendUnreachable(buf: Uint8Array, off: number, len: number, now: number): void {
    const m = this.m;
    if (!this.replyToken(now)) return;
    if (this.l3 !== null) {
      // Safe mode: the kernel routes what the local sink hands it; the Ethernet header is left out.
      if (this.local === null) return;
      const n = buildIcmpUnreach(buf, off, len, m, this.scratch, 0, this.hop.dstMac, this.hop.srcMac, 3, 3);
      if (n > 14 && this.local.write(this.scratch, 14, n - 14)) this.ev[Ev.icmp_unreach_sent]++;
      return;
    }
    if (!this.l2.resolve(m.saddr, this.hop)) return;
    const port = this.ports.get(this.hop.ifindex);
    if (port === undefined) return;
    const slot = port.txReserve();
    if (slot < 0) return;
    const n = buildIcmpUnreach(buf, off, len, m, port.txBuf, slot, this.hop.dstMac, this.hop.srcMac, 3, 3);
    if (n <= 0) return;
    port.txCommit(n, 0, 0, 0);
    this.ev[Ev.tx_frames]++;
    this.ev[Ev.icmp_unreach_sent]++;
  }
}
