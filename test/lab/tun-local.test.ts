// lab: local-node delivery through a TUN device (shared/sys/tun.ts). In a director namespace whose kernel never
// sees VIP traffic on its ingress veth (iptables raw DROP), frames read from the AF_PACKET ring are written into
// a TUN device and reach servers bound to the VIP on the director itself; replies leave through the kernel.
// Also pins the TUN API (queues, bounds, read) and prints ns per write. Needs root: fails (never skips) without.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Background, waitForHttp, inNs, removeNamespaces as removeNs, sh, snmp } from '../support/netns.ts';

const root = resolve(import.meta.dirname, '../..');
const nodeBin = join(root, 'node_modules/.bin/node');
const injector = join(root, 'test/support/tun-injector.ts');
const NS = { cli: 'tsvs-tl-cli', dir: 'tsvs-tl-dir', api: 'tsvs-tl-api' } as const;
const VIP = '10.77.100.100';
const CLI = '10.77.1.2';
const TUN = 'tsvs-tl0';
const work = mkdtempSync(join(tmpdir(), 'tsvs-tl-'));
const bg = new Background();
const background = (ns: string, argv: string[]): ChildProcess => bg.run(ns, argv);
const removeNamespaces = (): void => removeNs([...Object.values(NS), 'tsvs-tl-bench']);


interface InjStats {
  frames: number; dropped: number; csumPartial: number; writes: number; writeErrors: number; writeRejected: number; lastWriteErrno: number;
}
interface Injector {
  stop(): Promise<InjStats>;
}

/** Starts test/support/tun-injector.ts in the director namespace and waits for its "ready" line. */
async function startInjector(extra: string[] = []): Promise<Injector> {
  const proc = background(NS.dir, [nodeBin, injector, '--in', 'tl-dcli', '--vip', VIP, '--tun', TUN, ...extra]);
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const deadline = Date.now() + 15_000;
  while (!out.includes('ready ')) {
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`injector did not start (exit ${proc.exitCode}): ${out}${err}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    async stop(): Promise<InjStats> {
      proc.kill('SIGTERM');
      const until = Date.now() + 5000;
      while (!out.includes('stats ') && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      const line = out.split('\n').find((l) => l.startsWith('stats '));
      if (!line) throw new Error(`injector gave no stats: ${out}${err}`);
      return JSON.parse(line.slice(6)) as InjStats;
    },
  };
}

/** Sends `perFlow` UDP datagrams from each of `flows` client ports to VIP:9000; returns how many echoes came back. */
function udpEcho(flows: number, perFlow: number, basePort: number, timeout = 0.5): number {
  const py = `
import socket
ok = 0
for i in range(${flows}):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(('${CLI}', ${basePort} + i))
    s.settimeout(${timeout})
    for j in range(${perFlow}):
        s.sendto(b'local-node %d' % j, ('${VIP}', 9000))
        try:
            d, a = s.recvfrom(2048)
            if d == b'echo:local-node %d' % j and a == ('${VIP}', 9000): ok += 1
        except socket.timeout:
            pass
print(ok)
`;
  return Number(inNs(NS.cli, ['python3', '-c', py]).trim());
}
function curl(timeoutS: number): string {
  try {
    return inNs(NS.cli, ['curl', '-s', '-m', String(timeoutS), `http://${VIP}/`]);
  } catch {
    return '';
  }
}

beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('tun-local lab test needs root (namespaces, TUN, AF_PACKET, iptables): run as root');
  if (!existsSync('/dev/net/tun')) throw new Error('tun-local lab test needs /dev/net/tun');
  for (const tool of ['ip', 'iptables', 'curl', 'python3']) {
    try {
      sh(['sh', '-c', `command -v ${tool}`]);
    } catch {
      throw new Error(`tun-local lab test needs ${tool} on PATH`);
    }
  }
  removeNamespaces();
  sh(['bash', '-c', `
set -e
for n in ${NS.cli} ${NS.dir} ${NS.api}; do ip netns add $n; ip -n $n link set lo up; done
ip link add tl-cli0 netns ${NS.cli} type veth peer name tl-dcli netns ${NS.dir}
ip -n ${NS.cli} addr add ${CLI}/24 dev tl-cli0; ip -n ${NS.cli} link set tl-cli0 up
ip -n ${NS.cli} route add ${VIP}/32 via 10.77.1.1
ip -n ${NS.dir} addr add 10.77.1.1/24 dev tl-dcli; ip -n ${NS.dir} link set tl-dcli up
ip -n ${NS.dir} addr add ${VIP}/32 dev lo
ip netns exec ${NS.dir} iptables -w -t raw -A PREROUTING -i tl-dcli -d ${VIP}/32 -j DROP
`]);
  const www = join(work, 'www');
  sh(['mkdir', '-p', www]);
  writeFileSync(join(www, 'index.html'), 'hello from the director itself\n');
  background(NS.dir, ['python3', '-m', 'http.server', '80', '--bind', VIP, '--directory', www]);
  bg.udpEcho(NS.dir, [VIP], 9000, 'echo:');
  waitForHttp(NS.dir, `http://${VIP}/`, 'hello', 'http server on the VIP did not start');
});

afterAll(() => {
  bg.killAll();
  removeNamespaces();
});

describe('lab: local-node delivery through TUN', () => {
  it('tun-local: without injection the raw DROP keeps the kernel away from VIP traffic (control)', () => {
    expect(inNs(NS.dir, ['iptables', '-t', 'raw', '-S', 'PREROUTING'])).toContain(`-A PREROUTING -d ${VIP}/32 -i tl-dcli -j DROP`);
    expect(curl(1)).toBe('');
    expect(udpEcho(1, 1, 30000, 0.3)).toBe(0);
  });

  it('tun-local: curl and UDP echo reach servers on the VIP through ring → TUN; replies leave through the kernel', async () => {
    const tcpErr0 = snmp(NS.dir, 'Tcp', 'InCsumErrors');
    const udpErr0 = snmp(NS.dir, 'Udp', 'InCsumErrors');
    const inj = await startInjector();
    let s: InjStats;
    try {
      for (let i = 0; i < 3; i++) expect(curl(3)).toBe('hello from the director itself\n');
      expect(udpEcho(4, 3, 30100)).toBe(12);
    } finally {
      s = await inj.stop();
    }
    process.stdout.write(`tun-local: frames ${s.frames}, TUN writes ${s.writes}, CHECKSUM_PARTIAL finished ${s.csumPartial}, errors ${s.writeErrors}\n`);
    expect(s.writes).toBeGreaterThanOrEqual(12 + 3 * 5);
    expect(s.writeErrors).toBe(0);
    expect(s.writeRejected).toBe(0);
    expect(snmp(NS.dir, 'Tcp', 'InCsumErrors') - tcpErr0).toBe(0);
    expect(snmp(NS.dir, 'Udp', 'InCsumErrors') - udpErr0).toBe(0);
  });

  it('tun-local: CHECKSUM_PARTIAL frames written without finishPartial are dropped by the stack (control)', async () => {
    const udpErr0 = snmp(NS.dir, 'Udp', 'InCsumErrors');
    const inj = await startInjector(['--csum', 'skip']);
    let s: InjStats;
    let echoed: number;
    try {
      echoed = udpEcho(2, 1, 30200, 0.3);
    } finally {
      s = await inj.stop();
    }
    expect(s.csumPartial).toBeGreaterThan(0);
    expect(echoed).toBe(0);
    expect(snmp(NS.dir, 'Udp', 'InCsumErrors') - udpErr0).toBe(2);
  });

  it('tun-local: two injectors in one fanout group each hold a queue of one multi-queue TUN device', async () => {
    const i0 = await startInjector(['--mq', '--fanout', '9:2']);
    const i1 = await startInjector(['--mq', '--fanout', '9:2']);
    let s0: InjStats;
    let s1: InjStats;
    try {
      expect(udpEcho(24, 2, 30300)).toBe(48);
      expect(curl(3)).toBe('hello from the director itself\n');
    } finally {
      s0 = await i0.stop();
      s1 = await i1.stop();
    }
    process.stdout.write(`tun-local multi-queue: writes ${s0.writes} / ${s1.writes}\n`);
    expect(s0.writes).toBeGreaterThan(0);
    expect(s1.writes).toBeGreaterThan(0);
    expect(s0.writeErrors + s1.writeErrors).toBe(0);
  });

  it('tun: API — EBUSY on a second single-queue open, queue-mode mismatch refused, bounds rejected, read, vanishes on last close', () => {
    const r = JSON.parse(inNs(NS.api, [nodeBin, join(root, 'test/support/tun-api-check.ts')])) as Record<string, unknown>;
    expect(r).toEqual({
      singleQueueSecondOpen: 'ioctl(TUNSETIFF) tsvs-tlq0 EBUSY',
      badName: 'openTun(xxxxxxxxxxxxxxxx) EINVAL',
      rejectedBefore: 0,
      rejected: 3,
      badPacketWritten: false,
      writeErrors: 1,
      lastWriteErrno: 22,
      readLen: 36,
      readDst: '10.77.60.9',
      readPayload: 'ping-tun',
      readEmpty: -1,
      goneAfterClose: true,
      multiQueueFds: true,
      singleOnMulti: 'ioctl(TUNSETIFF) tsvs-tlm0 EINVAL',
      aliveWithOneQueue: true,
      multiGoneAfterClose: true,
      removeMissingOk: true,
    });
  });

  it('tun: ns per write of a 60-byte packet, zero allocation (printed; no GC during the timed loop)', () => {
    const out = sh([nodeBin, join(root, 'ops/bench/tun-write.ts'), '--n', '100000']);
    process.stdout.write(out);
    const j = JSON.parse(out.trim().split('\n').pop()!) as { rows: { name: string; nsPerOp: number; gcs: number }[] };
    expect(j.rows[0].name).toContain('TunDevice.write');
    expect(j.rows[0].gcs).toBe(0);
    expect(j.rows[0].nsPerOp).toBeGreaterThan(0);
  });
});
