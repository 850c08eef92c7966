// keepalived vrrp → cluster: the MASTER/BACKUP pair fixtures, priority/preemption/state semantics, virtual_ipaddress
// forms, sync groups, warnings with lines, command-line precedence, the --check report and the VIP split in tsvsd.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readKeepalivedConfig } from '../../shared/keepalived/index.ts';
import type { KeepalivedConfig } from '../../shared/keepalived/model.ts';
import { formatVrrpCluster, keepalivedMasterDownS, MASTER_HINT_PRIORITY, vrrpToCluster, type VrrpCluster } from '../../shared/keepalived/vrrp.ts';
import { mergeVrrpCluster, clusterAgentArgs, type ClusterCli } from '../../services/tsvsd/cluster.ts';
import { splitVrrpVips, VrrpVips } from '../../services/tsvsd/vrrp-vips.ts';
import type { VipHost } from '../../services/tsvsd/vips.ts';
import { keepalivedCompatDir, keepalivedCompatFiles, keepalivedCompatText } from '../support/keepalived-files.ts';

const PAIR = resolve(keepalivedCompatDir, 'vrrp-pair');
const MARKER = '# ---- verbatim below ----\n';

function pairFile(name: 'master.conf' | 'backup.conf'): KeepalivedConfig {
  const text = readFileSync(join(PAIR, name), 'utf8');
  return readKeepalivedConfig(name, text.slice(text.indexOf(MARKER) + MARKER.length));
}

function map(text: string, clustered = true): VrrpCluster {
  return vrrpToCluster(readKeepalivedConfig('k.conf', text), { clustered });
}

function messages(m: VrrpCluster): string[] {
  return m.warnings.map((w) => w.message);
}

const inst = (body: string, name = 'VI_1'): string => `vrrp_instance ${name} {\n${body}\n}\n`;

describe('keepalived vrrp: the MASTER/BACKUP pair (test/fixtures/keepalived/vrrp-pair)', () => {
  it('keepalived vrrp: both files of the pair map to one cluster (vrrp-51); MASTER 150 leads over BACKUP 100; the same VIPs', () => {
    const a = vrrpToCluster(pairFile('master.conf'), { clustered: true });
    const b = vrrpToCluster(pairFile('backup.conf'), { clustered: true });
    expect(a).toMatchObject({ instances: ['VI_1'], cluster: 'vrrp-51', virtualRouterId: 51, priority: 150, prioritySource: 'priority', state: 'MASTER', nopreempt: false, preemptDelayMs: null, advertInt: 1 });
    expect(b).toMatchObject({ cluster: 'vrrp-51', priority: 100, state: 'BACKUP' });
    const vips = [
      { addr: '192.168.200.16', prefix: 24, dev: 'eth0', instance: 'VI_1' },
      { addr: '192.168.200.17', prefix: 24, dev: 'eth0', instance: 'VI_1' },
      { addr: '192.168.201.1', prefix: 24, dev: 'eth1', instance: 'VI_1' },
    ];
    expect(a.vips.map(({ addr, prefix, dev, instance }) => ({ addr, prefix, dev, instance }))).toEqual(vips);
    expect(b.vips.map(({ addr, prefix, dev, instance }) => ({ addr, prefix, dev, instance }))).toEqual(vips);
    expect(a.keepalivedTakeoverS).toBeCloseTo(3 + 106 / 256, 6);
    // what does not map: one warning each, with its line
    expect(messages(a)).toEqual([
      "master.conf:16: vrrp_instance VI_1: advert_int 1 is not mapped: keepalived's backup would take over after 3.41 s (3 × advert_int + skew); tsvs detects a dead leader by its own heartbeats (--heartbeat 25 ms × --miss-beats 7 by default)",
      'master.conf:22: vrrp_instance VI_1: authentication: not used: the directors of a cluster authenticate to NATS (--nats-creds)',
      'master.conf:26: vrrp_instance VI_1: unicast_peer: peers find each other through NATS (--nats): tsvs sends no VRRP packets',
      "master.conf:29: vrrp_instance VI_1: track_interface: tsvs does not move the priority by tracked scripts, interfaces or files: a director is dead when its heartbeats stop (a failed real server is the health checker's business)",
      "master.conf:33: vrrp_instance VI_1: 192.168.200.16/24: owned as 192.168.200.16/32: tsvs adds host addresses (the subnet's route comes from the interface's own address); label eth0:1 not applied",
      "master.conf:34: vrrp_instance VI_1: 192.168.200.17/24: owned as 192.168.200.17/32: tsvs adds host addresses (the subnet's route comes from the interface's own address); label eth0:2 not applied",
      "master.conf:35: vrrp_instance VI_1: 192.168.201.1/24: owned as 192.168.201.1/32: tsvs adds host addresses (the subnet's route comes from the interface's own address)",
      "master.conf:37: vrrp_instance VI_1: notify_master: not run by tsvs: follow leadership in tsvsd's log ('cluster: role', 'vips: owned') or with tsvsadm cluster",
      "master.conf:38: vrrp_instance VI_1: notify_backup: not run by tsvs: follow leadership in tsvsd's log ('cluster: role', 'vips: owned') or with tsvsadm cluster",
    ]);
  });

  it('keepalived vrrp: without --nats every vrrp_instance is a "runs alone: no cluster" warning; the VIPs stay', () => {
    const a = vrrpToCluster(pairFile('master.conf'), { clustered: false });
    expect(messages(a)).toContain('master.conf:16: vrrp_instance VI_1: runs alone: no cluster (tsvsd has no --nats): this director owns its virtual_ipaddress VIPs itself');
    expect(a.vips).toHaveLength(3);
    expect(formatVrrpCluster(a, null)).toEqual(['vrrp: vrrp_instance VI_1 (master.conf:16): no cluster (no --nats): this director owns the VIPs itself: 192.168.200.16 (eth0), 192.168.200.17 (eth0), 192.168.201.1 (eth1)']);
  });

  it('keepalived vrrp: every compat file maps without throwing, each warning naming its file and line', () => {
    for (const f of keepalivedCompatFiles()) {
      const m = vrrpToCluster(readKeepalivedConfig(f, keepalivedCompatText(f)), { clustered: true });
      for (const w of m.warnings) expect(w.message, f).toMatch(new RegExp(`^${f.replace(/\./g, '\\.')}:\\d+: `));
    }
    const s = vrrpToCluster(readKeepalivedConfig('07', keepalivedCompatText('07-acassen-keepalived.conf.vrrp.lvs_syncd')), { clustered: true });
    expect(s).toMatchObject({ instances: ['VI_1', 'VI_2', 'VI_3'], cluster: 'vrrp-51', priority: 150, state: 'MASTER' });
    expect(s.vips.map((v) => `${v.addr}@${v.dev}`)).toEqual(['192.168.200.16@eth0', '192.168.200.17@eth0', '192.168.200.18@eth0', '192.168.200.19@eth0', '192.168.200.20@eth0', '192.168.200.21@eth0', '192.168.201.19@eth1', '192.168.201.20@eth1', '192.168.201.21@eth1']);
    // VI_2 and VI_3 are a sync group of their own: in tsvs every instance follows one leader
    expect(messages(s).filter((m) => m.includes('joins the cluster'))).toEqual([
      "07:26: vrrp_instance VI_2 joins the cluster of VI_1 (tsvs runs one cluster: every instance's VIPs move with one leader); its priority 100 not used (VI_1's settings apply)",
      "07:38: vrrp_instance VI_3 joins the cluster of VI_1 (tsvs runs one cluster: every instance's VIPs move with one leader); its priority 100 not used (VI_1's settings apply)",
    ]);
    expect(vrrpToCluster(readKeepalivedConfig('01', keepalivedCompatText('01-acassen-keepalived.conf.sample')), { clustered: true })).toMatchObject({ cluster: 'vrrp-50', priority: 100, prioritySource: 'priority', state: null });
  });
});

describe('keepalived vrrp: semantics', () => {
  it('keepalived vrrp: state is a hint only: priority decides; MASTER without priority is 101, BACKUP or none is keepalived\'s 100', () => {
    expect(map(inst('state MASTER\nvirtual_router_id 7\npriority 90'))).toMatchObject({ priority: 90, prioritySource: 'priority', state: 'MASTER' });
    const hint = map(inst('state MASTER\nvirtual_router_id 7'));
    expect(hint).toMatchObject({ priority: MASTER_HINT_PRIORITY, prioritySource: 'state-master-hint' });
    expect(messages(hint)).toContain("k.conf:1: vrrp_instance VI_1: state MASTER without priority: priority 101 (keepalived's default 100 + 1; as in keepalived, priority decides, and the state is only a hint)");
    expect(map(inst('state BACKUP\nvirtual_router_id 7'))).toMatchObject({ priority: 100, prioritySource: 'default' });
    expect(map(inst('virtual_router_id 7'))).toMatchObject({ priority: 100, prioritySource: 'default', state: null });
    expect(messages(map(inst('state SLAVE\nvirtual_router_id 7')))).toContain('k.conf:1: vrrp_instance VI_1: state "SLAVE" is neither MASTER nor BACKUP: ignored');
  });

  it('keepalived vrrp: nopreempt and preempt_delay (seconds → ms) map with state BACKUP; keepalived clears both with state MASTER', () => {
    expect(map(inst('state BACKUP\nvirtual_router_id 7\nnopreempt\npreempt_delay 2.5'))).toMatchObject({ nopreempt: true, preemptDelayMs: 2500 });
    expect(map(inst('virtual_router_id 7\nnopreempt\npreempt'))).toMatchObject({ nopreempt: false });
    const master = map(inst('state MASTER\nvirtual_router_id 7\nnopreempt\npreempt_delay 30'));
    expect(master).toMatchObject({ nopreempt: false, preemptDelayMs: null });
    expect(messages(master)).toEqual(expect.arrayContaining([
      'k.conf:1: vrrp_instance VI_1: Warning - nopreempt will not work with initial state MASTER - clearing',
      'k.conf:1: vrrp_instance VI_1: Warning - preempt delay will not work with initial state MASTER - clearing',
    ]));
    const bad = map(inst('virtual_router_id 7\npreempt_delay 1001'));
    expect(bad.preemptDelayMs).toBeNull();
    expect(messages(bad)).toContain('k.conf:3: vrrp_instance VI_1: preempt_delay: want 0..1000 seconds, got "1001": ignored');
  });

  it('keepalived vrrp: virtual_ipaddress forms: /prefix, dev (else the instance\'s interface), brd/scope/label, excluded, IPv6, bad and twice', () => {
    const m = map(inst([
      'interface bond0',
      'virtual_router_id 9',
      'virtual_ipaddress {',
      '  10.1.0.10',
      '  10.1.0.11/24 brd 10.1.0.255 dev eth2 scope global label eth2:vip',
      '  2001:db8::10/64',
      '  10.1.0.300',
      '  10.1.0.12/33',
      '  10.1.0.10 dev eth9',
      '  10.1.0.13 -nodad frob',
      '  10.1.0.14 dev',
      '}',
      'virtual_ipaddress_excluded {',
      '  10.1.0.20',
      '}',
    ].join('\n')));
    expect(m.vips.map((v) => [v.addr, v.prefix, v.dev, v.line])).toEqual([
      ['10.1.0.10', 32, 'bond0', 5],
      ['10.1.0.11', 24, 'eth2', 6],
      ['10.1.0.13', 32, 'bond0', 11],
      ['10.1.0.14', 32, 'bond0', 12],
      ['10.1.0.20', 32, 'bond0', 15],
    ]);
    expect(messages(m)).toEqual([
      "k.conf:6: vrrp_instance VI_1: 10.1.0.11/24: owned as 10.1.0.11/32: tsvs adds host addresses (the subnet's route comes from the interface's own address); brd 10.1.0.255, scope global, label eth2:vip not applied",
      'k.conf:7: vrrp_instance VI_1: virtual_ipaddress: an IPv6 VIP is not owned by tsvs (its VIPs are IPv4)',
      'k.conf:8: vrrp_instance VI_1: virtual_ipaddress: not an address: "10.1.0.300", ignored',
      'k.conf:9: vrrp_instance VI_1: virtual_ipaddress: bad prefix length "/33", 10.1.0.12 ignored',
      'k.conf:10: vrrp_instance VI_1: 10.1.0.10 is listed twice: owned once',
      "k.conf:11: vrrp_instance VI_1: 10.1.0.13: unknown word 'frob' ignored",
      'k.conf:11: vrrp_instance VI_1: 10.1.0.13: owned as a plain address; -nodad not applied',
      "k.conf:12: vrrp_instance VI_1: 10.1.0.14: 'dev' without a value",
    ]);
    expect(map(inst('virtual_router_id 9\nvirtual_ipaddress {\n10.0.0.1\n}')).vips[0].dev).toBeNull();
  });

  it('keepalived vrrp: unknown and unmapped instance keywords are warnings with their line; vrrp_script too', () => {
    const m = map(`vrrp_script chk {\n script "true"\n}\n${inst('virtual_router_id 9\ntrack_script {\n chk\n}\nuse_vmac\ngarp_master_delay 1\nfrobnicate 3\nsmtp_alert')}`);
    expect(messages(m)).toEqual([
      "k.conf:1: vrrp_script chk: tsvs does not move the priority by tracked scripts, interfaces or files: a director is dead when its heartbeats stop (a failed real server is the health checker's business)",
      "k.conf:6: vrrp_instance VI_1: track_script: tsvs does not move the priority by tracked scripts, interfaces or files: a director is dead when its heartbeats stop (a failed real server is the health checker's business)",
      'k.conf:9: vrrp_instance VI_1: use_vmac: no virtual MAC: the VIPs move to the new leader with gratuitous ARP',
      'k.conf:10: vrrp_instance VI_1: garp_master_delay: tsvs sends its own gratuitous ARP: a burst when it takes the VIPs and again 3 s later',
      'k.conf:11: vrrp_instance VI_1: frobnicate: not mapped by tsvs, ignored',
      "k.conf:12: vrrp_instance VI_1: smtp_alert: not run by tsvs: follow leadership in tsvsd's log ('cluster: role', 'vips: owned') or with tsvsadm cluster",
    ]);
  });

  it('keepalived vrrp: a vrrp_sync_group is one cluster: its members join quietly; its notify and a missing member are warnings', () => {
    const text = `vrrp_sync_group G {\n group {\n  VI_1\n  VI_2\n  VI_9\n }\n notify_master /bin/true\n}\n${inst('virtual_router_id 20\npriority 120', 'VI_1')}${inst('virtual_router_id 12\npriority 120\nvirtual_ipaddress {\n10.2.0.1\n}', 'VI_2')}`;
    const m = map(text);
    // the lowest virtual_router_id names the cluster, whatever the order of the instances
    expect(m).toMatchObject({ instances: ['VI_1', 'VI_2'], cluster: 'vrrp-12', priority: 120 });
    expect(m.vips.map((v) => v.addr)).toEqual(['10.2.0.1']);
    expect(messages(m)).toEqual([
      'k.conf:2: vrrp_sync_group G: no vrrp_instance VI_9',
      "k.conf:7: vrrp_sync_group G: notify_master: not run by tsvs: follow leadership in tsvsd's log ('cluster: role', 'vips: owned') or with tsvsadm cluster",
    ]);
    const old = map(`vrrp_sync_group G {\n VI_1\n VI_2\n}\n${inst('virtual_router_id 20', 'VI_1')}${inst('virtual_router_id 12\npriority 90', 'VI_2')}`);
    expect(messages(old)).toEqual(["k.conf:8: vrrp_instance VI_2 joins the cluster of VI_1 (vrrp_sync_group G: one cluster); its priority 90 not used (VI_1's settings apply)"]);
    expect(map(inst('priority 120'))).toMatchObject({ cluster: null });
    expect(messages(map(inst('priority 120')))).toContain('k.conf:1: vrrp_instance VI_1: no virtual_router_id: the cluster keeps its name (--cluster, default tsvs)');
  });

  it('keepalived vrrp: no vrrp_instance, no settings and no report', () => {
    const m = map('virtual_server 10.0.0.1 80 {\n lb_algo rr\n lb_kind DR\n protocol TCP\n real_server 10.0.0.2 80 {\n }\n}\n');
    expect(m).toMatchObject({ from: null, priority: null, cluster: null, vips: [], warnings: [] });
    expect(formatVrrpCluster(m, { nopreempt: false })).toEqual([]);
  });

  it('keepalived vrrp: keepalived\'s takeover time is 3 × advert_int + skew (v2: (256 − prio)/256 s; v3: scaled by advert_int)', () => {
    expect(keepalivedMasterDownS(1, 100)).toBeCloseTo(3.609, 3);
    expect(keepalivedMasterDownS(1, 90)).toBeCloseTo(3.648, 3);
    expect(keepalivedMasterDownS(2, 100)).toBeCloseTo(6.609, 3);
    expect(keepalivedMasterDownS(0.1, 100, 3)).toBeCloseTo(0.361, 3);
    const v3 = map(`global_defs {\n vrrp_version 3\n}\n${inst('virtual_router_id 1\nadvert_int 0.1')}`);
    expect(v3.keepalivedTakeoverS).toBeCloseTo(0.361, 3);
  });
});

describe('keepalived vrrp: tsvsd', () => {
  const cli = (o: Partial<ClusterCli> = {}): ClusterCli => ({ nats: 'nats://127.0.0.1:4222', node: 'd1', nopreempt: false, ...o });
  const file = map(inst('state BACKUP\nvirtual_router_id 51\npriority 150\nnopreempt\npreempt_delay 3'));

  it('keepalived vrrp: the file fills the cluster options the command line leaves out; explicit options win', () => {
    expect(mergeVrrpCluster(cli(), file)).toEqual(cli({ cluster: 'vrrp-51', priority: '150', nopreempt: true, preemptDelay: '3000' }));
    expect(clusterAgentArgs(mergeVrrpCluster(cli(), file))).toEqual(['--nats', 'nats://127.0.0.1:4222', '--node', 'd1', '--cluster', 'vrrp-51', '--priority', '150', '--nopreempt', '--preempt-delay', '3000']);
    expect(mergeVrrpCluster(cli({ cluster: 'blue', priority: '20', preemptDelay: '0', heartbeat: '20' }), file)).toEqual(cli({ cluster: 'blue', priority: '20', nopreempt: true, preemptDelay: '0', heartbeat: '20' }));
    expect(mergeVrrpCluster(cli({ nopreempt: true }), map(inst('virtual_router_id 5')))).toMatchObject({ nopreempt: true, priority: '100', cluster: 'vrrp-5' });
    const none = map('');
    expect(mergeVrrpCluster(cli({ priority: '7' }), none)).toEqual(cli({ priority: '7' }));
  });

  it('keepalived vrrp: --check reports each setting with where it comes from (command line over file over default)', () => {
    const lines = formatVrrpCluster(file, { priority: '200', nopreempt: false, heartbeat: '20' });
    expect(lines).toEqual([
      'vrrp: vrrp_instance VI_1 (k.conf:1) configures the cluster:',
      '  cluster    vrrp-51          virtual_router_id 51',
      "  priority   200              command line --priority (wins over the file's priority 150)",
      '  preempt    no (nopreempt)   nopreempt',
      '  delay      3000 ms          preempt_delay 3',
      "  detection  20 ms × 7        tsvs's heartbeat (--heartbeat, --miss-beats); keepalived, advert_int 1: 3.41 s",
      '  VIPs       0                owned by the leader: none',
    ]);
  });

  it('keepalived vrrp: tsvsd owns the client interface\'s VIPs with the table\'s and the others on their own interface, only while it owns VIPs', () => {
    const specs = [{ addr: '10.0.0.10', dev: 'eth0' }, { addr: '10.0.0.11', dev: null }, { addr: '10.9.0.1', dev: 'eth1' }, { addr: '10.9.0.2', dev: 'eth1' }, { addr: '10.9.0.9', dev: 'eth1' }, { addr: '10.0.0.10', dev: 'eth1' }];
    const split = splitVrrpVips(specs, 'eth0', ['10.9.0.9']);
    expect(split.client).toEqual(['10.0.0.10', '10.0.0.11']);
    expect([...split.other]).toEqual([['eth1', ['10.9.0.1', '10.9.0.2']]]);

    const dir = mkdtempSync(join(tmpdir(), 'tsvs-vrrp-vips-'));
    try {
      const held = new Set<string>();
      const host: VipHost = { add: (v) => (held.add(v), true), del: (v) => void held.delete(v), announce: () => {} };
      const v = new VrrpVips({ specs, clientIf: 'eth0', exclude: ['10.9.0.9'], socketPath: join(dir, 'tsvsd.sock'), leased: false, log: () => {}, host });
      expect(v.withClient(['10.0.0.5'])).toEqual(['10.0.0.5']);
      v.follow({ kind: 'all' });
      expect(v.withClient(['10.0.0.5', '10.0.0.10'])).toEqual(['10.0.0.10', '10.0.0.11', '10.0.0.5']);
      expect([...held].sort()).toEqual(['10.9.0.1', '10.9.0.2']);
      expect(readFileSync(join(dir, 'vips-vrrp-eth1'), 'utf8')).toBe('10.9.0.1\n10.9.0.2\n');
      v.follow({ kind: 'only', vips: [] });
      expect(v.withClient(['10.0.0.5'])).toEqual(['10.0.0.5']);
      expect(held.size).toBe(0);
      v.follow({ kind: 'only', vips: ['10.0.0.5'] });
      expect(held.size).toBe(2);
      v.stop();
      expect(held.size).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
