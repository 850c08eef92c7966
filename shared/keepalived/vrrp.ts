// keepalived.conf's vrrp_instance / vrrp_sync_group blocks mapped onto tsvs's cluster settings (priority,
// preemption, cluster name) and the VIPs the leader owns; everything that does not map is a warning with its line.
import { canonicalIpv6 } from '../ipvsadm/names.ts';
import { ipv4FromText, ipv4ToText } from '../net/addr.ts';
import type { KeepalivedWarning, SourcePos } from './errors.ts';
import { warning } from './errors.ts';
import type { KeepalivedConfig, VrrpInstance } from './model.ts';
import type { KaNode } from './parse.ts';

/** keepalived's VRRP defaults (reference keepalived-semantics.md §5). */
export const VrrpDefaults = {
  /** VRRP_PRIO_DFL */
  priority: 100,
  /** VRRP_ADVER_DFL, seconds */
  advertInt: 1,
  /** VRRP_DOWN_TIMER_ADVERTS */
  downTimerAdverts: 3,
  /** vrrp_version */
  version: 2,
  /** Longest preempt_delay keepalived accepts, seconds. */
  maxPreemptDelay: 1000,
} as const;

/**
 * The priority tsvs gives an instance that says `state MASTER` and no `priority`: keepalived's default plus one.
 * In keepalived the MASTER keeps mastership among equal priorities because it starts as master; tsvs breaks ties
 * by the lowest node name, so the hint is made a priority.
 */
export const MASTER_HINT_PRIORITY = VrrpDefaults.priority + 1;

/** tsvs's own failure detection, as the cluster agent defaults it (shared/cluster/options.ts). */
export const TSVS_DETECTION = { heartbeatMs: 25, missBeats: 7 } as const;

/** One address of virtual_ipaddress (or virtual_ipaddress_excluded) that the leader owns. */
export interface VrrpVip extends SourcePos {
  /** IPv4 dotted quad. */
  readonly addr: string;
  /** Prefix length as written (32 when none); tsvs owns the address as /32 whatever it is. */
  readonly prefix: number;
  /** `dev IF` of the line, else the instance's `interface`, else null (the director's client interface). */
  readonly dev: string | null;
  /** The vrrp_instance it comes from. */
  readonly instance: string;
}

/** What the vrrp blocks of a file mean for tsvs's cluster. */
export interface VrrpCluster {
  /** The vrrp_instance names, in file order (all of them join the one cluster). */
  readonly instances: readonly string[];
  /** The instance the settings come from (the first one), or null when the file has no vrrp_instance. */
  readonly from: (SourcePos & { readonly name: string }) | null;
  /** `vrrp-<lowest virtual_router_id>`: the same on both directors of a pair; null without a virtual_router_id. */
  readonly cluster: string | null;
  readonly virtualRouterId: number | null;
  /** 1..255, or null without a vrrp_instance. */
  readonly priority: number | null;
  /** Where the priority comes from: `priority` as written, the MASTER hint, or keepalived's default. */
  readonly prioritySource: 'priority' | 'state-master-hint' | 'default' | null;
  readonly state: 'MASTER' | 'BACKUP' | null;
  readonly nopreempt: boolean;
  /** preempt_delay in ms (keepalived writes seconds), or null when not set. */
  readonly preemptDelayMs: number | null;
  /** advert_int in seconds (keepalived's default 1 when not set); reported, not mapped. */
  readonly advertInt: number;
  /** Seconds keepalived's backup would wait before taking over from a silent master with these settings. */
  readonly keepalivedTakeoverS: number | null;
  /** The VIPs the leader owns, IPv4, each address once, in file order. */
  readonly vips: readonly VrrpVip[];
  readonly warnings: readonly KeepalivedWarning[];
}

/**
 * keepalived's master down interval: `3 × advert_int + skew`, skew = (256 − priority) / 256 s for VRRPv2 (not
 * scaled by advert_int) and (256 − priority) / 256 × advert_int for VRRPv3. Seconds.
 */
export function keepalivedMasterDownS(advertInt: number, priority: number, version: 2 | 3 = 2): number {
  const p = 256 - Math.min(priority, 255);
  const skew = version === 2 ? p / 256 : (p * advertInt) / 256;
  return VrrpDefaults.downTimerAdverts * advertInt + skew;
}

/** Keywords of a vrrp_instance that tsvs reads (state … virtual_ipaddress); the rest are warnings below. */
const MAPPED = new Set(['state', 'interface', 'virtual_router_id', 'priority', 'advert_int', 'nopreempt', 'preempt', 'preempt_delay', 'virtual_ipaddress', 'virtual_ipaddress_excluded', 'lvs_sync_daemon_interface']);

const PEERS = "peers find each other through NATS (--nats): tsvs sends no VRRP packets";
const TRACK = "tsvs does not move the priority by tracked scripts, interfaces or files: a director is dead when its heartbeats stop (a failed real server is the health checker's business)";
const NOTIFY = "not run by tsvs: follow leadership in tsvsd's log ('cluster: role', 'vips: owned') or with tsvsadm cluster";
const GARP = "tsvs sends its own gratuitous ARP: a burst when it takes the VIPs and again 3 s later";

/** Why a vrrp_instance keyword does not map, by keyword. */
const NOT_MAPPED: Readonly<Record<string, string>> = {
  authentication: 'not used: the directors of a cluster authenticate to NATS (--nats-creds)',
  auth_type: 'not used: the directors of a cluster authenticate to NATS (--nats-creds)',
  auth_pass: 'not used: the directors of a cluster authenticate to NATS (--nats-creds)',
  unicast_peer: PEERS, unicast_src_ip: PEERS, mcast_src_ip: PEERS, unicast_ttl: PEERS, check_unicast_src: PEERS, version: PEERS,
  old_unicast_checksum: PEERS, skip_check_adv_addr: PEERS, strict_mode: PEERS, lower_prio_no_advert: PEERS, higher_prio_send_advert: PEERS,
  track_script: TRACK, track_interface: TRACK, track_process: TRACK, track_file: TRACK, track_bfd: TRACK, dont_track_primary: TRACK,
  notify: NOTIFY, notify_master: NOTIFY, notify_backup: NOTIFY, notify_fault: NOTIFY, notify_stop: NOTIFY, notify_deleted: NOTIFY,
  notify_master_rx_lower_pri: NOTIFY, smtp_alert: NOTIFY,
  garp_master_delay: GARP, garp_master_repeat: GARP, garp_master_refresh: GARP, garp_master_refresh_repeat: GARP, garp_lower_prio_delay: GARP,
  garp_lower_prio_repeat: GARP, garp_interval: GARP, gna_interval: GARP,
  use_vmac: 'no virtual MAC: the VIPs move to the new leader with gratuitous ARP',
  vmac_xmit_base: 'no virtual MAC: the VIPs move to the new leader with gratuitous ARP',
  virtual_routes: 'not added by tsvs: only addresses move with the leader',
  virtual_rules: 'not added by tsvs: only addresses move with the leader',
  accept: 'the leader always accepts traffic to the VIPs',
  no_accept: 'the leader always accepts traffic to the VIPs',
  down_timer_adverts: `tsvs detects a dead leader by its own heartbeats (--heartbeat, --miss-beats)`,
};

/** virtual_ipaddress words after the address that take a value, and the flags without one. */
const VIP_VALUE_WORDS = new Set(['brd', 'broadcast', 'dev', 'scope', 'label', 'peer', 'track_group']);
const VIP_FLAG_WORDS = new Set(['home', '-nodad', 'noprefixroute', 'autojoin']);

interface Collect {
  warnings: KeepalivedWarning[];
  vips: VrrpVip[];
}

/** The address lines of one virtual_ipaddress block. */
function readVips(c: Collect, block: KaNode, inst: VrrpInstance): void {
  if (block.block === null) {
    c.warnings.push(warning(block, `vrrp_instance ${inst.name}: ${block.keyword} without a '{' block: no address read`));
    return;
  }
  for (const line of block.block) {
    const [text, ...words] = [line.keyword, ...line.args];
    const slash = text.indexOf('/');
    const addrText = slash < 0 ? text : text.slice(0, slash);
    const prefixText = slash < 0 ? '32' : text.slice(slash + 1);
    const v4 = ipv4FromText(addrText);
    if (v4 === undefined) {
      const what = canonicalIpv6(addrText) !== undefined ? 'an IPv6 VIP is not owned by tsvs (its VIPs are IPv4)' : `not an address: "${text}", ignored`;
      c.warnings.push(warning(line, `vrrp_instance ${inst.name}: ${block.keyword}: ${what}`));
      continue;
    }
    if (!/^\d{1,2}$/.test(prefixText) || Number(prefixText) > 32) {
      c.warnings.push(warning(line, `vrrp_instance ${inst.name}: ${block.keyword}: bad prefix length "/${prefixText}", ${addrText} ignored`));
      continue;
    }
    const prefix = Number(prefixText);
    let dev: string | null = null;
    const ignored: string[] = [];
    for (let i = 0; i < words.length; i++) {
      const w = words[i];
      if (VIP_VALUE_WORDS.has(w)) {
        const v = words[i + 1];
        i++;
        if (v === undefined) c.warnings.push(warning(line, `vrrp_instance ${inst.name}: ${addrText}: '${w}' without a value`));
        else if (w === 'dev') dev = v;
        else ignored.push(`${w} ${v}`);
      } else if (VIP_FLAG_WORDS.has(w)) ignored.push(w);
      else c.warnings.push(warning(line, `vrrp_instance ${inst.name}: ${addrText}: unknown word '${w}' ignored`));
    }
    if (ignored.length > 0 || prefix !== 32) {
      const why = [prefix !== 32 ? `owned as ${addrText}/32: tsvs adds host addresses (the subnet's route comes from the interface's own address)` : 'owned as a plain address', ignored.length > 0 ? `${ignored.join(', ')} not applied` : ''];
      c.warnings.push(warning(line, `vrrp_instance ${inst.name}: ${text}: ${why.filter(Boolean).join('; ')}`));
    }
    const addr = ipv4ToText(v4);
    if (c.vips.some((v) => v.addr === addr)) {
      c.warnings.push(warning(line, `vrrp_instance ${inst.name}: ${addr} is listed twice: owned once`));
      continue;
    }
    c.vips.push({ file: line.file, line: line.line, addr, prefix, dev: dev ?? inst.interface, instance: inst.name });
  }
}

/** One instance's own settings, read from its block (keywords the model does not keep: nopreempt, preempt_delay). */
interface InstanceSettings {
  nopreempt: boolean;
  preemptDelayMs: number | null;
}

function readInstance(c: Collect, inst: VrrpInstance): InstanceSettings {
  const s: InstanceSettings = { nopreempt: false, preemptDelayMs: null };
  for (const n of inst.node.block ?? []) {
    if (n.keyword === 'nopreempt') s.nopreempt = true;
    else if (n.keyword === 'preempt') s.nopreempt = false;
    else if (n.keyword === 'preempt_delay') {
      const w = n.args[0];
      if (w === undefined || !/^\d+(\.\d+)?$/.test(w) || Number(w) > VrrpDefaults.maxPreemptDelay) {
        c.warnings.push(warning(n, `vrrp_instance ${inst.name}: preempt_delay: want 0..${VrrpDefaults.maxPreemptDelay} seconds, got "${w ?? ''}": ignored`));
      } else s.preemptDelayMs = Math.round(Number(w) * 1000);
    } else if (n.keyword === 'virtual_ipaddress' || n.keyword === 'virtual_ipaddress_excluded') readVips(c, n, inst);
    else if (!MAPPED.has(n.keyword)) c.warnings.push(warning(n, `vrrp_instance ${inst.name}: ${n.keyword}: ${NOT_MAPPED[n.keyword] ?? 'not mapped by tsvs, ignored'}`));
  }
  const st = inst.state?.toUpperCase() ?? null;
  if (inst.state !== null && st !== 'MASTER' && st !== 'BACKUP') c.warnings.push(warning(inst, `vrrp_instance ${inst.name}: state "${inst.state}" is neither MASTER nor BACKUP: ignored`));
  // keepalived clears both with initial state MASTER (they need state BACKUP to work).
  if (st === 'MASTER' && s.nopreempt) {
    c.warnings.push(warning(inst, `vrrp_instance ${inst.name}: Warning - nopreempt will not work with initial state MASTER - clearing`));
    s.nopreempt = false;
  }
  if (st === 'MASTER' && s.preemptDelayMs !== null) {
    c.warnings.push(warning(inst, `vrrp_instance ${inst.name}: Warning - preempt delay will not work with initial state MASTER - clearing`));
    s.preemptDelayMs = null;
  }
  return s;
}

/** The vrrp_sync_groups' settings that do not map (notify, tracking), and members that name no vrrp_instance. */
function syncGroupWarnings(c: Collect, cfg: KeepalivedConfig): void {
  const names = new Set(cfg.vrrpInstances.map((i) => i.name));
  for (const g of cfg.vrrpSyncGroups) {
    for (const n of g.node.block ?? []) {
      // members: the lines of `group { ... }`, or (the old form) bare names in the block itself
      const members = n.keyword === 'group' ? (n.block ?? []).flatMap((m) => [m.keyword, ...m.args]) : n.args.length === 0 && n.block === null && !(n.keyword in NOT_MAPPED) && !SYNC_GROUP_TRACKING.has(n.keyword) ? [n.keyword] : [];
      for (const m of members) if (!names.has(m)) c.warnings.push(warning(n, `vrrp_sync_group ${g.name}: no vrrp_instance ${m}`));
      if (n.keyword === 'group' || members.length > 0) continue;
      const why = NOT_MAPPED[n.keyword] ?? (SYNC_GROUP_TRACKING.has(n.keyword) ? TRACK : 'not mapped by tsvs, ignored');
      c.warnings.push(warning(n, `vrrp_sync_group ${g.name}: ${n.keyword}: ${why}`));
    }
  }
}

const SYNC_GROUP_TRACKING = new Set(['global_tracking', 'sync_group_tracking_weight']);

/** Options of {@link vrrpToCluster}. */
export interface VrrpMapOptions {
  /** Whether tsvsd runs in a cluster (--nats); without one every vrrp_instance is a "runs alone" warning. */
  clustered: boolean;
}

/**
 * Maps the vrrp blocks of `cfg` onto one tsvs cluster: every vrrp_instance (and every vrrp_sync_group) joins it;
 * the first instance gives the priority, nopreempt and preempt_delay; `state MASTER` is a priority hint only (as in
 * keepalived, priority decides); the lowest virtual_router_id names the cluster (`vrrp-51`: the same in both files
 * of a pair); every virtual_ipaddress is owned by the leader. advert_int is reported, not mapped: tsvs keeps its
 * own heartbeat. Never throws: what does not map is a warning with file:line.
 */
export function vrrpToCluster(cfg: KeepalivedConfig, opts: VrrpMapOptions): VrrpCluster {
  const c: Collect = { warnings: [], vips: [] };
  const insts = cfg.vrrpInstances;
  const settings = insts.map((i) => readInstance(c, i));
  syncGroupWarnings(c, cfg);
  for (const s of cfg.vrrpScripts) c.warnings.push(warning(s, `vrrp_script ${s.name}: ${TRACK}`));
  const first = insts[0];
  if (first === undefined) {
    return { instances: [], from: null, cluster: null, virtualRouterId: null, priority: null, prioritySource: null, state: null, nopreempt: false, preemptDelayMs: null, advertInt: VrrpDefaults.advertInt, keepalivedTakeoverS: null, vips: [], warnings: inFileOrder(c.warnings) };
  }
  const s0 = settings[0];
  const state0 = first.state?.toUpperCase();
  const state = state0 === 'MASTER' || state0 === 'BACKUP' ? state0 : null;
  const priority = first.priority ?? (state === 'MASTER' ? MASTER_HINT_PRIORITY : VrrpDefaults.priority);
  const prioritySource = first.priority !== null ? 'priority' : state === 'MASTER' ? 'state-master-hint' : 'default';
  const advertInt = first.advertInt ?? VrrpDefaults.advertInt;
  const version = cfg.globalDefs.node?.block?.find((n) => n.keyword === 'vrrp_version')?.args[0] === '3' ? 3 : 2;
  const vrids = insts.map((i) => i.virtualRouterId).filter((v): v is number => v !== null);
  const vrid = vrids.length > 0 ? Math.min(...vrids) : null;
  if (vrid === null) c.warnings.push(warning(first, `vrrp_instance ${first.name}: no virtual_router_id: the cluster keeps its name (--cluster, default tsvs)`));
  if (first.priority === null && state === 'MASTER') c.warnings.push(warning(first, `vrrp_instance ${first.name}: state MASTER without priority: priority ${MASTER_HINT_PRIORITY} (keepalived's default ${VrrpDefaults.priority} + 1; as in keepalived, priority decides, and the state is only a hint)`));
  if (first.advertInt !== null) {
    c.warnings.push(warning(first, `vrrp_instance ${first.name}: advert_int ${first.advertInt} is not mapped: keepalived's backup would take over after ${keepalivedMasterDownS(advertInt, priority, version).toFixed(2)} s (3 × advert_int + skew); tsvs detects a dead leader by its own heartbeats (--heartbeat ${TSVS_DETECTION.heartbeatMs} ms × --miss-beats ${TSVS_DETECTION.missBeats} by default)`));
  }
  insts.forEach((inst, i) => {
    if (i === 0) return;
    const s = settings[i];
    const diff: string[] = [];
    if ((inst.priority ?? priority) !== priority) diff.push(`priority ${inst.priority}`);
    if (s.nopreempt !== s0.nopreempt) diff.push(s.nopreempt ? 'nopreempt' : 'preempt');
    if ((s.preemptDelayMs ?? 0) !== (s0.preemptDelayMs ?? 0)) diff.push(`preempt_delay ${(s.preemptDelayMs ?? 0) / 1000}`);
    const group = cfg.vrrpSyncGroups.find((g) => g.group.includes(inst.name) && g.group.includes(first.name));
    if (group && diff.length === 0) return; // keepalived moves a sync group's instances together: so does tsvs
    const why = group ? `vrrp_sync_group ${group.name}: one cluster` : 'tsvs runs one cluster: every instance\'s VIPs move with one leader';
    c.warnings.push(warning(inst, `vrrp_instance ${inst.name} joins the cluster of ${first.name} (${why})${diff.length > 0 ? `; its ${diff.join(', ')} not used (${first.name}'s settings apply)` : ''}`));
  });
  if (!opts.clustered) {
    for (const inst of insts) c.warnings.push(warning(inst, `vrrp_instance ${inst.name}: runs alone: no cluster (tsvsd has no --nats): this director owns its virtual_ipaddress VIPs itself`));
  }
  return {
    instances: insts.map((i) => i.name),
    from: { file: first.file, line: first.line, name: first.name },
    cluster: vrid === null ? null : `vrrp-${vrid}`,
    virtualRouterId: vrid,
    priority,
    prioritySource,
    state,
    nopreempt: s0.nopreempt,
    preemptDelayMs: s0.preemptDelayMs,
    advertInt,
    keepalivedTakeoverS: keepalivedMasterDownS(advertInt, priority, version),
    vips: c.vips,
    warnings: inFileOrder(c.warnings),
  };
}

/** Warnings sorted by file (in order of first appearance) and line; warnings of one line keep their order. */
function inFileOrder(ws: readonly KeepalivedWarning[]): KeepalivedWarning[] {
  const files: string[] = [];
  for (const w of ws) if (!files.includes(w.file)) files.push(w.file);
  return [...ws].sort((a, b) => files.indexOf(a.file) - files.indexOf(b.file) || a.line - b.line);
}

/** The cluster flags given on tsvsd's command line (strings as typed; undefined = not given). */
export interface ExplicitClusterFlags {
  readonly cluster?: string;
  readonly priority?: string;
  readonly nopreempt: boolean;
  readonly preemptDelay?: string;
  readonly heartbeat?: string;
  readonly missBeats?: string;
}

/**
 * What `tsvsd --keepalived FILE --check` prints about the cluster: each setting, its value and where it comes from
 * (the file, the command line, which wins, or tsvs's default), and the VIPs the leader owns. `cli` is null when
 * tsvsd has no --nats (the director runs alone). No lines when the file has no vrrp_instance.
 */
export function formatVrrpCluster(m: VrrpCluster, cli: ExplicitClusterFlags | null): string[] {
  if (m.from === null) return [];
  const at = `${m.from.file}:${m.from.line}`;
  const vips = m.vips.length === 0 ? 'none' : m.vips.map((v) => `${v.addr} (${v.dev ?? 'client interface'})`).join(', ');
  if (cli === null) {
    return [`vrrp: vrrp_instance ${m.instances.join(', ')} (${at}): no cluster (no --nats): this director owns the VIPs itself: ${vips}`];
  }
  const row = (name: string, value: string, why: string): string => `  ${name.padEnd(10)} ${value.padEnd(16)} ${why}`;
  const cmd = (flag: string, given: string | undefined, file: string | null): string =>
    given === undefined ? '' : `command line ${flag}${file === null ? '' : ` (wins over the file's ${file})`}`;
  const fileCluster = m.cluster === null ? null : `virtual_router_id ${m.virtualRouterId}`;
  const filePrio = m.prioritySource === 'priority' ? `priority ${m.priority}` : m.prioritySource === 'state-master-hint' ? `state MASTER, no priority: ${m.priority}` : `keepalived's default ${m.priority}`;
  const preemptDelay = cli.preemptDelay ?? (m.preemptDelayMs === null ? '0' : String(m.preemptDelayMs));
  const heartbeat = cli.heartbeat ?? String(TSVS_DETECTION.heartbeatMs);
  const missBeats = cli.missBeats ?? String(TSVS_DETECTION.missBeats);
  return [
    `vrrp: vrrp_instance ${m.instances.join(', ')} (${at}) configures the cluster:`,
    row('cluster', cli.cluster ?? m.cluster ?? 'tsvs', cmd('--cluster', cli.cluster, fileCluster) || (fileCluster ?? "tsvs's default")),
    row('priority', cli.priority ?? String(m.priority), cmd('--priority', cli.priority, filePrio) || `${filePrio}${m.state !== null ? ` (state ${m.state}: a hint only, priority decides)` : ''}`),
    row('preempt', cli.nopreempt || m.nopreempt ? 'no (nopreempt)' : 'yes', cli.nopreempt ? 'command line --nopreempt' : m.nopreempt ? 'nopreempt' : "keepalived's default"),
    row('delay', `${preemptDelay} ms`, cmd('--preempt-delay', cli.preemptDelay, m.preemptDelayMs === null ? null : `preempt_delay ${m.preemptDelayMs / 1000}`) || (m.preemptDelayMs === null ? "keepalived's default" : `preempt_delay ${m.preemptDelayMs / 1000}`)),
    row('detection', `${heartbeat} ms × ${missBeats}`, `tsvs's heartbeat (--heartbeat, --miss-beats); keepalived, advert_int ${m.advertInt}: ${m.keepalivedTakeoverS?.toFixed(2)} s`),
    row('VIPs', String(m.vips.length), `owned by the leader: ${vips}`),
  ];
}
