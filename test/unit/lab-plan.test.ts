// lab plan: the address plan other code relies on, pinned (pure; no namespaces are created).
import { describe, expect, it } from 'vitest';
import { LabUsageError, parseLabArgs, plan, planJson } from '../../ops/lab/plan.ts';

describe('lab plan', () => {
  it('lab plan: default is 1 director, 2 servers, nat, with the contract addresses', () => {
    expect(planJson(plan(parseLabArgs([]).options))).toEqual({
      nodes: {
        client: { netns: 'tsvs-client', addresses: ['10.200.0.100/24'] },
        d1: { netns: 'tsvs-d1', addresses: ['10.200.0.11/24', '10.200.1.11/24'] },
        rs1: { netns: 'tsvs-rs1', addresses: ['10.200.1.101/24'] },
        rs2: { netns: 'tsvs-rs2', addresses: ['10.200.1.102/24'] },
      },
      vips: ['10.200.0.10'],
    });
  });

  it('lab plan: --router moves the client to 10.200.9.0/24 and routes the VIP over every director', () => {
    const p = plan(parseLabArgs(['--router', '--directors', '3', '--mode=dr']).options);
    const j = planJson(p);
    expect(j.nodes.client.addresses).toEqual(['10.200.9.100/24']);
    expect(j.nodes.router.addresses).toEqual(['10.200.9.1/24', '10.200.0.1/24', '10.200.1.1/24']);
    const router = p.nodes.find((n) => n.name === 'router')!;
    expect(router.routes).toEqual([{ dst: '10.200.0.10/32', via: ['10.200.0.11', '10.200.0.12', '10.200.0.13'], group: 100 }]);
    expect(router.sysctls).toContainEqual(['net.ipv4.fib_multipath_hash_policy', '1']);
    // dr with a router: real servers reply straight through the router.
    expect(p.nodes.find((n) => n.name === 'rs1')!.routes).toEqual([{ dst: 'default', via: ['10.200.1.1'] }]);
  });

  it('lab plan: nat with a router and several directors: the real servers\' default route is multipath over every DIP, L4 hash', () => {
    const p = plan(parseLabArgs(['--router', '--directors', '3']).options);
    const rs = p.nodes.find((n) => n.name === 'rs2')!;
    expect(rs.routes).toEqual([{ dst: 'default', via: ['10.200.1.11', '10.200.1.12', '10.200.1.13'], group: 200 }]);
    expect(rs.sysctls).toContainEqual(['net.ipv4.fib_multipath_hash_policy', '1']);
    const one = plan(parseLabArgs(['--router']).options).nodes.find((n) => n.name === 'rs1')!;
    expect(one.routes).toEqual([{ dst: 'default', via: ['10.200.1.11'] }]);
  });

  it('lab plan: nat real servers route via d1, dr ones without a router too, with the VIP on lo and ARP sysctls', () => {
    const nat = plan(parseLabArgs([]).options).nodes.find((n) => n.name === 'rs2')!;
    expect(nat.routes).toEqual([{ dst: 'default', via: ['10.200.1.11'] }]);
    expect(nat.loopbackAddresses).toEqual([]);
    const dr = plan(parseLabArgs(['--mode', 'dr']).options).nodes.find((n) => n.name === 'rs2')!;
    expect(dr.routes).toEqual([{ dst: 'default', via: ['10.200.1.11'] }]);
    expect(dr.loopbackAddresses).toEqual(['10.200.0.10/32']);
    expect(dr.sysctls).toEqual(expect.arrayContaining([['net.ipv4.conf.all.arp_ignore', '1'], ['net.ipv4.conf.lo.arp_announce', '2']]));
  });

  it('lab plan: --nats adds nats1..3 on 10.200.2.0/24 and a mgmt address per director', () => {
    const j = planJson(plan(parseLabArgs(['--nats', '--directors', '2']).options));
    expect(j.nodes.nats2).toEqual({ netns: 'tsvs-nats2', addresses: ['10.200.2.2/24'] });
    expect(j.nodes.d2.addresses).toEqual(['10.200.0.12/24', '10.200.1.12/24', '10.200.2.12/24']);
    expect(Object.keys(j.nodes)).toEqual(['client', 'd1', 'd2', 'rs1', 'rs2', 'nats1', 'nats2', 'nats3']);
  });

  it('lab plan: bad options are usage errors that name every problem', () => {
    expect(() => parseLabArgs(['--directors', '0', '--mode', 'ipip'])).toThrow(/--directors must be 1\.\.9.*--mode must be one of nat\|dr\|tun/);
    expect(() => parseLabArgs(['--bogus'])).toThrow(LabUsageError);
    expect(() => parseLabArgs(['--servers'])).toThrow(/needs a value/);
  });
});
