// A forwarding worker, composed: its shard of shared memory, routes and neighbours from rtnetlink, the packet
// ports of its backend, the engine, the run loop, and the control messages tsvsd sends (tables between batches).
import { Engine } from './engine.ts';
import { LOCAL_TUN, fanoutGroup, syncPath, type FromWorker, type ToWorker } from '../../shared/proto/worker.ts';
import { workerSyncBytes, workerSyncRings } from '../../shared/sync/ring.ts';
import { allocNative, munmap, view } from '../../shared/sys/libc.ts';
import { NeighTable } from '../../shared/sys/neigh.ts';
import { nlProblems, nlStats } from '../../shared/sys/rtnl-codec.ts';
import { openTun, type TunDevice } from '../../shared/sys/tun.ts';
import type { WorkerOptions } from './args.ts';
import { openAfPacketPort, RxFlag, type AfPacketPort } from './io/af-packet.ts';
import { openNfqueuePort, type NfqueuePort } from './io/nfqueue.ts';
import { currentCpu, pinToCpu } from './io/pin.ts';
import type { Port, TxPort } from './io/port.ts';
import { RouteSync } from './io/route-sync.ts';
import { NeighQueue, type NeighQueueOptions } from './neigh-queue.ts';
import { Resolver } from './resolver.ts';
import { RouteTable } from './route.ts';
import { busyPoll, spinAfterBatch } from './run-loop.ts';
import { openShard } from './shard.ts';
import { mapShared } from '../../shared/sys/shm.ts';
import { Ev } from '../../shared/fwd/counters.ts';
import { DecisionWriter, decisionRingBytes, decisionRingPath } from '../../shared/telemetry/decision-ring.ts';
import { hostname } from 'node:os';

/** Hold queues: 32 neighbours resolving at once, 16 packets each (1 MiB of native memory per worker). */
const HOLD: NeighQueueOptions = { neighbours: 32, perNeighbour: 16, slotBytes: 2048, holdMs: 3000 };

/** A running worker: `message` takes tsvsd's control messages; `stop` releases everything. */
export interface RunningWorker {
  message(msg: ToWorker): void;
  stop(): void;
}

/**
 * Starts worker `o.index`: pins it, maps its shard, opens its ports, and forwards until stopped. `send` reports to
 * tsvsd (ready, table-applied, logs). Throws SysError when a port or segment cannot be opened.
 */
export function startWorker(o: WorkerOptions, send: (m: FromWorker) => void): RunningWorker {
  const log = (line: string): void => send({ type: 'log', index: o.index, line });
  const cpu = o.cpu !== null ? pinToCpu(o.cpu) : currentCpu();
  const shard = openShard(o.shmDir, o.index, o.workers, o.capacity, Date.now());
  if (shard.recovered !== null) log(`conntab shard ${o.index}: cannot attach (${shard.recovered}); starting empty`);
  const { conns, counters } = shard;
  // The engine runs on table time (ms since the shard's epoch): a small integer, never boxed (see ConnTableRuntime).
  const epochMs = conns.epochMs;
  const tableNow = (): number => Date.now() - epochMs;

  // The decision ring (tracing): one record per scheduling decision, written on the packet path, read by tsvsd's
  // telemetry exporter. A restarted worker attaches to its ring and continues the sequence.
  const decisions =
    o.decisions > 0
      ? new DecisionWriter(mapShared(decisionRingPath(o.shmDir, o.index), decisionRingBytes(o.decisions), { create: true, resize: true }).buffer, {
          init: false,
          worker: o.index,
          director: o.director ?? hostname(),
          epochMs,
        })
      : null;

  // Connection sync (a cluster): the rings tsvsd created for this worker; the engine writes its entries' changes to the
  // outbound ring and installs peers' records from the inbound ring.
  const syncSeg = o.syncRing > 0 ? mapShared(syncPath(o.shmDir, o.index), workerSyncBytes(o.syncRing)) : null;
  const sync = syncSeg !== null ? { ...workerSyncRings(syncSeg.buffer, o.syncRing, false), shard: o.index } : null;

  // L3 and L2 from rtnetlink, each kept current by a subscription.
  const routes = new RouteTable();
  const routeSync = RouteSync.open(routes);
  const neigh = NeighTable.open();
  const neighReported = nlStats();

  // A real server on the director itself gets its packets through a TUN queue of its own (multi-queue: one per
  // worker), which hands them to the local stack; also NAT traffic that could not be held, and (safe mode) ICMP
  // errors the director originates.
  let local: TunDevice | null = null;
  try {
    local = openTun({ name: LOCAL_TUN, multiQueue: true });
  } catch (e) {
    log(`local node delivery unavailable: ${(e as Error).message}`);
  }

  const afPorts: AfPacketPort[] = [];
  const txPorts = new Map<number, TxPort & { flush(): number }>();
  const ports: Port[] = [];
  let nfq: NfqueuePort | null = null;
  let holdMem = 0n;
  const holdBytes = NeighQueue.bytes(HOLD);
  let queue: NeighQueue | null = null;
  if (o.backend === 'afpacket') {
    holdMem = allocNative(holdBytes, 'neighbour hold queues');
    queue = new NeighQueue(new Uint8Array(view(holdMem, holdBytes)), shard.row.events, HOLD);
  }
  const resolver = new Resolver({ routes, neigh, ports: txPorts, queue, now: () => Date.now(), log });
  neigh.watch((ifindex, ip, mac) => resolver.onNeighbour(ifindex, ip, mac));
  const engine = new Engine({ conns, counters, worker: o.index, l2: resolver, ports: txPorts, now: tableNow, local, decisions, guard: o.guard, sync });

  let stopPolling = (): void => {};
  if (o.backend === 'afpacket') {
    // One port per interface; receive fanout keyed on the client (source on the client side, destination on the
    // server side, where NAT replies arrive).
    const ifaces = o.clientIf === o.serverIf ? [o.clientIf] : [o.clientIf, o.serverIf];
    for (const ifname of ifaces) {
      const ifindex = neigh.ifindexOf(ifname);
      if (ifindex < 0) throw new Error(`worker ${o.index}: no interface ${ifname}`);
      const key = ifname === o.clientIf ? 'src' : 'dst';
      const port = openAfPacketPort({
        ifname,
        // Adaptive rings stay on V2 (a wake-up per batch) up to 250 kpps: V3 blocks retire on a 1 ms timer, which a
        // latency-bound load (new connections, request/response) pays on every crossing; measured in the lab, V2
        // carried as many packets as V3 up to the lab's ~150 kpps and 20 % more connections per second.
        rx: { ring: o.ring, lowPps: 100_000, highPps: 250_000, fanout: o.workers > 1 ? { group: fanoutGroup(ifindex), key, members: o.workers, addrOnly: true } : undefined },
        tx: { slots: 1024 },
      });
      afPorts.push(port);
      ports.push(port);
      txPorts.set(port.ifindex, port);
    }
    const spin = spinAfterBatch(ports, o.busyPoll ? 0 : o.spinUs);
    const flush = (): void => {
      for (let i = 0; i < afPorts.length; i++) afPorts[i].txFlush();
    };
    for (const port of afPorts) {
      port.rx({
        packet: (buf, off, len, flags) => {
          engine.frame(buf, off, len, (flags & RxFlag.CSUM_NOT_READY) !== 0);
        },
        batchEnd: () => {
          flush();
          engine.endBatch();
          spin();
        },
      });
    }
    if (o.busyPoll) stopPolling = busyPoll(ports);
  } else {
    // Safe mode: the kernel queues this worker's share of the traffic (HMARK on the client address, one queue per
    // worker) and keeps routing, ARP and checksums; the engine answers each packet with a verdict.
    const port = openNfqueuePort({ queue: o.queueBase + o.index });
    nfq = port;
    ports.push(port);
    port.rx({
      packet: (buf, off, len, _flags, id) => {
        engine.packet(buf, off, len, id, port);
      },
      batchEnd: () => {
        engine.endBatch();
      },
    });
  }

  // Idle housekeeping: expire connections even when no packets arrive; release or time out held packets; every 10 s,
  // report what the rtnetlink readers skipped or lost (malformed messages, overruns, failed dumps), if anything.
  let ticks = 0;
  let dumps = routeSync.counters.dumps;
  const housekeeping = setInterval(() => {
    engine.endBatch();
    for (const p of ports) p.flush();
    if (routeSync.counters.dumps !== dumps) {
      dumps = routeSync.counters.dumps;
      resolver.routesChanged();
    }
    resolver.tick();
    // Every second: the frames the kernel dropped on a full receive ring (reading PACKET_STATISTICS resets them).
    if (++ticks % 4 === 0) for (const p of afPorts) shard.row.events[Ev.drop_rx_ring] += p.kernelStats().drops;
    if (ticks % 40 === 0) {
      for (const line of [routeSync.problems(), nlProblems('neighbours', neigh.stats, neighReported)]) if (line) log(line);
    }
  }, 250);

  // Peers' records are installed every 10 ms even when no packet arrives (a backup is idle until it takes over);
  // a packet that misses the table installs what is waiting at once (engine).
  const syncTimer = sync !== null ? setInterval(() => engine.syncPoll(), 10) : null;

  let stopped = false;
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    clearInterval(housekeeping);
    if (syncTimer !== null) clearInterval(syncTimer);
    stopPolling();
    for (const p of ports) p.flush();
    for (const p of ports) p.close();
    local?.close();
    routeSync.close();
    neigh.close();
    shard.close();
    syncSeg?.unmap();
    if (holdMem !== 0n) munmap(holdMem, holdBytes);
  };

  send({ type: 'ready', index: o.index, pid: process.pid, cpu, attached: shard.attached, conns: conns.size });
  return {
    message(msg: ToWorker): void {
      if (msg.type === 'table') {
        engine.setTable(msg.table);
        if (o.backend === 'afpacket') resolver.setTable(msg.table);
        send({ type: 'table-applied', index: o.index, epoch: msg.table.epoch });
      } else if (msg.type === 'fanout') {
        // slots[k] = worker at member slot k; the program needs shard → slot.
        const slotOf = Array.from({ length: o.workers }, (_, s) => msg.slots.indexOf(s));
        if (slotOf.every((s) => s >= 0)) for (const p of afPorts) p.updateFanout(slotOf);
      } else if (msg.type === 'stop') {
        stop();
      }
    },
    stop,
  };
}
