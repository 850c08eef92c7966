// Engine golden cases stored as data (test/fixtures/engine/*.json): the format, a loader and a replayer that
// drives the real forwarding engine through recording ports; test/unit/engine-golden.test.ts checks every case,
// `npm run bench -- engine` replays them. Not for the per-packet path (it allocates freely).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConnTable } from '../../shared/conntab/conn-table.ts';
import { ConnCount, Counters, countersBytes, Ev, Stat, WorkerEvent } from '../../shared/fwd/counters.ts';
import type { FwdService, FwdTable } from '../../shared/fwd/table.ts';
import { FwdCode } from '../../shared/model/ipvs.ts';
import { ipv4FromTextOrThrow, parseMac, prefixToMask } from '../../shared/net/addr.ts';
import { Engine, Verdict, type Hop, type L2Resolver, type TxPort } from '../../services/worker/engine.ts';

/** Where the fixtures live, relative to the repository root. */
export const ENGINE_CASES_DIR = 'test/fixtures/engine';

/** A director port: its name in the case, interface index, MAC and the director's address there. */
export interface PortSpec {
  ifindex: number;
  mac: string;
  ip: string;
}

/** A neighbour: every address in `net` ("a.b.c.d/len") is reached through `port` at `mac`. */
export interface NeighbourSpec {
  net: string;
  port: string;
  mac: string;
}

export interface DestSpec {
  id: number;
  addr: string;
  port: number;
  method: keyof typeof FwdCode;
  weight?: number;
  /** -x / -y; default 0. */
  uThreshold?: number;
  lThreshold?: number;
}

export interface ServiceSpec {
  id: number;
  /** 6 tcp, 17 udp; 0 for fwmark services. */
  protocol: number;
  vip: string;
  vport: number;
  fwmark?: number;
  scheduler: string;
  /** SvcFlag bits; default 0. */
  flags?: number;
  persistMs?: number;
  netmask?: string;
  /** Kernel list order (newest first). */
  dests: DestSpec[];
}

export interface TableSpec {
  epoch: number;
  services: ServiceSpec[];
  /** Seconds; default tcp 900, tcpfin 120, udp 300. */
  timeouts?: { tcp: number; tcpfin: number; udp: number };
}

/** A frame the engine sent: the port it left by, its bytes in hex, and the virtio-net header fields when set. */
export interface OutFrame {
  port: string;
  frame: string;
  vnet?: { flags: number; csumStart: number; csumOffset: number };
}

/** Nonzero changes of one dest's shared counters over a step (conn counts and traffic stats). */
export type DestDelta = Partial<Record<'active' | 'inactive' | 'persist' | 'conns' | 'inpkts' | 'outpkts' | 'inbytes' | 'outbytes', number>>;

/** What a step produced: the verdict, the frames sent, and the nonzero counter deltas. */
export interface StepOutcome {
  verdict: keyof typeof Verdict;
  out: OutFrame[];
  /** Worker event counters that changed (the `batches` bookkeeping counter is left out). */
  events: Record<string, number>;
  /** Dests whose counters changed, by dest id. */
  dests: Record<string, DestDelta>;
}

/** One frame in, and what must come out. */
export interface StepSpec extends StepOutcome {
  note: string;
  /** Clock advance before the frame, ms (default 0); what expires meanwhile counts in this step. */
  advanceMs?: number;
  /** A table to swap in before the frame (as tsvsd does between batches). */
  table?: TableSpec;
  /** The frame received, hex, starting at the Ethernet header. */
  in: string;
  /** The frame arrives as CHECKSUM_PARTIAL (a local sender's offload). */
  partial?: boolean;
}

/** A golden case: a world (ports, neighbours), a forwarding table, and frames in order. */
export interface EngineCase {
  name: string;
  description: string;
  ports: Record<string, PortSpec>;
  neighbours: NeighbourSpec[];
  table: TableSpec;
  steps: StepSpec[];
}

/** Reads every case of `dir` (sorted by file name). Throws naming the file when one is not valid JSON. */
export function loadEngineCases(dir: string): EngineCase[] {
  return readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => {
    try {
      return JSON.parse(readFileSync(join(dir, f), 'utf8')) as EngineCase;
    } catch (e) {
      throw new Error(`engine case ${f}: ${(e as Error).message}`);
    }
  });
}

/** A case's table as the engine takes it. */
export function fwdTableOf(t: TableSpec): FwdTable {
  const services: FwdService[] = t.services.map((s) => ({
    id: s.id, protocol: s.protocol, vaddr: s.fwmark ? 0 : ipv4FromTextOrThrow(s.vip, 'vip'), vport: s.vport, fwmark: s.fwmark ?? 0,
    scheduler: s.scheduler, flags: s.flags ?? 0, persistMs: s.persistMs ?? 0, netmask: s.netmask ? ipv4FromTextOrThrow(s.netmask, 'netmask') : 0xffffffff,
    dests: s.dests.map((d) => ({
      id: d.id, addr: ipv4FromTextOrThrow(d.addr, 'dest'), addrText: d.addr, port: d.port, method: FwdCode[d.method], weight: d.weight ?? 1,
      lastWeight: d.weight ?? 1, uThreshold: d.uThreshold ?? 0, lThreshold: d.lThreshold ?? 0, tunType: 'ipip', tunPort: 0, tunCsum: '',
    })),
  }));
  const vips = [...new Set(services.filter((s) => s.vaddr !== 0).map((s) => s.vaddr))];
  return { epoch: t.epoch, services, timeouts: t.timeouts ?? { tcp: 900, tcpfin: 120, udp: 300 }, vips };
}

class RecordingPort implements TxPort {
  readonly txBuf = new Uint8Array(8 * 2048);
  readonly txFrameMax = 2048 - 18;
  readonly ifindex: number;
  readonly name: string;
  readonly sent: OutFrame[] = [];
  constructor(name: string, ifindex: number) {
    this.name = name;
    this.ifindex = ifindex;
  }
  txReserve(): number {
    return 0;
  }
  txCommit(len: number, vnetFlags: number, csumStart: number, csumOffset: number): void {
    const frame = Buffer.from(this.txBuf.subarray(0, len)).toString('hex');
    this.sent.push(vnetFlags === 0 && csumStart === 0 && csumOffset === 0 ? { port: this.name, frame } : { port: this.name, frame, vnet: { flags: vnetFlags, csumStart, csumOffset } });
  }
}

class CaseL2 implements L2Resolver {
  readonly nets: { base: number; mask: number; ifindex: number; srcIp: number; srcMac: Uint8Array; dstMac: Uint8Array }[];
  constructor(c: EngineCase) {
    this.nets = c.neighbours.map((n) => {
      const p = c.ports[n.port];
      if (!p) throw new Error(`engine case ${c.name}: neighbour ${n.net} names unknown port ${n.port}`);
      const [addr, len] = n.net.split('/');
      const mask = prefixToMask(Number(len ?? 32));
      return { base: (ipv4FromTextOrThrow(addr, 'neighbour') & mask) >>> 0, mask, ifindex: p.ifindex, srcIp: ipv4FromTextOrThrow(p.ip, 'port ip'), srcMac: mustMac(p.mac), dstMac: mustMac(n.mac) };
    });
  }
  private find(daddr: number): CaseL2['nets'][number] | undefined {
    return this.nets.find((n) => ((daddr & n.mask) >>> 0) === n.base);
  }
  resolve(daddr: number, hop: Hop): boolean {
    const n = this.find(daddr);
    if (!n) return false;
    hop.ifindex = n.ifindex;
    hop.srcIp = n.srcIp;
    hop.srcMac.set(n.srcMac);
    hop.dstMac.set(n.dstMac);
    return true;
  }
  /** No hold queue in the golden cases: an unresolved next hop takes the engine's fallback (NAT via the kernel, else a counted drop). */
  hold(): TxPort | null {
    return null;
  }
  isLocal(): boolean {
    return false;
  }
  sourceFor(daddr: number): number {
    return this.find(daddr)?.srcIp ?? 0;
  }
}

function mustMac(s: string): Uint8Array {
  const m = parseMac(s);
  if (!m) throw new Error(`engine case: bad MAC ${s}`);
  return m;
}

const VERDICT_NAME = Object.fromEntries(Object.entries(Verdict).map(([k, v]) => [v, k])) as Record<number, keyof typeof Verdict>;
const DEST_FIELDS = [
  ['active', 'conns', ConnCount.active], ['inactive', 'conns', ConnCount.inactive], ['persist', 'conns', ConnCount.persist],
  ['conns', 'stats', Stat.conns], ['inpkts', 'stats', Stat.inpkts], ['outpkts', 'stats', Stat.outpkts], ['inbytes', 'stats', Stat.inbytes], ['outbytes', 'stats', Stat.outbytes],
] as const;

/** A fresh engine for `c`: its table set, the clock at 1,000,000 ms, rng fixed at 0.5 (twos), nothing sent yet. */
export class CaseRun {
  readonly c: EngineCase;
  readonly engine: Engine;
  readonly counters: Counters;
  readonly conns: ConnTable;
  private readonly ports: RecordingPort[];
  private readonly frameBuf = new Uint8Array(4096);
  private now = 1_000_000;
  private readonly maxDest: number;

  constructor(c: EngineCase) {
    this.c = c;
    this.counters = new Counters(new ArrayBuffer(countersBytes(1)), 1, true);
    this.conns = ConnTable.create(256, { counters: this.counters.rows[0].conns, epochMs: 0 });
    this.ports = Object.entries(c.ports).map(([name, p]) => new RecordingPort(name, p.ifindex));
    this.engine = new Engine({ conns: this.conns, counters: this.counters, worker: 0, l2: new CaseL2(c), ports: new Map(this.ports.map((p) => [p.ifindex, p])), now: () => this.now, rng: () => 0.5 });
    this.engine.setTable(fwdTableOf(c.table));
    let max = 0;
    for (const t of [c.table, ...c.steps.map((s) => s.table)]) for (const s of t?.services ?? []) for (const d of s.dests) max = Math.max(max, d.id + 1);
    this.maxDest = max;
  }

  /** Runs one step and reports what came out. */
  step(s: StepSpec): StepOutcome {
    const ev0 = Float64Array.from(this.counters.rows[0].events);
    const d0 = this.destValues();
    if (s.table) this.engine.setTable(fwdTableOf(s.table));
    // The clock moves, then a batch boundary reads it and expires what is due: both count in this step.
    this.now += s.advanceMs ?? 0;
    this.engine.endBatch();
    const bytes = Buffer.from(s.in, 'hex');
    const off = 2;
    this.frameBuf.set(bytes, off);
    const v = this.engine.frame(this.frameBuf, off, bytes.length, s.partial === true);
    const events: Record<string, number> = {};
    const ev1 = this.counters.rows[0].events;
    for (let i = 0; i < ev1.length; i++) {
      const name = (WorkerEvent as readonly string[])[i] ?? `event_${i}`;
      if (ev1[i] !== ev0[i] && i !== Ev.batches) events[name] = ev1[i] - ev0[i];
    }
    const dests: Record<string, DestDelta> = {};
    const d1 = this.destValues();
    for (let id = 0; id < this.maxDest; id++) {
      const delta: DestDelta = {};
      DEST_FIELDS.forEach(([name], k) => {
        const x = d1[id * DEST_FIELDS.length + k] - d0[id * DEST_FIELDS.length + k];
        if (x !== 0) delta[name] = x;
      });
      if (Object.keys(delta).length > 0) dests[String(id)] = delta;
    }
    const out = this.ports.flatMap((p) => p.sent.splice(0));
    return { verdict: VERDICT_NAME[v] ?? (String(v) as keyof typeof Verdict), out, events, dests };
  }

  private destValues(): number[] {
    const out: number[] = [];
    for (let id = 0; id < this.maxDest; id++) {
      for (const [, kind, k] of DEST_FIELDS) out.push(kind === 'conns' ? this.counters.destConns(id, k) : this.counters.destStat(id, k));
    }
    return out;
  }
}

/** The expected outcome stored in a step (what {@link CaseRun.step} must return). */
export function expectedOutcome(s: StepSpec): StepOutcome {
  return { verdict: s.verdict, out: s.out, events: s.events, dests: s.dests };
}

/** Replays a whole case on a fresh engine; one outcome per step. */
export function replayCase(c: EngineCase): StepOutcome[] {
  const run = new CaseRun(c);
  return c.steps.map((s) => run.step(s));
}

