// kernel-rules: the director's desired state as data — the compiler's whole FwdTable (marks, fwmark VIPs, DR marks,
// health), the kernel-rule specs of both backends and their iptables rules, the VIP set under a grant.
import { describe, expect, it } from 'vitest';
import { parseMarkRules } from '../../shared/fwd/mark-rules.ts';
import { DrMarkAllocator, IdAllocator, compileFwdTable } from '../../shared/fwd/table.ts';
import type { DestConfig, ServiceConfig } from '../../shared/model/ipvs.ts';
import { IpvsTable } from '../../shared/model/table.ts';
import { DesiredCompiler, ownedVips, setDiff, type DesiredInputs } from '../../shared/rules/desired.ts';
import { markRuleMatch, restoreText, type HostFacts } from '../../shared/rules/host.ts';
import { directorRules, directorSpec } from '../../shared/rules/kernel-rules.ts';
import { nfqueueRules, nfqueueSpec } from '../../shared/rules/nfqueue-rules.ts';

function svc(over: Partial<ServiceConfig> = {}): ServiceConfig {
  return { af: 4, protocol: 'tcp', addr: '10.200.0.10', port: 80, fwmark: 0, scheduler: 'rr', flags: 0, timeout: 0, netmask: '255.255.255.255', pe: '', ...over };
}
function dest(addr: string, over: Partial<DestConfig> = {}): DestConfig {
  return { af: 4, addr, port: 80, method: 'masq', weight: 1, uThreshold: 0, lThreshold: 0, tunType: 'ipip', tunPort: 0, tunCsum: '', ...over };
}
const HOST: HostFacts = { clientIf: 'front', serverIf: 'back', ownAddrs: ['10.200.0.2', '10.200.1.2', '10.200.0.10', '127.0.0.1'], localTun: 'tsvs-local0' };
const MARKS = parseMarkRules('-A PREROUTING -t mangle -p tcp -d 10.200.0.20 -m multiport --dports 80,443 -j MARK --set-mark 1\n');

/** A table with a NAT service (2 dests), a DR service, and a fwmark service fed by MARKS. */
function table(): IpvsTable {
  const t = new IpvsTable();
  t.addService(svc());
  t.addDest(svc(), dest('10.200.1.101'));
  t.addDest(svc(), dest('10.200.1.102', { port: 8080 }));
  t.addService(svc({ protocol: 'udp', port: 53 }));
  t.addDest(svc({ protocol: 'udp', port: 53 }), dest('10.200.1.103', { port: 53, method: 'route' }));
  t.addService(svc({ protocol: 'tcp', addr: '', port: 0, fwmark: 1, flags: 1, timeout: 600 }));
  t.addDest(svc({ addr: '', port: 0, fwmark: 1 }), dest('10.200.1.104', { port: 0 }));
  t.addService(svc({ addr: '10.200.0.30' }));
  return t;
}

function inputs(t: IpvsTable, over: Partial<DesiredInputs> = {}): DesiredInputs {
  return { table: t.compiled(), trashDestIds: [], marks: MARKS, health: () => true, grant: { kind: 'all' }, host: HOST, now: 0, ...over };
}

describe('kernel-rules: the compiler', () => {
  it('kernel-rules: the FwdTable is whole — marks carried, fwmark VIPs among the VIPs, sorted', () => {
    const fwd = compileFwdTable(table().compiled(), [], new IdAllocator(16), new IdAllocator(16), 0, { marks: MARKS });
    expect(fwd.marks).toHaveLength(1);
    expect(ownedVips(fwd, { kind: 'all' })).toEqual(['10.200.0.10', '10.200.0.20', '10.200.0.30']);
    expect(Object.isFrozen(fwd)).toBe(false);
    const bare = compileFwdTable(table().compiled(), [], new IdAllocator(16), new IdAllocator(16), 0);
    expect(bare.marks).toBeUndefined();
    expect(ownedVips(bare, { kind: 'all' })).toEqual(['10.200.0.10', '10.200.0.30']);
  });
  it('kernel-rules: a real server the health view calls down is compiled with weight 0, the others keep theirs', () => {
    const fwd = compileFwdTable(table().compiled(), [], new IdAllocator(16), new IdAllocator(16), 0, { destUp: (_s, d) => d.addr !== '10.200.1.101' });
    const w = Object.fromEntries(fwd.services.flatMap((s) => s.dests.map((d) => [d.addrText, d.weight])));
    expect(w).toEqual({ '10.200.1.101': 0, '10.200.1.102': 1, '10.200.1.103': 1, '10.200.1.104': 1 });
  });
  it('kernel-rules: DR marks are stable per real server, freed marks are reused lowest first', () => {
    const a = new DrMarkAllocator();
    const t = new IpvsTable();
    t.addService(svc());
    for (const ip of ['10.0.0.1', '10.0.0.2', '10.0.0.3']) t.addDest(svc(), dest(ip, { method: 'route' }));
    const marks = (): Record<string, number | undefined> => {
      const f = compileFwdTable(t.compiled(), [], new IdAllocator(16), new IdAllocator(16), 0, { drMarks: a });
      return Object.fromEntries(f.services[0].dests.map((d) => [d.addrText, d.drMark]));
    };
    expect(marks()).toEqual({ '10.0.0.3': 0x100, '10.0.0.2': 0x101, '10.0.0.1': 0x102 });
    t.delDest(svc(), dest('10.0.0.2'));
    expect(marks()).toEqual({ '10.0.0.3': 0x100, '10.0.0.1': 0x102 });
    t.addDest(svc(), dest('10.0.0.9', { method: 'route' }));
    expect(marks()).toEqual({ '10.0.0.9': 0x101, '10.0.0.3': 0x100, '10.0.0.1': 0x102 });
    expect(a.entries()).toEqual([['10.0.0.3', 0x100], ['10.0.0.9', 0x101], ['10.0.0.1', 0x102]]);
  });
});

describe('kernel-rules: afpacket', () => {
  it('kernel-rules: services with real servers are dropped, NAT replies by address and port, fwmark matches, own addresses RETURN first', () => {
    const d = new DesiredCompiler({ backend: 'afpacket', workers: 1 }).compile(inputs(table()));
    expect(d.kernel.backend).toBe('afpacket');
    const spec = d.kernel.backend === 'afpacket' ? d.kernel.spec : null;
    expect(spec?.ownAddrs).toEqual(['10.200.0.2', '10.200.1.2']);
    const r = directorRules(spec!);
    expect(r.chain).toBe('TSVS-RAW');
    expect(r.natChain).toBeNull();
    expect(r.raw.map((x) => x.join(' '))).toEqual([
      '-d 10.200.0.2/32 -j RETURN',
      '-d 10.200.1.2/32 -j RETURN',
      '-i front -p 6 -d 10.200.0.20/255.255.255.255 -m multiport --dports 80,443 -j DROP',
      '-i front -d 10.200.0.10/32 -p tcp --dport 80 -j DROP',
      '-i front -d 10.200.0.10/32 -p udp --dport 53 -j DROP',
      '-i back -s 10.200.1.102/32 -p tcp --sport 8080 -j DROP',
      '-i back -s 10.200.1.102/32 -p udp --sport 8080 -j DROP',
      '-i back -s 10.200.1.101/32 -p tcp --sport 80 -j DROP',
      '-i back -s 10.200.1.101/32 -p udp --sport 80 -j DROP',
      '-i back -s 10.200.1.104/32 -p tcp -j DROP',
      '-i back -s 10.200.1.104/32 -p udp -j DROP',
    ]);
  });
  it('kernel-rules: a masq real server on the director itself with another port gets a DNAT rule in TSVS-RAW-LOCAL', () => {
    const t = new IpvsTable();
    t.addService(svc());
    t.addDest(svc(), dest('10.200.0.2', { port: 8080 }));
    const fwd = compileFwdTable(t.compiled(), [], new IdAllocator(4), new IdAllocator(4), 0);
    const r = directorRules(directorSpec(fwd, HOST));
    expect(r.natChain).toBe('TSVS-RAW-LOCAL');
    expect(r.nat).toEqual([['-i', 'tsvs-local0', '-p', 'tcp', '-d', '10.200.0.10/32', '--dport', '80', '-j', 'DNAT', '--to-destination', '10.200.0.2:8080']]);
  });
  it('kernel-rules: restore text declares, empties and refills every chain in one commit', () => {
    expect(restoreText('raw', [['C', [['-d', '1.2.3.4/32', '-j', 'DROP']]], ['D', []]])).toBe('*raw\n:C - [0:0]\n:D - [0:0]\n-A C -d 1.2.3.4/32 -j DROP\nCOMMIT\n');
  });
  it('kernel-rules: a mark rule becomes its iptables match', () => {
    const [r] = parseMarkRules('-A PREROUTING -t mangle ! -s 10.0.0.0/8 -p udp --sport 1000:2000 -j MARK --set-mark 3\n');
    expect(markRuleMatch(r)).toEqual(['-p', '17', '!', '-s', '10.0.0.0/255.0.0.0', '--sport', '1000:2000']);
  });
});

describe('kernel-rules: nfqueue', () => {
  it('kernel-rules: services, replies and matches are queued; DR real servers get one policy route per mark', () => {
    const d = new DesiredCompiler({ backend: 'nfqueue', workers: 2, queueBase: 4 }).compile(inputs(table()));
    const spec = d.kernel.backend === 'nfqueue' ? d.kernel.spec : null;
    expect(spec).not.toBeNull();
    expect(spec!.services).toEqual([
      { proto: 'tcp', vip: '10.200.0.10', port: 80, iface: 'front' },
      { proto: 'udp', vip: '10.200.0.10', port: 53, iface: 'front' },
    ]);
    expect(spec!.dr).toEqual([{ rip: '10.200.1.103', dev: 'back' }]);
    expect(d.fwd.services[1].dests[0].drMark).toBe(0x100);
    const r = nfqueueRules(spec!);
    expect(r.req.map((x) => x.join(' '))).toEqual([
      '-j HMARK --hmark-src-prefix 32 --hmark-dst-prefix 0 --hmark-sport-mask 0 --hmark-dport-mask 0 --hmark-proto-mask 0 --hmark-rnd 0x5eed --hmark-mod 2 --hmark-offset 0',
      '-m mark --mark 0 -j NFQUEUE --queue-num 4',
      '-m mark --mark 1 -j NFQUEUE --queue-num 5',
    ]);
    expect(r.dispatch[4].join(' ')).toBe('-i front -p 6 -d 10.200.0.20/255.255.255.255 -m multiport --dports 80,443 -j TSVS-NFQ-REQ');
    expect(r.raw.filter((x) => x.includes('--notrack'))).toHaveLength(2 + 1 + 2 + 2);
  });
  it('kernel-rules: a freed DR mark leaves a placeholder route so mark 0x100 + k stays the k-th', () => {
    const fwd = compileFwdTable(new IpvsTable().compiled(), [], new IdAllocator(4), new IdAllocator(4), 0);
    const spec = nfqueueSpec(fwd, HOST, { queues: 1, queueBase: 0, drMarks: [['10.0.0.1', 0x100], ['10.0.0.3', 0x102]] });
    expect(spec.dr).toEqual([{ rip: '10.0.0.1', dev: 'back' }, { rip: '10.0.0.1', dev: 'back' }, { rip: '10.0.0.3', dev: 'back' }]);
    expect(nfqueueRules(spec).req).toEqual([['-j', 'NFQUEUE', '--queue-num', '0']]);
    expect(() => nfqueueRules({ ...spec, queues: 0 })).toThrow(RangeError);
  });
});

describe('kernel-rules: VIPs', () => {
  it('kernel-rules: a grant limits the VIP set, not the forwarding table', () => {
    const d = new DesiredCompiler({ backend: 'afpacket', workers: 1 }).compile(inputs(table(), { grant: { kind: 'only', vips: ['10.200.0.30', '192.0.2.1'] } }));
    expect(d.vips).toEqual(['10.200.0.30']);
    expect(d.fwd.vips).toHaveLength(3);
  });
  it('kernel-rules: setDiff says what to add and what to remove', () => {
    expect(setDiff(['a', 'b'], ['b', 'c'])).toEqual({ add: ['c'], del: ['a'] });
    expect(setDiff([], [])).toEqual({ add: [], del: [] });
  });
});
