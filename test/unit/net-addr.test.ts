// net addr: the one IPv4 text module: canonical dotted quads only (inet_pton), `undefined` on refusal, the
// throwing form's typed error, formatting and prefix masks.
import { describe, expect, it } from 'vitest';
import { Ipv4TextError, formatMac, ipv4FromText, ipv4FromTextOrThrow, ipv4ToText, parseMac, prefixToMask } from '../../shared/net/addr.ts';
import { mulberry32 } from '../../shared/util/rng.ts';

describe('net addr', () => {
  it('net addr: a dotted quad parses to a host-order uint32', () => {
    expect(ipv4FromText('1.2.3.4')).toBe(0x01020304);
    expect(ipv4FromText('0.0.0.0')).toBe(0);
    expect(ipv4FromText('255.255.255.255')).toBe(0xffffffff);
    expect(ipv4FromText('10.200.0.10')).toBe(0x0ac8000a);
  });

  it('net addr: everything inet_pton(AF_INET) refuses is undefined, never a throw or a sentinel number', () => {
    for (const bad of ['', '1.2.3', '1.2.3.4.5', '1.2.3.256', '010.0.0.1', '1.2.3.04', ' 1.2.3.4', '1.2.3.4 ', '1.2.3.-4', '+1.2.3.4',
      '1..3.4', '0x0a.0.0.1', '10.1', '1.2.3.4/24', '1.2.3.4:80', '::1', 'a.b.c.d', '1234.1.1.1']) {
      expect(ipv4FromText(bad), JSON.stringify(bad)).toBeUndefined();
    }
  });

  it('net addr: the throwing form refuses the same texts with a typed error naming what was parsed', () => {
    expect(ipv4FromTextOrThrow('10.0.0.1', '--vip')).toBe(0x0a000001);
    let err: unknown;
    try {
      ipv4FromTextOrThrow('10.0.0.256', '--vip');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(Ipv4TextError);
    expect(err).toBeInstanceOf(RangeError);
    expect((err as Ipv4TextError).code).toBe('EIPV4TEXT');
    expect((err as Ipv4TextError).message).toBe('--vip: not an IPv4 address: "10.0.0.256"');
  });

  it('net addr: formatting inverts parsing for random addresses, and only the low 32 bits count', () => {
    const r = mulberry32(4);
    for (let i = 0; i < 2000; i++) {
      const a = Math.floor(r() * 2 ** 32);
      expect(ipv4FromText(ipv4ToText(a))).toBe(a);
    }
    expect(ipv4ToText(-1)).toBe('255.255.255.255');
    expect(ipv4ToText(0xc0a80001)).toBe('192.168.0.1');
  });

  it('net addr: prefix lengths become masks, clamped to 0..32', () => {
    expect([-1, 0, 1, 8, 24, 31, 32, 40].map(prefixToMask)).toEqual([0, 0, 0x80000000, 0xff000000, 0xffffff00, 0xfffffffe, 0xffffffff, 0xffffffff]);
  });

  it('net addr: MAC text round trips; malformed text is null', () => {
    const m = parseMac('02:00:00:AA:bb:0c');
    expect(m && formatMac(m)).toBe('02:00:00:aa:bb:0c');
    expect(parseMac('02-00-00-aa-bb-0c')).toEqual(m);
    expect(parseMac('02:00:00:aa:bb')).toBeNull();
    expect(parseMac('02:00:00:aa:bb:0g')).toBeNull();
  });
});
