// worker/resolver: a backup director that installs a peer's connections resolves their client-side next hop ahead of
// the takeover, so that the replies of every synced flow go out the moment they arrive — rather than piling up in
// the neighbour's hold queue (16 frames) behind one ARP round and being dropped (CI: 60 of 1000 streams stalled
// 1.5 s after a kill -9 of the leader). The engine, resolver and hold queue are the real ones; the kernel's
// neighbour table is a fake that answers a probe when the test says the ARP reply arrived.
import { describe, expect, it } from 'vitest';
import { ConnTable } from '../../shared/conntab/conn-table.ts';
import { Counters, countersBytes, Ev } from '../../shared/fwd/counters.ts';
import { FwdCode } from '../../shared/model/ipvs.ts';
import { ipv4FromText } from '../../shared/net/addr.ts';
import { RECORD_WORDS } from '../../shared/sync/record.ts';
import { SyncRing } from '../../shared/sync/ring.ts';
import { macToString, type NeighTable } from '../../shared/sys/neigh.ts';
import { Engine, Verdict } from '../../services/worker/engine.ts';
import { NeighQueue } from '../../services/worker/neigh-queue.ts';
import { Resolver } from '../../services/worker/resolver.ts';
import { RouteTable } from '../../services/worker/route.ts';
import { eth, ipv4, mac, tcp } from '../support/packet-ref.ts';
import { CLIENT, CLIENT_MAC, DIR_BACK, DIR_FRONT, FakeL2, FakePort, RS_MAC, VIP, dest, service, table } from '../support/engine-fakes.ts';

const SYN = 0x02;
const ACK = 0x10;
const FLOWS = 40;
const ROUTER = '10.0.0.1';
const ROUTER_MAC = '02:00:00:00:00:fe';
const FAR_CLIENT = '192.0.2.7';
const macBytes = (m: string): Uint8Array => new Uint8Array(mac(m));
const ip = (t: string): number => ipv4FromText(t)!;
const clock = { now: 7_000_000 };

/** The kernel's neighbour table as the resolver sees it: known MACs, and probes that wait for their ARP reply. */
class KernelNeigh {
  readonly known = new Map<string, Uint8Array>();
  readonly asked = new Set<string>();
  /** Who answers ARP on the LAN: address → MAC. */
  readonly lan = new Map<string, string>();
  lookup(ifindex: number, addr: number): Uint8Array | null {
    return this.known.get(`${ifindex}/${addr >>> 0}`) ?? null;
  }
  ownMac(ifindex: number): Uint8Array | null {
    return ifindex === 1 ? macBytes(DIR_FRONT) : ifindex === 2 ? macBytes(DIR_BACK) : null;
  }
  probe(ifindex: number, addr: number): void {
    if (this.lookup(ifindex, addr) === null) this.asked.add(`${ifindex}/${addr >>> 0}`);
  }
  /** The ARP replies to every probe so far arrive (the NeighTable's watch calls `onNeighbour`). */
  answer(onNeighbour: (ifindex: number, addr: number, mac: Uint8Array) => void): string[] {
    const learned: string[] = [];
    for (const k of this.asked) {
      const [ifx, a] = k.split('/').map(Number);
      const who = [...this.lan].find(([t]) => ip(t) === a);
      if (who === undefined) continue;
      const m = macBytes(who[1]);
      this.known.set(k, m);
      learned.push(who[0]);
      onNeighbour(ifx, a, m);
    }
    this.asked.clear();
    return learned;
  }
}

const natTable = () => table([service(0, 6, 80, [dest(0, '10.1.0.101', 80, FwdCode.masq), dest(1, '10.1.0.102', 80, FwdCode.masq)])]);

/** Director A (the leader, fake L2) and director B (the backup: real resolver and hold queue over KernelNeigh). */
function pair() {
  const mk = (l2: ConstructorParameters<typeof Engine>[0]['l2'], front: FakePort, back: FakePort) => {
    const counters = new Counters(new ArrayBuffer(countersBytes(1)), 1, true);
    const conns = ConnTable.create(1024, { counters: counters.rows[0].conns, epochMs: 0 });
    const out = SyncRing.create(new ArrayBuffer(SyncRing.bytes(256)), 0, 256);
    const inb = SyncRing.create(new ArrayBuffer(SyncRing.bytes(256)), 0, 256);
    const engine = new Engine({ conns, counters, worker: 0, l2, ports: new Map([[1, front], [2, back]]), now: () => clock.now, rng: () => 0.5, sync: { outbound: out, inbound: inb, shard: 0 } });
    engine.setTable(natTable());
    const feed = (frame: number[]): number => {
      const buf = new Uint8Array(frame.length);
      buf.set(frame);
      return engine.frame(buf, 0, frame.length, false);
    };
    return { engine, counters, out, inb, front, back, feed, ev: (n: keyof typeof Ev) => counters.rows[0].events[Ev[n]] };
  };
  const a = mk(new FakeL2(), new FakePort(1), new FakePort(2));
  const kernel = new KernelNeigh();
  for (const [addr, m] of Object.entries(RS_MAC)) {
    kernel.known.set(`2/${ip(addr)}`, macBytes(m));
    kernel.lan.set(addr, m);
  }
  kernel.lan.set(CLIENT, CLIENT_MAC);
  kernel.lan.set(ROUTER, ROUTER_MAC);
  const routes = new RouteTable();
  routes.set([
    { dst: ip('10.0.0.0'), mask: ip('255.255.255.0'), len: 24, ifindex: 1, gateway: 0 },
    { dst: ip('10.1.0.0'), mask: ip('255.255.255.0'), len: 24, ifindex: 2, gateway: 0 },
    { dst: 0, mask: 0, len: 0, ifindex: 1, gateway: ip(ROUTER) },
  ], new Map([[1, ip('10.0.0.2')], [2, ip('10.1.0.2')]]));
  const bFront = Object.assign(new FakePort(1), { flush: () => 0 });
  const bBack = Object.assign(new FakePort(2), { flush: () => 0 });
  const hold = { neighbours: 32, perNeighbour: 16, slotBytes: 2048, holdMs: 3000 }; // the worker's sizing
  const bEv = new Float64Array(Object.keys(Ev).length + 64);
  const queue = new NeighQueue(new Uint8Array(NeighQueue.bytes(hold)), bEv, hold);
  const resolver = new Resolver({ routes, neigh: kernel as unknown as NeighTable, ports: new Map([[1, bFront], [2, bBack]]), queue, now: () => clock.now, log: () => undefined });
  const b = mk(resolver, bFront, bBack);
  // The hold queue counts into its own row here; B's engine counts the rest.
  const queueDrops = (): number => bEv[Ev.drop_neigh_queue_full];
  return { a, b, kernel, resolver, queueDrops };
}

type Dir = ReturnType<typeof pair>['a'];

/** A opens FLOWS connections from `client` (handshake done); returns the real server each went to, by source port. */
function openFlows(a: Dir, client: string): Map<number, string> {
  const to = new Map<number, string>();
  for (let i = 0; i < FLOWS; i++) {
    const sport = 43000 + i;
    const seg = (flags: number) => eth(DIR_FRONT, CLIENT_MAC, 0x0800, ipv4({ src: client, dst: VIP, proto: 6, payload: tcp({ src: client, dst: VIP, sport, dport: 80, flags, seq: 1001, ack: 5001 }) }));
    expect(a.feed(seg(SYN))).toBe(Verdict.FORWARD);
    const f = a.back.take()[0].bytes;
    const rs = `${f[30]}.${f[31]}.${f[32]}.${f[33]}`;
    to.set(sport, rs);
    a.feed(eth(DIR_BACK, RS_MAC[rs], 0x0800, ipv4({ src: rs, dst: client, proto: 6, payload: tcp({ src: rs, dst: client, sport: 80, dport: sport, flags: SYN | ACK }) })));
    a.feed(seg(ACK));
    a.back.take();
    a.front.take();
  }
  return to;
}

/** The cluster's job: A's records reach B's inbound ring; B installs them. */
function carry(a: Dir, b: Dir): void {
  const n = a.out.available();
  const words = new Uint32Array(n * RECORD_WORDS);
  a.out.drainInto(words, 0, n);
  b.inb.pushWords(words, 0, n);
  b.engine.syncPoll();
}

/** Takeover: every flow's real server sends its next segment to B at once; what B put on the client side. */
function repliesAt(b: Dir, flows: Map<number, string>, client: string): { sent: number; macs: Set<string> } {
  for (const [sport, rs] of flows) {
    b.feed(eth(DIR_BACK, RS_MAC[rs], 0x0800, ipv4({ src: rs, dst: client, proto: 6, payload: tcp({ src: rs, dst: client, sport: 80, dport: sport, flags: ACK, seq: 5001, ack: 1001 }) })));
  }
  b.engine.endBatch();
  const frames = b.front.take();
  return { sent: frames.length, macs: new Set(frames.map((f) => macToString(f.bytes.subarray(0, 6)))) };
}

describe('worker/resolver: client-side next hops resolved ahead of a takeover', () => {
  it('resolver prepare: a backup that installed a peer\'s flows from an on-link client sends all their replies at the takeover, none held or dropped', () => {
    const { a, b, kernel, resolver, queueDrops } = pair();
    const flows = openFlows(a, CLIENT);
    carry(a, b);
    expect(b.ev('sync_created')).toBe(FLOWS);
    // The ARP round the installs started completes while B is still a backup.
    expect(kernel.answer((i, x, m) => resolver.onNeighbour(i, x, m))).toEqual([CLIENT]);
    const r = repliesAt(b, flows, CLIENT);
    expect(r).toEqual({ sent: FLOWS, macs: new Set([CLIENT_MAC]) });
    expect(queueDrops()).toBe(0);
  });

  it('resolver prepare: for clients behind a router it is the router\'s MAC that is resolved, and the replies go to it', () => {
    const { a, b, kernel, resolver, queueDrops } = pair();
    const flows = openFlows(a, FAR_CLIENT);
    carry(a, b);
    expect(kernel.answer((i, x, m) => resolver.onNeighbour(i, x, m))).toEqual([ROUTER]);
    const r = repliesAt(b, flows, FAR_CLIENT);
    expect(r).toEqual({ sent: FLOWS, macs: new Set([ROUTER_MAC]) });
    expect(queueDrops()).toBe(0);
  });
});
