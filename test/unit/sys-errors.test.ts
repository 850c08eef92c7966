// sys/errors and sys/sysctl (pure parts): stable error codes, and sysctl keys mapped to /proc/sys paths.
import { describe, expect, it } from 'vitest';
import { SysError, errnoName, errnoOf, toSysError } from '../../shared/sys/errors.ts';
import { sysctlPath } from '../../shared/sys/sysctl.ts';

describe('sys/errors', () => {
  it('sys/errors: a SysError from an errno carries the stable code, the number and the operation', () => {
    const e = new SysError('setsockopt(PACKET_RX_RING) on eth0', 1);
    expect(e).toBeInstanceOf(Error);
    expect([e.name, e.code, e.errno, e.op]).toEqual(['SysError', 'EPERM', 1, 'setsockopt(PACKET_RX_RING) on eth0']);
    expect(e.message).toBe('setsockopt(PACKET_RX_RING) on eth0: Operation not permitted (EPERM, errno 1)');
  });
  it('sys/errors: a SysError from a code name finds its number; detail replaces the text', () => {
    const e = new SysError('shm /dev/shm/x', 'EINVAL', 'has 10 bytes, expected 20');
    expect([e.code, e.errno]).toEqual(['EINVAL', 22]);
    expect(e.message).toBe('shm /dev/shm/x: has 10 bytes, expected 20 (EINVAL, errno 22)');
  });
  it('sys/errors: unknown numbers get a stable E<n> code; names and numbers round-trip', () => {
    expect(errnoName(11)).toBe('EAGAIN');
    expect(errnoName(4095)).toBe('E4095');
    expect(errnoOf('ENOBUFS')).toBe(105);
    expect(errnoOf('ENOTANERRNO')).toBe(0);
  });
  it("sys/errors: Node's fs errors become SysErrors with their code; a SysError passes through", () => {
    const fsErr = Object.assign(new Error("ENOENT: no such file or directory, open '/proc/sys/x'"), { code: 'ENOENT' });
    const e = toSysError('sysctl x', fsErr);
    expect([e.code, e.errno, e.op]).toEqual(['ENOENT', 2, 'sysctl x']);
    const same = new SysError('a', 'EBUSY');
    expect(toSysError('b', same)).toBe(same);
    expect(toSysError('c', 'a string').code).toBe('EIO');
  });
});

describe('sys/sysctl: keys', () => {
  it('sysctl: dotted keys map to /proc/sys paths; slashed keys keep dots (interface names like eth0.100)', () => {
    expect(sysctlPath('net.ipv4.conf.all.rp_filter')).toBe('/proc/sys/net/ipv4/conf/all/rp_filter');
    expect(sysctlPath('net/ipv4/conf/eth0.100/rp_filter')).toBe('/proc/sys/net/ipv4/conf/eth0.100/rp_filter');
    expect(sysctlPath('net.ipv4.conf.tsvs-d1c.accept_local')).toBe('/proc/sys/net/ipv4/conf/tsvs-d1c/accept_local');
  });
  it('sysctl: keys that could leave /proc/sys or are not keys are refused with EINVAL', () => {
    for (const k of ['', '../etc/passwd', 'net/../../etc', 'net.ipv4 rp', '/etc/shadow', 'net//x']) {
      expect(() => sysctlPath(k), k).toThrow(expect.objectContaining({ name: 'SysError', code: 'EINVAL' }));
    }
  });
});
