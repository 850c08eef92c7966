// sys (integration, root, a scratch network namespace): the platform layer against the real kernel — gratuitous ARP
// frames on the wire, sysctl save-and-restore, the address list and follower, links over rtnetlink, error codes.
// Needs root (ip netns): fails, never skips, without it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join, resolve } from 'node:path';
import { inNs, removeNamespaces, sh } from '../support/netns.ts';

const root = resolve(import.meta.dirname, '../..');
const NS = 'tsvs-sysck';

beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('sys-platform: needs root (network namespaces, AF_PACKET, sysctl writes)');
  removeNamespaces([NS]);
  sh(['ip', 'netns', 'add', NS]);
  inNs(NS, ['ip', 'link', 'add', 'sc-a', 'type', 'veth', 'peer', 'name', 'sc-b']);
  inNs(NS, ['ip', 'addr', 'add', '10.77.70.1/24', 'dev', 'sc-a']);
  inNs(NS, ['ip', 'link', 'set', 'sc-a', 'up']);
  inNs(NS, ['ip', 'link', 'set', 'sc-b', 'up']);
  inNs(NS, ['ip', 'link', 'set', 'lo', 'up']);
});
afterAll(() => removeNamespaces([NS]));

describe('sys: platform layer against the kernel', () => {
  it('sys: ARP, sysctl, addresses and links behave as documented', () => {
    const r = JSON.parse(inNs(NS, [join(root, 'node_modules/.bin/node'), join(root, 'test/support/sys-check.ts')])) as Record<string, unknown>;
    const mac = r.macSeen as string;
    // Three broadcast gratuitous ARP requests, 60 bytes (padded), sender = target = the address, target MAC zero.
    expect(r.arpResult).toEqual({ ifname: 'sc-a', sent: 3, mac });
    expect(r.arpFrames).toEqual(Array(3).fill(`60 ff:ff:ff:ff:ff:ff ${mac} 10.77.70.1>10.77.70.1 tha=0`));
    expect(r.arpElapsedMs as number).toBeGreaterThanOrEqual(95);
    expect([r.arpNoIf, r.arpBadIp, r.arpBadCount]).toEqual(['ENODEV', 'EINVAL', 'EINVAL']);
    // sysctl: writes recorded once, restored from the saved data, missing keys and bad values named.
    const before = r.sysctlBefore as string[];
    expect(r.sysctlWrote).toEqual([before[0] !== '2', before[1] !== '1', false, false]);
    expect(r.sysctlDuring).toEqual(['2', '1']);
    expect(r.sysctlAfter).toEqual(before);
    expect((r.sysctlRestore as { failed: string[] }).failed).toEqual([]);
    expect([r.sysctlMissing, r.sysctlMissingSet, r.sysctlBadValue]).toEqual([null, 'ENOENT', 'EINVAL']);
    // Addresses: the dump lists sc-a's address; the follower sees an added /32 and its removal within a second.
    expect(r.listed).toEqual(['10.77.70.1/24']);
    expect([r.hasBefore, r.hasAfterAdd, r.hasAfterDel]).toEqual([false, true, false]);
    expect(r.followAddMs as number).toBeLessThan(1000);
    expect(r.changes).toEqual([['10.77.70.1', '10.77.70.9'], ['10.77.70.1']]);
    expect(r.watchProblems).toBeNull();
    // Links: up over rtnetlink; delete reports whether there was something to delete.
    expect(r.dummyUp).toBe(true);
    expect(r.deleted).toEqual([true, false]);
    expect(r.upMissing).toBe('ENODEV');
    // VIP addresses over rtnetlink: replaced (not duplicated) with the lifetime `ip` shows, forever without one,
    // deleted once (then absent: false), a missing interface named; a lifetime that runs out removes the address.
    expect(r.replaced).toEqual(['10.77.70.10/32 valid 2 preferred 2']);
    expect(r.forever).toEqual([4294967295]);
    expect(r.addrDeleted).toEqual([true, false, false]);
    expect(r.afterDelete).toBe(0);
    expect(r.replaceMissing).toBe('ENODEV');
    expect(r.expired).toBe(true);
    expect(r.expiredMs as number).toBeLessThan(2500);
    process.stdout.write(`sys: address replace ${(r.replaceMs as number).toFixed(2)} ms, three deletes ${(r.deleteMs as number).toFixed(2)} ms, a 1 s lifetime gone after ${r.expiredMs as number} ms\n`);
  });
});
