// lab: runs the demo as a newcomer does (`npm run lab -- demo`) and checks its key facts from the transcript.
// Needs root and the host tools from ops/setup.sh; without them the test fails saying why (never skipped).
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { LAB_NETNS_NAME, REPO_ROOT, haveService, readState } from '../../ops/lab/index.ts';
import { statsConns } from '../../ops/lab/demo.ts';

/** Fails (never skips) with the reason when the demo cannot run here. */
function requireLabHost(): void {
  if (process.getuid?.() !== 0) throw new Error('the demo test needs root: it creates network namespaces (run the suite as root: bash ops/test.sh)');
  const missing = ['ip', 'nginx', 'dnsmasq', 'curl', 'dig', 'nats-server'].filter((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0);
  if (missing.length) throw new Error(`the demo test needs host tools that are missing: ${missing.join(', ')} (install them: bash ops/setup.sh)`);
  if (readState()) throw new Error('a lab is already up (npm run lab -- status): the demo builds its own; run npm run lab -- down first');
}

function labNamespaces(): string[] {
  return spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').map((l) => l.split(' ')[0]).filter((n) => LAB_NETNS_NAME.test(n));
}

/** The transcript's section for one mode: from its "== NAT"/"== DR"/"== TUN" heading to the next heading. */
function section(out: string, title: string): string {
  const start = out.indexOf(`\n== ${title}`);
  if (start < 0) return '';
  const next = out.indexOf('\n== ', start + 1);
  return out.slice(start, next < 0 ? undefined : next);
}

/** Output lines of the command shown after `prompt` (up to the next prompt, check or comment line). */
function outputOf(text: string, prompt: string): string[] {
  const lines = text.split('\n');
  const i = lines.findIndex((l) => l.startsWith(prompt));
  if (i < 0) return [];
  const rest = lines.slice(i + 1);
  const end = rest.findIndex((l) => /^(\S+ )?\$ |^(ok  |FAIL) |^# /.test(l));
  return rest.slice(0, end < 0 ? undefined : end);
}

function counts(lines: string[]): Record<string, number> {
  const c: Record<string, number> = {};
  for (const l of lines) c[l.trim()] = (c[l.trim()] ?? 0) + 1;
  return c;
}

describe('lab demo (npm run lab -- demo)', () => {
  let run: { status: number | null; out: string } | undefined;
  const demo = (): { status: number | null; out: string } => {
    if (!run) {
      requireLabHost();
      const r = spawnSync(`${REPO_ROOT}/node_modules/.bin/node`, [`${REPO_ROOT}/ops/lab/main.ts`, 'demo'], { encoding: 'utf8', timeout: 170_000 });
      run = { status: r.status, out: `${r.stdout}${r.stderr}` };
    }
    return run;
  };

  it('demo: exits 0 within a minute and says every check passed', () => {
    const t0 = Date.now();
    const { status, out } = demo();
    expect(out).not.toMatch(/^FAIL /m);
    expect(status, out).toBe(0);
    expect(out).toMatch(/^demo: all checks passed in [\d.]+ s/m);
    expect(Date.now() - t0).toBeLessThan(90_000);
  }, 180_000);

  for (const [title, flag] of [['NAT', '-m'], ['DR', '-g'], ['TUN', '-i']] as const) {
    it(`demo: ${title}: each real server answers curl in the wrr 3:1:1 proportion`, () => {
      const s = section(demo().out, title);
      if (title === 'TUN' && !haveService('rs-agent')) {
        expect(s).toMatch(/TUN is demonstrated in the lab tests once available/);
        return;
      }
      expect(s).toContain(`d1 $ tsvsadm -a -t 10.200.0.10:80 -r 10.200.1.101:80 ${flag} -w 3`);
      const answers = outputOf(s, 'client $ for i in');
      expect(answers).toHaveLength(10);
      expect(counts(answers)).toEqual({ rs1: 6, rs2: 2, rs3: 2 });
      // Newest first: rs1 (weight 3, added last) leads every round of five.
      expect(answers.join(' ')).toContain('rs1 rs1 rs1 rs2 rs3');
      const stats = outputOf(s, 'd1 $ tsvsadm -L -n --stats').join('\n');
      expect(statsConns(stats, 'TCP', '10.200.0.10:80')).toBe(10);
    }, 180_000);
  }

  it('demo: NAT: dig is answered through the UDP VIP by every real server, and -c lists the connections', () => {
    const s = section(demo().out, 'NAT');
    const lines = s.split('\n');
    const answers = lines.flatMap((l, i) => (l.startsWith('client $ dig +short') ? [lines[i + 1]] : []));
    expect(answers.sort()).toEqual(['"rs1"', '"rs2"', '"rs3"']);
    const stats = outputOf(s, 'd1 $ tsvsadm -L -n --stats').join('\n');
    expect(statsConns(stats, 'UDP', '10.200.0.10:53')).toBe(3);
    const conns = outputOf(s, 'd1 $ tsvsadm -L -n -c');
    expect(conns[0]).toBe('IPVS connection entries');
    expect(conns.filter((l) => l.startsWith('TCP ')).length).toBe(10);
    expect(conns.filter((l) => l.startsWith('UDP ')).length).toBe(3);
  }, 180_000);

  it('demo: cluster: d2 gets d1\'s table, takes over on kill -9, d1 comes back and leads; no long-lived connection lost', () => {
    const s = section(demo().out, 'Cluster');
    expect(s).toContain('$ npm run lab -- up --directors 2 --servers 3 --mode dr --nats');
    for (const what of [
      'cluster: d1 (priority 200) leads, d2 is a member',
      'cluster: d2 has the table made on d1 (tsvsadm -S -n identical)',
      'cluster: 100 of 100 connections open through d1',
      'cluster: d2 holds the synced entries of all 100 connections before the failure',
      'cluster: d2 takes over the VIP after d1 is killed',
      'cluster: d1 leads and holds the VIP again after the heal',
    ]) expect(s).toContain(`ok   ${what}`);
    expect(s).toMatch(/^ok {3}cluster: 0 of 100 long-lived connections lost over the kill and the handback/m);
    // tsvsadm cluster on the new leader names it, and the old one as dead.
    const d2 = outputOf(s, 'd2 $ tsvsadm cluster').join('\n');
    expect(d2).toMatch(/leader:?\s+d2/);
    expect(d2).toMatch(/d1\b.*dead/);
  }, 180_000);

  it('demo: leaves no lab behind (no state file, no lab namespaces)', () => {
    demo();
    expect(readState()).toBeUndefined();
    expect(labNamespaces()).toEqual([]);
  }, 180_000);
});
