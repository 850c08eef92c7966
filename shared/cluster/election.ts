// Membership and leader election of one cluster node, pure: inputs (heartbeats, ticks, term-store answers, NATS up
// or down, snapshot installed, stop) go in with `now` (ms), effects (heartbeat to send, compare-and-set of the
// term, VIP grant/release, role change, bye) come out. The shell (services/cluster) performs the effects.
//
// Detection comes from core-NATS heartbeats (every heartbeatMs; a peer is dead after missBeats intervals without
// one). Safety comes from the term store: a node becomes leader only by a compare-and-set of the term record
// (term + 1, holder = itself) on the revision it last knew, so two nodes can never win the same term, and a node
// that cannot write the store (a minority side, or no store at all) never becomes leader. A leader never writes the
// store while it leads, so a store outage (JetStream raft elections take 4–9 s) does not touch a healthy leader.
// A leader steps down when it sees a leader heartbeat with a higher term, and when its own heartbeats stop coming
// back to it (isolationMs, shorter than the peers' detection time by more than a heartbeat, so it releases its VIPs before anyone else can
// take them) — whether its connection broke (and did not come back on another server in time) or hangs.

/** A peer's or this node's view of a term record in the store. */
export interface TermRecord {
  term: number;
  holder: string;
  /** Store revision of the record (0 = no record). */
  rev: number;
}

/** The store the shell implements over an R3 NATS KV bucket (the unit tests use an in-memory one). */
export interface TermStore {
  /** Reads the current record ({term: 0, holder: '', rev: 0} when absent). */
  read(): Promise<TermRecord>;
  /**
   * Writes `{term, holder}` if the record's revision is still `expectRev` (0 = create if absent). Resolves
   * `{ok: true, rev}` on success, `{ok: false, conflict: true}` when the revision moved, and `{ok: false, conflict:
   * false}` when the store is unavailable (timeouts, "jetstream is not enabled": transient).
   */
  cas(expectRev: number, term: number, holder: string): Promise<{ ok: true; rev: number } | { ok: false; conflict: boolean; error?: string }>;
}

/** Election settings (keepalived's names where they exist). */
export interface ElectionOptions {
  name: string;
  /** 1..255, higher wins. */
  priority: number;
  /** Do not take leadership from a live lower-priority leader. */
  nopreempt: boolean;
  /** Time a higher-priority ready node waits before it preempts, ms. */
  preemptDelayMs: number;
  /** Heartbeat interval, ms. */
  heartbeatMs: number;
  /** Missed heartbeats after which a peer is dead. */
  missBeats: number;
  /** Without own heartbeats echoed back for this long, this node is cut off and releases, ms. */
  isolationMs: number;
  /** Time after start to listen for peers before trying to lead, ms. */
  startupWaitMs: number;
  /** The VIPs the leader owns. */
  vips: readonly string[];
}

/** Defaults: 25 ms heartbeats, 7 missed = dead (175 ms), isolated after 115 ms without own echo (shared/cluster/options.ts). */
export function electionDefaults(name: string): ElectionOptions {
  return { name, priority: 100, nopreempt: false, preemptDelayMs: 0, heartbeatMs: 25, missBeats: 7, isolationMs: 115, startupWaitMs: 300, vips: [] };
}

/** A member's state as shown by `tsvsadm cluster`. */
export const MemberState = { LEADER: 'leader', BACKUP: 'backup', DEAD: 'dead', LEFT: 'left', ISOLATED: 'isolated' } as const;
export type MemberStateValue = (typeof MemberState)[keyof typeof MemberState];

/** A heartbeat's content as the election needs it. */
export interface BeatInfo {
  from: string;
  epoch: number;
  leader: boolean;
  term: number;
  rev: number;
  follows: string;
  priority: number;
  ready: boolean;
  wantsPreempt: boolean;
}

export type ElectionInput =
  | { type: 'tick' }
  | { type: 'beat'; beat: BeatInfo }
  | { type: 'echo' }
  | { type: 'bye'; from: string; term: number; rev: number }
  | { type: 'nats'; up: boolean }
  | { type: 'ready' }
  /** The node's state is stale (it was cut off while not leading): it may not lead or preempt until ready again. */
  | { type: 'unready' }
  | { type: 'term-read'; record: TermRecord | null }
  | { type: 'cas-result'; term: number; result: { ok: true; rev: number } | { ok: false; conflict: boolean } }
  | { type: 'stop' };

export type ElectionEffect =
  | { type: 'heartbeat'; leader: boolean; term: number; rev: number; follows: string; ready: boolean; wantsPreempt: boolean }
  | { type: 'read-term' }
  | { type: 'cas'; expectRev: number; term: number; holder: string }
  | { type: 'grant-vips'; vips: readonly string[]; term: number }
  | { type: 'release-vips'; vips: readonly string[]; reason: string }
  | { type: 'role'; role: 'leader' | 'backup'; term: number; leader: string }
  | { type: 'member'; name: string; state: MemberStateValue }
  | { type: 'bye'; term: number; rev: number }
  | { type: 'stopped' };

interface Member {
  name: string;
  epoch: number;
  lastSeen: number;
  leader: boolean;
  term: number;
  priority: number;
  ready: boolean;
  wantsPreempt: boolean;
  state: MemberStateValue;
}

/** One node's election state machine. */
export class Election {
  readonly opts: ElectionOptions;
  private readonly members = new Map<string, Member>();
  private leading = false;
  /** The term this node leads in (valid while leading). */
  private leadTerm = 0;
  private term = 0;
  private rev = 0;
  private termKnown = false;
  private readInFlight = false;
  private casInFlight = false;
  private retryAt = 0;
  private ready = false;
  private readySince = 0;
  private natsUp = false;
  private lastEcho = 0;
  private lastBeatSent = -Infinity;
  private readonly startedAt: number;
  private leaderlessSince: number;
  /**
   * Since when this node has heard the cluster without a break: connected to NATS and not cut off. A node that has
   * listened less than one detection time may not yet have heard a live leader's heartbeat (it just started, or
   * came back to NATS), so it does not try to lead a cluster it believes leaderless before then: a term won that
   * way is taken from a live leader, with the VIPs raised beside its own and without its state.
   */
  private listenSince: number;
  private stopping = false;
  private stopped = false;
  private vipsHeld = false;
  private leaderName = '';
  private announcedRole: 'leader' | 'backup' | '' = '';
  private announcedLeader = '';
  private preemptSince = -1;

  constructor(opts: ElectionOptions, now: number) {
    if (!(opts.priority >= 1 && opts.priority <= 255)) throw new RangeError(`election: priority ${opts.priority} not in 1..255`);
    if (!(opts.isolationMs + opts.heartbeatMs < opts.heartbeatMs * opts.missBeats)) throw new RangeError('election: isolationMs plus one heartbeat must be shorter than heartbeatMs × missBeats');
    this.opts = opts;
    this.startedAt = now;
    this.leaderlessSince = now;
    this.listenSince = now;
  }

  /** True while this node leads (holds the term and its VIPs). */
  get isLeader(): boolean {
    return this.leading;
  }

  /** The leader this node knows ('' = none), its term, and the term record's revision. */
  view(): { leader: string; term: number; rev: number; ready: boolean; isolated: boolean } {
    return { leader: this.leaderName, term: this.term, rev: this.rev, ready: this.ready, isolated: this.isolatedAt(this.lastNow) };
  }

  /** Every member this node knows, itself included. */
  memberList(now: number): { name: string; state: MemberStateValue; priority: number }[] {
    const selfState = this.leading ? MemberState.LEADER : this.isolatedAt(now) ? MemberState.ISOLATED : MemberState.BACKUP;
    const out: { name: string; state: MemberStateValue; priority: number }[] = [{ name: this.opts.name, state: selfState, priority: this.opts.priority }];
    for (const m of this.members.values()) out.push({ name: m.name, state: m.state, priority: m.priority });
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  private lastNow = 0;

  /** Feeds one input; returns the effects to perform, in order. */
  step(input: ElectionInput, now: number): ElectionEffect[] {
    this.lastNow = now;
    const fx: ElectionEffect[] = [];
    if (this.stopped) return fx;
    switch (input.type) {
      case 'tick':
        break;
      case 'beat':
        this.onBeat(input.beat, now, fx);
        break;
      case 'echo':
        this.lastEcho = now;
        break;
      case 'bye': {
        const m = this.members.get(input.from);
        if (m) this.setState(m, MemberState.LEFT, fx);
        this.learn(input.term, input.rev);
        if (this.leaderName === input.from) this.leaderName = '';
        break;
      }
      case 'nats':
        this.natsUp = input.up; // only an echo of its own heartbeat proves the link works again
        if (input.up) this.lastBeatSent = -Infinity;
        break;
      case 'ready':
        if (!this.ready) {
          this.ready = true;
          this.readySince = now;
        }
        break;
      case 'unready':
        if (!this.leading) {
          this.ready = false;
          this.preemptSince = -1;
        }
        break;
      case 'term-read':
        this.readInFlight = false;
        if (input.record) {
          // The store's revision is what the next CAS must name; the term to write must exceed every term known.
          // A record can hold a lower term than one already heard of, at a newer revision (seen on nats-server
          // 2.9.10 after repeated freezes of the stream leader's server: an old write reappeared at a new
          // revision) or even at an older one (the stream rolled back to revision 5 after revision 8 had been
          // acknowledged, when the frozen server held the stream leader). Ignoring its revision would CAS on a
          // stale one, conflict, re-read, forever. Naming the store's revision is always safe: the CAS on it is
          // what decides, and a stale read only costs a conflict and another read.
          this.termKnown = true;
          this.term = Math.max(this.term, input.record.term);
          this.rev = input.record.rev;
        } else {
          this.retryAt = now + this.opts.heartbeatMs;
        }
        break;
      case 'cas-result':
        this.casInFlight = false;
        if (input.result.ok) {
          this.term = input.term;
          this.rev = input.result.rev;
          this.termKnown = true;
          if (this.stopping || !this.natsUp || this.isolatedAt(now) || this.higherLeaderAlive(now)) {
            // Won a term it cannot use: leave it to the others (they CAS over this revision).
            this.retryAt = now + this.opts.heartbeatMs * this.opts.missBeats;
          } else {
            this.becomeLeader(now, fx);
            return fx;
          }
        } else {
          this.retryAt = now + this.opts.heartbeatMs;
          if (input.result.conflict) {
            this.termKnown = false;
          }
        }
        break;
      case 'stop':
        this.stopping = true;
        if (this.leading) this.stepDown('graceful stop', fx);
        fx.push({ type: 'bye', term: this.term, rev: this.rev });
        fx.push({ type: 'stopped' });
        this.stopped = true;
        return fx;
    }
    this.evaluate(now, fx);
    return fx;
  }

  private onBeat(b: BeatInfo, now: number, fx: ElectionEffect[]): void {
    if (b.from === this.opts.name) return;
    let m = this.members.get(b.from);
    if (!m) {
      m = { name: b.from, epoch: b.epoch, lastSeen: now, leader: false, term: 0, priority: b.priority, ready: false, wantsPreempt: false, state: MemberState.BACKUP };
      this.members.set(b.from, m);
    } else if (b.epoch < m.epoch) {
      return; // a late beat of an older incarnation
    }
    m.epoch = b.epoch;
    m.lastSeen = now;
    m.leader = b.leader;
    m.term = b.term;
    m.priority = b.priority;
    m.ready = b.ready;
    m.wantsPreempt = b.wantsPreempt;
    this.setState(m, b.leader ? MemberState.LEADER : MemberState.BACKUP, fx);
    if (b.leader) this.learn(b.term, b.rev);
    else if (b.term > this.term) this.learn(b.term, b.rev);
  }

  /** Adopts a higher term (and its revision) than the one known. */
  private learn(term: number, rev: number): void {
    if (term > this.term || (term === this.term && rev > this.rev)) {
      this.term = term;
      this.rev = rev;
      if (rev > 0) this.termKnown = true;
    }
  }

  /**
   * Cut off: own heartbeats have not come back for isolationMs. A disconnect alone is not isolation: the client
   * reconnects to another server of the cluster within tens of ms, and losing one server must change nothing.
   */
  private isolatedAt(now: number): boolean {
    return now - this.lastEcho > this.opts.isolationMs;
  }

  private alive(m: Member, now: number): boolean {
    return m.state !== MemberState.LEFT && now - m.lastSeen <= this.opts.heartbeatMs * this.opts.missBeats;
  }

  private higherLeaderAlive(now: number): boolean {
    for (const m of this.members.values()) if (m.leader && this.alive(m, now) && m.term > this.term) return true;
    return false;
  }

  private setState(m: Member, s: MemberStateValue, fx: ElectionEffect[]): void {
    if (m.state !== s) {
      m.state = s;
      fx.push({ type: 'member', name: m.name, state: s });
    }
  }

  /** Holds the term; the VIPs follow in evaluate() once no other live member claims leadership. */
  private becomeLeader(now: number, fx: ElectionEffect[]): void {
    this.leading = true;
    this.leadTerm = this.term;
    this.leaderName = this.opts.name;
    this.preemptSince = -1;
    this.lastBeatSent = -Infinity; // announce at once: a lower-term leader steps down when it hears it
    this.evaluate(now, fx);
  }

  private stepDown(reason: string, fx: ElectionEffect[]): void {
    this.leading = false;
    if (this.leaderName === this.opts.name) this.leaderName = '';
    if (this.vipsHeld) {
      this.vipsHeld = false;
      fx.push({ type: 'release-vips', vips: this.opts.vips, reason });
    }
    this.lastBeatSent = -Infinity;
  }

  private evaluate(now: number, fx: ElectionEffect[]): void {
    const o = this.opts;
    const deadline = o.heartbeatMs * o.missBeats;
    for (const m of this.members.values()) {
      if (m.state !== MemberState.LEFT && m.state !== MemberState.DEAD && now - m.lastSeen > deadline) this.setState(m, MemberState.DEAD, fx);
    }
    const isolated = this.isolatedAt(now);
    if (!this.natsUp || isolated) this.listenSince = now;
    // Who leads, as far as the heartbeats tell.
    let other: Member | null = null;
    for (const m of this.members.values()) {
      if (m.leader && this.alive(m, now) && (!other || m.term > other.term)) other = m;
    }
    if (this.leading) {
      if (isolated) this.stepDown(this.natsUp ? 'own heartbeats no longer come back (cut off from NATS)' : 'NATS connection lost and not back in time', fx);
      else if (other && other.term > this.leadTerm) this.stepDown(`${other.name} leads term ${other.term}`, fx);
      else if (!this.vipsHeld && !other) {
        // Granted only when no other live member still claims leadership (a preempted leader releases first).
        this.vipsHeld = true;
        fx.push({ type: 'grant-vips', vips: o.vips, term: this.leadTerm });
      }
    }
    if (this.leading) other = null;
    const leader = this.leading ? o.name : other ? other.name : '';
    if (leader !== this.leaderName) this.leaderName = leader;
    if (leader !== '') this.leaderlessSince = now;
    // Preemption wish: a live lower-priority leader, and this node ready and allowed to preempt.
    let wantsPreempt = false;
    if (!this.leading && other && !o.nopreempt && this.ready && !isolated && o.priority > other.priority && this.bestCandidate(now) === o.name) {
      if (this.preemptSince < 0) this.preemptSince = Math.max(now, this.readySince);
      wantsPreempt = now - this.preemptSince >= o.preemptDelayMs;
    } else {
      this.preemptSince = -1;
    }
    // Trying to lead: when nobody leads (the best candidate first, the others after rank × detection time), or to
    // preempt. The CAS on the known revision decides; a preempted leader steps down when it hears the new term.
    if (!this.leading && !isolated && this.ready && !this.stopping && (leader === '' || wantsPreempt) && now - this.startedAt >= o.startupWaitMs
      && !this.casInFlight && !this.readInFlight && now >= this.retryAt) {
      const rank = wantsPreempt ? 0 : this.rank(now);
      if (rank >= 0 && now - this.leaderlessSince >= rank * deadline && (wantsPreempt || now - this.listenSince >= deadline)) {
        if (!this.termKnown) {
          this.readInFlight = true;
          fx.push({ type: 'read-term' });
        } else {
          this.casInFlight = true;
          fx.push({ type: 'cas', expectRev: this.rev, term: this.term + 1, holder: o.name });
        }
      }
    }
    // Role announcements to the parent.
    const role = this.leading ? 'leader' : 'backup';
    if (role !== this.announcedRole || this.leaderName !== this.announcedLeader) {
      this.announcedRole = role;
      this.announcedLeader = this.leaderName;
      fx.push({ type: 'role', role, term: this.term, leader: this.leaderName });
    }
    // Heartbeat.
    if (this.natsUp && now - this.lastBeatSent >= o.heartbeatMs) {
      this.lastBeatSent = now;
      fx.push({ type: 'heartbeat', leader: this.leading, term: this.term, rev: this.rev, follows: this.leaderName, ready: this.ready, wantsPreempt });
    }
  }

  /** The node that should lead among live, ready members and this node: highest priority, then lowest name. */
  private bestCandidate(now: number): string {
    const c = this.candidates(now);
    return c.length ? c[0].name : '';
  }

  /** This node's place among the candidates (0 = best), or -1 when it is not one. */
  private rank(now: number): number {
    return this.candidates(now).findIndex((c) => c.name === this.opts.name);
  }

  private candidates(now: number): { name: string; priority: number }[] {
    const c: { name: string; priority: number }[] = [];
    if (this.ready && !this.stopping && !this.isolatedAt(now)) c.push({ name: this.opts.name, priority: this.opts.priority });
    for (const m of this.members.values()) if (this.alive(m, now) && m.ready) c.push({ name: m.name, priority: m.priority });
    return c.sort((a, b) => b.priority - a.priority || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
}
