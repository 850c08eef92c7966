// The forwarding table: the immutable, per-epoch view of the IPVS table that tsvsd compiles and hands to the
// workers. Plain JSON-serialisable data (it crosses the process boundary), with stable numeric ids for services
// and real servers so that shared counters and connection entries can refer to them across epochs and restarts.
import type { DestConfig, FwdMethod, ServiceConfig, Timeouts, TunCsum, TunType } from '../model/ipvs.ts';
import { FwdCode, Protocol, SvcFlag } from '../model/ipvs.ts';
import type { CompiledTable } from '../model/table.ts';
import { MarkTarget, type MarkRule } from './classifier.ts';
import { ipv4FromText } from '../net/addr.ts';

/** Upper bounds of the data plane's shared arrays. */
export const Limits = { services: 1024, dests: 8192, workers: 16 } as const;

export interface FwdDest {
  /** Global dest id, stable while the dest exists (and for its trash period): indexes shared counters. */
  id: number;
  /** IPv4 address, host order. */
  addr: number;
  addrText: string;
  port: number;
  /** FwdCode value (masq 0, local 1, tunnel 2, route 3). */
  method: number;
  weight: number;
  lastWeight: number;
  uThreshold: number;
  lThreshold: number;
  tunType: TunType;
  tunPort: number;
  tunCsum: TunCsum;
  /** NFQUEUE mode, DR: the packet mark whose policy route leads to this real server (0 = none). */
  drMark?: number;
}

export interface FwdService {
  /** Global service id, stable while the service exists: indexes shared counters and connection entries. */
  id: number;
  /** IP protocol number (6, 17, 132); for fwmark services, 0. */
  protocol: number;
  /** VIP host order (0 for fwmark services). */
  vaddr: number;
  vport: number;
  fwmark: number;
  scheduler: string;
  /** SvcFlag bits. */
  flags: number;
  /** Persistence timeout, ms. */
  persistMs: number;
  /** Persistence netmask, host order (IPv4). */
  netmask: number;
  /** Dests in kernel list order (newest first). */
  dests: FwdDest[];
}

export interface FwdTable {
  epoch: number;
  services: FwdService[];
  timeouts: Timeouts;
  /** Every IPv4 VIP a service uses (host order), for kernel rules and ARP ownership. */
  vips: number[];
  /** Mark rules that classify new connections for fwmark services (the AF_PACKET path sees no netfilter marks). */
  marks?: MarkRule[];
}

/**
 * Assigns stable ids: the same service or dest keeps its id across compiles; freed ids are reused only after
 * `holdMs` (the kernel's 120 s dest trash period), so a connection entry never meets another dest under its id.
 */
export class IdAllocator {
  private readonly ids = new Map<string, number>();
  private readonly freedAt = new Map<number, number>();
  private next = 0;
  private readonly limit: number;
  private readonly holdMs: number;

  constructor(limit: number, holdMs = 120_000) {
    this.limit = limit;
    this.holdMs = holdMs;
  }

  /** The id already given to `key`, or -1. */
  peek(key: string): number {
    return this.ids.get(key) ?? -1;
  }

  /** The id for `key`, allocating one if needed; -1 when the id space is exhausted. */
  get(key: string, now: number): number {
    const have = this.ids.get(key);
    if (have !== undefined) return have;
    let id = -1;
    if (this.next < this.limit) id = this.next++;
    else {
      for (const [fid, at] of this.freedAt) {
        if (now - at >= this.holdMs) {
          id = fid;
          this.freedAt.delete(fid);
          break;
        }
      }
    }
    if (id >= 0) this.ids.set(key, id);
    return id;
  }

  /** Releases every key not in `live`. */
  retain(live: Set<string>, now: number): void {
    for (const [key, id] of this.ids) {
      if (!live.has(key)) {
        this.ids.delete(key);
        this.freedAt.set(id, now);
      }
    }
  }
}

function netmaskOf(s: Readonly<ServiceConfig>): number {
  return s.af === 4 ? ipv4FromText(s.netmask) ?? 0xffffffff : 0xffffffff;
}

const METHOD: Record<FwdMethod, number> = { masq: FwdCode.masq, local: FwdCode.local, tunnel: FwdCode.tunnel, route: FwdCode.route };

/**
 * NFQUEUE DR routing marks: every DR real server (by address) gets mark `base + k`, kept while it stays in the
 * table; a freed mark is given to the next new address (lowest free first). The k-th policy route of the NFQUEUE
 * rules leads to the address holding mark `base + k` (see {@link drRoutes}).
 */
export class DrMarkAllocator {
  readonly base: number;
  private readonly marks = new Map<string, number>();

  constructor(base = 0x100) {
    this.base = base;
  }

  /** Sets `drMark` on every DR dest of `services` (in place: called by the compiler before it returns). */
  assign(services: readonly FwdService[]): void {
    const seen = new Set<string>();
    for (const s of services) {
      for (const d of s.dests) {
        if (d.method !== FwdCode.route) continue;
        seen.add(d.addrText);
        let mark = this.marks.get(d.addrText);
        if (mark === undefined) {
          const used = new Set(this.marks.values());
          for (mark = this.base; used.has(mark); mark++);
          this.marks.set(d.addrText, mark);
        }
        d.drMark = mark;
      }
    }
    for (const k of [...this.marks.keys()]) if (!seen.has(k)) this.marks.delete(k);
  }

  /** Address → mark, by mark. */
  entries(): [string, number][] {
    return [...this.marks].sort((x, y) => x[1] - y[1]);
  }
}

/** What the compiler needs besides the table. Every field is optional: a table alone compiles. */
export interface CompileOptions {
  /** Mark rules (fwmark services): carried in the table, and their single-host destinations become VIPs. */
  marks?: readonly MarkRule[];
  /** NFQUEUE backend: assigns each DR dest its routing mark. */
  drMarks?: DrMarkAllocator;
  /**
   * The health view: false for a real server that is down. A down real server stays in the table (its
   * connections keep their dest) but gets weight 0, so it is not scheduled (keepalived's inhibit_on_failure).
   * Default: every real server is up.
   */
  destUp?: (serviceKey: string, dest: Readonly<DestConfig>) => boolean;
}

/**
 * Compiles one epoch of the IPVS table into the workers' forwarding table, whole: nothing changes it after this
 * returns. Table ids (unbounded, never reused) become slots (bounded: they index shared arrays); a dest in the
 * trash keeps its slot, so its connections' counters and a revival stay consistent. IPv6 services are left out
 * (the data plane is IPv4 for now); they stay in the control plane and tsvsadm shows them. `vips` holds every
 * service address plus the fwmark services' VIPs (see {@link fwmarkVips}).
 */
export function compileFwdTable(ct: CompiledTable, trashDestIds: Iterable<number>, svcSlots: IdAllocator, destSlots: IdAllocator, now: number, opts: CompileOptions = {}): FwdTable {
  const services: FwdService[] = [];
  const vips = new Set<number>();
  const liveSvc = new Set<string>();
  const liveDest = new Set<string>();
  for (const id of trashDestIds) liveDest.add(String(id));
  for (const cs of ct.services) {
    const s = cs.config;
    liveSvc.add(String(cs.id));
    if (s.af !== 4) continue;
    const slot = svcSlots.get(String(cs.id), now);
    if (slot < 0) continue;
    const vaddr = s.fwmark > 0 ? 0 : ipv4FromText(s.addr) ?? 0;
    if (vaddr) vips.add(vaddr);
    const dests: FwdDest[] = [];
    for (const cd of cs.dests) {
      const d = cd.config;
      liveDest.add(String(cd.id));
      if (d.af !== 4) continue;
      const did = destSlots.get(String(cd.id), now);
      if (did < 0) continue;
      const up = opts.destUp ? opts.destUp(cs.key, d) : true;
      dests.push({
        id: did,
        addr: ipv4FromText(d.addr) ?? 0,
        addrText: d.addr,
        port: d.port,
        method: METHOD[d.method],
        weight: up ? d.weight : 0,
        lastWeight: cd.lastWeight,
        uThreshold: d.uThreshold,
        lThreshold: d.lThreshold,
        tunType: d.tunType,
        tunPort: d.tunPort,
        tunCsum: d.tunCsum,
      });
    }
    services.push({
      id: slot,
      protocol: s.fwmark > 0 ? 0 : Protocol[s.protocol],
      vaddr,
      vport: s.port,
      fwmark: s.fwmark,
      scheduler: s.scheduler,
      flags: s.flags,
      persistMs: s.flags & SvcFlag.PERSISTENT ? s.timeout * 1000 : 0,
      netmask: netmaskOf(s),
      dests,
    });
  }
  svcSlots.retain(liveSvc, now);
  destSlots.retain(liveDest, now);
  opts.drMarks?.assign(services);
  const fwd: FwdTable = { epoch: ct.epoch, services, timeouts: { ...ct.timeouts }, vips: [] };
  if (opts.marks?.length) {
    fwd.marks = [...opts.marks];
    for (const v of fwmarkVips(services, opts.marks)) vips.add(v);
  }
  fwd.vips = [...vips].sort((a, b) => a - b);
  return fwd;
}

/**
 * The VIPs of fwmark services: a fwmark service has no address of its own, so the destination addresses of the
 * mark rules that set a mark some fwmark service uses (single hosts, not negated: `-d VIP` or `-d VIP/32`) are its
 * VIPs, the addresses clients send to and the director must own. Sorted, without duplicates.
 */
export function fwmarkVips(services: readonly FwdService[], rules: readonly MarkRule[]): number[] {
  const marks = new Set<number>();
  for (const s of services) if (s.fwmark > 0) marks.add(s.fwmark);
  const out = new Set<number>();
  for (const r of rules) {
    if (r.target !== MarkTarget.MARK || !marks.has(r.value) || r.dst === null || r.dst.invert || r.dst.mask >>> 0 !== 0xffffffff) continue;
    out.add(r.dst.addr >>> 0);
  }
  return [...out].sort((a, b) => a - b);
}
