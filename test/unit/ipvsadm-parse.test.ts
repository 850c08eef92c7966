// ipvsadm parser: grammar, defaults, the command/option table and every validation message with its exit code.
import { describe, expect, it } from 'vitest';
import { parseArgs } from '../../shared/ipvsadm/parse.ts';
import type { Command, ParseResult } from '../../shared/ipvsadm/parse.ts';
import { numericResolver, parseEtcServices, tableResolver, parseEtcHosts } from '../../shared/ipvsadm/names.ts';

const resolver = tableResolver(
  parseEtcHosts('127.0.0.1 localhost\n10.9.8.7 web1.example web1\n'),
  parseEtcServices('http 80/tcp www\nhttp 80/udp\ndomain 53/udp\n'),
);

function p(line: string, readingStdin = false): ParseResult {
  return parseArgs(['ipvsadm', ...line.split(' ').filter(Boolean)], { resolver, readingStdin });
}

function cmd(line: string): Command {
  const r = p(line);
  if (r.kind !== 'command') throw new Error(`expected a command for "${line}", got ${JSON.stringify(r)}`);
  return r.command;
}

function failure(line: string): [number | 'error', string] {
  const r = p(line);
  if (r.kind === 'command') throw new Error(`expected a failure for "${line}"`);
  return [r.kind === 'exit' ? r.code : 'error', r.stderr];
}

describe('ipvsadm parse', () => {
  it('parse: -A applies wlc, no persistence and the /32 mask', () => {
    expect(cmd('-A -t 10.0.0.1:80')).toEqual({
      kind: 'add-service',
      svc: { af: 4, protocol: 'tcp', addr: '10.0.0.1', port: 80, fwmark: 0, scheduler: 'wlc', flags: 0, timeout: 0, netmask: '255.255.255.255', pe: '' },
    });
  });

  it('parse: -E rebuilds the whole service (wlc, persistence cleared)', () => {
    expect(cmd('-E -t 10.0.0.1:80')).toMatchObject({ kind: 'edit-service', svc: { scheduler: 'wlc', flags: 0 } });
  });

  it('parse: bundled short options -At and -Ln and -lnc', () => {
    expect(cmd('-At 1.2.3.4:80 -s rr')).toMatchObject({ kind: 'add-service', svc: { addr: '1.2.3.4', port: 80, scheduler: 'rr' } });
    expect(cmd('-Ln')).toMatchObject({ kind: 'list', target: { type: 'all' }, format: { numeric: true } });
    expect(cmd('-lnc')).toMatchObject({ kind: 'list', target: { type: 'conns' }, format: { numeric: true } });
  });

  it('parse: long forms and --opt=value', () => {
    expect(cmd('--add-service --tcp-service=1.2.3.4:80 --scheduler=rr --persistent=60')).toMatchObject({
      svc: { scheduler: 'rr', flags: 1, timeout: 60 },
    });
  });

  it('parse: -p takes an optional value, 360 without it', () => {
    expect(cmd('-A -t 1.2.3.4:0 -p')).toMatchObject({ svc: { flags: 1, timeout: 360 } });
    expect(cmd('-A -t 1.2.3.4:0 -p -s rr')).toMatchObject({ svc: { flags: 1, timeout: 360, scheduler: 'rr' } });
    expect(cmd('-A -t 1.2.3.4:0 -p 120')).toMatchObject({ svc: { timeout: 120 } });
    expect(cmd('-A -t 1.2.3.4:0 -p120')).toMatchObject({ svc: { timeout: 120 } });
    expect(failure('-A -t 1.2.3.4:0 -p 0')).toEqual([2, "invalid timeout value `0' specified\n"]);
    expect(failure('-A -t 1.2.3.4:0 -p 2678401')).toEqual([2, "invalid timeout value `2678401' specified\n"]);
  });

  it('parse: -a defaults to DR, weight 1, and forces DR/TUN ports to the service port', () => {
    expect(cmd('-a -t 10.0.0.1:80 -r 192.168.1.1:8080')).toEqual({
      kind: 'add-dest',
      key: { af: 4, protocol: 'tcp', addr: '10.0.0.1', port: 80, fwmark: 0 },
      dest: { af: 4, addr: '192.168.1.1', port: 80, method: 'route', weight: 1, uThreshold: 0, lThreshold: 0, tunType: 'ipip', tunPort: 0, tunCsum: '' },
    });
    expect(cmd('-a -t 10.0.0.1:80 -r 192.168.1.1:8080 -i')).toMatchObject({ dest: { port: 80, method: 'tunnel' } });
    expect(cmd('-a -t 10.0.0.1:80 -r 192.168.1.1:8080 -m')).toMatchObject({ dest: { port: 8080, method: 'masq' } });
  });

  it('parse: -r without a port copies the service port parsed so far', () => {
    expect(cmd('-a -t 10.0.0.1:80 -r 192.168.1.1 -m')).toMatchObject({ dest: { port: 80 } });
    expect(cmd('-a -r 192.168.1.1 -m -t 10.0.0.1:80')).toMatchObject({ dest: { port: 0 } });
  });

  it('parse: -e resets weight, method and thresholds', () => {
    expect(cmd('-e -t 10.0.0.1:80 -r 192.168.1.1')).toMatchObject({ kind: 'edit-dest', dest: { weight: 1, method: 'route', uThreshold: 0, lThreshold: 0 } });
  });

  it('parse: -d keeps the given port (no DR forcing)', () => {
    expect(cmd('-d -t 10.0.0.1:80 -r 192.168.1.1:81')).toEqual({
      kind: 'del-dest', key: { af: 4, protocol: 'tcp', addr: '10.0.0.1', port: 80, fwmark: 0 }, dest: { af: 4, addr: '192.168.1.1', port: 81 },
    });
  });

  it('parse: host and service names go through the resolver', () => {
    expect(cmd('-A -t web1:http')).toMatchObject({ svc: { addr: '10.9.8.7', port: 80 } });
    expect(cmd('-A -t web1:www')).toMatchObject({ svc: { port: 80 } });
    expect(cmd('-A -u 1.2.3.4:domain')).toMatchObject({ svc: { protocol: 'udp', port: 53 } });
    expect(failure('-A -t 1.2.3.4:domain')).toEqual([2, 'illegal virtual server address[:port] specified\n']);
    expect(failure('-A -t nosuchhost:80')).toEqual([2, 'illegal virtual server address[:port] specified\n']);
  });

  it('parse: IPv6 [addr]:port, the /128 mask and -M as a prefix', () => {
    expect(cmd('-A -t [2001:DB8:0:0::1]:80 -p -M 64')).toMatchObject({ svc: { af: 6, addr: '2001:db8::1', port: 80, netmask: '64' } });
    expect(cmd('-A -t [::1]:80')).toMatchObject({ svc: { netmask: '128' } });
    expect(failure('-A -t [::1]')).toEqual([2, 'illegal virtual server address[:port] specified\n']);
    expect(failure('-A -t [::1]:80 -p -M 129')).toEqual([2, 'illegal ipv6 netmask specified\n']);
  });

  it('parse: a bare number is not a service address', () => {
    expect(failure('-A -t 80')).toEqual([2, 'illegal virtual server address[:port] specified\n']);
    expect(failure('-a -t 1.2.3.4:80 -r 80')).toEqual([2, 'illegal real server address[:port] specified\n']);
  });

  it('parse: -f fwmark, -6 only after -f', () => {
    expect(cmd('-A -f 1 -s rr')).toMatchObject({ svc: { fwmark: 1, addr: '', port: 0, af: 4, protocol: 'tcp' } });
    expect(cmd('-A -f 7 -6')).toMatchObject({ svc: { fwmark: 7, af: 6, netmask: '128' } });
    expect(failure('-A -6 -f 1')).toEqual([2, '-6 used before -f\n\n']);
    expect(failure('-A -f 0')).toEqual([2, "invalid fwmark value `0' specified\n"]);
    expect(failure('-A -f 4294967296')).toEqual([2, "invalid fwmark value `4294967296' specified\n"]);
  });

  it('parse: -M dotted mask for IPv4', () => {
    expect(cmd('-A -t 1.2.3.4:80 -p -M 255.255.255.0')).toMatchObject({ svc: { netmask: '255.255.255.0' } });
    expect(failure('-A -t 1.2.3.4:80 -p -M bogus')).toEqual([2, 'illegal virtual server persistent mask specified\n']);
  });

  it('parse: the first option must be a command (tryhelp, 255)', () => {
    const help = "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n";
    expect(failure('-t 1.2.3.4:80 -A')).toEqual([255, help]);
    expect(failure('foo')).toEqual([255, help]);
    expect(failure('--bogus')).toEqual([255, help]);
    expect(failure('# a comment')).toEqual([255, help]);
  });

  it('parse: popt errors after the command are "<token>: <reason>"', () => {
    expect(failure('-L --bogus')).toEqual(['error', '--bogus: unknown option\n']);
    expect(failure('-Lq')).toEqual(['error', '-Lq: unknown option\n']);
    expect(failure('-A -t')).toEqual(['error', '-t: missing argument\n']);
    expect(failure('-L --stats=1')).toEqual(['error', '--stats=1: option does not take an argument\n']);
  });

  it('parse: a second command is an invalid option (ipvsadm 1.31 never reaches "multiple commands specified")', () => {
    expect(failure('-A -E -t 1.2.3.4:80')).toEqual([2, "invalid option `-E'\n"]);
  });

  it('parse: repeated options', () => {
    expect(failure('-A -t 1.2.3.4:80 -s rr -s wrr')).toEqual([2, "multiple 'scheduler' options specified\n"]);
    expect(failure('-A -t 1.2.3.4:80 -f 1')).toEqual([2, "multiple 'service-address' options specified\n"]);
    expect(failure('-a -t 1.2.3.4:80 -r 1.1.1.1 -m -g')).toEqual([2, "multiple 'forwarding-method' options specified\n"]);
  });

  it('parse: the commands_v_options table messages', () => {
    expect(failure('-a -t 1.2.3.4:80')).toEqual([2, "You need to supply the 'real-server' option for the 'add-server' command\n"]);
    expect(failure('-a -r 1.1.1.1')).toEqual([2, "You need to supply the 'service-address' option for the 'add-server' command\n"]);
    expect(failure('-A -t 1.2.3.4:80 -m')).toEqual([2, "Illegal 'forwarding-method' option with the 'add-service' command\n"]);
    expect(failure('-L -c --timeout')).toEqual([2, "The option 'timeout' conflicts with the 'connection' option in the 'list' command\n"]);
    expect(failure('-L -t 1.2.3.4:80 --daemon')).toEqual([2, "The option 'daemon' conflicts with the 'service-address' option in the 'list' command\n"]);
    expect(failure('-S -c')).toEqual([2, "Illegal 'connection' option with the 'save' command\n"]);
    expect(failure('-C -n')).toEqual([2, "Illegal 'numeric' option with the 'flush' command\n"]);
    expect(failure('-d -t 1.2.3.4:80 -r 1.1.1.1 -w 2')).toEqual([2, "Illegal 'weight' option with the 'delete-server' command\n"]);
  });

  it('parse: list option conflicts', () => {
    expect(failure('-L -c --stats')).toEqual([2, 'options conflicts in the list command\n']);
    expect(failure('-L --timeout --persistent-conn')).toEqual([2, 'options conflicts in the list command\n']);
  });

  it('parse: weight, thresholds and their limits', () => {
    expect(failure('-a -t 1.2.3.4:80 -r 1.1.1.1 -w 70000')).toEqual([2, 'illegal weight specified\n']);
    expect(failure('-a -t 1.2.3.4:80 -r 1.1.1.1 -w -1')).toEqual([2, 'illegal weight specified\n']);
    expect(cmd('-a -t 1.2.3.4:80 -r 1.1.1.1 -w 0 -x 70000 -y 5')).toMatchObject({ dest: { weight: 0, uThreshold: 70000, lThreshold: 5 } });
    expect(failure('-a -t 1.2.3.4:80 -r 1.1.1.1 -x 2147483648')).toEqual([2, 'illegal u_threshold specified\n']);
    expect(failure('-a -t 1.2.3.4:80 -r 1.1.1.1 -y x')).toEqual([2, 'illegal l_threshold specified\n']);
  });

  it('parse: zero port needs persistence unless fwmark', () => {
    expect(failure('-A -t 1.2.3.4')).toEqual([2, 'Zero port specified for non-persistent service\n']);
    expect(failure('-A -t 1.2.3.4:0')).toEqual([2, 'Zero port specified for non-persistent service\n']);
    expect(cmd('-A -t 1.2.3.4 -p')).toMatchObject({ svc: { port: 0, flags: 1 } });
  });

  it('parse: -o only for UDP and fwmark services', () => {
    expect(failure('-A -t 1.2.3.4:80 -o')).toEqual([2, 'One-Packet Scheduling is only for UDP virtual services\n']);
    expect(cmd('-A -u 1.2.3.4:53 -o')).toMatchObject({ svc: { flags: 4 } });
    expect(cmd('-A -f 3 -o')).toMatchObject({ svc: { flags: 4 } });
  });

  it('parse: -b flags against the scheduler', () => {
    expect(cmd('-A -t 1.2.3.4:80 -s sh -b sh-fallback,sh-port')).toMatchObject({ svc: { flags: 0x18 } });
    expect(cmd('-A -t 1.2.3.4:80 -b flag-1,flag-3')).toMatchObject({ svc: { flags: 0x28 } });
    expect(cmd('-A -t 1.2.3.4:80 -b mh-port -s mh')).toMatchObject({ svc: { flags: 0x10 } });
    expect(failure('-A -t 1.2.3.4:80 -b sh-port')).toEqual([2, "incompatible scheduler flag `sh-port'\n"]);
    expect(failure('-A -t 1.2.3.4:80 -s sh -b bogus')).toEqual([2, "invalid scheduler flag `bogus'\n"]);
  });

  it('parse: tunnel options', () => {
    expect(cmd('-a -t 1.2.3.4:80 -r 1.1.1.1 -i --tun-type gue --tun-port 6080 --tun-csum')).toMatchObject({
      dest: { method: 'tunnel', tunType: 'gue', tunPort: 6080, tunCsum: 'csum' },
    });
    expect(failure('-a -t 1.2.3.4:80 -r 1.1.1.1 -m --tun-type gue')).toEqual([2, 'Tunnel options conflict with forward method\n']);
    expect(failure('-a -t 1.2.3.4:80 -r 1.1.1.1 -i --tun-type gue')).toEqual([2, "You need to supply the 'tun-port' option for the 'gue' tunnel type\n"]);
    expect(failure('-a -t 1.2.3.4:80 -r 1.1.1.1 -i --tun-port 1')).toEqual([2, "Illegal 'tun-port' option with the 'ipip' tunnel type\n"]);
    expect(failure('-a -t 1.2.3.4:80 -r 1.1.1.1 -i --tun-type gre --tun-remcsum')).toEqual([2, "Illegal 'tun-remcsum' option with the 'gre' tunnel type\n"]);
    expect(failure('-a -t 1.2.3.4:80 -r 1.1.1.1 -i --tun-type gue --tun-port 1 --tun-csum --tun-nocsum')).toEqual([
      2, "The option 'tun-csum' conflicts with the 'tun-nocsum' option in the 'gue' tunnel type\n",
    ]);
    expect(failure('-a -t 1.2.3.4:80 -r 1.1.1.1 -i --tun-type vxlan')).toEqual([2, 'illegal tunnel type specified\n']);
  });

  it('parse: address family mismatch only for tunnels', () => {
    expect(failure('-a -t 1.2.3.4:80 -r [::1]:80')).toEqual([2, 'Different address family is allowed only for tunneling servers\n']);
    expect(cmd('-a -t 1.2.3.4:80 -r [::1]:80 -i')).toMatchObject({ dest: { af: 6, addr: '::1', port: 80 } });
  });

  it('parse: --set needs three values, then no more', () => {
    expect(cmd('--set 10 20 30')).toEqual({ kind: 'set-timeout', tcp: 10, tcpfin: 20, udp: 30 });
    expect(failure('--set 10 20')).toEqual([2, '--set option requires 3 timeout values\n']);
    expect(failure('--set 10 20 30 40')).toEqual([2, 'unexpected argument 40\n']);
    expect(failure('--set 10 20 x')).toEqual([2, "invalid timeout value `x' specified\n"]);
  });

  it('parse: leftover arguments', () => {
    expect(failure('-A -t 1.2.3.4:80 -s rr # note')).toEqual([2, 'unexpected argument #\n']);
  });

  it('parse: daemon commands and options', () => {
    expect(cmd('--start-daemon master')).toEqual({
      kind: 'start-daemon', daemon: { state: 'master', mcastIfn: 'eth0', syncid: 0, maxlen: 0, group: '', port: 0, ttl: 0 },
    });
    expect(cmd('--start-daemon=backup --mcast-interface eth1 --syncid 9 --mcast-group 224.0.0.82 --mcast-port 8849 --mcast-ttl 2 --sync-maxlen 1400')).toMatchObject({
      daemon: { state: 'backup', mcastIfn: 'eth1', syncid: 9, group: '224.0.0.82', port: 8849, ttl: 2, maxlen: 1400 },
    });
    expect(cmd('--stop-daemon master --syncid 3')).toEqual({ kind: 'stop-daemon', state: 'master', syncid: 3 });
    expect(failure('--start-daemon primary')).toEqual([2, 'illegal start-daemon parameter specified\n']);
    expect(failure('--stop-daemon primary')).toEqual([2, 'illegal start_daemon specified\n']);
    expect(failure('--start-daemon master --syncid 256')).toEqual([2, 'illegal syncid specified\n']);
    expect(failure('--start-daemon master --mcast-group 10.0.0.1')).toEqual([2, "invalid IPv4 mcast-group `10.0.0.1'\n"]);
    expect(failure('--start-daemon master --mcast-group fe80::1')).toEqual([2, "invalid IPv6 mcast-group `fe80::1'\n"]);
    expect(failure('--start-daemon master --mcast-port 0')).toEqual([2, 'illegal mcast-port specified\n']);
    expect(failure('--start-daemon master --mcast-ttl 256')).toEqual([2, 'illegal mcast-ttl specified\n']);
    expect(failure('--start-daemon master --sync-maxlen 65508')).toEqual([2, 'illegal sync-maxlen specified\n']);
    expect(failure('--stop-daemon master --mcast-ttl 2')).toEqual([2, "Illegal 'mcast-ttl' option with the 'stop-daemon' command\n"]);
  });

  it('parse: list targets, -Z, -h, -v, bare ipvsadm', () => {
    expect(cmd('-L -t 1.2.3.4:80')).toMatchObject({ target: { type: 'service', key: { addr: '1.2.3.4', port: 80 } } });
    expect(cmd('-L --timeout')).toMatchObject({ target: { type: 'timeout' } });
    expect(cmd('-L --daemon')).toMatchObject({ target: { type: 'daemon' } });
    expect(cmd('-Z')).toEqual({ kind: 'zero' });
    expect(cmd('-Z -f 2')).toMatchObject({ kind: 'zero', key: { fwmark: 2 } });
    expect(cmd('-h')).toEqual({ kind: 'help' });
    expect(cmd('-v --bogus')).toEqual({ kind: 'version' });
    expect(cmd('')).toMatchObject({ kind: 'list', target: { type: 'all' }, format: { numeric: false } });
    expect(cmd('-L --sort --nosort --exact')).toMatchObject({ format: { nosort: true, exact: true } });
  });

  it('parse: -R inside a -R stream is refused with tryhelp', () => {
    expect(p('-R', true)).toEqual({ kind: 'exit', code: 255, stderr: "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n" });
    expect(p('-R')).toEqual({ kind: 'command', command: { kind: 'restore' } });
  });

  it('parse: the scheduler name is not validated here', () => {
    expect(parseArgs(['ipvsadm', '-A', '-t', '1.2.3.4:80', '-s', 'twos'], { resolver: numericResolver })).toMatchObject({ command: { svc: { scheduler: 'twos' } } });
  });
});
