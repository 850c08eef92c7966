// lab: builds real network namespaces with real nginx, dnsmasq and nats-server, checks them, tears them down.
// Needs root and the host tools from ops/setup.sh; without them every test fails saying why (never skipped).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  LAB_NETNS_NAME, REPO_ROOT, VIP, down, execCapture, haveService, plan, planJson, readState, status, up,
} from '../../ops/lab/index.ts';
import type { LabOptions, LabState } from '../../ops/lab/index.ts';
import { labFor, quiet, requireLabHost, sh } from '../support/lab.ts';

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(`${REPO_ROOT}/node_modules/.bin/node`, [`${REPO_ROOT}/ops/lab/main.ts`, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Whether a process runs (exists and is not a zombie waiting to be reaped). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Lab-named namespaces on the host (other tsvs-* namespaces, e.g. another test's tsvs-io-*, are not the lab's). */
function netns(): string[] {
  return spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').map((l) => l.split(' ')[0]).filter((n) => LAB_NETNS_NAME.test(n));
}

describe('lab default (1 director, 2 servers, nat)', () => {
  const state = labFor({});

  it('lab: plan --json of the lab that is up matches the contract', () => {
    const r = cli('plan', '--json');
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout) as unknown;
    expect(j).toEqual(planJson(plan({ directors: 1, servers: 2, mode: 'nat', router: false, nats: false })));
    expect(j).toEqual({
      nodes: {
        client: { netns: 'tsvs-client', addresses: ['10.200.0.100/24'] },
        d1: { netns: 'tsvs-d1', addresses: ['10.200.0.11/24', '10.200.1.11/24'] },
        rs1: { netns: 'tsvs-rs1', addresses: ['10.200.1.101/24'] },
        rs2: { netns: 'tsvs-rs2', addresses: ['10.200.1.102/24'] },
      },
      vips: ['10.200.0.10'],
    });
    expect(state().namespaces).toEqual(['tsvs-lan', 'tsvs-client', 'tsvs-d1', 'tsvs-rs1', 'tsvs-rs2']);
  });

  it('lab: the addresses in the plan are configured on the named interfaces', () => {
    expect(sh('d1', ['ip', '-o', '-4', 'addr', 'show', 'dev', 'front'])).toContain('10.200.0.11/24');
    expect(sh('d1', ['ip', '-o', '-4', 'addr', 'show', 'dev', 'back'])).toContain('10.200.1.11/24');
    expect(sh('client', ['ip', 'route', 'show', 'default'])).toMatch(/^default via 10\.200\.0\.11 dev eth0/);
    expect(sh('d1', ['ip', 'addr'])).not.toContain(VIP);
    expect(sh('d1', ['sysctl', '-n', 'net.ipv4.ip_forward', 'net.ipv4.conf.all.send_redirects', 'net.ipv4.conf.all.rp_filter', 'net.bridge.bridge-nf-call-iptables']).split('\n')).toEqual(['1', '0', '0', '0']);
  });

  it('lab: each real server answers HTTP with its name, from the client through d1', () => {
    expect(sh('client', ['curl', '-s', '--max-time', '3', 'http://10.200.1.101/'])).toBe('rs1');
    expect(sh('client', ['curl', '-s', '--max-time', '3', 'http://10.200.1.102/'])).toBe('rs2');
  });

  it('lab: each real server answers DNS TXT whoami.lab with its name', () => {
    expect(sh('client', ['dig', '+short', '+time=2', '+tries=2', 'TXT', 'whoami.lab', '@10.200.1.101'])).toBe('"rs1"');
    expect(sh('client', ['dig', '+short', '+time=2', '+tries=2', 'TXT', 'whoami.lab', '@10.200.1.102'])).toBe('"rs2"');
  });

  it('lab: exec puts ops/bin on PATH and exits with the command status', () => {
    const r = cli('exec', 'rs1', '--', 'sh', '-c', 'echo "$PATH"; exit 7');
    expect(r.status).toBe(7);
    expect(r.stdout.split(':')[0]).toBe(`${REPO_ROOT}/ops/bin`);
    expect(cli('exec', 'nosuch', '--', 'true').status).toBe(1);
  });

  it('lab: status exits 0 and lists nodes and live processes', () => {
    const r = cli('status');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/rs2\s+tsvs-rs2\s+10\.200\.1\.102\/24 eth0/);
    expect(r.stdout).toMatch(/alive nginx@rs1/);
    expect(r.stdout).toMatch(/alive dnsmasq@rs2/);
    expect(status().processes.every((p) => p.alive)).toBe(true);
  });

  it('lab: up with the same options changes nothing; with other options it refuses', async () => {
    const before = readState();
    const again = await up({}, quiet);
    expect(again.changed).toBe(false);
    expect(readState()).toEqual(before);
    const r = cli('up');
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/already up with the same options/);
    const other = cli('up', '--servers', '3');
    expect(other.status).toBe(1);
    expect(other.stderr).toMatch(/lab already up with different options; run down first/);
    expect(netns()).not.toContain('tsvs-rs3');
  });
});

// Each case below sets up what it needs: its own lab (brought up here), or none (taken down first).
describe('lab lifecycle (down, status when down, refusals)', () => {
  beforeAll(() => requireLabHost());
  afterAll(async () => {
    await down(quiet);
  });

  it('lab: down removes every namespace and stops every recorded process; a second down is harmless', async () => {
    const procs = (await up({}, quiet)).state.processes;
    expect(procs.map((p) => `${p.name}@${p.node}`).sort()).toEqual(['dnsmasq@rs1', 'dnsmasq@rs2', 'nginx@rs1', 'nginx@rs2', 'tsvsd@d1']);
    expect(await down(quiet)).toBe(true);
    expect(netns()).toEqual([]);
    // Stopped means gone or a zombie: the processes are this test's children, and Node reaps them on its own time.
    for (const p of procs) expect(running(p.pid), `${p.name}@${p.node} pid ${p.pid}`).toBe(false);
    expect(readState()).toBeUndefined();
    expect(await down(quiet)).toBe(false);
    const r = cli('down');
    expect(r.status).toBe(0);
  });

  it('lab: status exits 3 when down', async () => {
    await down(quiet);
    const r = cli('status');
    expect(r.status).toBe(3);
    expect(r.stdout).toMatch(/lab: down/);
  });

  for (const foreign of ['tsvs-rs2', 'tsvs-d9']) {
    it(`lab: up refuses while a lab-named namespace it did not create exists (${foreign}), and leaves it alone`, async () => {
      await down(quiet);
      expect(netns()).toEqual([]);
      spawnSync('ip', ['netns', 'add', foreign]);
      try {
        await expect(up({}, quiet)).rejects.toThrow(new RegExp(`refusing to start: namespace\\(s\\) ${foreign} exist but this lab did not create them`));
        expect(netns()).toEqual([foreign]);
        expect(readState()).toBeUndefined();
        const r = cli('up');
        expect(r.status).toBe(1);
        expect(r.stderr).toContain(foreign);
      } finally {
        spawnSync('ip', ['netns', 'del', foreign]);
      }
      expect(netns()).toEqual([]);
    });
  }
});

describe('lab dr mode', () => {
  labFor({ mode: 'dr' });

  it('lab dr: every real server has the VIP /32 on lo and ignores ARP for it', () => {
    for (const rs of ['rs1', 'rs2']) {
      expect(sh(rs, ['ip', '-o', '-4', 'addr', 'show', 'dev', 'lo'])).toMatch(/inet 10\.200\.0\.10\/32 .*lo:0/);
      expect(sh(rs, ['sysctl', '-n', 'net.ipv4.conf.all.arp_ignore', 'net.ipv4.conf.all.arp_announce', 'net.ipv4.conf.lo.arp_ignore', 'net.ipv4.conf.lo.arp_announce', 'net.ipv4.conf.all.rp_filter']).split('\n'))
        .toEqual(['1', '2', '1', '2', '0']);
      expect(sh(rs, ['ip', 'route', 'show', 'default'])).toMatch(/^default via 10\.200\.1\.11 /);
    }
  });

  it('lab dr: no real server answers ARP for the VIP on the back LAN', () => {
    // Resolve the VIP on the back LAN from d1 (a host route through `back`), as a DR director would need to if the
    // real servers answered ARP for it: arp_ignore=1 keeps them silent, so the neighbour entry never gets a MAC.
    sh('d1', ['ip', 'route', 'replace', `${VIP}/32`, 'dev', 'back']);
    try {
      execCapture('d1', ['ping', '-c', '1', '-W', '1', VIP], { timeoutMs: 5000 });
      expect(sh('d1', ['ip', 'neigh', 'show', VIP, 'dev', 'back'])).not.toMatch(/lladdr/);
    } finally {
      sh('d1', ['ip', 'route', 'del', `${VIP}/32`, 'dev', 'back']);
    }
  });

  it('lab dr: the real servers still answer on their RIP, and dnsmasq answers on the VIP', () => {
    expect(sh('client', ['curl', '-s', '--max-time', '3', 'http://10.200.1.102/'])).toBe('rs2');
    expect(sh('rs1', ['dig', '+short', '+time=2', '+tries=2', 'TXT', 'whoami.lab', `@${VIP}`])).toBe('"rs1"');
  });
});

describe('lab --router (3 directors, dr)', () => {
  labFor({ router: true, directors: 3, mode: 'dr' });

  it('lab router: an ECMP route for the VIP with one nexthop per director, L4 hash', () => {
    const route = sh('router', ['ip', 'route', 'show', `${VIP}/32`]);
    const hops = [...route.matchAll(/nexthop via (\S+) dev front/g)].map((m) => m[1]);
    expect(hops).toEqual(['10.200.0.11', '10.200.0.12', '10.200.0.13']);
    expect(sh('router', ['sysctl', '-n', 'net.ipv4.fib_multipath_hash_policy', 'net.ipv4.ip_forward'])).toBe('1\n1');
    expect(sh('client', ['ip', 'route', 'show', 'default'])).toMatch(/^default via 10\.200\.9\.1 dev eth0/);
    expect(sh('rs1', ['ip', 'route', 'show', 'default'])).toMatch(/^default via 10\.200\.1\.1 /);
    expect(sh('d2', ['ip', 'route', 'show', 'default'])).toMatch(/^default via 10\.200\.0\.1 /);
  });

  it('lab router: a DR path works end to end (the router standing in for a director: VIP routed to rs1 by MAC)', () => {
    // Kernel DR without IPVS: the router hands VIP packets to rs1 unchanged; rs1 (VIP on lo) replies from the VIP
    // straight to the client through its gateway, the router. Checks the real-server side of DR for HTTP and DNS.
    sh('router', ['ip', 'route', 'replace', `${VIP}/32`, 'via', '10.200.1.101', 'dev', 'back']);
    expect(sh('client', ['curl', '-s', '--max-time', '3', `http://${VIP}/`])).toBe('rs1');
    expect(sh('client', ['dig', '+short', '+time=2', '+tries=2', 'TXT', 'whoami.lab', `@${VIP}`])).toBe('"rs1"');
  });
});

describe('lab tun mode', () => {
  const state = labFor({ mode: 'tun', servers: 1 });

  it('lab tun: the VIP sits on a non-ARP device, and decapsulation is started or its absence is said', () => {
    expect(sh('rs1', ['ip', '-o', '-4', 'addr', 'show', 'dev', 'lo'])).toContain('10.200.0.10/32');
    expect(sh('rs1', ['sysctl', '-n', 'net.ipv4.conf.all.arp_ignore'])).toBe('1');
    if (haveService('rs-agent')) {
      expect(status().processes.filter((p) => p.name === 'rs-agent' && p.alive).map((p) => p.node)).toEqual(['rs1']);
    } else {
      expect(state().warnings.join('\n')).toMatch(/tun mode: services\/rs-agent\/main\.ts does not exist yet/);
    }
  });
});

describe('lab --nats', () => {
  labFor({ nats: true, directors: 2 });

  it('lab nats: directors reach the mgmt LAN and the three nats-servers form one cluster (2 routes each)', async () => {
    expect(sh('d2', ['ip', '-o', '-4', 'addr', 'show', 'dev', 'mgmt'])).toContain('10.200.2.12/24');
    const deadline = Date.now() + 15_000;
    let routes: number[] = [];
    for (;;) {
      routes = [1, 2, 3].map((k) => {
        const r = execCapture('d1', ['curl', '-s', '--max-time', '2', `http://10.200.2.${k}:8222/routez`]);
        if (r.status !== 0) return -1;
        const z = JSON.parse(r.stdout) as { num_routes: number; routes: { ip: string }[] };
        return z.num_routes;
      });
      if (routes.every((n) => n === 2) || Date.now() > deadline) break;
      await sleep(250);
    }
    expect(routes).toEqual([2, 2, 2]);
    const varz = JSON.parse(sh('d2', ['curl', '-s', '--max-time', '2', 'http://10.200.2.3:8222/varz'])) as { cluster: { name: string; cluster_port: number }; port: number; server_name: string };
    expect(varz.cluster.name).toBe('tsvs');
    expect(varz.cluster.cluster_port).toBe(6222);
    expect(varz.server_name).toBe('nats3');
    expect(varz.port).toBe(4222);
  });
});
