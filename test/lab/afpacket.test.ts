// lab: the AF_PACKET I/O layer forwards DR-style in real namespaces (cli → dir → rs, replies through the
// director's kernel): curl and UDP through the forwarder, fanout sharding by client hash across two
// processes, adaptive-mode latency, CHECKSUM_PARTIAL through PACKET_VNET_HDR. Throughput figures live in the
// benchmarks only (`npm run bench -- forward`: the same AF_PACKET path through a real worker, beside the kernel).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { clientShard } from '../../shared/util/flowhash.ts';
import { commandRunner, installDirectorRules, removeDirectorRules, type RulesReport } from '../../shared/sys/iptables.ts';
import { Background, waitForHttp, inNs, removeNamespaces as removeNs, sh, snmp } from '../support/netns.ts';

const root = resolve(import.meta.dirname, '../..');
const nodeBin = join(root, 'node_modules/.bin/node');
const forwarder = join(root, 'test/support/dr-forwarder.ts');
const NS = { cli: 'tsvs-io-cli', dir: 'tsvs-io-dir', rs: 'tsvs-io-rs' } as const;
const VIP = '10.78.100.100';
const RS = '10.78.2.11';
const CLI = '10.78.1.2';
const work = mkdtempSync(join(tmpdir(), 'tsvs-io-'));
const bg = new Background();
const background = (ns: string, argv: string[]): ChildProcess => bg.run(ns, argv);
const removeNamespaces = (): void => removeNs(Object.values(NS));
let rules: RulesReport | null = null;


interface Forwarder {
  proc: ChildProcess;
  stop(): Promise<FwdStats>;
}
interface FwdStats {
  rx: number; tx: number; txShort: number; rxMode: string | null; modeSwitches: number; csumPartial: number;
  rxBatches: number; ringBlocks: number; kernel: { packets: number; drops: number }; flows: [number, number][];
}

/** Starts test/support/dr-forwarder.ts in the director namespace and waits for its "ready" line. */
async function startForwarder(extra: string[]): Promise<Forwarder> {
  const proc = background(NS.dir, [nodeBin, forwarder, '--in', 'dcli', '--out', 'drs', '--vip', VIP, '--rs', RS, ...extra]);
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const deadline = Date.now() + 15_000;
  while (!out.includes('ready ')) {
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`forwarder did not start (exit ${proc.exitCode}): ${out}${err}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    proc,
    async stop(): Promise<FwdStats> {
      proc.kill('SIGTERM');
      const until = Date.now() + 5000;
      while (!out.includes('stats ') && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      const line = out.split('\n').find((l) => l.startsWith('stats '));
      if (!line) throw new Error(`forwarder gave no stats: ${out}${err}`);
      return JSON.parse(line.slice(6)) as FwdStats;
    },
  };
}

/** Sends `perFlow` UDP datagrams from each of `flows` source ports to VIP:9000 and counts echoes. */
function udpFlows(flows: number, perFlow: number, basePort: number): number {
  const py = `
import socket
ok = 0
socks = []
for i in range(${flows}):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(('${CLI}', ${basePort} + i))
    s.settimeout(0.5)
    socks.append(s)
for s in socks:
    for j in range(${perFlow}):
        s.sendto(b'x' * 32, ('${VIP}', 9000))
        try:
            s.recvfrom(2048); ok += 1
        except socket.timeout:
            pass
print(ok)
`;
  return Number(inNs(NS.cli, ['python3', '-c', py]).trim());
}

function curlTimes(url: string, n: number): number[] {
  const t: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = inNs(NS.cli, ['curl', '-s', '-m', '2', '-o', '/dev/null', '-w', '%{http_code} %{time_connect}', url]).trim().split(' ');
    if (s[0] === '200') t.push(Number(s[1]) * 1000);
  }
  return t.sort((a, b) => a - b);
}
const q = (s: number[], p: number): number => s[Math.min(s.length - 1, Math.floor(s.length * p))];

beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('lab test needs root (namespaces, AF_PACKET, iptables): run as root');
  for (const tool of ['ip', 'iptables', 'curl', 'python3', 'trafgen', 'sysctl']) {
    try {
      sh(['sh', '-c', `command -v ${tool}`]);
    } catch {
      throw new Error(`lab test needs ${tool} on PATH`);
    }
  }
  removeNamespaces();
  const setup = `
set -e
for n in cli dir rs; do ip netns add tsvs-io-$n; ip -n tsvs-io-$n link set lo up; done
ip link add cli0 netns ${NS.cli} type veth peer name dcli netns ${NS.dir}
ip link add drs netns ${NS.dir} type veth peer name rs0 netns ${NS.rs}
ip -n ${NS.cli} addr add ${CLI}/24 dev cli0; ip -n ${NS.cli} link set cli0 up
ip -n ${NS.cli} route add ${VIP}/32 via 10.78.1.1
ip -n ${NS.cli} route add 10.78.2.0/24 via 10.78.1.1
ip -n ${NS.dir} addr add 10.78.1.1/24 dev dcli; ip -n ${NS.dir} link set dcli up
ip -n ${NS.dir} addr add 10.78.2.1/24 dev drs; ip -n ${NS.dir} link set drs up
ip -n ${NS.rs} addr add ${RS}/24 dev rs0; ip -n ${NS.rs} link set rs0 up
ip -n ${NS.rs} route add default via 10.78.2.1
ip -n ${NS.rs} addr add ${VIP}/32 dev lo
ip netns exec ${NS.rs} sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 net.ipv4.conf.rs0.arp_ignore=1 net.ipv4.conf.rs0.arp_announce=2
ip netns exec ${NS.rs} iptables -w -t raw -A PREROUTING -p udp --dport 9001 -j DROP
ip netns exec ${NS.dir} sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.drs.rp_filter=0 net.ipv4.conf.dcli.rp_filter=0 net.ipv4.conf.drs.accept_local=1
`;
  sh(['bash', '-c', setup]);
  rules = installDirectorRules({ vips: [{ iface: 'dcli', addrs: [VIP] }] }, commandRunner(NS.dir));
  process.stdout.write(`kernel rules: ${rules.changes.join('; ')}\n`);
  const www = join(work, 'www');
  sh(['mkdir', '-p', www]);
  writeFileSync(join(www, 'index.html'), 'hello from rs\n');
  background(NS.rs, ['python3', '-m', 'http.server', '80', '--bind', '0.0.0.0', '--directory', www]);
  bg.udpEcho(NS.rs, ['0.0.0.0'], 9000);
  waitForHttp(NS.rs, `http://${RS}/`, 'hello', 'http server on rs did not start');
});

afterAll(() => {
  bg.killAll();
  if (rules) {
    const failed = removeDirectorRules(rules, commandRunner(NS.dir));
    if (failed.length) process.stdout.write(`rule removal failed: ${failed.join('; ')}\n`);
  }
  removeNamespaces();
});

describe('lab: AF_PACKET DR forwarding', () => {
  it('af-packet: curl and UDP reach the real server through the forwarder; kernel rules are exact', async () => {
    const raw = inNs(NS.dir, ['iptables', '-t', 'raw', '-S']);
    expect(raw).toContain('-A PREROUTING -j TSVS-RAW');
    expect(raw).toContain(`-A TSVS-RAW -d ${VIP}/32 -i dcli -j DROP`);
    expect(inNs(NS.dir, ['sysctl', '-n', 'net.ipv4.ip_forward']).trim()).toBe('1');
    const f = await startForwarder(['--ring', 'adaptive']);
    try {
      expect(inNs(NS.cli, ['curl', '-s', '-m', '3', `http://${VIP}/`])).toBe('hello from rs\n');
      expect(udpFlows(4, 2, 32000)).toBe(8);
    } finally {
      const s = await f.stop();
      process.stdout.write(`forwarder: rx=${s.rx} tx=${s.tx} mode=${s.rxMode}\n`);
      expect(s.tx).toBeGreaterThan(0);
      expect(s.txShort).toBe(0);
    }
  });

  it('af-packet: CHECKSUM_PARTIAL frames leave with the vnet header csum fields and arrive valid', async () => {
    const tcpErr0 = snmp(NS.rs, 'Tcp', 'InCsumErrors');
    const udpErr0 = snmp(NS.rs, 'Udp', 'InCsumErrors');
    const f = await startForwarder(['--ring', 'adaptive', '--csum', 'pass']);
    let s: FwdStats;
    try {
      expect(inNs(NS.cli, ['curl', '-s', '-m', '3', `http://${VIP}/`])).toBe('hello from rs\n');
      expect(udpFlows(2, 2, 32100)).toBe(4);
    } finally {
      s = await f.stop();
    }
    process.stdout.write(`csum: ${s.csumPartial}/${s.rx} frames were CHECKSUM_PARTIAL\n`);
    expect(s.csumPartial).toBeGreaterThan(0);
    expect(snmp(NS.rs, 'Tcp', 'InCsumErrors') - tcpErr0).toBe(0);
    expect(snmp(NS.rs, 'Udp', 'InCsumErrors') - udpErr0).toBe(0);
    // Control: the same frames without NEEDS_CSUM reach the server with a bad checksum and are dropped.
    const g = await startForwarder(['--ring', 'adaptive', '--csum', 'drop-flags']);
    try {
      expect(udpFlows(2, 1, 32200)).toBe(0);
    } finally {
      await g.stop();
    }
    expect(snmp(NS.rs, 'Udp', 'InCsumErrors') - udpErr0).toBeGreaterThan(0);
  });

  it('af-packet: two forwarders in one fanout group split 50 flows by clientShard, each flow on one process', async () => {
    const f0 = await startForwarder(['--ring', 'adaptive', '--fanout', '7:2', '--flows']);
    const f1 = await startForwarder(['--ring', 'adaptive', '--fanout', '7:2', '--flows']);
    let s0: FwdStats;
    let s1: FwdStats;
    try {
      expect(udpFlows(50, 3, 33000)).toBe(150);
    } finally {
      s0 = await f0.stop();
      s1 = await f1.stop();
    }
    const owner = new Map<number, number>();
    for (const [i, s] of [s0, s1].entries()) {
      for (const [k, n] of s.flows) {
        const port = k % 65536;
        if (port < 33000 || port >= 33050) continue;
        expect(owner.has(k), `flow ${port} seen by both workers`).toBe(false);
        owner.set(k, i);
        expect(n).toBe(3);
        expect(clientShard(Math.floor(k / 65536), port, 2), `flow ${port} on worker ${i}`).toBe(i);
      }
    }
    const split = [0, 1].map((i) => [...owner.values()].filter((v) => v === i).length);
    process.stdout.write(`fanout: 50 flows split ${split[0]} / ${split[1]}\n`);
    expect(owner.size).toBe(50);
    expect(split[0]).toBeGreaterThan(0);
    expect(split[1]).toBeGreaterThan(0);
  });

  it('af-packet: a batch with more frames than the TX vector holds goes out whole (the vector is flushed when full)', () => {
    const rxPackets = (): number => Number(inNs(NS.rs, ['cat', '/sys/class/net/rs0/statistics/rx_packets']).trim());
    const before = rxPackets();
    const out = inNs(NS.dir, [nodeBin, join(root, 'test/support/tx-burst.ts'), 'drs', '64', '1000']).trim().split('\n').at(-1) ?? '';
    const r = JSON.parse(out) as { committed: number; failed: number; sent: number; txFull: number };
    const arrived = rxPackets() - before;
    process.stdout.write(`tx burst: 1000 frames through a 64-slot vector: ${out}; ${arrived} arrived on the peer\n`);
    expect(r).toMatchObject({ committed: 1000, failed: 0, sent: 1000 });
    expect(r.txFull).toBeGreaterThanOrEqual(15);
    expect(arrived).toBeGreaterThanOrEqual(1000);
  });

  it('af-packet: adaptive mode adds well under 1 ms to curl time_connect at low rate', async () => {
    const kernel = curlTimes(`http://${RS}/`, 20);
    const medians: number[] = [];
    const f = await startForwarder(['--ring', 'adaptive']);
    let s: FwdStats;
    try {
      for (let round = 0; round < 3; round++) {
        const t = curlTimes(`http://${VIP}/`, 20);
        expect(t.length).toBe(20);
        medians.push(q(t, 0.5));
        process.stdout.write(`latency round ${round}: time_connect via forwarder p10 ${q(t, 0.1).toFixed(3)} ms, median ${q(t, 0.5).toFixed(3)} ms, p90 ${q(t, 0.9).toFixed(3)} ms\n`);
        if (q(t, 0.5) < 1) break;
      }
    } finally {
      s = await f.stop();
    }
    const v3 = await startForwarder(['--ring', 'v3']);
    let t3: number[];
    try {
      t3 = curlTimes(`http://${VIP}/`, 20);
    } finally {
      await v3.stop();
    }
    process.stdout.write(`latency: kernel path (cli→rs real IP) median ${q(kernel, 0.5).toFixed(3)} ms; adaptive medians ${medians.map((m) => m.toFixed(3)).join(', ')} ms (mode ${s.rxMode}, switches ${s.modeSwitches}); v3-only median ${q(t3, 0.5).toFixed(3)} ms\n`);
    expect(s.rxMode).toBe('lat');
    expect(Math.min(...medians)).toBeLessThan(1);
  });
});
