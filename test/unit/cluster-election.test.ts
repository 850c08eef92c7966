// cluster election: nodes driven tick by tick with a fake clock, an instant in-memory bus for heartbeats and an
// in-memory compare-and-set term store; checks who leads, how fast a failure is taken over, and that two nodes
// never hold the VIPs at once.
import { describe, expect, it } from 'vitest';
import { Election, electionDefaults, type ElectionEffect, type ElectionInput, type ElectionOptions } from '../../shared/cluster/election.ts';

interface SimNode {
  name: string;
  el: Election;
  up: boolean; // process alive
  nats: boolean; // its NATS link carries messages
  kv: boolean; // it can write the store
  vips: boolean;
  log: { t: number; fx: ElectionEffect }[];
}

class Sim {
  now = 0;
  nodes: SimNode[] = [];
  store = { term: 0, holder: '', rev: 0, seq: 0 };
  storeUp = true;
  queue: { at: number; to: SimNode; input: ElectionInput }[] = [];
  /** Moments at which more than one node held the VIPs. */
  overlaps: number[] = [];
  readonly tickMs = 5;
  readonly kvDelay = 1;

  add(name: string, over: Partial<ElectionOptions> = {}, ready = true): SimNode {
    const el = new Election({ ...electionDefaults(name), vips: ['10.0.0.10'], ...over }, this.now);
    const n: SimNode = { name, el, up: true, nats: true, kv: true, vips: false, log: [] };
    this.nodes.push(n);
    this.feed(n, { type: 'nats', up: true });
    if (ready) this.feed(n, { type: 'ready' });
    return n;
  }

  feed(n: SimNode, input: ElectionInput): void {
    if (!n.up) return;
    for (const fx of n.el.step(input, this.now)) this.apply(n, fx);
  }

  apply(n: SimNode, fx: ElectionEffect): void {
    n.log.push({ t: this.now, fx });
    switch (fx.type) {
      case 'heartbeat':
        if (!n.nats) return;
        this.queue.push({ at: this.now, to: n, input: { type: 'echo' } });
        for (const m of this.nodes) {
          if (m !== n && m.nats) {
            this.queue.push({ at: this.now + 1, to: m, input: { type: 'beat', beat: { from: n.name, epoch: 1, leader: fx.leader, term: fx.term, rev: fx.rev, follows: fx.follows, priority: n.el.opts.priority, ready: fx.ready, wantsPreempt: fx.wantsPreempt } } });
          }
        }
        return;
      case 'bye':
        if (!n.nats) return;
        for (const m of this.nodes) if (m !== n && m.nats) this.queue.push({ at: this.now + 1, to: m, input: { type: 'bye', from: n.name, term: fx.term, rev: fx.rev } });
        return;
      case 'read-term': {
        const ok = this.storeUp && n.kv && n.nats;
        const rec = ok ? { term: this.store.term, holder: this.store.holder, rev: this.store.rev } : null;
        this.queue.push({ at: this.now + (ok ? this.kvDelay : 800), to: n, input: { type: 'term-read', record: rec } });
        return;
      }
      case 'cas': {
        const ok = this.storeUp && n.kv && n.nats;
        let result: { ok: true; rev: number } | { ok: false; conflict: boolean };
        if (!ok) result = { ok: false, conflict: false };
        else if (this.store.rev !== fx.expectRev) result = { ok: false, conflict: true };
        else {
          this.store.seq++;
          this.store = { term: fx.term, holder: fx.holder, rev: this.store.seq, seq: this.store.seq };
          result = { ok: true, rev: this.store.rev };
        }
        this.queue.push({ at: this.now + (ok ? this.kvDelay : 800), to: n, input: { type: 'cas-result', term: fx.term, result } });
        return;
      }
      case 'grant-vips':
        n.vips = true;
        return;
      case 'release-vips':
        n.vips = false;
        return;
      default:
        return;
    }
  }

  run(ms: number): void {
    const end = this.now + ms;
    while (this.now < end) {
      this.now += 1;
      const due = this.queue.filter((q) => q.at <= this.now);
      this.queue = this.queue.filter((q) => q.at > this.now);
      for (const q of due) this.feed(q.to, q.input);
      if (this.now % this.tickMs === 0) for (const n of this.nodes) this.feed(n, { type: 'tick' });
      if (this.nodes.filter((n) => n.up && n.vips).length > 1) this.overlaps.push(this.now);
    }
  }

  leaders(): string[] {
    return this.nodes.filter((n) => n.up && n.el.isLeader).map((n) => n.name);
  }

  kill(n: SimNode): void {
    n.up = false;
    n.vips = false;
    this.queue = this.queue.filter((q) => q.to !== n);
  }

  /** Time of the first grant-vips at or after `t0` on any node. */
  grantAfter(t0: number): { name: string; t: number } | null {
    let best: { name: string; t: number } | null = null;
    for (const n of this.nodes) for (const l of n.log) if (l.fx.type === 'grant-vips' && l.t >= t0 && (!best || l.t < best.t)) best = { name: n.name, t: l.t };
    return best;
  }
}

/** d2 (priority 100) alone, leading after 1 s. */
function d2Leads(): { s: Sim; d2: SimNode } {
  const s = new Sim();
  const d2 = s.add('d2', { priority: 100 });
  s.run(1000);
  expect(s.leaders()).toEqual(['d2']);
  return { s, d2 };
}

function three(): Sim {
  const s = new Sim();
  s.add('d1', { priority: 150 });
  s.add('d2', { priority: 100 });
  s.add('d3', { priority: 50 });
  s.run(1000);
  return s;
}

describe('cluster election', () => {
  it('election: three nodes elect exactly one leader, the highest priority, and it holds the VIPs', () => {
    const s = three();
    expect(s.leaders()).toEqual(['d1']);
    expect(s.nodes.map((n) => n.vips)).toEqual([true, false, false]);
    expect(s.store.holder).toBe('d1');
    expect(s.overlaps).toEqual([]);
    expect(s.nodes[1].el.view().leader).toBe('d1');
  });

  it('election: a killed leader is replaced by the next priority within missBeats heartbeats plus a CAS', () => {
    const s = three();
    const t0 = s.now;
    s.kill(s.nodes[0]);
    s.run(1000);
    expect(s.leaders()).toEqual(['d2']);
    const g = s.grantAfter(t0);
    expect(g?.name).toBe('d2');
    expect(g!.t - t0).toBeLessThanOrEqual(50 * 3 + 50 + 10);
    expect(s.overlaps).toEqual([]);
  });

  it('election: a graceful stop hands over within a few ms', () => {
    const s = three();
    const t0 = s.now;
    s.feed(s.nodes[0], { type: 'stop' });
    s.nodes[0].up = false;
    s.run(500);
    expect(s.leaders()).toEqual(['d2']);
    expect(s.grantAfter(t0)!.t - t0).toBeLessThanOrEqual(10);
    expect(s.overlaps).toEqual([]);
  });

  it('election: a healthy leader keeps leading through a 10 s term-store outage, and nobody else takes over', () => {
    const s = three();
    s.storeUp = false;
    s.run(10_000);
    expect(s.leaders()).toEqual(['d1']);
    expect(s.nodes.filter((n) => n.vips).map((n) => n.name)).toEqual(['d1']);
  });

  it('election: with the store down nobody can take over a dead leader; once it returns one does', () => {
    const s = three();
    s.storeUp = false;
    s.kill(s.nodes[0]);
    s.run(5000);
    expect(s.leaders()).toEqual([]);
    s.storeUp = true;
    s.run(2000);
    expect(s.leaders()).toEqual(['d2']);
  });

  /** d1 dies, d2 leads; the store is changed under the nodes (`odd`); d2 dies: d3 must still take over at once. */
  function takeoverAfterOddStore(odd: (s: ReturnType<typeof three>) => void): void {
    const s = three();
    s.kill(s.nodes[0]);
    s.run(1000);
    expect(s.leaders()).toEqual(['d2']);
    const known = s.store.term;
    expect(known).toBe(2);
    odd(s);
    const t0 = s.now;
    s.kill(s.nodes[1]);
    s.run(2000);
    expect(s.leaders()).toEqual(['d3']);
    expect(s.grantAfter(t0)!.t - t0).toBeLessThan(500);
    expect(s.store.holder).toBe('d3');
    // Terms never go back: the new one exceeds every term known, whatever the store held.
    expect(s.store.term).toBeGreaterThan(known);
    expect(s.overlaps).toEqual([]);
  }

  it('election: a store record with a lower term at a newer revision (an old write reappearing) does not stall a takeover', () => {
    takeoverAfterOddStore((s) => {
      s.store.seq += 20;
      s.store = { term: 1, holder: 'd1', rev: s.store.seq, seq: s.store.seq };
    });
  });

  it('election: a store rolled back to an older term at an older revision (acknowledged writes lost) does not stall a takeover', () => {
    // The stream loses its last writes: the nodes know term 2 at its revision; the store is back at term 1, revision 1.
    takeoverAfterOddStore((s) => {
      s.store = { term: 1, holder: 'd1', rev: 1, seq: 1 };
    });
  });

  it('election: a leader cut off from NATS releases its VIPs before a peer can take them', () => {
    const s = three();
    const t0 = s.now;
    s.nodes[0].nats = false; // messages no longer flow either way (a hung server): the client still thinks it is up
    s.run(1000);
    const release = s.nodes[0].log.find((l) => l.t >= t0 && l.fx.type === 'release-vips');
    const grant = s.grantAfter(t0);
    expect(release).toBeDefined();
    expect(grant?.name).toBe('d2');
    expect(release!.t).toBeLessThan(grant!.t);
    expect(s.overlaps).toEqual([]);
    expect(s.nodes[0].el.isLeader).toBe(false);
  });

  it('election: a leader whose NATS connection drops keeps the VIPs through a quick reconnect, releases if it lasts', () => {
    const s = three();
    const [d1] = s.nodes;
    const t0 = s.now;
    s.feed(d1, { type: 'nats', up: false });
    d1.nats = false;
    s.run(60);
    expect(d1.vips).toBe(true);
    d1.nats = true;
    s.feed(d1, { type: 'nats', up: true });
    s.run(1000);
    expect(s.leaders()).toEqual(['d1']);
    expect(d1.log.some((l) => l.t >= t0 && l.fx.type === 'release-vips')).toBe(false);
    s.feed(d1, { type: 'nats', up: false });
    d1.nats = false;
    s.run(1000);
    expect(d1.vips).toBe(false);
    expect(s.leaders()).toEqual(['d2']);
    expect(s.overlaps).toEqual([]);
  });

  it('election: a node that cannot write the store (minority side) never leads', () => {
    const s = new Sim();
    const a = s.add('d1', { priority: 200 });
    a.kv = false;
    s.add('d2', { priority: 100 });
    s.run(3000);
    expect(s.leaders()).toEqual(['d2']);
    expect(a.log.some((l) => l.fx.type === 'grant-vips')).toBe(false);
  });

  it('election: a node never leads before its snapshot is installed', () => {
    const s = new Sim();
    const a = s.add('d1', { priority: 200 }, false);
    s.run(3000);
    expect(s.leaders()).toEqual([]);
    s.feed(a, { type: 'ready' });
    s.run(1000);
    expect(s.leaders()).toEqual(['d1']);
  });

  it('election: a higher-priority node that joins preempts after preempt_delay, without overlap', () => {
    const { s } = d2Leads();
    const t0 = s.now;
    s.add('d1', { priority: 150, preemptDelayMs: 2000 });
    s.run(1500);
    expect(s.leaders()).toEqual(['d2']);
    s.run(1500);
    expect(s.leaders()).toEqual(['d1']);
    const g = s.grantAfter(t0)!;
    expect(g.name).toBe('d1');
    expect(g.t - t0).toBeGreaterThanOrEqual(2000);
    expect(s.overlaps).toEqual([]);
  });

  it('election: a higher-priority node made unready (back from a partition) does not preempt until it is ready again', () => {
    const { s, d2 } = d2Leads();
    const d1 = s.add('d1', { priority: 150, preemptDelayMs: 500 }, false);
    s.run(1000);
    expect(s.leaders()).toEqual(['d2']);
    s.feed(d1, { type: 'ready' });
    s.run(200); // within preempt_delay: it wants to preempt
    s.feed(d1, { type: 'unready' });
    s.run(3000);
    expect(s.leaders()).toEqual(['d2']);
    expect(d2.vips).toBe(true);
    s.feed(d1, { type: 'ready' });
    s.run(1000);
    expect(s.leaders()).toEqual(['d1']);
    // A leader is never made unready: it keeps leading.
    s.feed(d1, { type: 'unready' });
    s.run(1000);
    expect(s.leaders()).toEqual(['d1']);
    expect(s.overlaps).toEqual([]);
  });

  it('election: a node that has not yet heard a live leader (no startup wait, or just back on NATS) does not take the term from it', () => {
    const { s } = d2Leads();
    const t0 = s.now;
    // Ready at once and no startup wait: it evaluates before the leader's next heartbeat reaches it.
    const d1 = s.add('d1', { priority: 150, nopreempt: true, startupWaitMs: 0 });
    s.run(2000);
    expect(s.leaders()).toEqual(['d2']);
    expect(d1.log.filter((l) => l.fx.type === 'cas' || l.fx.type === 'grant-vips')).toEqual([]);
    expect(s.grantAfter(t0)).toBeNull();
    expect(s.overlaps).toEqual([]);
    // Alone, the same node leads after one detection time of listening.
    const lone = new Sim();
    const n = lone.add('d1', { priority: 150, startupWaitMs: 0 });
    lone.run(1000);
    expect(lone.leaders()).toEqual(['d1']);
    const o = n.el.opts;
    expect(lone.grantAfter(0)!.t).toBeGreaterThanOrEqual(o.heartbeatMs * o.missBeats);
  });

  it('election: nopreempt keeps a live lower-priority leader', () => {
    const { s } = d2Leads();
    s.add('d1', { priority: 150, nopreempt: true });
    s.run(5000);
    expect(s.leaders()).toEqual(['d2']);
  });

  it('election: two leaders never coexist over 30 random kill/stop/restart/isolate rounds', () => {
    let seed = 12345;
    const rnd = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const s = three();
    for (let round = 0; round < 30; round++) {
      const n = s.nodes[Math.floor(rnd() * 3)];
      const what = Math.floor(rnd() * 3);
      if (what === 0) s.kill(n);
      else if (what === 1) n.nats = false;
      else if (n.up) {
        s.feed(n, { type: 'stop' });
        n.up = false;
      }
      s.run(600);
      // bring it back as a new incarnation
      const i = s.nodes.indexOf(n);
      s.nodes.splice(i, 1);
      s.add(n.name, { priority: n.el.opts.priority });
      s.run(1500);
      expect(s.leaders().length).toBe(1);
    }
    expect(s.overlaps).toEqual([]);
  });

  it('election: options are checked (priority range, isolation shorter than detection)', () => {
    expect(() => new Election({ ...electionDefaults('x'), priority: 0 }, 0)).toThrow(/priority/);
    expect(() => new Election({ ...electionDefaults('x'), isolationMs: 150 }, 0)).toThrow(/isolationMs/);
  });
});
