// lab: the NFQUEUE port forwards in real namespaces (cli → dir → rs): NAT of TCP and UDP through
// test/support/nfq-forwarder.ts, DR by verdict mark + policy routing, two queues fed by HMARK on the client
// address with every reply on its request's queue, exact install/removal of the kernel rules. (Throughput of the
// safe mode is a bench: npm run bench -- forward --backend nfqueue.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { commandRunner, installNfqueueRules, removeNfqueueRules, type NfqRulesReport } from '../../shared/sys/iptables.ts';
import type { NfqRuleSpec } from '../../shared/rules/nfqueue-rules.ts';
import { Background, waitForHttp, inNs, removeNamespaces as removeNs, sh } from '../support/netns.ts';

const root = resolve(import.meta.dirname, '../..');
const nodeBin = join(root, 'node_modules/.bin/node');
const forwarder = join(root, 'test/support/nfq-forwarder.ts');
const NS = { cli: 'tsvs-nq-cli', dir: 'tsvs-nq-dir', rs: 'tsvs-nq-rs' } as const;
const VIP = '10.81.100.100';
const RIP = '10.81.2.11';
const CLI = '10.81.1.2';
const DIR_BACK = '10.81.2.1';
/** Extra client addresses for the multi-queue test: 10.81.1.10 .. 10.81.1.33. */
const CLIENTS = Array.from({ length: 24 }, (_, i) => `10.81.1.${10 + i}`);
const work = mkdtempSync(join(tmpdir(), 'tsvs-nq-'));
const bg = new Background();
const background = (ns: string, argv: string[]): ChildProcess => bg.run(ns, argv);
const removeNamespaces = (): void => removeNs(Object.values(NS));
const run = commandRunner(NS.dir);
let installed: NfqRulesReport | null = null;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface FwdStats {
  queue: number;
  counters: Record<string, number>;
  kernel: { queued: number; queueDropped: number; userDropped: number };
  cpuUs: { user: number; system: number };
  gcs: number;
  requests: number; replies: number; other: number; dropped: number;
  reqClients: Record<string, number>; repClients: Record<string, number>;
}
interface Forwarder {
  stop(): Promise<FwdStats>;
}

/** Starts test/support/nfq-forwarder.ts in the director namespace and waits for its "ready" line. */
async function startForwarder(args: string[]): Promise<Forwarder> {
  const proc = background(NS.dir, [nodeBin, forwarder, '--vip', VIP, '--rip', RIP, ...args]);
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const deadline = Date.now() + 15_000;
  while (!out.includes('ready ')) {
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`nfq-forwarder did not start (exit ${proc.exitCode}): ${out}${err}`);
    await sleep(20);
  }
  return {
    async stop(): Promise<FwdStats> {
      proc.kill('SIGTERM');
      const until = Date.now() + 5000;
      while (!out.includes('stats ') && Date.now() < until) await sleep(20);
      const line = out.split('\n').find((l) => l.startsWith('stats '));
      if (!line) throw new Error(`nfq-forwarder gave no stats: ${out}${err}`);
      return JSON.parse(line.slice(6)) as FwdStats;
    },
  };
}

function install(spec: NfqRuleSpec): NfqRulesReport {
  installed = installNfqueueRules(spec, run);
  process.stdout.write(`rules: ${installed.changes.join('; ')}\n`);
  return installed;
}
function uninstall(): string[] {
  if (!installed) return [];
  const failed = removeNfqueueRules(installed, run);
  installed = null;
  return failed;
}

/** Sends `n` UDP datagrams to VIP:port from each source address in `srcs` and returns the number echoed. */
function udpEcho(srcs: readonly string[], n: number, port = 9000): number {
  const py = `
import socket
ok = 0
for src in ${JSON.stringify(srcs)}:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((src, 0))
    s.settimeout(1.0)
    for j in range(${n}):
        s.sendto(b'ping %d' % j, ('${VIP}', ${port}))
        try:
            d, a = s.recvfrom(2048)
            if d == b'ping %d' % j and a == ('${VIP}', ${port}):
                ok += 1
        except socket.timeout:
            pass
    s.close()
print(ok)
`;
  return Number(inNs(NS.cli, ['python3', '-c', py]).trim());
}
function curl(src = CLI): string {
  return inNs(NS.cli, ['curl', '-s', '-m', '3', '--interface', src, `http://${VIP}/`]);
}
const natSpec: NfqRuleSpec = {
  queues: 1,
  ownAddrs: [DIR_BACK],
  services: [{ proto: 'tcp', vip: VIP, port: 80, iface: 'dcli' }, { proto: 'udp', vip: VIP, port: 9000, iface: 'dcli' }],
  replies: [{ proto: 'tcp', rip: RIP, port: 80, iface: 'drs' }, { proto: 'udp', rip: RIP, port: 9000, iface: 'drs' }],
};

beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('lab test needs root (namespaces, netlink NFQUEUE, iptables): run as root');
  for (const tool of ['ip', 'iptables', 'curl', 'python3', 'trafgen', 'sysctl']) {
    try {
      sh(['sh', '-c', `command -v ${tool}`]);
    } catch {
      throw new Error(`lab test needs ${tool} on PATH`);
    }
  }
  if (!sh(['iptables', '--version']).includes('legacy')) throw new Error('lab test needs iptables-legacy selected (no nft queue in this kernel; pitfall 13)');
  removeNamespaces();
  const setup = `
set -e
for n in cli dir rs; do ip netns add tsvs-nq-$n; ip -n tsvs-nq-$n link set lo up; done
ip link add cli0 netns ${NS.cli} type veth peer name dcli netns ${NS.dir}
ip link add drs netns ${NS.dir} type veth peer name rs0 netns ${NS.rs}
ip -n ${NS.cli} addr add ${CLI}/24 dev cli0
${CLIENTS.map((c) => `ip -n ${NS.cli} addr add ${c}/24 dev cli0`).join('\n')}
ip -n ${NS.cli} link set cli0 up
ip -n ${NS.cli} route add default via 10.81.1.1
ip -n ${NS.dir} addr add 10.81.1.1/24 dev dcli; ip -n ${NS.dir} link set dcli up
ip -n ${NS.dir} addr add ${DIR_BACK}/24 dev drs; ip -n ${NS.dir} link set drs up
ip -n ${NS.dir} addr add ${VIP}/32 dev lo
ip netns exec ${NS.dir} sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.drs.rp_filter=0 net.ipv4.conf.dcli.rp_filter=0 net.ipv4.conf.drs.accept_local=1
ip -n ${NS.rs} addr add ${RIP}/24 dev rs0; ip -n ${NS.rs} link set rs0 up
ip -n ${NS.rs} route add default via ${DIR_BACK}
ip -n ${NS.rs} addr add ${VIP}/32 dev lo
ip netns exec ${NS.rs} sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 net.ipv4.conf.rs0.arp_ignore=1 net.ipv4.conf.rs0.arp_announce=2
ip netns exec ${NS.rs} iptables -w -t raw -A PREROUTING -p udp --dport 9001 -j DROP
`;
  sh(['bash', '-c', setup]);
  const www = join(work, 'www');
  sh(['mkdir', '-p', www]);
  writeFileSync(join(www, 'index.html'), 'hello from rs\n');
  background(NS.rs, ['python3', '-m', 'http.server', '80', '--bind', '0.0.0.0', '--directory', www]);
  // UDP echo on RIP:9000 (NAT) and VIP:9000 (DR: the reply must leave from the VIP, so a socket bound to it).
  bg.udpEcho(NS.rs, [RIP, VIP], 9000);
  waitForHttp(NS.rs, `http://${RIP}/`, 'hello', 'http server on rs did not start');
});

afterAll(() => {
  bg.killAll();
  const failed = uninstall();
  if (failed.length) process.stdout.write(`rule removal failed: ${failed.join('; ')}\n`);
  removeNamespaces();
});

describe('lab: NFQUEUE port', () => {
  it('nfqueue: rules install idempotently in dedicated chains and are removed exactly', () => {
    const before = ['raw', 'mangle'].map((t) => inNs(NS.dir, ['iptables', '-t', t, '-S']));
    const rulesBefore = inNs(NS.dir, ['ip', '-4', 'rule', 'show']);
    install({ ...natSpec, queues: 2, dr: [{ rip: RIP, dev: 'drs' }] });
    const first = ['raw', 'mangle'].map((t) => inNs(NS.dir, ['iptables', '-t', t, '-S']));
    const again = install({ ...natSpec, queues: 2, dr: [{ rip: RIP, dev: 'drs' }] });
    expect(['raw', 'mangle'].map((t) => inNs(NS.dir, ['iptables', '-t', t, '-S']))).toEqual(first);
    expect(again.changes.some((c) => c.startsWith('created') || c.includes('PREROUTING') || c.startsWith('ip rule'))).toBe(false);
    const [raw, mangle] = first;
    expect(raw).toContain('-A PREROUTING -j TSVS-NFQ');
    expect(raw).toContain(`-A TSVS-NFQ -d ${DIR_BACK}/32 -j RETURN`);
    expect(raw).toContain(`-A TSVS-NFQ -d ${VIP}/32 -i dcli -p tcp -m tcp --dport 80 -j CT --notrack`);
    expect(raw).toContain(`-A TSVS-NFQ -s ${RIP}/32 -i drs -p udp -m udp --sport 9000 -j CT --notrack`);
    expect(mangle).toContain('-A PREROUTING -j TSVS-NFQ');
    expect(mangle).toContain(`-A TSVS-NFQ -d ${VIP}/32 -i dcli -p udp -m udp --dport 9000 -j TSVS-NFQ-REQ`);
    expect(mangle).toContain(`-A TSVS-NFQ -s ${RIP}/32 -i drs -p tcp -m tcp --sport 80 -j TSVS-NFQ-REP`);
    expect(mangle).toContain('-A TSVS-NFQ-REQ -j HMARK --hmark-src-prefix 32 --hmark-dst-prefix 0 --hmark-sport-mask 0x0000 --hmark-dport-mask 0x0000 --hmark-proto-mask 0x00 --hmark-rnd 0x00005eed --hmark-mod 2 --hmark-offset 0');
    expect(mangle).toContain('-A TSVS-NFQ-REP -j HMARK --hmark-src-prefix 0 --hmark-dst-prefix 32 --hmark-sport-mask 0x0000 --hmark-dport-mask 0x0000 --hmark-proto-mask 0x00 --hmark-rnd 0x00005eed --hmark-mod 2 --hmark-offset 0');
    expect(mangle).toContain('-A TSVS-NFQ-REQ -m mark --mark 0x1 -j NFQUEUE --queue-num 1');
    expect(mangle).toContain('-A TSVS-NFQ-REP -m mark --mark 0x0 -j NFQUEUE --queue-num 0');
    const ipRules = inNs(NS.dir, ['ip', '-4', 'rule', 'show']);
    process.stdout.write(`ip rules with DR:\n${ipRules}`);
    expect(ipRules).toContain('100:\tfrom all fwmark 0x100 lookup 100');
    expect(ipRules).toContain('500:\tfrom all lookup local');
    expect(ipRules).not.toMatch(/^0:/m);
    expect(inNs(NS.dir, ['ip', '-4', 'route', 'show', 'table', '100']).trim()).toBe(`default via ${RIP} dev drs onlink`);
    expect(uninstall()).toEqual([]);
    expect(['raw', 'mangle'].map((t) => inNs(NS.dir, ['iptables', '-t', t, '-S']))).toEqual(before);
    expect(inNs(NS.dir, ['ip', '-4', 'rule', 'show'])).toBe(rulesBefore);
    expect(inNs(NS.dir, ['ip', '-4', 'route', 'show', 'table', '100'])).toBe('');
  });

  it('nfqueue: NAT of TCP and UDP to one real server through the port (curl body, UDP echo)', async () => {
    install(natSpec);
    const f = await startForwarder(['--queue', '0', '--mode', 'nat']);
    let s: FwdStats;
    try {
      for (let i = 0; i < 5; i++) expect(curl()).toBe('hello from rs\n');
      expect(udpEcho([CLI], 10)).toBe(10);
      // The director's own connection to the real server is not taken for a NAT reply.
      expect(inNs(NS.dir, ['curl', '-s', '-m', '3', `http://${RIP}/`])).toBe('hello from rs\n');
    } finally {
      s = await f.stop();
      uninstall();
    }
    const c = s.counters;
    process.stdout.write(`nat: rx ${c.RX} (requests ${s.requests}, replies ${s.replies}, other ${s.other}), verdicts ${c.VERDICTS} in ${c.SEND_BATCHES} sends, modified ${c.MODIFIED}, kernel ${JSON.stringify(s.kernel)}\n`);
    expect(s.requests).toBeGreaterThanOrEqual(5 * 3 + 10);
    expect(s.replies).toBeGreaterThanOrEqual(5 * 2 + 10);
    expect(s.other).toBe(0);
    expect(c.MODIFIED).toBe(s.requests + s.replies);
    expect(c.VERDICTS).toBe(c.RX);
    for (const k of ['BAD_MSG', 'SEND_ERRORS', 'NL_ERRORS', 'RECV_ERRORS', 'MODIFY_REFUSED', 'DROPS']) expect(c[k], k).toBe(0);
    expect(s.kernel.queueDropped + s.kernel.userDropped).toBe(0);
  });

  it('nfqueue: DR by verdict mark and policy routing with a local VIP (curl and UDP echo)', async () => {
    const dr = install({ ...natSpec, replies: [], dr: [{ rip: RIP, dev: 'drs' }] });
    expect(dr.localMovedTo).toBe(500);
    const f = await startForwarder(['--queue', '0', '--mode', 'dr', '--mark', '0x100']);
    let s: FwdStats;
    try {
      for (let i = 0; i < 3; i++) expect(curl()).toBe('hello from rs\n');
      expect(udpEcho([CLI], 5)).toBe(5);
    } finally {
      s = await f.stop();
      uninstall();
    }
    process.stdout.write(`dr: rx ${s.counters.RX}, marked ${s.counters.MARKED}, replies seen ${s.replies}\n`);
    expect(s.counters.MARKED).toBe(s.requests);
    expect(s.requests).toBeGreaterThanOrEqual(3 * 3 + 5);
    expect(s.replies).toBe(0);
    expect(s.counters.SEND_ERRORS + s.counters.BAD_MSG + s.counters.NL_ERRORS).toBe(0);
    expect(inNs(NS.dir, ['ip', '-4', 'rule', 'show'])).toMatch(/^0:\tfrom all lookup local$/m);
  });

  it('nfqueue: a packet grown by 20 bytes (IPIP built in the verdict buffer) leaves for the real server', async () => {
    install({ ...natSpec, services: [{ proto: 'udp', vip: VIP, port: 9002, iface: 'dcli' }], replies: [] });
    inNs(NS.rs, ['iptables', '-w', '-t', 'raw', '-A', 'PREROUTING', '-p', '4', '-j', 'DROP']);
    // The outer source is the director's own address, on a packet received on dcli: without accept_local
    // the kernel drops it as a martian after the verdict.
    inNs(NS.dir, ['sysctl', '-qw', 'net.ipv4.conf.dcli.accept_local=1']);
    // AF_PACKET on the real server sees the IPIP packets before its raw DROP (it has no ipip module).
    const cap = background(NS.rs, ['python3', '-c', `
import json, socket, struct, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
s.bind(('rs0', 0))
s.settimeout(0.2)
print('ready', flush=True)
ok = bad = 0
end = time.time() + 4
while time.time() < end and ok < 10:
    try:
        f = s.recv(4096)
    except socket.timeout:
        continue
    ip = f[14:]
    if ip[9] != 4:
        continue
    inner = ip[20:]
    good = (struct.unpack('!H', ip[2:4])[0] == struct.unpack('!H', inner[2:4])[0] + 20
        and socket.inet_ntoa(ip[12:16]) == '${DIR_BACK}' and socket.inet_ntoa(ip[16:20]) == '${RIP}'
        and socket.inet_ntoa(inner[16:20]) == '${VIP}' and struct.unpack('!H', inner[22:24])[0] == 9002
        and inner[28:] [:6] == b'tunnel')
    ok += good
    bad += not good
print(json.dumps({'ok': ok, 'bad': bad}), flush=True)
`]);
    let capOut = '';
    cap.stdout!.on('data', (d: Buffer) => (capOut += d.toString()));
    // The capture socket is bound before it says so: nothing sent after that is missed.
    const capUntil = Date.now() + 10_000;
    while (!capOut.includes('ready\n') && cap.exitCode === null && Date.now() < capUntil) await sleep(20);
    expect(capOut, 'the capture in the real server did not start').toContain('ready\n');
    const f = await startForwarder(['--queue', '0', '--mode', 'tun', '--tun-src', DIR_BACK]);
    let s: FwdStats;
    try {
      inNs(NS.cli, ['python3', '-c', `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(10):
    s.sendto(b'tunnel %d' % i, ('${VIP}', 9002))
`]);
      const until = Date.now() + 6000;
      while (!capOut.includes('}') && Date.now() < until) await sleep(50);
    } finally {
      s = await f.stop();
      uninstall();
      inNs(NS.rs, ['iptables', '-w', '-t', 'raw', '-D', 'PREROUTING', '-p', '4', '-j', 'DROP']);
      inNs(NS.dir, ['sysctl', '-qw', 'net.ipv4.conf.dcli.accept_local=0']);
    }
    const capLine = capOut.split('\n').find((l) => l.startsWith('{')) ?? '';
    process.stdout.write(`tun: capture ${capLine}; port modified ${s.counters.MODIFIED}, refused ${s.counters.MODIFY_REFUSED}, nl errors ${s.counters.NL_ERRORS}\n`);
    expect(JSON.parse(capLine)).toEqual({ ok: 10, bad: 0 });
    expect(s.counters.MODIFIED).toBe(10);
    expect(s.counters.NL_ERRORS + s.counters.SEND_ERRORS).toBe(0);
  });

  it('nfqueue: two queues behind HMARK on the client address: every reply lands on its request queue', async () => {
    install({ ...natSpec, queues: 2 });
    const f0 = await startForwarder(['--queue', '0', '--mode', 'nat', '--clients']);
    const f1 = await startForwarder(['--queue', '1', '--mode', 'nat', '--clients']);
    let s: FwdStats[];
    try {
      for (const c of CLIENTS) expect(curl(c), c).toBe('hello from rs\n');
      expect(udpEcho(CLIENTS, 2)).toBe(2 * CLIENTS.length);
    } finally {
      s = [await f0.stop(), await f1.stop()];
      uninstall();
    }
    const owner = new Map<string, number>();
    let orphans = 0;
    for (const [q, st] of s.entries()) {
      for (const ip of Object.keys(st.reqClients)) {
        expect(owner.has(ip), `client ${ip} on both queues`).toBe(false);
        owner.set(ip, q);
      }
      for (const ip of Object.keys(st.repClients)) if (!(ip in st.reqClients)) orphans++;
      expect(st.counters.SEND_ERRORS + st.counters.BAD_MSG + st.counters.NL_ERRORS).toBe(0);
    }
    const split = [0, 1].map((q) => [...owner.values()].filter((v) => v === q).length);
    process.stdout.write(`hmark: ${owner.size} clients split ${split[0]} / ${split[1]} over queues 0/1; packets ${s[0].counters.RX} / ${s[1].counters.RX}; orphan replies ${orphans}\n`);
    expect(owner.size).toBe(CLIENTS.length);
    expect(orphans).toBe(0);
    expect(split[0]).toBeGreaterThan(0);
    expect(split[1]).toBeGreaterThan(0);
  });
});
