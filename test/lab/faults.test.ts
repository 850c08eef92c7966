// lab fail/heal on a real lab: a killed, cut or frozen node stops answering, and heal brings it back.
// Needs root and the host tools from ops/setup.sh; without them every test fails saying why (never skipped).
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { REPO_ROOT, adminSocketOf, execCapture, readState } from '../../ops/lab/index.ts';
import { labFor, sh } from '../support/lab.ts';

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(`${REPO_ROOT}/node_modules/.bin/node`, [`${REPO_ROOT}/ops/lab/main.ts`, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** curl from the client to a real server's own address; '' when it does not answer within 1 s. */
function ask(rip: string): string {
  return execCapture('client', ['curl', '-s', '--max-time', '1', `http://${rip}/`], { timeoutMs: 5000 }).stdout.trim();
}

/** Is something listening on the NATS client port in nats_k (ss in its namespace)? */
function natsListening(k: number): boolean {
  return execCapture(`nats${k}`, ['ss', '-Htln', 'sport = :4222']).stdout.trim() !== '';
}

describe('lab fail/heal (1 director, 2 servers, nat, nats)', () => {
  labFor({ nats: true });

  it('lab faults: fail --how kill stops a real server answering; heal starts nginx again', async () => {
    expect(ask('10.200.1.101')).toBe('rs1');
    const r = cli('fail', 'rs1');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^lab: rs1 failed \(kill: SIGKILL to \d+ process\(es\)\) at \S+ \(\d+\)$/m);
    expect(ask('10.200.1.101')).toBe('');
    expect(readState()!.faults!.rs1.how).toBe('kill');
    expect(cli('fail', 'rs1').stderr).toMatch(/rs1 has failed already \(kill\); heal it first/);
    const h = cli('heal', 'rs1');
    expect(h.status).toBe(0);
    expect(h.stdout).toMatch(/^lab: rs1 healed \(kill\) in \d+ ms$/m);
    expect(ask('10.200.1.101')).toBe('rs1');
    expect(readState()!.faults!.rs1).toBeUndefined();
  });

  it('lab faults: fail --how link cuts a node off while it keeps running; heal puts the links back', () => {
    expect(cli('fail', 'rs2', '--how', 'link').status).toBe(0);
    expect(ask('10.200.1.102')).toBe('');
    expect(sh('rs2', ['pgrep', '-c', 'nginx'])).not.toBe('0');
    expect(cli('heal', 'rs2').status).toBe(0);
    expect(ask('10.200.1.102')).toBe('rs2');
  });

  it('lab faults: fail --how link --lan mgmt cuts a director off NATS only', () => {
    expect(execCapture('d1', ['ping', '-c', '1', '-W', '1', '10.200.2.1']).status).toBe(0);
    expect(cli('fail', 'd1', '--how', 'link', '--lan', 'mgmt').status).toBe(0);
    expect(execCapture('d1', ['ping', '-c', '1', '-W', '1', '10.200.2.1']).status).not.toBe(0);
    expect(ask('10.200.1.101')).toBe('rs1');
    expect(cli('heal', 'd1').status).toBe(0);
    expect(execCapture('d1', ['ping', '-c', '1', '-W', '1', '10.200.2.1']).status).toBe(0);
  });

  it('lab faults: fail --how freeze stops a node answering without killing it; heal resumes it', () => {
    expect(cli('fail', 'rs1', '--how', 'freeze').status).toBe(0);
    expect(ask('10.200.1.101')).toBe('');
    expect(cli('heal', 'rs1').status).toBe(0);
    expect(ask('10.200.1.101')).toBe('rs1');
  });

  it('lab faults: a killed nats-server and a killed director come back with heal', () => {
    expect(natsListening(2)).toBe(true);
    expect(cli('fail', 'nats2').status).toBe(0);
    expect(natsListening(2)).toBe(false);
    expect(cli('heal', 'nats2').status).toBe(0);
    expect(natsListening(2)).toBe(true);

    expect(sh('d1', ['tsvsadm', '-L', '-n'])).toMatch(/^IP Virtual Server version/);
    expect(cli('fail', 'd1').status).toBe(0);
    expect(execCapture('d1', ['tsvsadm', '-L', '-n']).status).not.toBe(0);
    expect(cli('heal', 'd1').status).toBe(0);
    expect(existsSync(adminSocketOf('d1'))).toBe(true);
    expect(sh('d1', ['tsvsadm', '-L', '-n'])).toMatch(/^IP Virtual Server version/);
  });

  it('lab faults: unknown nodes and healing a healthy node are refused with a reason', () => {
    expect(cli('fail', 'd9').stderr).toMatch(/no node "d9"/);
    expect(cli('heal', 'rs1').stderr).toMatch(/rs1 has not failed; nothing to heal/);
    expect(cli('fail', 'rs1', '--how', 'boil').status).toBe(2);
  });
});
