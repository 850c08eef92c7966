// tsvsadm-e2e: the real ops/bin/tsvsadm (and tsvsadm-save/-restore) against the real tsvsd, byte for byte (needs root).
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../..');
const BIN = join(root, 'ops/bin');
const TSVSD = join(BIN, 'tsvsd');
/** Copies of /work/shared/compat/ipvsadm (ipvsadm.8 examples, 4-line provenance header kept). */
const compatDir = resolve(import.meta.dirname, '../fixtures/ipvsadm');

const NOT_ROOT =
  'tsvsadm-e2e: these tests must run as root — they start the real tsvsd, which refuses to start without root ' +
  'because its admin socket is root-only. Run the suite as root (CI does).';

interface Result {
  code: number | null;
  out: string;
  err: string;
}

/**
 * The children's environment. NODE_COMPILE_CACHE lets the ~130 tsvsadm processes share Node's compiled (and
 * type-stripped) modules: about 45 ms a run instead of 200, which keeps this file well inside its time budget.
 */
function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, NODE_COMPILE_CACHE: join(dir, 'node-compile-cache'), ...extra };
}

interface Daemon {
  proc: ChildProcess;
  sock: string;
  exited: Promise<number | null>;
}

/** Starts `tsvsd --socket <sock>` (no --client-if: table only) and waits for its "ready" line. */
function startTsvsd(sock: string): Promise<Daemon> {
  const proc = spawn(TSVSD, ['--socket', sock], { stdio: ['ignore', 'ignore', 'pipe'], env: childEnv() });
  let err = '';
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return new Promise((ok, fail) => {
    proc.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      if (/\] ready /.test(err)) ok({ proc, sock, exited });
    });
    void exited.then((code) => fail(new Error(`tsvsd exited ${code} before it was ready:\n${err}`)));
  });
}

async function stopTsvsd(d: Daemon | undefined): Promise<void> {
  if (!d || d.proc.exitCode !== null) return;
  d.proc.kill('SIGTERM');
  await d.exited;
}

/** Runs one of ops/bin's programs with TSVS_ADMIN_SOCKET=<sock>, feeding `stdin`; resolves with status and output. */
function runBin(prog: string, args: readonly string[], sock: string, stdin = '', uid?: number): Promise<Result> {
  const as = uid === undefined ? {} : { uid, gid: uid };
  const proc = spawn(join(BIN, prog), args, { stdio: ['pipe', 'pipe', 'pipe'], env: childEnv({ TSVS_ADMIN_SOCKET: sock }), ...as });
  let out = '';
  let err = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  proc.stdin?.on('error', () => {}); // a program that does not read stdin may exit first (EPIPE)
  proc.stdin?.end(stdin);
  return new Promise((r) => proc.once('close', (code) => r({ code, out, err })));
}

/** `tsvsadm <line>`; a string is split on spaces. */
function tsvsadm(sock: string, line: string | readonly string[], stdin = ''): Promise<Result> {
  return runBin('tsvsadm', typeof line === 'string' ? line.split(' ').filter(Boolean) : line, sock, stdin);
}

/** Runs a command that must succeed silently. */
async function ok(sock: string, line: string | readonly string[], stdin = ''): Promise<void> {
  expect(await tsvsadm(sock, line, stdin), `tsvsadm ${String(line)}`).toEqual({ code: 0, out: '', err: '' });
}

/** stdout of a command that must succeed without stderr. */
async function out(sock: string, line: string | readonly string[]): Promise<string> {
  const r = await tsvsadm(sock, line);
  expect({ code: r.code, err: r.err }, `tsvsadm ${String(line)}`).toEqual({ code: 0, err: '' });
  return r.out;
}

/** Turns the spec's ⏎-marked sample lines into the exact text. */
function sample(lines: string[]): string {
  return lines.map((l) => l.replace(/⏎$/, '') + '\n').join('');
}

/**
 * The rule lines of a compat file as the shell would run them: `\`-newline continuations removed (also inside the
 * double-quoted echo), then the `ipvsadm …` command lines (without `ipvsadm`) and the `echo "…" | ipvsadm -R` streams.
 */
function compatRules(file: string): { commands: string[][]; streams: string[] } {
  const text = readFileSync(join(compatDir, file), 'utf8');
  const marker = '# ---- verbatim below ----\n';
  const at = text.indexOf(marker);
  if (at < 0) throw new Error(`${file}: no verbatim marker`);
  const body = text.slice(at + marker.length).replace(/\\\n/g, '');
  const echo = /echo "([^"]*)" \| ipvsadm -R/g;
  const streams = [...body.matchAll(echo)].map((m) => m[1]);
  const commands: string[][] = [];
  for (const line of body.replace(echo, '').split('\n')) {
    if (line.startsWith('ipvsadm ')) commands.push(line.split(/\s+/).filter(Boolean).slice(1));
  }
  return { commands, streams };
}

/** What `-S -n` prints after each compat file's rules (ipvsadm.c save format: -w and the method always written). */
const SAVED: Record<string, string> = {
  '01-ipvsadm-man-example1-nat-rr.txt': sample([
    '-A -t 207.175.44.110:80 -s rr',
    ...[1, 2, 3, 4, 5].map((i) => `-a -t 207.175.44.110:80 -r 192.168.10.${i}:80 -m -w 1`),
  ]),
  '02-ipvsadm-man-example2-fwmark.txt': sample([
    '-A -f 1 -s rr',
    ...[1, 2, 3, 4, 5].map((i) => `-a -f 1 -r 192.168.10.${i}:0 -m -w 1`),
  ]),
  '03-ipvsadm-man-example3-gue.txt': sample([
    '-A -t 207.175.44.110:80 -s rr',
    '-a -t 207.175.44.110:80 -r 192.168.10.1:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum',
    '-a -t 207.175.44.110:80 -r 192.168.10.2:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum',
    '-a -t 207.175.44.110:80 -r 192.168.10.3:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-remcsum',
    // GUE without a checksum option is saved with --tun-nocsum (tun_flags_opts[0] in print_tunnel_rule).
    '-a -t 207.175.44.110:80 -r 192.168.10.4:80 -i -w 1 --tun-type gue --tun-port 6078 --tun-nocsum',
    '-a -t 207.175.44.110:80 -r 192.168.10.5:80 -i -w 1 --tun-type gue --tun-port 6079 --tun-nocsum',
  ]),
  '04-ipvsadm-man-example4-gre.txt': sample([
    '-A -t 10.0.0.1:80 -s rr',
    '-a -t 10.0.0.1:80 -r 192.168.11.1:80 -i -w 1 --tun-type gre --tun-csum',
  ]),
};

/** Spec §5 C: `-L -n` after EXAMPLE 1. */
const SAMPLE_C = sample([
  'IP Virtual Server version 1.2.1 (size=4096)⏎',
  'Prot LocalAddress:Port Scheduler Flags⏎',
  '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn⏎',
  'TCP  207.175.44.110:80 rr⏎',
  '  -> 192.168.10.1:80              Masq    1      0          0         ⏎',
  '  -> 192.168.10.2:80              Masq    1      0          0         ⏎',
  '  -> 192.168.10.3:80              Masq    1      0          0         ⏎',
  '  -> 192.168.10.4:80              Masq    1      0          0         ⏎',
  '  -> 192.168.10.5:80              Masq    1      0          0         ⏎',
]);

const HEADER = 'IP Virtual Server version 1.2.1 (size=4096)\n';
const TITLE = 'Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n';
const TRYHELP = "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n";
const INIT_FAILURE = "Can't initialize ipvs: Protocol not available\nAre you sure that IP Virtual Server is built in the kernel or as module?\n";
const VERSION = 'ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\n';

let dir = '';
const IS_ROOT = process.getuid?.() === 0;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tsvsadm-e2e-'));
});
// Without root every test FAILS with the reason (a throwing beforeAll would only mark them skipped).
beforeEach(() => {
  if (!IS_ROOT) throw new Error(NOT_ROOT);
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const FIXTURES = readdirSync(compatDir).filter((f) => f.endsWith('.txt')).sort();

/** A describe block with its own tsvsd: blocks run side by side, the tests inside one run in order. */
function suite(name: string, body: () => void): void {
  describe.concurrent(name, () => {
    describe('in order', { concurrent: false }, body);
  });
}

suite('tsvsadm-e2e: compat files replayed, saved and restored', () => {
  let d: Daemon | undefined;
  let sock = '';
  beforeAll(async () => {
    sock = join(dir, 'compat', 'tsvsd.sock');
    if (IS_ROOT) d = await startTsvsd(sock);
  });
  afterAll(() => stopTsvsd(d));

  it('tsvsadm-e2e: the four ipvsadm.8 example files are all here and have golden saves', () => {
    expect(FIXTURES).toEqual(Object.keys(SAVED).sort());
  });

  for (const file of FIXTURES) {
    it(`tsvsadm-e2e: ${file}: commands and -R streams give the same table; -S -n round trips through -C and -R`, async () => {
      const { commands, streams } = compatRules(file);
      expect(commands.length).toBeGreaterThan(0);
      const want = SAVED[file];
      // The command lines as an -R stream too: -R drops the `ipvsadm` tokens, so they work verbatim.
      const allStreams = [...streams, commands.map((c) => 'ipvsadm ' + c.join(' ')).join('\n') + '\n'];

      // (a) one tsvsadm process per rule line, after -C.
      await ok(sock, '-C');
      for (const c of commands) await ok(sock, c);
      expect(await out(sock, '-S -n')).toBe(want);
      const listing = await out(sock, '-L -n');
      if (file.startsWith('01-')) expect(listing).toBe(SAMPLE_C);

      // (b) each stream through `tsvsadm -R` on stdin, after -C.
      for (const s of allStreams) {
        await ok(sock, '-C');
        await ok(sock, '-R', s);
        expect(await out(sock, '-S -n')).toBe(want);
        expect(await out(sock, '-L -n')).toBe(listing);
      }

      // Round trip: the saved rules back through -C; -R reproduce -S -n and -L -n exactly.
      await ok(sock, '-C');
      expect(await out(sock, '-S -n')).toBe('');
      await ok(sock, '-R', want);
      expect(await out(sock, '-S -n')).toBe(want);
      expect(await out(sock, '-L -n')).toBe(listing);
    });
  }

  it('tsvsadm-e2e: tsvsadm-save -n and tsvsadm-restore round trip a saved file with a # header', async () => {
    await ok(sock, '-C');
    for (const c of compatRules('03-ipvsadm-man-example3-gue.txt').commands) await ok(sock, c);
    await ok(sock, '-R', SAVED['02-ipvsadm-man-example2-fwmark.txt']);
    const saved = await runBin('tsvsadm-save', ['-n'], sock);
    // Services sort by fwmark first, so the TCP service (fwmark 0) comes before FWM 1.
    expect(saved).toEqual({ code: 0, err: '', out: SAVED['03-ipvsadm-man-example3-gue.txt'] + SAVED['02-ipvsadm-man-example2-fwmark.txt'] });
    const listing = await out(sock, '-L -n');
    const file = '# tsvsadm-e2e saved rules\n' + saved.out;
    writeFileSync(join(dir, 'saved.rules'), file);

    // ipvsadm -R does not treat '#' as a comment: the header line has no command first, so -R stops there (255).
    await ok(sock, '-C');
    expect(await tsvsadm(sock, '-R', file)).toEqual({ code: 255, out: '', err: TRYHELP });
    expect(await out(sock, '-S -n')).toBe('');

    // tsvsadm-restore strips it, clears whatever is there, and restores the rest.
    await ok(sock, '-A -u 10.9.9.9:53 -s rr');
    expect(await runBin('tsvsadm-restore', [], sock, readFileSync(join(dir, 'saved.rules'), 'utf8'))).toEqual({ code: 0, out: '', err: '' });
    expect(await out(sock, '-S -n')).toBe(saved.out);
    expect(await out(sock, '-L -n')).toBe(listing);
  });

  it('tsvsadm-e2e: tsvsadm-save without -n (names from /etc/services and /etc/hosts) restores to the same table', async () => {
    const numeric = await out(sock, '-S -n');
    const named = await runBin('tsvsadm-save', [], sock);
    expect({ code: named.code, err: named.err }).toEqual({ code: 0, err: '' });
    expect(await runBin('tsvsadm-restore', [], sock, named.out)).toEqual({ code: 0, out: '', err: '' });
    expect(await out(sock, '-S -n')).toBe(numeric);
  });

  it('tsvsadm-e2e: a richer rule set (v6, fwmark -6, udp -o, sctp --pe, -p/-M, -b flags, thresholds) round trips', async () => {
    const rules = [
      '-A -t 10.0.0.1:80 -s wrr -p 600 -M 255.255.255.0',
      '-a -t 10.0.0.1:80 -r 192.168.1.2:80 -m -w 3 -x 100 -y 10',
      '-a -t 10.0.0.1:80 -r 192.168.1.1:8080 -m -w 0',
      '-A -u 10.0.0.1:53 -s sh -b sh-port,sh-fallback -o',
      '-a -u 10.0.0.1:53 -r 192.168.1.3 -g',
      '-A -t [2001:db8::1]:443 -s mh -b mh-port -p',
      '-a -t [2001:db8::1]:443 -r [2001:db8::10]:443 -m',
      '-a -t [2001:db8::1]:443 -r 192.168.2.1 -i --tun-type gre --tun-nocsum',
      '-A -f 7 -6 -s lc',
      '-a -f 7 -6 -r [2001:db8::20]:0 -m',
      '-A --sctp-service 10.0.0.5:9000 -s twos -p 30 --pe sip',
      '-A -t 192.168.200.1:80 -s none',
      '-A -f 3 -s fo -M 255.255.0.0',
    ];
    await ok(sock, '-C');
    await ok(sock, '-R', rules.join('\n')); // the last line has no newline: still read
    // Sorted as libipvs does, 192.168.200.1 before 10.0.0.1 (the comparator's int overflow); -x/-y and -M
    // of a non-persistent service are not saved; -p alone is 360 s; a -g dest takes the service port.
    const saved = sample([
      '-A -t 192.168.200.1:80 -s none',
      '-A -t 10.0.0.1:80 -s wrr -p 600 -M 255.255.255.0',
      '-a -t 10.0.0.1:80 -r 192.168.1.1:8080 -m -w 0',
      '-a -t 10.0.0.1:80 -r 192.168.1.2:80 -m -w 3',
      '-A -u 10.0.0.1:53 -s sh -o -b sh-fallback,sh-port',
      '-a -u 10.0.0.1:53 -r 192.168.1.3:53 -g -w 1',
      '-A --sctp-service 10.0.0.5:9000 -s twos -p 30 --pe sip',
      '-A -t [2001:db8::1]:443 -s mh -p 360 -b mh-port',
      '-a -t [2001:db8::1]:443 -r 192.168.2.1:443 -i -w 1 --tun-type gre --tun-nocsum',
      '-a -t [2001:db8::1]:443 -r [2001:db8::10]:443 -m -w 1',
      '-A -f 3 -s fo',
      '-A -f 7 -6 -s lc',
      '-a -f 7 -6 -r [2001:db8::20]:0 -m -w 1',
    ]);
    expect(await out(sock, '-S -n')).toBe(saved);
    const listing = await out(sock, '-L -n');
    expect(listing).toBe(HEADER + TITLE + sample([
      'TCP  192.168.200.1:80 none',
      'TCP  10.0.0.1:80 wrr persistent 600 mask 255.255.255.0',
      '  -> 192.168.1.1:8080             Masq    0      0          0         ⏎',
      '  -> 192.168.1.2:80               Masq    3      0          0         ⏎',
      'UDP  10.0.0.1:53 sh (sh-fallback,sh-port) ops',
      '  -> 192.168.1.3:53               Route   1      0          0         ⏎',
      'SCTP 10.0.0.5:9000 twos persistent 30 pe sip',
      'TCP  [2001:db8::1]:443 mh (mh-port) persistent 360',
      '  -> 192.168.2.1:443              Tunnel  1      0          0         ⏎',
      '  -> [2001:db8::10]:443           Masq    1      0          0         ⏎',
      'FWM  3 fo',
      'FWM  7 IPv6 lc',
      '  -> [2001:db8::20]:0             Masq    1      0          0         ⏎',
    ]));
    expect(await out(sock, '-L -n --thresholds -t 10.0.0.1:80')).toBe(sample([
      'Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn ⏎',
      '  -> RemoteAddress:Port',
      'TCP  10.0.0.1:80 wrr persistent 600 mask 255.255.255.0',
      '  -> 192.168.1.1:8080             0          0          0          0         ⏎',
      '  -> 192.168.1.2:80               100        10         0          0         ⏎',
    ]));
    await ok(sock, '-C');
    await ok(sock, '-R', saved);
    expect(await out(sock, '-S -n')).toBe(saved);
    // The thresholds are lost (-S does not save them), but -L -n does not show them.
    expect(await out(sock, '-L -n')).toBe(listing);
  });
});

suite('tsvsadm-e2e: bad commands against the real daemon', () => {
  let d: Daemon | undefined;
  let sock = '';
  const SETUP = sample(['-A -t 10.0.0.2:80 -s wlc', '-a -t 10.0.0.2:80 -r 10.1.1.1:80 -m -w 1']);
  beforeAll(async () => {
    sock = join(dir, 'errors', 'tsvsd.sock');
    if (IS_ROOT) d = await startTsvsd(sock);
    if (IS_ROOT) await ok(sock, '-R', SETUP);
  });
  afterAll(() => stopTsvsd(d));

  const cases: [string, string, number, string][] = [
    ['-a without -r', '-a -t 10.0.0.2:80 -m', 2, "You need to supply the 'real-server' option for the 'add-server' command\n"],
    ['-A without a service', '-A -s rr', 2, "You need to supply the 'service-address' option for the 'add-service' command\n"],
    ['-A with -g', '-A -t 10.0.0.3:80 -g', 2, "Illegal 'forwarding-method' option with the 'add-service' command\n"],
    ['an unknown scheduler', '-A -t 10.0.0.1:80 -s nosuch', 255, 'Scheduler or persistence engine not found\n'],
    ['an unknown persistence engine', '-A -t 10.0.0.1:80 -p --pe nosuch', 255, 'Scheduler or persistence engine not found\n'],
    ['-E to an unknown scheduler', '-E -t 10.0.0.2:80 -s nosuch', 255, 'Scheduler or persistence engine not found\n'],
    ['weight 70000', '-a -t 10.0.0.2:80 -r 10.1.1.2 -w 70000', 2, 'illegal weight specified\n'],
    ['a service added twice', '-A -t 10.0.0.2:80', 255, 'Service already exists\n'],
    ['-D of a missing service', '-D -t 10.9.9.9:80', 255, 'No such service\n'],
    ['-E of a missing service', '-E -t 10.9.9.9:80', 255, 'No such service\n'],
    ['-a to a missing service', '-a -t 10.9.9.9:80 -r 10.1.1.1', 255, 'Service not defined\n'],
    ['a duplicate dest', '-a -t 10.0.0.2:80 -r 10.1.1.1', 255, 'Destination already exists\n'],
    ['-e of a missing dest', '-e -t 10.0.0.2:80 -r 10.1.1.9', 255, 'No such destination\n'],
    ['-d of a missing dest', '-d -t 10.0.0.2:80 -r 10.1.1.9', 255, 'No such destination\n'],
    ['-d on a missing service', '-d -t 10.9.9.9:80 -r 10.1.1.9', 255, 'Service not defined\n'],
    ['-Z of a missing service', '-Z -t 10.9.9.9:80', 255, 'No such service\n'],
    ['-L -t of a missing service', '-L -n -t 10.9.9.9:80', 1, 'No such service\n'],
    ['l_threshold > u_threshold (kernel ERANGE)', '-a -t 10.0.0.2:80 -r 10.1.1.3 -x 5 -y 10', 255, 'Numerical result out of range\n'],
    ['--set with 2 values', '--set 1 2', 2, '--set option requires 3 timeout values\n'],
    ['--set with a bad value', '--set 1 2 x', 2, "invalid timeout value `x' specified\n"],
    ['a command that is not first', '-t 10.0.0.2:80 -A', 255, TRYHELP],
    ['a second command (popt: invalid option, as in ipvsadm.c)', '-A -t 10.0.0.4:80 -L', 2, "invalid option `-L'\n"],
    ['a repeated option', '-A -t 10.0.0.4:80 -s rr -s wlc', 2, "multiple 'scheduler' options specified\n"],
    ['a stray argument', '-A -t 10.0.0.4:80 extra', 2, 'unexpected argument extra\n'],
    ['a bare port as address', '-A -t 80', 2, 'illegal virtual server address[:port] specified\n'],
    ['port 0 without -p', '-A -t 10.0.0.4:0', 2, 'Zero port specified for non-persistent service\n'],
    ['-o on TCP', '-A -t 10.0.0.4:80 -o', 2, 'One-Packet Scheduling is only for UDP virtual services\n'],
    ['a second stop of the sync daemon', '--stop-daemon master', 255, 'No daemon is running\n'],
  ];
  // Read-only against the table, so they run side by side; the next test checks nothing changed.
  for (const [what, line, code, err] of cases) {
    it.concurrent(`tsvsadm-e2e: ${what}: \`${line}\` prints ipvsadm's message and exits ${code}`, async () => {
      expect(await tsvsadm(sock, line)).toEqual({ code, out: '', err });
    });
  }

  it('tsvsadm-e2e: none of the failed commands changed the table', async () => {
    expect(await out(sock, '-S -n')).toBe(SETUP);
  });

  it('tsvsadm-e2e: no arguments at all lists the table, as ipvsadm does (argc == 1)', async () => {
    expect(await tsvsadm(sock, [])).toEqual(await tsvsadm(sock, '-L'));
  });

  it('tsvsadm-e2e: -g and -i force the real-server port to the service port; -m keeps its own', async () => {
    await ok(sock, '-A -t 10.0.0.5:80 -s rr');
    await ok(sock, '-a -t 10.0.0.5:80 -r 10.1.1.1:8080 -g');
    await ok(sock, '-a -t 10.0.0.5:80 -r 10.1.1.2:8080 -i');
    await ok(sock, '-a -t 10.0.0.5:80 -r 10.1.1.3:8080 -m');
    expect(await out(sock, '-L -n -t 10.0.0.5:80')).toBe(TITLE + sample([
      'TCP  10.0.0.5:80 rr',
      '  -> 10.1.1.1:80                  Route   1      0          0         ⏎',
      '  -> 10.1.1.2:80                  Tunnel  1      0          0         ⏎',
      '  -> 10.1.1.3:8080                Masq    1      0          0         ⏎',
    ]));
    await ok(sock, '-D -t 10.0.0.5:80');
  });

  it('tsvsadm-e2e: -E and -e replace the whole definition (wlc, no persistence, weight 1, DR)', async () => {
    await ok(sock, '-A -t 10.0.0.6:80 -s rr -p 60');
    await ok(sock, '-a -t 10.0.0.6:80 -r 10.1.1.1 -m -w 5');
    await ok(sock, '-E -t 10.0.0.6:80');
    await ok(sock, '-e -t 10.0.0.6:80 -r 10.1.1.1');
    expect(await out(sock, '-S -n')).toContain('-A -t 10.0.0.6:80 -s wlc\n-a -t 10.0.0.6:80 -r 10.1.1.1:80 -g -w 1\n');
    await ok(sock, '-D -t 10.0.0.6:80');
  });

  it('tsvsadm-e2e: -R stops at a validation error (exit 2) but goes on after a kernel error (status of the last line)', async () => {
    const kernelErr = ['-A -t 10.0.0.2:80', '-A -t 10.0.0.7:80 -s rr', ''].join('\n');
    expect(await tsvsadm(sock, '-R', kernelErr)).toEqual({ code: 0, out: '', err: 'Service already exists\n' });
    const lastFails = ['-A -t 10.0.0.8:80 -s rr', '-A -t 10.0.0.8:80 -s rr', ''].join('\n');
    expect(await tsvsadm(sock, '-R', lastFails)).toEqual({ code: 255, out: '', err: 'Service already exists\n' });
    const validation = ['-A -t 10.0.0.9:80 -s rr', '-a -t 10.0.0.9:80 -r 10.1.1.1 -w 70000', '-A -t 10.0.0.10:80', ''].join('\n');
    expect(await tsvsadm(sock, '-R', validation)).toEqual({ code: 2, out: '', err: 'illegal weight specified\n' });
    expect(await out(sock, '-S -n')).toBe(SETUP + sample(['-A -t 10.0.0.7:80 -s rr', '-A -t 10.0.0.8:80 -s rr', '-A -t 10.0.0.9:80 -s rr']));
    for (const p of [7, 8, 9]) await ok(sock, `-D -t 10.0.0.${p}:80`);
    expect(await out(sock, '-S -n')).toBe(SETUP);
  });

  it('tsvsadm-e2e: mh refuses a dest beyond its 4093-slot table (EINVAL; the kernel keeps a stale table instead)', async () => {
    const vs = '-u 10.0.0.11:53';
    const dests = Array.from({ length: 4093 }, (_, i) => `-a ${vs} -r 10.${20 + (i >> 16)}.${(i >> 8) & 255}.${i & 255} -m`);
    await ok(sock, '-R', [`-A ${vs} -s mh`, ...dests, ''].join('\n'));
    const EINVAL = 'Invalid operation.  Possibly wrong module version, address not unicast, ...\n';
    expect(await tsvsadm(sock, `-a ${vs} -r 10.30.0.1 -m`)).toEqual({ code: 255, out: '', err: EINVAL });
    await ok(sock, `-E ${vs} -s rr`);
    await ok(sock, `-a ${vs} -r 10.30.0.1 -m`);
    expect(await tsvsadm(sock, `-E ${vs} -s mh`)).toEqual({ code: 255, out: '', err: EINVAL });
    expect((await out(sock, `-L -n ${vs}`)).split('\n')[2]).toBe('UDP  10.0.0.11:53 rr'); // a failed -E changes nothing
    await ok(sock, `-D ${vs}`);
  });

  it('tsvsadm-e2e: a sync daemon cannot start while a service mixes address families (EINVAL, as the kernel)', async () => {
    await ok(sock, '-A -t [2001:db8::1]:80 -s rr');
    await ok(sock, '-a -t [2001:db8::1]:80 -r 10.1.1.1 -i');
    expect(await tsvsadm(sock, '--start-daemon master')).toEqual({
      code: 255,
      out: '',
      err: 'Invalid operation.  Possibly wrong module version, address not unicast, ...\n',
    });
    await ok(sock, '-D -t [2001:db8::1]:80');
    await ok(sock, '--start-daemon master');
    await ok(sock, '--stop-daemon master');
  });

  it('tsvsadm-e2e: -h prints the usage on stdout and exits 0; -v prints the version', async () => {
    const h = await tsvsadm(sock, '-h');
    expect({ code: h.code, err: h.err }).toEqual({ code: 0, err: '' });
    expect(h.out.startsWith(VERSION + 'Usage:\n  ipvsadm -A|E virtual-service [-s scheduler]')).toBe(true);
    expect(h.out).toContain('  --set tcp tcpfin udp');
    expect(await tsvsadm(sock, '--help')).toEqual(h);
    expect(await tsvsadm(sock, '-v')).toEqual({ code: 0, out: VERSION, err: '' });
    expect(await tsvsadm(sock, '--version')).toEqual({ code: 0, out: VERSION, err: '' });
  });
});

suite('tsvsadm-e2e: listing formats from the live daemon', () => {
  let d: Daemon | undefined;
  let sock = '';
  beforeAll(async () => {
    sock = join(dir, 'listing', 'tsvsd.sock');
    if (IS_ROOT) d = await startTsvsd(sock);
  });
  afterAll(() => stopTsvsd(d));

  it('tsvsadm-e2e: an empty table (spec sample B), -L and -l alike', async () => {
    expect(await out(sock, '-L -n')).toBe(HEADER + TITLE);
    expect(await out(sock, '-ln')).toBe(HEADER + TITLE);
    expect(await out(sock, '-S -n')).toBe('');
  });

  it('tsvsadm-e2e: -L -n after EXAMPLE 1 is spec sample C byte for byte', async () => {
    await ok(sock, '-A -t 207.175.44.110:80 -s rr');
    for (const i of [5, 3, 1, 4, 2]) await ok(sock, `-a -t 207.175.44.110:80 -r 192.168.10.${i}:80 -m`);
    expect(await out(sock, '-L -n')).toBe(SAMPLE_C);
    expect(await out(sock, '-Ln')).toBe(SAMPLE_C);
    expect(await out(sock, '-L -n -t 207.175.44.110:80')).toBe(SAMPLE_C.slice(HEADER.length));
  });

  it('tsvsadm-e2e: --stats, --rate, --thresholds and --persistent-conn', async () => {
    const dests = [1, 2, 3, 4, 5].map((i) => `192.168.10.${i}:80`);
    const zeros = '        0'.repeat(5);
    const counters = (title: string): string =>
      HEADER + title + '  -> RemoteAddress:Port\n' +
      'TCP  207.175.44.110:80'.padEnd(33) + zeros + '\n' +
      dests.map((a) => `  -> ${a.padEnd(28)}${zeros}\n`).join('');
    expect(await out(sock, '-L -n --stats')).toBe(counters('Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n'));
    expect(await out(sock, '-L -n --rate')).toBe(counters('Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n'));
    expect(await out(sock, '-L -n --stats --exact')).toBe(counters('Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n'));
    expect(await out(sock, '-L -n --thresholds')).toBe(
      HEADER + sample(['Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn ⏎', '  -> RemoteAddress:Port']) +
      'TCP  207.175.44.110:80 rr\n' + dests.map((a) => `  -> ${a.padEnd(28)} 0          0          0          0         \n`).join(''),
    );
    expect(await out(sock, '-L -n --persistent-conn')).toBe(
      HEADER + sample(['Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn ⏎', '  -> RemoteAddress:Port']) +
      'TCP  207.175.44.110:80 rr\n' + dests.map((a) => `  -> ${a.padEnd(28)} 1         0           0          0         \n`).join(''),
    );
    expect(await tsvsadm(sock, '-L -n --timeout --stats')).toEqual({ code: 2, out: '', err: 'options conflicts in the list command\n' });
  });

  it('tsvsadm-e2e: a reader that goes away (`tsvsadm -Ln | head -1`) ends it quietly, as SIGPIPE ends ipvsadm (141)', async () => {
    const proc = spawn(join(BIN, 'tsvsadm'), ['-L', '-n'], { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv({ TSVS_ADMIN_SOCKET: sock }) });
    proc.stdout?.destroy(); // closed before tsvsadm has even connected, so its write fails with EPIPE
    let err = '';
    proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => proc.once('close', (c) => r(c)));
    expect({ code, err }).toEqual({ code: 141, err: '' });
  });

  it('tsvsadm-e2e: -L -c with no forwarding lists no connections', async () => {
    expect(await out(sock, '-L -n -c')).toBe('IPVS connection entries\npro expire state       source             virtual            destination\n');
  });

  it('tsvsadm-e2e: -L -n --timeout is 900 120 300, then --set changes it (0 leaves a value alone)', async () => {
    expect(await out(sock, '-L -n --timeout')).toBe('Timeout (tcp tcpfin udp): 900 120 300\n');
    await ok(sock, '--set 100 20 30');
    expect(await out(sock, '-L -n --timeout')).toBe('Timeout (tcp tcpfin udp): 100 20 30\n');
    await ok(sock, '--set 0 0 45');
    expect(await out(sock, '-L --timeout')).toBe('Timeout (tcp tcpfin udp): 100 20 45\n');
  });

  it('tsvsadm-e2e: -Z zeroes everything or one service', async () => {
    await ok(sock, '-Z');
    await ok(sock, '-Z -t 207.175.44.110:80');
    expect(await out(sock, '-L -n')).toBe(SAMPLE_C);
  });

  it('tsvsadm-e2e: --start-daemon, -L --daemon, --stop-daemon and a second stop', async () => {
    expect(await out(sock, '-L --daemon')).toBe('');
    await ok(sock, '--start-daemon master');
    expect(await out(sock, '-L --daemon')).toBe('master sync daemon (mcast=eth0, syncid=0)\n');
    expect(await tsvsadm(sock, '--start-daemon master')).toEqual({ code: 255, out: '', err: 'Daemon has already run\n' });
    await ok(sock, '--start-daemon backup --mcast-interface lo --syncid 7');
    expect(await out(sock, '-L --daemon')).toBe('master sync daemon (mcast=eth0, syncid=0)\nbackup sync daemon (mcast=lo, syncid=7)\n');
    await ok(sock, '--stop-daemon backup');
    await ok(sock, '--stop-daemon master');
    expect(await out(sock, '-L --daemon')).toBe('');
    expect(await tsvsadm(sock, '--stop-daemon master')).toEqual({ code: 255, out: '', err: 'No daemon is running\n' });
  });
});

suite('tsvsadm-e2e: tsvsd not running', () => {
  it('tsvsadm-e2e: every command, -h and -v included, fails like ipvsadm without ip_vs (exit 2)', async () => {
    const missing = join(dir, 'nothing-here', 'tsvsd.sock');
    const plainFile = join(dir, 'not-a-socket');
    writeFileSync(plainFile, '');
    for (const sock of [missing, plainFile]) {
      for (const line of ['-L -n', '-C', '-A -t 10.0.0.1:80', '-h', '-v', '']) {
        expect(await tsvsadm(sock, line), `${sock}: tsvsadm ${line}`).toEqual({ code: 2, out: '', err: INIT_FAILURE });
      }
    }
    expect(await runBin('tsvsadm-save', ['-n'], missing)).toEqual({ code: 2, out: '', err: INIT_FAILURE });
    expect(await runBin('tsvsadm-restore', [], missing, '-A -t 10.0.0.1:80\n')).toEqual({ code: 2, out: '', err: INIT_FAILURE });
  });

  it('tsvsadm-e2e: a non-root caller cannot reach the root-only socket: "Permission denied (you must be root)", exit 2', async () => {
    const sock = join(dir, 'root-only', 'tsvsd.sock');
    const dd = await startTsvsd(sock);
    try {
      const nobody = 65534;
      const want = { code: 2, out: '', err: INIT_FAILURE.replace('Protocol not available', 'Permission denied (you must be root)') };
      expect(await runBin('tsvsadm', ['-L', '-n'], sock, '', nobody)).toEqual(want);
      expect(await runBin('tsvsadm', ['-v'], sock, '', nobody)).toEqual(want);
      expect(await out(sock, '-L -n')).toBe(HEADER + TITLE);
    } finally {
      await stopTsvsd(dd);
    }
  });

  it('tsvsadm-e2e: a daemon that has stopped leaves tsvsadm failing the same way', async () => {
    const sock = join(dir, 'stopped', 'tsvsd.sock');
    const dd = await startTsvsd(sock);
    try {
      await ok(sock, '-A -t 10.0.0.1:80');
    } finally {
      await stopTsvsd(dd);
    }
    expect(await tsvsadm(sock, '-L -n')).toEqual({ code: 2, out: '', err: INIT_FAILURE });
  });
});
