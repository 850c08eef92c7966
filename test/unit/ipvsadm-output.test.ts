// tsvsadm end to end against a fake tsvsd: the spec's sample outputs A–K byte for byte, errors, -R and the compat files.
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { run } from '../../services/tsvsadm/run.ts';
import { numericResolver, parseEtcHosts, parseEtcServices, tableResolver } from '../../shared/ipvsadm/names.ts';
import type { NameResolver } from '../../shared/ipvsadm/names.ts';
import { cmpServices, glibcMsort, printLargenum } from '../../shared/ipvsadm/format.ts';
import { tokenizeRestoreStream } from '../../shared/ipvsadm/restore.ts';
import { FakeTsvsd } from '../support/fake-tsvsd.ts';
import type { Captured } from '../support/fake-tsvsd.ts';
import type { ServiceSnapshot } from '../../shared/model/ipvs.ts';
import { zeroRates, zeroStats } from '../../shared/model/ipvs.ts';

/** Copies of /work/shared/compat/ipvsadm (ipvsadm.8 examples, 4-line provenance header kept). */
const compatDir = resolve(import.meta.dirname, '../fixtures/ipvsadm');

async function tsvsadm(fake: FakeTsvsd | undefined, line: string | string[], opts: { stdin?: string; resolver?: NameResolver } = {}): Promise<Captured> {
  let out = '';
  let err = '';
  const argv = Array.isArray(line) ? line : line.split(' ').filter(Boolean);
  const code = await run(['ipvsadm', ...argv], {
    stdout: (s) => (out += s),
    stderr: (s) => (err += s),
    readStdin: async () => opts.stdin ?? '',
    connect: async () => {
      if (!fake) throw new Error('ECONNREFUSED');
      return fake.client();
    },
    resolver: opts.resolver ?? numericResolver,
  });
  return { code, out, err };
}

/** Turns the spec's ⏎-marked sample lines into the exact text. */
function sample(lines: string[]): string {
  return lines.map((l) => l.replace(/⏎$/, '') + '\n').join('');
}

/** The rule lines of a compat file: `ipvsadm` command lines (continuations joined) and the echo | ipvsadm -R streams. */
function compatRules(file: string): { commands: string[][]; streams: string[] } {
  const text = readFileSync(resolve(compatDir, file), 'utf8');
  const body = text.slice(text.indexOf('# ---- verbatim below ----\n') + 27).replace(/\\\n/g, ' ');
  const commands: string[][] = [];
  const streams: string[] = [];
  const echo = /echo "([^"]*)" \| ipvsadm -R/g;
  for (const m of body.matchAll(echo)) streams.push(m[1]);
  for (const line of body.replace(echo, '').split('\n')) {
    if (line.startsWith('ipvsadm ')) commands.push(line.split(/\s+/).filter(Boolean).slice(1));
  }
  return { commands, streams };
}

const EXAMPLE1 = [
  '-A -t 207.175.44.110:80 -s rr',
  ...[1, 2, 3, 4, 5].map((i) => `-a -t 207.175.44.110:80 -r 192.168.10.${i}:80 -m`),
];

describe('tsvsadm output', () => {
  it('output: A, no tsvsd behaves like ipvsadm without ip_vs (exit 2, -h included)', async () => {
    const a = sample([
      "Can't initialize ipvs: Protocol not available⏎",
      'Are you sure that IP Virtual Server is built in the kernel or as module?⏎',
    ]);
    for (const line of ['-Ln', '-h', '-v', '']) expect(await tsvsadm(undefined, line)).toEqual({ code: 2, out: '', err: a });
  });

  it('output: B, empty table -Ln', async () => {
    expect(await tsvsadm(new FakeTsvsd(), '-Ln')).toEqual({
      code: 0,
      err: '',
      out: sample([
        'IP Virtual Server version 1.2.1 (size=4096)⏎',
        'Prot LocalAddress:Port Scheduler Flags⏎',
        '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn⏎',
      ]),
    });
  });

  it('output: C and I, EXAMPLE 1 listed with -Ln and saved with -S -n', async () => {
    const fake = new FakeTsvsd();
    for (const l of EXAMPLE1) expect((await tsvsadm(fake, l)).code).toBe(0);
    expect((await tsvsadm(fake, '-Ln')).out).toBe(sample([
      'IP Virtual Server version 1.2.1 (size=4096)⏎',
      'Prot LocalAddress:Port Scheduler Flags⏎',
      '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn⏎',
      'TCP  207.175.44.110:80 rr⏎',
      '  -> 192.168.10.1:80              Masq    1      0          0         ⏎',
      '  -> 192.168.10.2:80              Masq    1      0          0         ⏎',
      '  -> 192.168.10.3:80              Masq    1      0          0         ⏎',
      '  -> 192.168.10.4:80              Masq    1      0          0         ⏎',
      '  -> 192.168.10.5:80              Masq    1      0          0         ⏎',
    ]));
    expect((await tsvsadm(fake, '-S -n')).out).toBe(sample([
      '-A -t 207.175.44.110:80 -s rr⏎',
      '-a -t 207.175.44.110:80 -r 192.168.10.1:80 -m -w 1⏎',
      '-a -t 207.175.44.110:80 -r 192.168.10.2:80 -m -w 1⏎',
      '-a -t 207.175.44.110:80 -r 192.168.10.3:80 -m -w 1⏎',
      '-a -t 207.175.44.110:80 -r 192.168.10.4:80 -m -w 1⏎',
      '-a -t 207.175.44.110:80 -r 192.168.10.5:80 -m -w 1⏎',
    ]));
  });

  it('output: D, port-0 persistent services with Local and Route destinations', async () => {
    const fake = new FakeTsvsd();
    await tsvsadm(fake, '-A -t 10.1.1.201:0 -s lc -p 1999999');
    await tsvsadm(fake, '-a -t 10.1.1.201 -r 192.168.1.1 -g');
    fake.ipvs.addDest(fake.table.services[0], { ...fake.table.services[0].dests[0], addr: '127.0.0.1', method: 'local' });
    expect((await tsvsadm(fake, '-Ln')).out.split('\n').slice(3).join('\n')).toBe(
      'TCP  10.1.1.201:0 lc persistent 1999999\n' +
      '  -> 127.0.0.1:0                  Local   1      0          0         \n' +
      '  -> 192.168.1.1:0                Route   1      0          0         \n',
    );
    expect((await tsvsadm(fake, '-Sn')).out).toBe(
      '-A -t 10.1.1.201:0 -s lc -p 1999999\n-a -t 10.1.1.201:0 -r 127.0.0.1:0 -g -w 1\n-a -t 10.1.1.201:0 -r 192.168.1.1:0 -g -w 1\n',
    );
  });

  it('output: E, fwmark persistent service', async () => {
    const fake = new FakeTsvsd();
    await tsvsadm(fake, '-A -f 1 -s rr -p');
    await tsvsadm(fake, '-a -f 1 -r 192.168.10.1:0 -m');
    expect((await tsvsadm(fake, '-Ln')).out.split('\n').slice(3).join('\n')).toBe(sample([
      'FWM  1 rr persistent 360⏎',
      '  -> 192.168.10.1:0               Masq    1      0          0         ⏎',
    ]));
  });

  it('output: F, --stats', async () => {
    const fake = new FakeTsvsd();
    await tsvsadm(fake, '-A -t 10.3.0.42:80');
    await tsvsadm(fake, '-a -t 10.3.0.42:80 -r 10.2.1.22 -m');
    const svc = fake.table.services[0];
    fake.setServiceCounters(svc, { stats: { conns: 14209, inpkts: 111769, outpkts: 74613, inbytes: 7207174, outbytes: 8334358 } });
    fake.setDestCounters(svc, svc.dests[0], { stats: { conns: 2, inpkts: 12, outpkts: 8, inbytes: 774, outbytes: 894 } });
    expect((await tsvsadm(fake, '-Ln --stats')).out).toBe(sample([
      'IP Virtual Server version 1.2.1 (size=4096)⏎',
      'Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes⏎',
      '  -> RemoteAddress:Port⏎',
      'TCP  10.3.0.42:80                    14209   111769    74613  7207174  8334358⏎',
      '  -> 10.2.1.22:80                        2       12        8      774      894⏎',
    ]));
  });

  it('output: --rate prints the dest CPS/InPPS/OutPPS with %8llu', async () => {
    const fake = new FakeTsvsd();
    await tsvsadm(fake, '-A -t 10.3.0.42:80');
    await tsvsadm(fake, '-a -t 10.3.0.42:80 -r 10.2.1.22');
    const svc = fake.table.services[0];
    fake.setServiceCounters(svc, { rate: { cps: 1, inpps: 2, outpps: 3, inbps: 123456789, outbps: 5 } });
    fake.setDestCounters(svc, svc.dests[0], { rate: { cps: 1, inpps: 2, outpps: 3, inbps: 4, outbps: 5 } });
    expect((await tsvsadm(fake, '-Ln --rate')).out.split('\n').slice(1).join('\n')).toBe(
      'Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n' +
      '  -> RemoteAddress:Port\n' +
      'TCP  10.3.0.42:80                        1        2        3  123456K        5\n' +
      '  -> 10.2.1.22:80                        1        2        3        4        5\n',
    );
  });

  it('output: G, names are resolved and truncated at 33 and 28 characters', async () => {
    const resolver = tableResolver(
      parseEtcHosts('10.0.62.121 ip-10-0-62-121.ec2.internal\n10.0.62.122 ip-10-0-62-122.ec2.internal\n'),
      parseEtcServices('http 80/tcp www\n'),
    );
    const fake = new FakeTsvsd();
    await tsvsadm(fake, '-A -t 10.0.62.121:80 -s rr');
    await tsvsadm(fake, '-a -t 10.0.62.121:80 -r 10.0.62.122 -m');
    expect((await tsvsadm(fake, '-L', { resolver })).out.split('\n').slice(3).join('\n')).toBe(
      'TCP  ip-10-0-62-121.ec2.internal: rr\n' +
      '  -> ip-10-0-62-122.ec2.internal: Masq    1      0          0         \n',
    );
    expect((await tsvsadm(fake, '-S', { resolver })).out).toBe(
      '-A -t ip-10-0-62-121.ec2.internal:http -s rr\n-a -t ip-10-0-62-121.ec2.internal:http -r ip-10-0-62-122.ec2.internal:http -m -w 1\n',
    );
  });

  it('output: H, --thresholds and --persistent-conn', async () => {
    const fake = new FakeTsvsd();
    await tsvsadm(fake, '-A -t 1.2.3.4:80');
    await tsvsadm(fake, '-a -t 1.2.3.4:80 -r 5.6.7.8 -x 100 -y 10');
    expect((await tsvsadm(fake, '-Ln --thresholds')).out.split('\n').slice(1).join('\n')).toBe(sample([
      'Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn ⏎',
      '  -> RemoteAddress:Port⏎',
      'TCP  1.2.3.4:80 wlc⏎',
      '  -> 5.6.7.8:80                   100        10         0          0         ⏎',
    ]));
    expect((await tsvsadm(fake, '-Ln --persistent-conn')).out.split('\n').slice(1).join('\n')).toBe(sample([
      'Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn ⏎',
      '  -> RemoteAddress:Port⏎',
      'TCP  1.2.3.4:80 wlc⏎',
      '  -> 5.6.7.8:80                   1         0           0          0         ⏎',
    ]));
  });

  it('output: J and --daemon', async () => {
    const fake = new FakeTsvsd();
    expect(await tsvsadm(fake, '-L -n --timeout')).toEqual({ code: 0, err: '', out: 'Timeout (tcp tcpfin udp): 900 120 300\n' });
    await tsvsadm(fake, '--start-daemon backup --mcast-group 224.0.0.81 --syncid 5');
    await tsvsadm(fake, '--start-daemon master');
    expect((await tsvsadm(fake, '-L --daemon')).out).toBe(
      'master sync daemon (mcast=eth0, syncid=0)\nbackup sync daemon (mcast=eth0, syncid=5, group=224.0.0.81)\n',
    );
  });

  it('output: K, -L -n -c header and entries', async () => {
    const fake = new FakeTsvsd();
    expect((await tsvsadm(fake, '-L -n -c')).out).toBe(sample([
      'IPVS connection entries⏎',
      'pro expire state       source             virtual            destination⏎',
    ]));
    fake.conns = [{ protocol: 'tcp', af: 4, caddr: '10.0.0.9', cport: 51000, vaddr: '1.2.3.4', vport: 80, daddr: '5.6.7.8', dport: 80, state: 'ESTABLISHED', expires: 899, template: false, pe: '', peData: '' }];
    expect((await tsvsadm(fake, '-lnc')).out.split('\n')[2]).toBe('TCP 14:59  ESTABLISHED 10.0.0.9:51000     1.2.3.4:80         5.6.7.8:80');
  });

  it('output: --tun-info and tunnel save lines (compat 03, 04)', async () => {
    const fake = new FakeTsvsd();
    for (const f of ['03-ipvsadm-man-example3-gue.txt']) for (const c of compatRules(f).commands) expect((await tsvsadm(fake, c)).code).toBe(0);
    expect((await tsvsadm(fake, '-Ln --tun-info')).out.split('\n').slice(1, 5).join('\n')).toBe(
      'Prot LocalAddress:Port Scheduler Flags\n' +
      '  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n' +
      'TCP  207.175.44.110:80 rr\n' +
      '  -> 192.168.10.1:80              Tunnel  gue:6080:-c   1      0          0         ',
    );
  });

  it('output: -S of every compat file, from its commands and from its -R stream alike', async () => {
    const expected: Record<string, string> = {
      '01-ipvsadm-man-example1-nat-rr.txt': EXAMPLE1.map((l) => (l.startsWith('-a') ? l + ' -w 1' : l)).join('\n') + '\n',
      '02-ipvsadm-man-example2-fwmark.txt':
        '-A -f 1 -s rr\n' + [1, 2, 3, 4, 5].map((i) => `-a -f 1 -r 192.168.10.${i}:0 -m -w 1\n`).join(''),
      '03-ipvsadm-man-example3-gue.txt':
        '-A -t 207.175.44.110:80 -s rr\n' +
        '-a -t 207.175.44.110:80 -r 192.168.10.1:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum\n' +
        '-a -t 207.175.44.110:80 -r 192.168.10.2:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum\n' +
        '-a -t 207.175.44.110:80 -r 192.168.10.3:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-remcsum\n' +
        '-a -t 207.175.44.110:80 -r 192.168.10.4:80 -i -w 1 --tun-type gue --tun-port 6078 --tun-nocsum\n' +
        '-a -t 207.175.44.110:80 -r 192.168.10.5:80 -i -w 1 --tun-type gue --tun-port 6079 --tun-nocsum\n',
      '04-ipvsadm-man-example4-gre.txt':
        '-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 192.168.11.1:80 -i -w 1 --tun-type gre --tun-csum\n',
    };
    expect(readdirSync(compatDir).sort()).toEqual(Object.keys(expected));
    for (const [file, save] of Object.entries(expected)) {
      const { commands, streams } = compatRules(file);
      const viaCommands = new FakeTsvsd();
      for (const c of commands) expect(await tsvsadm(viaCommands, c), `${file}: ${c.join(' ')}`).toMatchObject({ code: 0, err: '' });
      expect((await tsvsadm(viaCommands, '-S -n')).out, file).toBe(save);
      for (const stream of streams) {
        const viaStream = new FakeTsvsd();
        expect(await tsvsadm(viaStream, '-R', { stdin: stream }), file).toMatchObject({ code: 0, err: '' });
        expect((await tsvsadm(viaStream, '-S -n')).out, file).toBe(save);
      }
    }
  });

  it('output: kernel errors print the call-specific message and exit 255', async () => {
    const fake = new FakeTsvsd();
    await tsvsadm(fake, '-A -t 1.2.3.4:80');
    expect(await tsvsadm(fake, '-A -t 1.2.3.4:80')).toEqual({ code: 255, out: '', err: 'Service already exists\n' });
    expect(await tsvsadm(fake, '-A -t 1.2.3.5:80 -s nope')).toEqual({ code: 255, out: '', err: 'Scheduler or persistence engine not found\n' });
    expect(await tsvsadm(fake, '-E -t 1.2.3.5:80')).toEqual({ code: 255, out: '', err: 'No such service\n' });
    expect(await tsvsadm(fake, '-D -t 1.2.3.5:80')).toEqual({ code: 255, out: '', err: 'No such service\n' });
    expect(await tsvsadm(fake, '-a -t 1.2.3.5:80 -r 1.1.1.1')).toEqual({ code: 255, out: '', err: 'Service not defined\n' });
    await tsvsadm(fake, '-a -t 1.2.3.4:80 -r 1.1.1.1');
    expect(await tsvsadm(fake, '-a -t 1.2.3.4:80 -r 1.1.1.1')).toEqual({ code: 255, out: '', err: 'Destination already exists\n' });
    expect(await tsvsadm(fake, '-e -t 1.2.3.4:80 -r 1.1.1.2')).toEqual({ code: 255, out: '', err: 'No such destination\n' });
    expect(await tsvsadm(fake, '-d -t 1.2.3.4:80 -r 1.1.1.2')).toEqual({ code: 255, out: '', err: 'No such destination\n' });
    expect(await tsvsadm(fake, '-a -t 1.2.3.4:80 -r 1.1.1.3 -x 1 -y 2')).toEqual({ code: 255, out: '', err: 'Numerical result out of range\n' });
    expect(await tsvsadm(fake, '--stop-daemon master')).toEqual({ code: 255, out: '', err: 'No daemon is running\n' });
    await tsvsadm(fake, '--start-daemon master');
    expect(await tsvsadm(fake, '--start-daemon master')).toEqual({ code: 255, out: '', err: 'Daemon has already run\n' });
  });

  it('output: listing a missing service prints "No such service" and exits 1', async () => {
    expect(await tsvsadm(new FakeTsvsd(), '-L -t 1.2.3.4:80')).toEqual({ code: 1, out: '', err: 'No such service\n' });
  });

  it('output: -h, -v and tryhelp', async () => {
    const h = await tsvsadm(new FakeTsvsd(), '-h');
    expect(h.code).toBe(0);
    expect(h.out.startsWith('ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\nUsage:\n  ipvsadm -A|E virtual-service')).toBe(true);
    expect(h.out.endsWith('  --mcast-ttl ttl                     Multicast TTL (default=1)\n')).toBe(true);
    expect(await tsvsadm(new FakeTsvsd(), '-v')).toEqual({ code: 0, err: '', out: 'ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\n' });
    expect(await tsvsadm(new FakeTsvsd(), '-t 1.2.3.4:80')).toEqual({ code: 255, out: '', err: "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n" });
  });

  it('output: -R stops at a "#" line with 255, at a validation error with 2, and goes on after kernel errors', async () => {
    const fake = new FakeTsvsd();
    const r1 = await tsvsadm(fake, '-R', { stdin: '# emtpy rules file for ipvsadm\n-A -t 1.2.3.4:80\n' });
    expect(r1).toEqual({ code: 255, out: '', err: "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n" });
    expect(fake.table.services).toHaveLength(0);
    const r2 = await tsvsadm(fake, '-R', { stdin: 'ipvsadm -A -t 1.2.3.4:80\n-a -t 1.2.3.4:80 -r 1.1.1.1 -w 70000\n-A -t 1.2.3.5:80\n' });
    expect(r2).toEqual({ code: 2, out: '', err: 'illegal weight specified\n' });
    expect(fake.table.services).toHaveLength(1);
    const r3 = await tsvsadm(fake, '-R', { stdin: '-A -t 1.2.3.4:80\n\n-A\t-t 1.2.3.6:80\r\n-L --bogus\n-A -t 1.2.3.7:80' });
    expect(r3).toEqual({ code: 0, out: '', err: 'Service already exists\n--bogus: unknown option\n' });
    expect(fake.table.services.map((s) => s.addr)).toEqual(['1.2.3.4', '1.2.3.6', '1.2.3.7']);
    const r4 = await tsvsadm(fake, '-R', { stdin: '-A -t 1.2.3.8:80\n-A -t 1.2.3.4:80\n' });
    expect(r4.code).toBe(255);
  });

  it('output: --nosort keeps kernel order; sorting has the libipvs overflow quirk', async () => {
    const fake = new FakeTsvsd();
    for (const a of ['10.0.0.1', '192.168.1.1', '10.0.0.2']) await tsvsadm(fake, `-A -t ${a}:80`);
    await tsvsadm(fake, '-a -t 10.0.0.1:80 -r 10.1.1.1 -m');
    await tsvsadm(fake, '-a -t 10.0.0.1:80 -r 10.1.1.2 -m');
    const names = (out: string): string[] => out.split('\n').filter((l) => /^(-A|-a)/.test(l)).map((l) => l.split(' ')[l.startsWith('-a') ? 4 : 2]);
    expect(names((await tsvsadm(fake, '-Sn')).out)).toEqual(['192.168.1.1:80', '10.0.0.1:80', '10.1.1.1:80', '10.1.1.2:80', '10.0.0.2:80']);
    const listed = (await tsvsadm(fake, '-Ln --nosort')).out.split('\n').slice(3, -1).map((l) => l.split(/\s+/)[l.startsWith('TCP') ? 1 : 2]);
    expect(listed).toEqual(['10.0.0.1:80', '10.1.1.2:80', '10.1.1.1:80', '192.168.1.1:80', '10.0.0.2:80']);
  });
});

describe('ipvsadm format pieces', () => {
  const svc = (addr: string, extra: Partial<ServiceSnapshot> = {}): ServiceSnapshot => ({
    af: 4, protocol: 'tcp', addr, port: 80, fwmark: 0, scheduler: 'wlc', flags: 0, timeout: 0, netmask: '255.255.255.255', pe: '',
    dests: [], stats: zeroStats(), rate: zeroRates(), ...extra,
  });

  it('format: the service comparator overflows like (int)(a - b)', () => {
    expect(cmpServices(svc('192.168.1.1'), svc('10.0.0.1'))).toBeLessThan(0);
    expect(cmpServices(svc('10.0.0.1'), svc('10.0.0.2'))).toBeLessThan(0);
    expect(glibcMsort([svc('10.0.0.1'), svc('192.168.1.1')], cmpServices).map((s) => s.addr)).toEqual(['192.168.1.1', '10.0.0.1']);
    expect(glibcMsort([svc('1.1.1.1', { fwmark: 2 }), svc('1.1.1.1', { protocol: 'udp' }), svc('1.1.1.1')], cmpServices).map((s) => [s.fwmark, s.protocol])).toEqual([
      [0, 'tcp'], [0, 'udp'], [2, 'tcp'],
    ]);
  });

  it('format: print_largenum boundaries', () => {
    expect(printLargenum(0, false)).toBe('        0');
    expect(printLargenum(99999999, false)).toBe(' 99999999');
    expect(printLargenum(100000000, false)).toBe('  100000K');
    expect(printLargenum(999999999, false)).toBe('  999999K');
    expect(printLargenum(1e9, false)).toBe('    1000M');
    expect(printLargenum(99999999999, false)).toBe('   99999M');
    expect(printLargenum(1e11, false)).toBe('     100G');
    expect(printLargenum(1e14 - 1, false)).toBe('   99999G');
    expect(printLargenum(1e14, false)).toBe('     100T');
    expect(printLargenum(12345678, true)).toBe(' 12345678');
    expect(printLargenum(123456789, true)).toBe(' 123456789');
  });

  it('format: service flags, mask, pe and ops on the list and save lines', async () => {
    const fake = new FakeTsvsd();
    await tsvsadm(fake, '-A -u 1.2.3.4:53 -s sh -b sh-port -p 60 -M 255.255.0.0 --pe sip -o');
    await tsvsadm(fake, '-A -f 5 -6 -s rr -p -M 64 -b flag-2');
    const list = (await tsvsadm(fake, '-Ln')).out.split('\n').slice(3).join('\n');
    expect(list).toBe('UDP  1.2.3.4:53 sh (sh-port) persistent 60 mask 255.255.0.0 pe sip ops\nFWM  5 IPv6 rr (flag-2) persistent 360 mask 64\n');
    expect((await tsvsadm(fake, '-Sn')).out).toBe('-A -u 1.2.3.4:53 -s sh -p 60 -M 255.255.0.0 --pe sip -o -b sh-port\n-A -f 5 -6 -s rr -p 360 -M 64 -b flag-2\n');
  });

  it('format: the -R tokenizer splits on blanks and drops ipvsadm tokens', () => {
    expect(tokenizeRestoreStream('ipvsadm -A\t-t 1.2.3.4:80\r\n\n  \n-C')).toEqual([['ipvsadm', '-A', '-t', '1.2.3.4:80'], ['ipvsadm', '-C']]);
  });
});
