// The cluster agent: runs the pure election and sync protocol (shared/cluster) over NATS — heartbeats and sync
// batches on core NATS, the leadership term in a replicated KV bucket, snapshots by request/reply in chunks — and
// talks to its parent (tsvsd) only through the typed IPC messages of shared/proto/cluster.ts.
import { connect, credsAuthenticator, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { ClusterCodec, DropReason, MsgKind, recordBytes, recordWords, subjects, type ClusterMsg, type SnapChunk } from '../../shared/cluster/codec.ts';
import { Election, type ElectionEffect, type ElectionInput } from '../../shared/cluster/election.ts';
import type { ClusterOptions } from '../../shared/cluster/options.ts';
import { LagHistogram, SyncReceiver, SyncSender, type ReceiverEffects } from '../../shared/cluster/sync.ts';
import type { ClusterStatus, FromClusterAgent, ToClusterAgent } from '../../shared/proto/cluster.ts';
import { RECORD_WORDS } from '../../shared/sync/record.ts';
import { ConfigKv } from './config-kv.ts';
import { KvTermStore } from './term-store.ts';

/** The agent's link to its parent (process IPC in production). */
export interface ParentPort {
  send(msg: FromClusterAgent): void;
  /** True when a parent listens (it answers snapshot requests and confirms installs). */
  readonly attached: boolean;
}

interface ServedSnapshot {
  chunks: Uint32Array[];
  cur: Uint32Array;
  fill: number;
  entries: number;
  q: number;
  done: boolean;
  waiting: Msg[];
  timer: NodeJS.Timeout | null;
}

/** Records per resend message at most (48 B each: 768 KB, under NATS's default 1 MB max_payload). */
const RESEND_RECORDS = 16_384;

/** How long a releasing leader waits for tsvsd to confirm its VIPs are gone before it says so anyway, ms. */
const RELEASE_CONFIRM_MS = 3000;

/** Wall-clock ms with sub-ms precision, comparable between processes of one host (batch lag). */
const wallMs = (): number => performance.timeOrigin + performance.now();

export class ClusterAgent {
  readonly opts: ClusterOptions;
  private readonly parent: ParentPort;
  private readonly codec: ClusterCodec;
  private readonly election: Election;
  private readonly sender: SyncSender;
  private readonly receiver: SyncReceiver;
  private readonly lag = new LagHistogram();
  private readonly subj: ReturnType<typeof subjects>;
  private nc: NatsConnection | null = null;
  private store: KvTermStore | null = null;
  /** The cluster-wide table in KV (config-kv.ts); null until connected. */
  private config: ConfigKv | null = null;
  private tickTimer: NodeJS.Timeout | null = null;
  private flushTimer: NodeJS.Timeout | null = null;
  private turnFlush: NodeJS.Immediate | null = null;
  private hbSeq = 0;
  private natsUp = false;
  private vips: string[] = [];
  private readonly peers = new Map<string, { epoch: number; ready: boolean; lastSeen: number; leader: boolean; priority: number }>();
  private readonly served = new Map<number, ServedSnapshot>();
  private snapIds = 0;
  private pulling = false;
  private readyState: 'waiting' | 'pulling' | 'installing' | 'ready' = 'waiting';
  /** Became ready with an empty state (no ready peer heard): a ready leader heard later is pulled from before leading. */
  private startedEmpty = false;
  private readonly drops = { foreign: 0, malformed: 0, version: 0 };
  private snapshotEntries = 0;
  private snapshotMs = 0;
  private stopping = false;
  /** When this node released its VIPs and tsvsd has not yet confirmed they are gone (-1: nothing pending). */
  private releasedAt = -1;
  /**
   * A grant was sent to tsvsd and not released since. (Not `vips.length`: under tsvsd the grant is "the table's
   * VIPs", an empty list — which once skipped the release confirmation, and a handback overlapped by 4–27 ms.)
   */
  private granted = false;
  /** A grant waiting for the previous leader to let go of the VIPs. */
  private pendingGrant: { vips: string[]; term: number; since: number } | null = null;
  private casLogAt = -Infinity;
  private logNextRead = false;
  /** Since when every CAS found the store unavailable (-1: the last one did not). */
  private casFailingSince = -1;
  private forcedReconnectAt = -Infinity;
  /** Own heartbeat last echoed, and the (re)connect moment (performance.now ms). */
  private lastEchoAt = -1;
  private upAt = 0;
  /** NATS servers (host:port) not to reconnect to before the given moment: they stopped carrying our messages. */
  private readonly suspect = new Map<string, number>();
  private stepDownAt = -Infinity;
  private admin: NatsConnection | null = null;
  private adminConnecting: Promise<NatsConnection | null> | null = null;

  constructor(opts: ClusterOptions, parent: ParentPort) {
    this.opts = opts;
    this.parent = parent;
    this.codec = new ClusterCodec(opts.cluster, opts.node, Math.floor(wallMs()));
    this.subj = subjects(opts.cluster);
    this.election = new Election({
      name: opts.node, priority: opts.priority, nopreempt: opts.nopreempt, preemptDelayMs: opts.preemptDelayMs, heartbeatMs: opts.heartbeatMs,
      missBeats: opts.missBeats, isolationMs: opts.isolationMs, startupWaitMs: opts.startupWaitMs, vips: opts.vips,
    }, performance.now());
    this.sender = new SyncSender({ maxBatch: opts.batchRecords, maxDelayMs: opts.batchDelayMs, resendCapacity: opts.resendEntries });
    this.receiver = new SyncReceiver({ nackTimeoutMs: Math.max(20, opts.heartbeatMs), nackTries: 3, maxNackRange: 4096 });
  }

  /** Connects (retrying forever), subscribes, and starts the timers. Resolves once connected. */
  async start(): Promise<void> {
    const tick = Math.max(1, Math.floor(this.opts.heartbeatMs / 5));
    // The tick runs in the check phase, after the poll phase of the same loop turn: when this process was stalled
    // (GC, a loaded host), the heartbeats waiting in the socket are read first, so a late tick does not find its
    // own echo "missing" and release the VIPs of a leader that was never cut off.
    this.tickTimer = setInterval(() => setImmediate(() => this.onTick()), tick);
    const nc = await connect({
      servers: this.opts.nats, name: `tsvs-cluster-${this.opts.node}`, maxReconnectAttempts: -1, reconnectTimeWait: 50, reconnectJitter: 20,
      pingInterval: 1000, maxPingOut: 2, timeout: 1000, waitOnFirstConnect: true, noEcho: false,
      authenticator: this.opts.creds ? credsAuthenticator(readFileSync(this.opts.creds)) : undefined,
      // Never back to a server that just stopped carrying our heartbeats (a hung server keeps accepting TCP).
      reconnectToServer: (pool) => {
        const t = performance.now();
        return pool.find((srv) => !((this.suspect.get(srv.listen) ?? 0) > t)) ?? pool[0] ?? null;
      },
    });
    this.nc = nc;
    this.store = new KvTermStore(nc, this.opts.cluster, this.opts.kvReplicas, this.opts.kvTimeoutMs);
    void this.watchStatus(nc);
    nc.subscribe(this.subj.heartbeat, { callback: (_e, m) => this.onWire(m) });
    nc.subscribe(this.subj.sync, { callback: (_e, m) => this.onWire(m) });
    nc.subscribe(this.subj.nack(this.opts.node), { callback: (_e, m) => this.onWire(m) });
    nc.subscribe(this.subj.resend(this.opts.node), { callback: (_e, m) => this.onWire(m) });
    nc.subscribe(this.subj.snapshot(this.opts.node), { callback: (_e, m) => this.onWire(m) });
    await nc.flush();
    this.natsUp = true;
    this.upAt = performance.now();
    this.step({ type: 'nats', up: true });
    this.log(`connected to ${nc.getServer()}`);
    void this.ensureBucket();
    this.config = new ConfigKv(nc, {
      cluster: this.opts.cluster, node: this.opts.node, replicas: this.opts.kvReplicas, timeoutMs: this.opts.kvTimeoutMs, attached: this.parent.attached, epoch: this.codec.epoch,
    }, (m) => this.parent.send(m), (line) => this.log(line));
    this.config.start();
    setTimeout(() => void this.startupSnapshot(), this.opts.startupWaitMs);
  }

  /** A message from the parent. */
  onParent(m: ToClusterAgent): void {
    switch (m.type) {
      case 'publish':
        this.publishRecords(m.words);
        break;
      case 'snapshot-data':
        this.onSnapshotData(m.id, m.words, m.last);
        break;
      case 'released':
        this.releasedAt = -1;
        break;
      case 'installed':
        if (this.readyState === 'installing') this.becomeReady();
        break;
      case 'status-request':
        this.parent.send({ type: 'status', id: m.id, status: this.status() });
        break;
      case 'stop':
        void this.stop();
        break;
      case 'config-edit':
        if (this.config) void this.config.edit(m.id, m.op);
        else this.parent.send({ type: 'config-answer', id: m.id, ok: false, errno: 'EAGAIN', detail: 'cluster config store unreachable: not connected to NATS yet' });
        break;
      case 'config-seed':
        void this.config?.seed(m.doc);
        break;
    }
  }

  /** Graceful stop: releases and hands over at once (bye), flushes, closes, then reports `stopped`. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.flushSync(true);
    this.step({ type: 'stop' });
  }

  status(): ClusterStatus {
    const now = performance.now();
    const v = this.election.view();
    const c = this.receiver.counters;
    return {
      self: this.opts.node, cluster: this.opts.cluster, leader: v.leader, term: v.term, nats: this.natsUp ? 'up' : 'down',
      nats_server: this.natsUp && this.nc ? this.nc.getServer() : '', ready: v.ready,
      members: this.election.memberList(now), vips: [...this.vips],
      sync: {
        sent: this.sender.sentRecords, received: c.records, gaps: c.gaps, resyncs: c.resyncs, lost: c.lost, stale: c.stale,
        foreign: this.drops.foreign, malformed: this.drops.malformed + this.drops.version + c.malformedRecords,
        lag_p50_ms: this.lag.quantile(0.5), lag_p99_ms: this.lag.quantile(0.99), snapshot_entries: this.snapshotEntries, snapshot_ms: this.snapshotMs,
      },
    };
  }

  // ---- election ------------------------------------------------------------------------------------------------

  private step(input: ElectionInput): void {
    for (const fx of this.election.step(input, performance.now())) this.effect(fx);
  }

  private effect(fx: ElectionEffect): void {
    const nc = this.nc;
    switch (fx.type) {
      case 'heartbeat':
        if (nc && !nc.isClosed()) {
          // Until tsvsd confirms the VIPs are gone from its kernel (≤ 3 s), this node still says it leads: a peer
          // waiting to take over (a preemption, a handback) must not add them while they are still here.
          const holding = fx.leader || (this.releasedAt >= 0 && performance.now() - this.releasedAt < RELEASE_CONFIRM_MS);
          nc.publish(this.subj.heartbeat, this.codec.encode(this.codec.heartbeat(++this.hbSeq, holding ? 1 : 0, fx.term, fx.rev, fx.follows,
            this.opts.priority, fx.ready, fx.wantsPreempt, wallMs())));
        }
        break;
      case 'read-term':
        if (!this.store) {
          setTimeout(() => this.step({ type: 'term-read', record: null }), this.opts.heartbeatMs);
          break;
        }
        this.store.read().then((record) => {
          if (this.logNextRead) this.log(`term record read: term ${record.term} by ${record.holder || 'nobody'}, revision ${record.rev}`);
          this.logNextRead = false;
          this.step({ type: 'term-read', record });
        }, () => this.step({ type: 'term-read', record: null }));
        break;
      case 'cas': {
        const store = this.store;
        if (!store) {
          setTimeout(() => this.step({ type: 'cas-result', term: fx.term, result: { ok: false, conflict: false } }), this.opts.heartbeatMs);
          break;
        }
        store.cas(fx.expectRev, fx.term, fx.holder).then((result) => {
          if (!result.ok && performance.now() - this.casLogAt > 1000) {
            this.casLogAt = performance.now();
            this.logNextRead = result.conflict;
            this.log(`term ${fx.term} CAS on revision ${fx.expectRev}: ${result.conflict ? `conflict (${result.error ?? 'no detail'}; re-reading)` : `store unavailable (${result.error ?? 'no detail'}; retrying)`}`);
          }
          if (result.ok || result.conflict) this.casFailingSince = -1;
          else if (this.casFailingSince < 0) this.casFailingSince = performance.now();
          this.maybeForceReconnect();
          this.step({ type: 'cas-result', term: fx.term, result });
        });
        break;
      }
      case 'grant-vips':
        this.vips = [...fx.vips];
        // A live peer that still says it leads (a preemption or handback: it has not yet confirmed its VIPs are out
        // of its kernel) gets up to RELEASE_CONFIRM_MS to let go before this node adds them (onTick sends the grant).
        this.pendingGrant = { vips: [...fx.vips], term: fx.term, since: performance.now() };
        this.sendGrantWhenFree(performance.now());
        break;
      case 'release-vips':
        this.pendingGrant = null;
        if (this.granted && this.parent.attached) this.releasedAt = performance.now();
        this.granted = false;
        this.vips = [];
        this.parent.send({ type: 'vip-release', vips: [...fx.vips], reason: fx.reason });
        this.log(`VIPs released: ${fx.reason}`);
        break;
      case 'role':
        this.parent.send({ type: 'role', role: fx.role, term: fx.term, leader: fx.leader });
        break;
      case 'member':
        this.log(`member ${fx.name}: ${fx.state}`);
        break;
      case 'bye':
        if (nc && !nc.isClosed()) nc.publish(this.subj.heartbeat, this.codec.encode(this.codec.bye(fx.term, fx.rev)));
        break;
      case 'stopped':
        void this.finish();
        break;
    }
  }

  /**
   * The KV kept answering "unavailable" for longer than a JetStream stream-leader election takes (4–9 s on 2.9.10)
   * although heartbeats flow: the server this agent is on may be the problem (a broken route). Reconnect
   * elsewhere, at most every 10 s.
   */
  private maybeForceReconnect(): void {
    const now = performance.now();
    if (this.casFailingSince < 0 || now - this.casFailingSince < 10_000) return;
    this.casFailingSince = now;
    this.reconnectElsewhere('the term store has been unavailable for 10 s', 10_000);
  }

  /** Forces a reconnect to another server of the pool; the current one is avoided for `avoidMs`. */
  private reconnectElsewhere(why: string, avoidMs: number): void {
    const nc = this.nc;
    const now = performance.now();
    if (!nc || nc.isClosed() || !this.natsUp || now - this.forcedReconnectAt < 1000) return;
    this.forcedReconnectAt = now;
    const cur = nc.getServer();
    this.suspect.set(cur, now + avoidMs);
    this.log(`${why}: reconnecting away from ${cur}`);
    nc.reconnect().catch(() => undefined);
  }

  /**
   * Own heartbeats stopped coming back on a connection that looks up: the server hangs (SIGSTOP, overload) or
   * its links are cut. The election releases the VIPs at isolationMs; the client would notice only through pings
   * (seconds). Reconnect to another server now, so this node is back — as a candidate — within tens of ms.
   */
  private checkOwnEcho(now: number): void {
    if (!this.natsUp || this.lastEchoAt < 0 || now - this.upAt <= this.opts.isolationMs) return;
    if (now - this.lastEchoAt > this.opts.isolationMs) this.reconnectElsewhere('own heartbeats no longer come back', 10_000);
  }

  /**
   * While leading: keep the raft leader of the term stream off the NATS server this agent is connected to. If
   * both sat on one server and it hung, this leader would be cut off *and* no peer could win the next term until
   * JetStream elected another stream leader (4–9 s); with the two apart, a peer's CAS succeeds at once. Checked
   * on grant and every 5 s; a step-down moves the stream leader to another replica (a KV pause of tens of ms that
   * no healthy leader notices: it does not write the store).
   */
  private async keepTermLeaderAway(): Promise<void> {
    const nc = this.nc;
    const store = this.store;
    if (!nc || !store || !this.opts.termLeaderAway || !this.election.isLeader) return;
    this.stepDownAt = performance.now();
    const admin = await this.adminConnection();
    if (!admin) return;
    const mine = nc.info?.server_name ?? '';
    const leader = await store.streamLeader(admin);
    if (!mine || leader !== mine || !this.election.isLeader) return;
    const ok = await store.stepDownStreamLeader(admin);
    this.log(`the term stream's leader was on ${mine}, this leader's server: ${ok ? 'asked it to step down' : 'step-down refused or timed out'}`);
  }

  /** The connection for JetStream admin requests (never the heartbeat connection, see KvTermStore.streamLeader). */
  private async adminConnection(): Promise<NatsConnection | null> {
    if (this.admin && !this.admin.isClosed()) return this.admin;
    this.adminConnecting ??= connect({
      servers: this.opts.nats, name: `tsvs-cluster-${this.opts.node}-admin`, maxReconnectAttempts: -1, reconnectTimeWait: 50, pingInterval: 1000,
      maxPingOut: 2, timeout: 1000, authenticator: this.opts.creds ? credsAuthenticator(readFileSync(this.opts.creds)) : undefined,
    }).then((c) => {
      if (this.stopping) void c.close();
      else this.admin = c;
      return this.admin;
    }, () => null).finally(() => (this.adminConnecting = null));
    return this.adminConnecting;
  }

  /** Creates the term bucket if needed, retrying every 500 ms until JetStream answers. */
  private async ensureBucket(): Promise<void> {
    while (!this.stopping && this.store) {
      try {
        await this.store.ensure();
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  private async finish(): Promise<void> {
    if (this.tickTimer) clearInterval(this.tickTimer);
    this.config?.stop();
    if (this.flushTimer) clearTimeout(this.flushTimer);
    if (this.turnFlush) clearImmediate(this.turnFlush);
    for (const s of this.served.values()) if (s.timer) clearTimeout(s.timer);
    try {
      await this.admin?.close();
      await this.nc?.flush();
      await this.nc?.close();
    } catch {
      // closing a broken connection: nothing left to tell
    }
    this.parent.send({ type: 'stopped' });
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') {
        this.natsUp = false;
        this.step({ type: 'nats', up: false });
        this.log(`NATS disconnected from ${s.server}`);
      } else if (s.type === 'reconnect') {
        this.natsUp = true;
        this.upAt = performance.now();
        this.step({ type: 'nats', up: true });
        this.log(`NATS reconnected to ${s.server}`);
        this.resyncAfterReconnect();
      }
    }
  }

  /**
   * Back on NATS while not leading: what peers changed meanwhile may be missing here (a partition, a long hang), so
   * this node is not ready — it may not take leadership back — until it has pulled a snapshot again.
   */
  private resyncAfterReconnect(): void {
    if (this.stopping || this.readyState !== 'ready' || this.granted || this.pendingGrant) return;
    this.step({ type: 'unready' });
    this.readyState = 'waiting';
    this.log('reconnected while not leading: pulling the state again before leading');
    setTimeout(() => void this.startupSnapshot(), this.opts.startupWaitMs);
  }

  /**
   * This node started empty, and a ready leader is heard now (its heartbeats were late, or it came back): its state is
   * pulled before this node may lead (it is not ready meanwhile), so a preemption never takes the VIP without it.
   */
  private pullFromLateLeader(peer: string): void {
    this.startedEmpty = false;
    if (this.stopping || this.readyState !== 'ready' || this.granted || this.pendingGrant) return;
    this.log(`ready leader ${peer} heard after this node started empty: pulling its state before leading`);
    this.step({ type: 'unready' });
    this.readyState = 'waiting';
    void this.startupSnapshot();
  }

  /** Sends the pending grant once no live peer claims to lead (or after {@link RELEASE_CONFIRM_MS}). */
  private sendGrantWhenFree(now: number): void {
    const g = this.pendingGrant;
    if (!g) return;
    const alive = this.opts.heartbeatMs * this.opts.missBeats;
    const other = [...this.peers.entries()].find(([, p]) => p.leader && now - p.lastSeen <= alive);
    if (other && now - g.since < RELEASE_CONFIRM_MS) return;
    this.pendingGrant = null;
    this.granted = true;
    this.parent.send({ type: 'vip-grant', vips: g.vips, term: g.term });
    this.log(`leader of term ${g.term}: VIPs granted${other ? ` (${other[0]} still said it led after ${RELEASE_CONFIRM_MS} ms)` : now - g.since >= 1 ? ` after ${Math.round(now - g.since)} ms for the previous leader to let go` : ''}`);
    void this.keepTermLeaderAway();
  }

  private onTick(): void {
    if (this.stopping) return;
    const now = performance.now();
    this.step({ type: 'tick' });
    this.checkOwnEcho(now);
    if (this.pendingGrant) this.sendGrantWhenFree(now);
    if (this.election.isLeader && now - this.stepDownAt >= 5000) void this.keepTermLeaderAway();
    this.receiverEffects(this.receiver.tick(now));
    this.flushSync(false);
  }

  // ---- wire ----------------------------------------------------------------------------------------------------

  private onWire(m: Msg): void {
    const d = this.codec.decode(m.data);
    if (!d.ok) {
      if (d.reason === DropReason.SELF) {
        if (m.subject === this.subj.heartbeat && m.data.length > 0) {
          this.lastEchoAt = performance.now();
          this.step({ type: 'echo' });
        }
      } else if (d.reason === DropReason.FOREIGN) this.drops.foreign++;
      else if (d.reason === DropReason.VERSION) this.drops.version++;
      else this.drops.malformed++;
      return;
    }
    this.onMsg(d.msg, m);
  }

  private onMsg(msg: ClusterMsg, m: Msg): void {
    const now = performance.now();
    switch (msg.k) {
      case MsgKind.HEARTBEAT:
        this.peers.set(msg.s, { epoch: msg.e, ready: msg.rd, lastSeen: now, leader: msg.r === 1, priority: msg.p });
        this.step({ type: 'beat', beat: { from: msg.s, epoch: msg.e, leader: msg.r === 1, term: msg.t, rev: msg.rv, follows: msg.l, priority: msg.p, ready: msg.rd, wantsPreempt: msg.pp } });
        if (this.startedEmpty && msg.r === 1 && msg.rd) this.pullFromLateLeader(msg.s);
        break;
      case MsgKind.BYE:
        this.peers.delete(msg.s);
        this.step({ type: 'bye', from: msg.s, term: msg.t, rev: msg.rv });
        break;
      case MsgKind.BATCH: {
        // Only members (senders heard in heartbeats) may sync: a batch from anyone else is dropped and counted.
        if (!this.peers.has(msg.s)) {
          this.drops.foreign++;
          return;
        }
        this.lag.add(wallMs() - msg.at);
        this.receiverEffects(this.receiver.onBatch(msg.s, msg.e, msg.q, recordWords(msg.w), now), 'sync');
        break;
      }
      case MsgKind.NACK: {
        if (msg.to !== this.opts.node || msg.te !== this.codec.epoch) return;
        this.flushSync(true);
        // In pieces of a few batches: one answer for a wide gap would exceed NATS's 1 MB payload limit (the
        // server refuses it, and the gap stayed open until the receiver gave up: records lost).
        const per = Math.max(1, Math.floor(RESEND_RECORDS / this.opts.batchRecords));
        for (let a = msg.a; a <= msg.b; a += per) {
          const b = Math.min(msg.b, a + per - 1);
          const r = this.sender.resend(a, b);
          this.nc?.publish(this.subj.resend(msg.s), this.codec.encode(this.codec.resend(msg.s, a, b, r.ok, recordBytes(r.words, 0, r.count))));
          if (!r.ok) break;
        }
        break;
      }
      case MsgKind.RESEND:
        if (msg.to !== this.opts.node) return;
        this.receiverEffects(this.receiver.onResend(msg.s, msg.e, msg.a, msg.b, msg.ok, recordWords(msg.w), now), 'resend');
        break;
      case MsgKind.SNAP_REQUEST:
        this.serveSnapshot(msg.id, msg.i, m);
        break;
      case MsgKind.SNAP_CHUNK:
        break; // chunks arrive as request replies, not here
    }
  }

  private receiverEffects(fx: ReceiverEffects, source: 'sync' | 'resend' = 'sync'): void {
    if (fx.install) this.parent.send({ type: 'install', words: fx.install, source });
    for (const n of fx.nacks) this.nc?.publish(this.subj.nack(n.to), this.codec.encode(this.codec.nack(n.to, n.te, n.a, n.b)));
    for (const peer of fx.resyncs) void this.pullSnapshot(peer, false);
  }

  // ---- sync out ------------------------------------------------------------------------------------------------

  private publishRecords(words: Uint32Array): void {
    const n = Math.floor(words.length / RECORD_WORDS);
    if (n === 0) return;
    this.sender.add(words, 0, n, wallMs());
    this.flushSync(false);
  }

  /**
   * Publishes sealed batches; with `force` seals the pending one first. Arms the batching timer — or, with a batch
   * delay of 0, seals at the end of the current event-loop turn: every record that arrived in one turn (all the
   * parent's messages read at once) shares a batch, and none waits for a timer (a timer's ms granularity and the
   * loop's latency were most of the lag at a 2 ms delay).
   */
  private flushSync(force: boolean): void {
    const turn = this.opts.batchDelayMs === 0;
    if (force || !turn) this.sender.flushDue(wallMs(), force);
    const nc = this.nc;
    for (const b of this.sender.takeReady()) {
      if (nc && !nc.isClosed()) nc.publish(this.subj.sync, this.codec.encode(this.codec.batch(b.seq, b.at, recordBytes(b.words, 0, b.count))));
    }
    const due = this.sender.nextDeadline();
    if (due >= 0 && turn) {
      this.turnFlush ??= setImmediate(() => {
        this.turnFlush = null;
        this.flushSync(true);
      });
    } else if (due >= 0 && !this.flushTimer) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = null;
        this.flushSync(false);
      }, Math.max(0, due - wallMs()));
    }
  }

  // ---- snapshots -----------------------------------------------------------------------------------------------

  /** After the startup wait: pull the state from the leader (or the best ready peer), or start empty if alone. */
  private async startupSnapshot(): Promise<void> {
    if (this.stopping || this.readyState !== 'waiting') return;
    // Read what waits in the socket first: a loop busy since the connect (a restart on a loaded host) has the peers'
    // heartbeats queued, and a timer runs before I/O is read (CI: a restarted d1 saw no ready peer, started empty
    // and took the VIP back without the 1000 connections d2 was carrying).
    await new Promise((r) => setImmediate(r));
    if (this.stopping || this.readyState !== 'waiting') return;
    const now = performance.now();
    const alive = [...this.peers.entries()].filter(([, p]) => p.ready && now - p.lastSeen <= this.opts.heartbeatMs * this.opts.missBeats);
    if (alive.length === 0) {
      this.log('no ready peer: starting with an empty state');
      this.startedEmpty = true;
      this.becomeReady();
      return;
    }
    alive.sort(([an, a], [bn, b]) => Number(b.leader) - Number(a.leader) || b.priority - a.priority || (an < bn ? -1 : 1));
    this.readyState = 'pulling';
    const ok = await this.pullSnapshot(alive[0][0], true);
    if (!ok) {
      this.readyState = 'waiting';
      setTimeout(() => void this.startupSnapshot(), 500);
    }
  }

  private becomeReady(): void {
    this.readyState = 'ready';
    this.step({ type: 'ready' });
  }

  /** Pulls a full snapshot from `peer`, chunk by chunk, handing each to the parent. Returns false on failure. */
  private async pullSnapshot(peer: string, startup: boolean): Promise<boolean> {
    const nc = this.nc;
    if (!nc || this.pulling) return false;
    this.pulling = true;
    const t0 = performance.now();
    try {
      const ask = async (id: number, i: number): Promise<SnapChunk> => {
        const r = await nc.request(this.subj.snapshot(peer), this.codec.encode(this.codec.snapRequest(id, i)), { timeout: 5000 });
        const d = this.codec.decode(r.data);
        if (!d.ok || d.msg.k !== MsgKind.SNAP_CHUNK || d.msg.i !== i) throw new Error(`bad snapshot chunk ${i} from ${peer}`);
        return d.msg;
      };
      const first = await ask(0, 0);
      let entries = 0;
      // Up to 4 chunk requests in flight (≈3 MB): pipelined, yet far below what core NATS buffers for a subscriber.
      const inflight: Promise<SnapChunk>[] = [];
      let asked = 1;
      for (let i = 0; i < first.nc; i++) {
        while (asked < first.nc && inflight.length < 4) {
          const p = ask(first.id, asked++);
          p.catch(() => undefined); // awaited in order below; a failure must not surface as an unhandled rejection first
          inflight.push(p);
        }
        const c = i === 0 ? first : await inflight.shift()!;
        const w = recordWords(c.w);
        entries += w.length / RECORD_WORDS;
        if (w.length) this.parent.send({ type: 'install', words: w, source: 'snapshot' });
      }
      this.receiver.onSnapshot(peer, first.e, first.q);
      this.snapshotEntries = entries;
      this.snapshotMs = Math.round((performance.now() - t0) * 10) / 10;
      this.parent.send({ type: 'snapshot-done', from: peer, entries, ms: this.snapshotMs });
      this.log(`snapshot from ${peer}: ${entries} entries in ${this.snapshotMs} ms`);
      if (startup) {
        this.readyState = 'installing';
        if (!this.parent.attached) this.becomeReady();
      }
      return true;
    } catch (e) {
      this.log(`snapshot from ${peer} failed: ${(e as Error).message}`);
      return false;
    } finally {
      this.pulling = false;
    }
  }

  private serveSnapshot(id: number, i: number, m: Msg): void {
    if (id === 0) {
      const sid = ++this.snapIds;
      const s: ServedSnapshot = { chunks: [], cur: new Uint32Array(this.opts.snapshotChunk * RECORD_WORDS), fill: 0, entries: 0, q: 0, done: false, waiting: [m], timer: null };
      this.served.set(sid, s);
      s.timer = setTimeout(() => this.served.delete(sid), 60_000);
      if (this.parent.attached) this.parent.send({ type: 'snapshot-request', id: sid });
      else this.onSnapshotData(sid, new Uint32Array(0), true);
      return;
    }
    const s = this.served.get(id);
    if (!s || !s.done || i >= Math.max(1, s.chunks.length)) return; // the requester times out and retries
    this.answerChunk(id, s, i, m);
  }

  private onSnapshotData(id: number, words: Uint32Array, last: boolean): void {
    const s = this.served.get(id);
    if (!s || s.done) return;
    const chunkWords = this.opts.snapshotChunk * RECORD_WORDS;
    let off = 0;
    const total = words.length - (words.length % RECORD_WORDS);
    while (off < total) {
      const n = Math.min(total - off, chunkWords - s.fill);
      s.cur.set(words.subarray(off, off + n), s.fill);
      s.fill += n;
      off += n;
      if (s.fill === chunkWords) {
        s.chunks.push(s.cur);
        s.cur = new Uint32Array(chunkWords);
        s.fill = 0;
      }
    }
    s.entries += total / RECORD_WORDS;
    if (!last) return;
    if (s.fill > 0) s.chunks.push(s.cur.slice(0, s.fill));
    s.cur = new Uint32Array(0);
    // Everything the parent sent before this snapshot is in a batch at or below q: receivers continue after q.
    this.flushSync(true);
    s.q = this.sender.lastSeq;
    s.done = true;
    for (const w of s.waiting) this.answerChunk(id, s, 0, w);
    s.waiting = [];
  }

  private answerChunk(id: number, s: ServedSnapshot, i: number, m: Msg): void {
    const nchunks = Math.max(1, s.chunks.length);
    const w = s.chunks[i] ?? new Uint32Array(0);
    m.respond(this.codec.encode(this.codec.snapChunk(id, i, nchunks, s.entries, s.q, recordBytes(w, 0, w.length / RECORD_WORDS))));
  }

  private log(line: string): void {
    this.parent.send({ type: 'log', line: `cluster ${this.opts.node}: ${line}` });
  }
}
