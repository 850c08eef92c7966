// A forwarding worker: one process per CPU, started and supervised by tsvsd. Maps its connection-table shard
// and the shared counters, receives on the director's interfaces through AF_PACKET fanout (both directions of
// a flow reach the same worker), forwards with the engine, and applies tables tsvsd sends between batches.
import { parseArgs } from 'node:util';
import { ConnTable, conntabBytes } from '../../shared/conntab/conn-table.ts';
import { Counters, countersBytes } from '../../shared/fwd/counters.ts';
import { conntabPath, countersPath, DEFAULT_CONNS_PER_WORKER, LOCAL_TUN, fanoutGroup, type FromWorker, type ToWorker } from '../../shared/proto/worker.ts';
import { mapShared } from '../../shared/sys/shm.ts';
import { Engine, type Hop, type L2Resolver, type TxPort } from './engine.ts';
import { openAfPacketPort, RxFlag, type AfPacketPort } from './io/af-packet.ts';
import { NeighTable } from '../../shared/sys/neigh.ts';
import { openNfqueuePort, type NfqueuePort } from './io/nfqueue.ts';
import { currentCpu, pinToCpu } from './io/pin.ts';
import { RouteSync } from './io/route-sync.ts';
import { nlProblems, nlStats } from '../../shared/sys/rtnl-codec.ts';
import { RouteTable } from './route.ts';
import { openTun, type TunDevice } from '../../shared/sys/tun.ts';
import { DecisionWriter, decisionRingBytes, decisionRingPath } from '../../shared/telemetry/decision-ring.ts';
import { hostname } from 'node:os';

const { values: a } = parseArgs({
  options: {
    index: { type: 'string' },
    workers: { type: 'string' },
    cpu: { type: 'string' },
    'shm-dir': { type: 'string' },
    'client-if': { type: 'string' },
    'server-if': { type: 'string' },
    capacity: { type: 'string' },
    ring: { type: 'string', default: 'adaptive' },
    backend: { type: 'string', default: 'afpacket' },
    'spin-us': { type: 'string', default: '100' },
    'busy-poll': { type: 'boolean', default: false },
    'queue-base': { type: 'string', default: '0' },
    decisions: { type: 'string', default: '0' },
    director: { type: 'string' },
  },
});
const backend = a.backend === 'nfqueue' ? 'nfqueue' : 'afpacket';

const index = Number(a.index);
const workers = Number(a.workers);
if (!Number.isInteger(index) || !Number.isInteger(workers) || index < 0 || index >= workers || !a['shm-dir'] || !a['client-if']) {
  process.stderr.write('usage: worker --index I --workers N --shm-dir DIR --client-if IF [--server-if IF] [--cpu C] [--capacity N] [--ring adaptive|v2|v3] [--backend afpacket|nfqueue [--queue-base Q]] [--spin-us US | --busy-poll] [--decisions N --director NAME]\n');
  process.exit(2);
}
const clientIf = a['client-if'];
const serverIf = a['server-if'] ?? clientIf;
const capacity = a.capacity ? Number(a.capacity) : DEFAULT_CONNS_PER_WORKER;
const decisionRecords = Number(a.decisions);
if (!Number.isInteger(decisionRecords) || decisionRecords < 0 || (decisionRecords > 0 && (decisionRecords < 2 || (decisionRecords & (decisionRecords - 1)) !== 0))) {
  process.stderr.write(`worker: --decisions ${a.decisions}: 0 (off) or a power of two >= 2\n`);
  process.exit(2);
}

function send(m: FromWorker): void {
  if (process.send) process.send(m);
}
function log(line: string): void {
  send({ type: 'log', index, line });
}

const cpu = a.cpu !== undefined ? pinToCpu(Number(a.cpu)) : currentCpu();

// Shared memory: the counters (created by tsvsd) and this worker's connection-table shard, which survives a
// restart of this process so that its connections keep flowing.
const dir = a['shm-dir'];
const counters = new Counters(mapShared(countersPath(dir), countersBytes(workers)).buffer, workers, false);
const row = counters.rows[index];
const seg = mapShared(conntabPath(dir, index), conntabBytes(capacity), { create: true, resize: true });
let conns: ConnTable;
let attached = false;
if (seg.created) {
  conns = ConnTable.create(capacity, { counters: row.conns, epochMs: Date.now(), tableTime: true }, seg.buffer);
} else {
  try {
    conns = ConnTable.attach(seg.buffer, { counters: row.conns, tableTime: true });
    attached = true;
    row.conns.fill(0);
    conns.recount(row.conns);
  } catch (e) {
    log(`conntab shard ${index}: cannot attach (${(e as Error).message}); starting empty`);
    new Uint8Array(seg.buffer).fill(0);
    conns = ConnTable.create(capacity, { counters: row.conns, epochMs: Date.now(), tableTime: true }, seg.buffer);
    row.conns.fill(0);
  }
}

// The engine runs on table time (ms since the shard's epoch): a small integer, never boxed (see ConnTableRuntime).
const epochMs = conns.epochMs;
const tableNow = (): number => Date.now() - epochMs;

// The decision ring (tracing): one record per scheduling decision, written on the packet path, read by tsvsd's
// telemetry exporter. A restarted worker attaches to its ring and continues the sequence.
const decisions =
  decisionRecords > 0
    ? new DecisionWriter(mapShared(decisionRingPath(dir, index), decisionRingBytes(decisionRecords), { create: true, resize: true }).buffer, {
        init: false,
        worker: index,
        director: a.director ?? hostname(),
        epochMs,
      })
    : null;

// L3 and L2 from rtnetlink, each kept current by a subscription: routes and the director's addresses (re-dumped
// from the event loop after a change), neighbours and links.
const routes = new RouteTable();
const routeSync = RouteSync.open(routes);
const neigh = NeighTable.open();
neigh.watch();
const neighReported = nlStats();

class Resolver implements L2Resolver {
  private readonly rt = { ifindex: 0, nexthop: 0 };
  private readonly probed = new Map<number, number>();

  isLocal(addr: number): boolean {
    return routes.isLocal(addr);
  }

  sourceFor(daddr: number): number {
    return routes.lookup(daddr, this.rt) ? routes.source(this.rt.ifindex) : 0;
  }

  resolve(daddr: number, hop: Hop): boolean {
    if (!routes.lookup(daddr, this.rt)) return false;
    const ifx = this.rt.ifindex;
    const mac = neigh.lookup(ifx, this.rt.nexthop);
    if (mac === null) {
      this.probe(ifx, this.rt.nexthop);
      return false;
    }
    const own = neigh.ownMac(ifx);
    if (own === null) return false;
    for (let i = 0; i < 6; i++) {
      hop.dstMac[i] = mac[i];
      hop.srcMac[i] = own[i];
    }
    hop.ifindex = ifx;
    hop.srcIp = routes.source(ifx);
    return true;
  }

  /** Asks the kernel to resolve a missing neighbour, at most once a second per address. */
  private probe(ifx: number, ip: number): void {
    const now = Date.now();
    const last = this.probed.get(ip) ?? 0;
    if (now - last < 1000) return;
    this.probed.set(ip, now);
    try {
      neigh.probe(ifx, ip);
    } catch (e) {
      log(`neighbour probe failed: ${(e as Error).message}`);
    }
  }
}

// A real server on the director itself gets its packets through a TUN queue of its own (multi-queue: one per
// worker), which hands them to the local stack; the same path carries NAT traffic whose next hop is still
// being resolved, and (safe mode) ICMP errors the director originates.
let local: TunDevice | null = null;
try {
  local = openTun({ name: LOCAL_TUN, multiQueue: true });
} catch (e) {
  log(`local node delivery unavailable: ${(e as Error).message}`);
}

const ports: AfPacketPort[] = [];
const txPorts = new Map<number, TxPort>();
let nfq: NfqueuePort | null = null;
let engine: Engine;

function flush(): void {
  for (const p of ports) p.txFlush();
  nfq?.flush();
}

if (backend === 'afpacket') {
  // Packet ports: one per interface; receive fanout keyed on the client (source on the client side,
  // destination on the server side, where NAT replies arrive).
  const ifaces = clientIf === serverIf ? [clientIf] : [clientIf, serverIf];
  for (const ifname of ifaces) {
    const ifindex = neigh.ifindexOf(ifname);
    if (ifindex < 0) {
      process.stderr.write(`worker ${index}: no interface ${ifname}\n`);
      process.exit(1);
    }
    const key = ifname === clientIf ? 'src' : 'dst';
    const port = openAfPacketPort({
      ifname,
      // Adaptive rings stay on V2 (a wake-up per batch) up to 250 kpps: V3 blocks retire on a 1 ms timer, which a
      // latency-bound load (new connections, request/response) pays on every crossing; measured in the lab, V2
      // carried as many packets as V3 up to the lab's ~150 kpps and 20 % more connections per second.
      rx: { ring: a.ring as 'adaptive' | 'v2' | 'v3', lowPps: 100_000, highPps: 250_000, fanout: workers > 1 ? { group: fanoutGroup(ifindex), key, members: workers, addrOnly: true } : undefined },
      tx: { slots: 1024 },
    });
    ports.push(port);
    txPorts.set(port.ifindex, port);
  }
  engine = new Engine({ conns, counters, worker: index, l2: new Resolver(), ports: txPorts, now: tableNow, local, decisions });
  // After a batch, keep polling every ring for a short while (--spin-us): a reply in flight is forwarded as it
  // lands instead of after another sleep and wake-up of the event loop (tens of µs in a VM). The window is fixed,
  // never extended by traffic: the worker must return to its event loop to swap tables, expire connections and
  // switch ring modes. At low load it costs at most one window per batch.
  const spinMs = a['busy-poll'] ? 0 : Number(a['spin-us']) / 1000;
  let spinning = false;
  const spin = (): void => {
    if (spinning || !(spinMs > 0)) return;
    spinning = true;
    const until = performance.now() + spinMs;
    while (performance.now() < until) for (const p of ports) p.pollOnce();
    spinning = false;
  };
  for (const port of ports) {
    port.rx({
      frame: (buf, off, len, flags) => {
        engine.frame(buf, off, len, (flags & RxFlag.CSUM_NOT_READY) !== 0);
      },
      batchEnd: () => {
        flush();
        engine.endBatch();
        spin();
      },
    });
  }
  // --busy-poll: never sleep. Poll every ring in slices of about a millisecond, and between slices give the event
  // loop one turn (setImmediate makes libuv poll without blocking) for table swaps, expiry, IPC and ring-mode timers.
  if (a['busy-poll']) {
    const slice = (): void => {
      const until = performance.now() + 1;
      while (performance.now() < until) for (const p of ports) p.pollOnce();
      setImmediate(slice);
    };
    setImmediate(slice);
  }
} else {
  // Safe mode: the kernel queues this worker's share of the traffic (HMARK on the client address, one queue
  // per worker) and keeps routing, ARP and checksums; the engine answers each packet with a verdict.
  const port = openNfqueuePort({ queue: Number(a['queue-base']) + index });
  nfq = port;
  engine = new Engine({ conns, counters, worker: index, l2: new Resolver(), ports: txPorts, now: tableNow, local, decisions });
  port.rx({
    packet: (buf, off, len, id) => {
      engine.packet(buf, off, len, id, port);
    },
    batchEnd: () => {
      engine.endBatch();
    },
  });
}

// Idle housekeeping: expire connections even when no packets arrive; every 10 s, report what the rtnetlink
// readers skipped or lost (malformed messages, overruns, failed dumps), if anything.
let ticks = 0;
const housekeeping = setInterval(() => {
  engine.endBatch();
  flush();
  if (++ticks % 40 === 0) {
    for (const line of [routeSync.problems(), nlProblems('neighbours', neigh.stats, neighReported)]) if (line) log(line);
  }
}, 250);

process.on('message', (msg: ToWorker) => {
  if (msg.type === 'table') {
    engine.setTable(msg.table);
    send({ type: 'table-applied', index, epoch: msg.table.epoch });
  } else if (msg.type === 'fanout') {
    // slots[k] = worker at member slot k; the program needs shard → slot.
    const slotOf = Array.from({ length: workers }, (_, shard) => msg.slots.indexOf(shard));
    if (slotOf.every((s) => s >= 0)) for (const p of ports) p.updateFanout(slotOf);
  } else if (msg.type === 'stop') {
    shutdown(0);
  }
});

function shutdown(code: number): void {
  clearInterval(housekeeping);
  flush();
  for (const p of ports) p.close();
  nfq?.close();
  local?.close();
  routeSync.close();
  neigh.close();
  seg.unmap();
  process.exit(code);
}
process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => shutdown(0));
process.on('disconnect', () => shutdown(0));

send({ type: 'ready', index, pid: process.pid, cpu, attached, conns: conns.size });
