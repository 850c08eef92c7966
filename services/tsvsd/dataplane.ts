// tsvsd's data plane: the forwarding workers and everything they share with the control process — shared
// memory (connection-table shards, counters), the compiled forwarding table, the kernel rules that keep the
// stack away from forwarded traffic, VIP ownership (address + gratuitous ARP), counters and rates for
// ipvsadm's listings, and the connection listing for `-L -c`.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { ConnTable } from '../../shared/conntab/conn-table.ts';
import { ConnCount, Counters, countersBytes, Ev, Stat, type WorkerEventName } from '../../shared/fwd/counters.ts';
import type { DataplaneStatus } from '../../shared/proto/admin.ts';
import { EST_INTERVAL_MS, estimate, newEstimator, readRates, type EstState } from '../../shared/fwd/estimator.ts';
import { IdAllocator, Limits, compileFwdTable, type FwdTable } from '../../shared/fwd/table.ts';
import type { ConnSnapshot, Stats } from '../../shared/model/ipvs.ts';
import { FwdCode } from '../../shared/model/ipvs.ts';
import type { CompiledTable, CounterProvider, DestCounters, ServiceCounters } from '../../shared/model/table.ts';
import { conntabPath, countersPath, shmDir } from '../../shared/proto/worker.ts';
import { mapShared, removeShared, type SharedSegment } from '../../shared/sys/shm.ts';
import { intToIpv4 } from '../../shared/util/ip.ts';
import { installDirectorRules, removeDirectorRules, type DirectorRuleSpec, type RulesReport } from './kernel-rules.ts';
import type { Logger } from './log.ts';
import type { Supervisor } from './supervisor.ts';
import { MarkTarget, type AddrMatch, type MarkRule, type PortMatch } from '../../shared/fwd/classifier.ts';
import { formatMarkRules, parseMarkRules } from '../../shared/fwd/mark-rules.ts';
import { WorkerPool, type WorkerStatus } from './workers.ts';

/** What the data plane needs to know about the host. */
export interface DataPlaneOptions {
  /** Interface where clients' packets arrive (the VIPs live here). */
  clientIf: string;
  /** Interface toward the real servers (NAT replies arrive here); defaults to clientIf. */
  serverIf?: string;
  /** CPUs to pin workers to (index → cpu); default worker i on CPU i. */
  cpus?: number[];
  /** Connection-table capacity per worker. */
  capacity?: number;
  /** Receive ring mode for the workers. */
  ring?: 'adaptive' | 'v2' | 'v3';
  /** Mark rules for fwmark services (see docs/fwmark.md). */
  marks?: MarkRule[];
  log: Logger;
}

const ROOT = new URL('../..', import.meta.url).pathname;

function netnsInode(): number {
  return statSync('/proc/self/ns/net').ino;
}

/** iptables match arguments of a mark rule (protocol, addresses, ports), for the raw-table mirror. */
export function markRuleMatch(r: MarkRule): string[] {
  const a: string[] = [];
  const addr = (flag: string, m: AddrMatch): void => {
    a.push(...(m.invert ? ['!'] : []), flag, `${intToIpv4(m.addr)}/${intToIpv4(m.mask >>> 0)}`);
  };
  if (r.protocol !== 0) a.push(...(r.protocolInvert ? ['!'] : []), '-p', String(r.protocol));
  if (r.src) addr('-s', r.src);
  if (r.dst) addr('-d', r.dst);
  const ports = (dir: 'sport' | 'dport', m: PortMatch): void => {
    const list = m.ranges.map((x) => (x.lo === x.hi ? String(x.lo) : `${x.lo}:${x.hi}`));
    if (m.multiport || list.length > 1) a.push('-m', 'multiport', ...(m.invert ? ['!'] : []), `--${dir}s`, list.join(','));
    else a.push(...(m.invert ? ['!'] : []), `--${dir}`, list[0]);
  };
  if (r.sport) ports('sport', r.sport);
  if (r.dport) ports('dport', r.dport);
  return a;
}

/** Runs the workers and keeps the host in step with the table. */
export class DataPlane implements Supervisor {
  readonly name = 'workers';
  private readonly o: DataPlaneOptions;
  private lastTable?: CompiledTable;
  private readonly dir = shmDir(netnsInode());
  private pool?: WorkerPool;
  private countersSeg?: SharedSegment;
  private counters?: Counters;
  private workers = 0;
  private readonly svcSlots = new IdAllocator(Limits.services);
  private readonly destSlots = new IdAllocator(Limits.dests);
  private fwd?: FwdTable;
  private rules?: RulesReport;
  private rulesKey = '';
  /** VIPs this process added to clientIf (it removes only those). */
  private readonly vipsAdded = new Set<string>();
  private readonly svcEst = new Map<number, EstState>();
  private readonly destEst = new Map<number, EstState>();
  private estTimer?: NodeJS.Timeout;
  /** Dest table ids in the trash, as last told by the daemon. */
  private trashIds: () => Iterable<number> = () => [];

  constructor(o: DataPlaneOptions) {
    this.o = o;
  }

  /** The mark rules in force (iptables MARK syntax). */
  getMarks(): string {
    return formatMarkRules(this.o.marks ?? []);
  }

  /** Replaces the mark rules; returns an error text (nothing changed) or null. Republishes the table. */
  setMarks(text: string): string | null {
    let rules: MarkRule[];
    try {
      rules = parseMarkRules(text, { source: 'marks' });
    } catch (e) {
      return (e as Error).message;
    }
    this.o.marks = rules;
    if (this.lastTable) this.publish(this.lastTable);
    return null;
  }

  /** Lets the compiler keep slots for trashed dests (their connections still count). */
  setTrashSource(f: () => Iterable<number>): void {
    this.trashIds = f;
  }

  async start(table: CompiledTable, workers: number): Promise<void> {
    this.workers = workers;
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    // A previous tsvsd in this namespace may have left segments behind (killed -9): start clean.
    for (const f of readdirSync(this.dir)) removeShared(`${this.dir}/${f}`);
    this.countersSeg = mapShared(countersPath(this.dir), countersBytes(workers), { create: true, resize: true });
    this.counters = new Counters(this.countersSeg.buffer, workers, true);
    const serverIf = this.o.serverIf ?? this.o.clientIf;
    const argv = [`${ROOT}services/worker/main.ts`, '--shm-dir', this.dir, '--client-if', this.o.clientIf, '--server-if', serverIf];
    if (this.o.capacity) argv.push('--capacity', String(this.o.capacity));
    if (this.o.ring) argv.push('--ring', this.o.ring);
    this.pool = new WorkerPool({
      count: workers,
      cpus: this.o.cpus,
      node: process.execPath,
      workerArgv: argv,
      log: (line) => this.o.log(`workers: ${line}`),
    });
    this.pool.start();
    this.publish(table);
    this.estTimer = setInterval(() => this.tickEstimators(), EST_INTERVAL_MS);
    this.estTimer.unref();
    this.o.log('data plane: started', { workers, clientIf: this.o.clientIf, serverIf, shm: this.dir });
  }

  publish(table: CompiledTable): void {
    this.lastTable = table;
    const fwd = compileFwdTable(table, this.trashIds(), this.svcSlots, this.destSlots, Date.now());
    if (this.o.marks?.length) fwd.marks = this.o.marks;
    this.fwd = fwd;
    this.pool?.publish(fwd);
    this.syncKernel(fwd);
  }

  async stop(): Promise<void> {
    if (this.estTimer) clearInterval(this.estTimer);
    await this.pool?.stop();
    if (this.rules) {
      const failed = removeDirectorRules(this.rules);
      if (failed.length) this.o.log('data plane: could not undo', { failed: failed.join('; ') });
      this.rules = undefined;
    }
    for (const vip of this.vipsAdded) this.ip(['addr', 'del', `${vip}/32`, 'dev', this.o.clientIf], true);
    this.vipsAdded.clear();
    this.countersSeg?.unmap();
    if (existsSync(this.dir)) rmSync(this.dir, { recursive: true, force: true });
    this.o.log('data plane: stopped');
  }

  /** Workers as tsvsd reports them. */
  workerStatus(): WorkerStatus[] {
    return this.pool?.status() ?? [];
  }

  /** The data plane as `tsvsadm status` shows it. */
  status(): DataplaneStatus {
    const c = this.counters;
    return {
      forwarding: true,
      epoch: this.fwd?.epoch ?? -1,
      workers: this.workerStatus(),
      events: c ? Object.fromEntries(Object.entries(c.events()).filter(([, v]) => v !== 0)) : {},
      orphansByWorker: c ? c.rows.map((r) => r.events[Ev.orphan_replies]) : [],
      forwardedByWorker: c ? c.rows.map((r) => r.events[Ev.forwarded_in] + r.events[Ev.forwarded_out]) : [],
    };
  }

  /** Event counters (drops by reason, orphans, ...) summed over workers. */
  events(): Record<WorkerEventName, number> | undefined {
    return this.counters?.events();
  }

  private ip(args: string[], allowFail = false): boolean {
    const r = spawnSync('ip', args, { encoding: 'utf8' });
    if (r.status !== 0 && !allowFail) this.o.log('data plane: ip failed', { args: args.join(' '), error: r.stderr.trim() });
    return r.status === 0;
  }

  /**
   * Keeps the kernel in step with the table: raw-table DROP rules for service traffic and NAT replies (so the
   * stack never handles what the workers forward), and the VIPs on the client interface with a gratuitous ARP
   * when one appears. Idempotent; only re-installs rules when they changed.
   */
  private syncKernel(fwd: FwdTable): void {
    const serverIf = this.o.serverIf ?? this.o.clientIf;
    const matches: string[][] = [];
    const spec: DirectorRuleSpec = { services: [], replies: [], matches };
    // NAT real servers by address: the source ports their replies come from (0 = any: port-0 and fwmark dests).
    const natPorts = new Map<string, Set<number>>();
    const marks = new Set<number>();
    for (const s of fwd.services) {
      if (s.dests.length === 0) continue;
      if (s.fwmark > 0) marks.add(s.fwmark);
      else spec.services!.push({ iface: this.o.clientIf, proto: s.protocol === 17 ? 'udp' : 'tcp', addr: intToIpv4(s.vaddr), port: s.vport });
      for (const d of s.dests) {
        if (d.method !== FwdCode.masq) continue;
        const set = natPorts.get(d.addrText) ?? new Set<number>();
        set.add(s.fwmark > 0 || s.vport === 0 ? 0 : d.port || s.vport);
        natPorts.set(d.addrText, set);
      }
    }
    for (const [addr, ports] of natPorts) spec.replies!.push({ iface: serverIf, srcPorts: ports.has(0) ? [] : [...ports], srcAddrs: [addr] });
    // Fwmark services: what their mark rules match, the kernel must not see.
    for (const r of fwd.marks ?? []) {
      if (r.target === MarkTarget.MARK && marks.has(r.value)) matches.push(['-i', this.o.clientIf, ...markRuleMatch(r)]);
    }
    spec.ownAddrs = this.ownAddresses(fwd);
    const key = JSON.stringify(spec);
    if (key !== this.rulesKey) {
      try {
        const prev = this.rules;
        this.rules = installDirectorRules(spec);
        if (prev) this.rules.sysctlsChanged = { ...prev.sysctlsChanged, ...this.rules.sysctlsChanged };
        this.rulesKey = key;
        this.o.log('data plane: kernel rules', { changes: this.rules.changes.join('; ') });
      } catch (e) {
        this.o.log('data plane: kernel rules failed', { error: (e as Error).message });
      }
    }
    const want = new Set(fwd.vips.map(intToIpv4));
    for (const vip of want) {
      if (this.vipsAdded.has(vip)) continue;
      if (!this.ip(['addr', 'replace', `${vip}/32`, 'dev', this.o.clientIf])) continue;
      this.vipsAdded.add(vip);
      this.gratuitousArp(vip);
    }
    for (const vip of [...this.vipsAdded]) {
      if (want.has(vip)) continue;
      this.ip(['addr', 'del', `${vip}/32`, 'dev', this.o.clientIf], true);
      this.vipsAdded.delete(vip);
    }
  }

  /** The director's own addresses on the server side (not VIPs): its own traffic must reach its stack. */
  private ownAddresses(fwd: FwdTable): string[] {
    const vips = new Set(fwd.vips.map(intToIpv4));
    try {
      const j = JSON.parse(execFileSync('ip', ['-j', '-4', 'addr', 'show'], { encoding: 'utf8' })) as { addr_info: { local: string }[] }[];
      return j.flatMap((l) => l.addr_info.map((a) => a.local)).filter((a) => !vips.has(a) && !a.startsWith('127.'));
    } catch {
      return [];
    }
  }

  /**
   * Announces a VIP this director now owns (unsolicited ARP, as the seeds' failover scripts do with arping).
   * Runs in the background: arping waits for answers, and the control loop must not.
   */
  private gratuitousArp(vip: string): void {
    const child = spawn('arping', ['-U', '-c', '2', '-w', '2', '-I', this.o.clientIf, vip], { stdio: 'ignore' });
    child.once('error', (e) => this.o.log('data plane: gratuitous ARP not sent', { vip, error: e.message }));
    this.o.log('data plane: VIP owned', { vip, iface: this.o.clientIf });
  }

  // ---- counters for ipvsadm ----

  private sumStats(kind: 'svc' | 'dest', slot: number): Stats {
    const c = this.counters!;
    const f = kind === 'svc' ? (w: number): number => c.svcStat(slot, w) : (w: number): number => c.destStat(slot, w);
    return { conns: f(Stat.conns), inpkts: f(Stat.inpkts), outpkts: f(Stat.outpkts), inbytes: f(Stat.inbytes), outbytes: f(Stat.outbytes) };
  }

  private tickEstimators(): void {
    if (!this.counters || !this.fwd) return;
    for (const s of this.fwd.services) {
      const st = this.sumStats('svc', s.id);
      const e = this.svcEst.get(s.id);
      if (e) estimate(e, st);
      else this.svcEst.set(s.id, newEstimator(st));
      for (const d of s.dests) {
        const ds = this.sumStats('dest', d.id);
        const de = this.destEst.get(d.id);
        if (de) estimate(de, ds);
        else this.destEst.set(d.id, newEstimator(ds));
      }
    }
  }

  /** Counters for the table's snapshot, by table id. */
  counterProvider(): CounterProvider {
    return {
      service: (id: number): ServiceCounters | undefined => {
        const slot = this.svcSlots.peek(String(id));
        if (slot < 0 || !this.counters) return undefined;
        const e = this.svcEst.get(slot);
        return { stats: this.sumStats('svc', slot), rate: e ? readRates(e) : { cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 } };
      },
      dest: (id: number): DestCounters | undefined => {
        const slot = this.destSlots.peek(String(id));
        if (slot < 0 || !this.counters) return undefined;
        const c = this.counters;
        const e = this.destEst.get(slot);
        return {
          activeConns: c.destConns(slot, ConnCount.active),
          inactConns: c.destConns(slot, ConnCount.inactive),
          persistConns: c.destConns(slot, ConnCount.persist),
          stats: this.sumStats('dest', slot),
          rate: e ? readRates(e) : { cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 },
        };
      },
    };
  }

  /** Connections and templates bound to a dest (by table id): keeps a deleted dest in the trash. */
  boundConns(id: number): number {
    const slot = this.destSlots.peek(String(id));
    if (slot < 0 || !this.counters) return 0;
    const c = this.counters;
    return c.destConns(slot, ConnCount.active) + c.destConns(slot, ConnCount.inactive) + c.destConns(slot, ConnCount.persist);
  }

  /** Every connection and template of every worker's shard, for `ipvsadm -L -c`. */
  conns(): ConnSnapshot[] {
    const out: ConnSnapshot[] = [];
    const now = Date.now();
    for (let w = 0; w < this.workers; w++) {
      const path = conntabPath(this.dir, w);
      if (!existsSync(path)) continue;
      let seg: SharedSegment | undefined;
      try {
        seg = mapShared(path, statSync(path).size);
        const t = ConnTable.attach(seg.buffer, { readOnly: true });
        for (const e of t.entries(now)) {
          out.push({ protocol: e.protocol, af: 4, caddr: e.caddr, cport: e.cport, vaddr: e.vaddr, vport: e.vport, daddr: e.daddr, dport: e.dport, state: e.state, expires: e.expires, template: e.template, pe: '', peData: '' });
        }
      } catch (err) {
        this.o.log('conns: cannot read shard', { worker: w, error: (err as Error).message });
      } finally {
        seg?.unmap();
      }
    }
    return out;
  }
}
