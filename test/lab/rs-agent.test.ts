// rs-agent lab: two namespaces joined by a veth pair; the real server runs `rs-agent setup` + `decap` and a UDP
// echo server on the VIP; the other side sends IPIP and GUE packets built with shared/net and must get the echo
// straight back from VIP:port to the inner source. Needs root, ip and /dev/net/tun: fails (never skips) without.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../..');
const NODE = join(root, 'node_modules/.bin/node');
const AGENT = join(root, 'ops/bin/rs-agent');
const DIR = 'tsvs-ra-dir';
const RS = 'tsvs-ra-rs';
const VIP = '10.99.100.1';
const DIR_IP = '10.99.0.1';
const RS_IP = '10.99.0.2';
const CLIENT = '10.99.1.1';
const GUE_PORT = 6080;

const procs: ChildProcess[] = [];

function sh(cmd: string, ...args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
function inNs(ns: string, ...args: string[]): string {
  return sh('ip', 'netns', 'exec', ns, ...args);
}
function delNs(): void {
  for (const ns of [DIR, RS]) {
    try {
      sh('ip', 'netns', 'del', ns);
    } catch {
      // absent: nothing to remove
    }
  }
}

/** Starts a long-running process in a namespace; resolves with its output so far once `ready` appears. */
function startIn(ns: string, ready: string, args: string[]): Promise<{ p: ChildProcess; out: () => string }> {
  const p = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(p);
  let out = '';
  return new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error(`${args.join(' ')}: not ready after 10 s; output: ${out}`)), 10_000);
    const on = (b: Buffer): void => {
      out += b.toString();
      if (out.includes(ready)) {
        clearTimeout(t);
        res({ p, out: () => out });
      }
    };
    p.stdout.on('data', on);
    p.stderr.on('data', on);
    p.on('exit', (c) => rej(new Error(`${args.join(' ')} exited ${c}: ${out}`)));
  });
}

function client(mode: 'ipip' | 'gue' | 'garbage', cport: number, payload: string): { reply: string | null; from?: string; port?: number } {
  const opts = { outerSrc: DIR_IP, outerDst: RS_IP, client: CLIENT, cport, vip: VIP, vport: 9000, mode, guePort: GUE_PORT, payload };
  return JSON.parse(inNs(DIR, NODE, join(root, 'test/support/tunnel-client.ts'), JSON.stringify(opts)));
}

let agent: { p: ChildProcess; out: () => string };

describe('rs-agent lab', () => {
  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error('rs-agent lab test needs root (network namespaces, TUN, raw sockets)');
    for (const need of ['/dev/net/tun', NODE, AGENT]) if (!existsSync(need)) throw new Error(`rs-agent lab test needs ${need}`);
    try {
      sh('ip', '-V');
    } catch {
      throw new Error('rs-agent lab test needs iproute2 (ip)');
    }
    delNs();
    sh('ip', 'netns', 'add', DIR);
    sh('ip', 'netns', 'add', RS);
    sh('ip', 'link', 'add', 'tsvs-ra-d0', 'netns', DIR, 'type', 'veth', 'peer', 'name', 'tsvs-ra-r0', 'netns', RS);
    inNs(DIR, 'ip', 'link', 'set', 'lo', 'up');
    inNs(DIR, 'ip', 'link', 'set', 'tsvs-ra-d0', 'up');
    inNs(DIR, 'ip', 'addr', 'add', `${DIR_IP}/24`, 'dev', 'tsvs-ra-d0');
    inNs(DIR, 'ip', 'addr', 'add', `${CLIENT}/32`, 'dev', 'lo');
    inNs(RS, 'ip', 'link', 'set', 'lo', 'up');
    inNs(RS, 'ip', 'link', 'set', 'tsvs-ra-r0', 'up');
    inNs(RS, 'ip', 'addr', 'add', `${RS_IP}/24`, 'dev', 'tsvs-ra-r0');
    inNs(RS, 'ip', 'route', 'add', '10.99.1.0/24', 'via', DIR_IP);
    inNs(RS, AGENT, 'setup', '--vip', VIP, '--mode', 'tun');
    agent = await startIn(RS, 'decap ready', [AGENT, 'decap', '--vip', VIP, '--gue-port', String(GUE_PORT)]);
    const echo = `const s=require('node:dgram').createSocket('udp4');s.on('message',(m,r)=>s.send('echo:'+m,r.port,r.address));s.bind(9000,'${VIP}',()=>console.log('echo ready'));setTimeout(()=>process.exit(0),120000).unref()`;
    await startIn(RS, 'echo ready', [NODE, '-e', echo]);
  });

  afterAll(() => {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    delNs();
  });

  it('rs-agent: setup put the VIP on lo with arp_ignore=1, arp_announce=2, rp_filter=0, and a rerun changes nothing', () => {
    expect(inNs(RS, 'ip', '-o', 'addr', 'show', 'dev', 'lo')).toContain(`${VIP}/32`);
    for (const d of ['all', 'lo']) {
      expect(inNs(RS, 'sysctl', '-n', `net.ipv4.conf.${d}.arp_ignore`).trim()).toBe('1');
      expect(inNs(RS, 'sysctl', '-n', `net.ipv4.conf.${d}.arp_announce`).trim()).toBe('2');
      expect(inNs(RS, 'sysctl', '-n', `net.ipv4.conf.${d}.rp_filter`).trim()).toBe('0');
    }
    expect(inNs(RS, AGENT, 'setup', '--vip', VIP, '--mode', 'tun')).toBe('');
  });

  it('rs-agent: an IPIP-encapsulated UDP datagram reaches the server on the VIP and the reply goes straight to the client', () => {
    const r = client('ipip', 41000, 'over ipip');
    expect(r).toMatchObject({ reply: 'echo:over ipip', from: VIP, port: 9000 });
  });

  it('rs-agent: a GUE-encapsulated UDP datagram is delivered the same way', () => {
    const r = client('gue', 41001, 'over gue');
    expect(r).toMatchObject({ reply: 'echo:over gue', from: VIP, port: 9000 });
  });

  it('rs-agent: a malformed inner packet is counted as a drop, the agent keeps running, counters print on SIGTERM', async () => {
    expect(client('garbage', 41002, 'bad').reply).toBeNull();
    expect(client('ipip', 41003, 'still alive').reply).toBe('echo:still alive');
    const exited = new Promise<number | null>((res) => agent.p.on('exit', res));
    agent.p.kill('SIGTERM');
    expect(await exited).toBe(0);
    const last = agent.out().trim().split('\n').pop() ?? '';
    const k = JSON.parse(last) as { decapsulated: { ipip: number; gue: number }; dropped: Record<string, number> };
    expect(k.decapsulated.ipip).toBeGreaterThanOrEqual(2);
    expect(k.decapsulated.gue).toBeGreaterThanOrEqual(1);
    expect(k.dropped.DROP_BAD_IHL).toBe(1);
  });

  it('rs-agent: teardown removes the VIP and restores the sysctls', () => {
    inNs(RS, AGENT, 'teardown', '--vip', VIP);
    expect(inNs(RS, 'ip', '-o', 'addr', 'show', 'dev', 'lo')).not.toContain(VIP);
    expect(inNs(RS, 'sysctl', '-n', 'net.ipv4.conf.lo.arp_ignore').trim()).toBe('0');
    expect(inNs(RS, AGENT, 'teardown', '--vip', VIP)).toBe('');
  });
});
