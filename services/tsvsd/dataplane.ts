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
import { IdAllocator, Limits, compileFwdTable, fwmarkVips, type FwdTable } from '../../shared/fwd/table.ts';
import type { ConnSnapshot, Stats } from '../../shared/model/ipvs.ts';
import { FwdCode } from '../../shared/model/ipvs.ts';
import type { CompiledTable, CounterProvider, DestCounters, ServiceCounters } from '../../shared/model/table.ts';
import { LOCAL_TUN, conntabPath, countersPath, shmDir } from '../../shared/proto/worker.ts';
import { mapShared, removeShared, type SharedSegment } from '../../shared/sys/shm.ts';
import { ipv4ToText as intToIpv4 } from '../../shared/net/addr.ts';
import { installDirectorRules, removeDirectorRules, type DirectorRuleSpec, type RulesReport } from './kernel-rules.ts';
import { installNfqueueRules, removeNfqueueRules, type NfqDrDest, type NfqReply, type NfqRuleSpec, type NfqRulesReport, type NfqService } from './nfqueue-rules.ts';
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
  /**
   * Packet I/O: 'afpacket' (default; the workers own L2) or 'nfqueue' (safe mode: the kernel queues service
   * traffic to the workers and keeps routing, ARP and checksums; DR by routing marks).
   */
  backend?: 'afpacket' | 'nfqueue';
  /** First NFQUEUE queue number (worker i uses queueBase + i). Default 0. */
  queueBase?: number;
  /** AF_PACKET: µs a worker keeps polling after a batch (worker default 100). */
  spinUs?: number;
  /** AF_PACKET: workers poll their rings without ever sleeping. */
  busyPoll?: boolean;
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
  /** The director's IPv4 addresses (VIPs included) and when they were read. */
  private ownCache: { at: number; addrs: string[] } | null = null;
  private rules?: RulesReport;
  private nfqRules?: NfqRulesReport;
  /** NFQUEUE DR: real server address → routing mark (0x100 + k), in order of first appearance. */
  private readonly drMarks = new Map<string, number>();
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
    if (this.o.spinUs !== undefined) argv.push('--spin-us', String(this.o.spinUs));
    if (this.o.busyPoll) argv.push('--busy-poll');
    if (this.o.backend === 'nfqueue') argv.push('--backend', 'nfqueue', '--queue-base', String(this.o.queueBase ?? 0));
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
    if (this.o.marks?.length) {
      fwd.marks = this.o.marks;
      // A fwmark service's VIPs are the addresses its mark rules match: the director owns them like any other VIP.
      const more = fwmarkVips(fwd.services, fwd.marks).filter((v) => !fwd.vips.includes(v));
      if (more.length) fwd.vips = [...fwd.vips, ...more].sort((a, b) => a - b);
    }
    if (this.o.backend === 'nfqueue') this.assignDrMarks(fwd);
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
    if (this.nfqRules) {
      const failed = removeNfqueueRules(this.nfqRules);
      if (failed.length) this.o.log('data plane: could not undo', { failed: failed.join('; ') });
      this.nfqRules = undefined;
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
  /** NFQUEUE DR: every DR real server gets a routing mark, kept stable while it stays in the table. */
  private assignDrMarks(fwd: FwdTable): void {
    const seen = new Set<string>();
    for (const s of fwd.services) {
      for (const d of s.dests) {
        if (d.method !== FwdCode.route) continue;
        seen.add(d.addrText);
        let mark = this.drMarks.get(d.addrText);
        if (mark === undefined) {
          const used = new Set(this.drMarks.values());
          for (mark = 0x100; used.has(mark); mark++);
          this.drMarks.set(d.addrText, mark);
        }
        d.drMark = mark;
      }
    }
    for (const k of [...this.drMarks.keys()]) if (!seen.has(k)) this.drMarks.delete(k);
  }

  /** Safe mode: queue service traffic and NAT replies to the workers, DR by policy routes per mark. */
  private syncNfqueue(fwd: FwdTable, serverIf: string): void {
    const services: NfqService[] = [];
    const replies: NfqReply[] = [];
    const marks = new Set<number>();
    for (const s of fwd.services) {
      if (s.dests.length === 0) continue;
      if (s.fwmark > 0) {
        // A fwmark service: requests are queued by the mark rules' matches below; replies from any port.
        marks.add(s.fwmark);
        for (const d of s.dests) if (d.method === FwdCode.masq) for (const proto of ['tcp', 'udp'] as const) replies.push({ proto, rip: d.addrText, port: 0, iface: serverIf });
        continue;
      }
      const proto = s.protocol === 17 ? 'udp' : 'tcp';
      services.push({ proto, vip: intToIpv4(s.vaddr), port: s.vport, iface: this.o.clientIf });
      for (const d of s.dests) if (d.method === FwdCode.masq) replies.push({ proto, rip: d.addrText, port: s.vport === 0 ? 0 : d.port || s.vport, iface: serverIf });
    }
    const matches: string[][] = [];
    for (const r of fwd.marks ?? []) if (r.target === MarkTarget.MARK && marks.has(r.value)) matches.push(['-i', this.o.clientIf, ...markRuleMatch(r)]);
    // DR marks were assigned 0x100 + k: the k-th entry of `dr` must be that real server.
    const dr: NfqDrDest[] = [];
    for (const [rip, mark] of [...this.drMarks].sort((x, y) => x[1] - y[1])) {
      while (dr.length < mark - 0x100) dr.push({ rip: dr.length ? dr[dr.length - 1].rip : rip, dev: serverIf });
      dr.push({ rip, dev: serverIf });
    }
    const spec: NfqRuleSpec = { queues: this.workers, queueBase: this.o.queueBase ?? 0, services, replies, matches, ownAddrs: this.ownAddresses(fwd), dr };
    const key = JSON.stringify(spec);
    if (key === this.rulesKey) return;
    try {
      // Updated in place (each table in one atomic commit); DR rules of every install are kept for removal.
      const prev = this.nfqRules;
      this.nfqRules = installNfqueueRules(spec);
      if (prev) {
        const seen = new Set(this.nfqRules.drRules.map((r) => r.pref));
        this.nfqRules.drRules.push(...prev.drRules.filter((r) => !seen.has(r.pref)));
        this.nfqRules.sysctlsChanged = { ...this.nfqRules.sysctlsChanged, ...prev.sysctlsChanged };
        this.nfqRules.localMovedTo ??= prev.localMovedTo;
      }
      this.rulesKey = key;
      // Tunnelled packets leave with the director's own address as outer source: accept them back in.
      spawnSync('sysctl', ['-qw', `net.ipv4.conf.${this.o.clientIf}.accept_local=1`]);
      this.o.log('data plane: nfqueue rules', { queues: this.workers, services: services.length, matches: matches.length, replies: replies.length, dr: dr.length });
    } catch (e) {
      this.o.log('data plane: nfqueue rules failed', { error: (e as Error).message });
    }
  }

  private syncKernel(fwd: FwdTable): void {
    const serverIf = this.o.serverIf ?? this.o.clientIf;
    if (this.o.backend === 'nfqueue') {
      this.syncNfqueue(fwd, serverIf);
      this.syncVips(fwd);
      return;
    }
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
    // NAT to a real server on the director itself on another port: DNAT where the workers hand it the packets.
    const own = new Set(spec.ownAddrs);
    const localNat: NonNullable<DirectorRuleSpec['localNat']> = [];
    for (const s of fwd.services) {
      if (s.fwmark > 0 || s.vport === 0) continue;
      const d = s.dests.find((x) => x.method === FwdCode.masq && own.has(x.addrText) && x.port !== 0 && x.port !== s.vport);
      if (d) localNat.push({ iface: LOCAL_TUN, proto: s.protocol === 17 ? 'udp' : 'tcp', vip: intToIpv4(s.vaddr), vport: s.vport, rip: d.addrText, rport: d.port });
    }
    if (localNat.length) spec.localNat = localNat;
    const key = JSON.stringify(spec);
    if (key !== this.rulesKey) {
      try {
        this.rules = installDirectorRules(spec, undefined, this.rules);
        this.rulesKey = key;
        this.o.log('data plane: kernel rules', { changes: this.rules.changes.join('; ') });
      } catch (e) {
        this.o.log('data plane: kernel rules failed', { error: (e as Error).message });
      }
    }
    this.syncVips(fwd);
  }

  /** The VIPs on the client interface (with a gratuitous ARP when one appears); others this process added go. */
  private syncVips(fwd: FwdTable): void {
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
    // Read at most once a second: every table change asks, and `tsvsadm -R` makes one change per line.
    const now = Date.now();
    if (this.ownCache === null || now - this.ownCache.at > 1000) {
      try {
        const j = JSON.parse(execFileSync('ip', ['-j', '-4', 'addr', 'show'], { encoding: 'utf8' })) as { addr_info: { local: string }[] }[];
        this.ownCache = { at: now, addrs: j.flatMap((l) => l.addr_info.map((a) => a.local)) };
      } catch {
        return [];
      }
    }
    return this.ownCache.addrs.filter((a) => !vips.has(a) && !a.startsWith('127.'));
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
