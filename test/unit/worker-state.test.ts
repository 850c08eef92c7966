// worker/state: a forwarding table becomes the engine's state in one pure assignment; schedulers carry across a swap
// as the kernel would have seen the edit.
import { describe, expect, it } from 'vitest';
import { FwdCode } from '../../shared/model/ipvs.ts';
import { ipv4FromText } from '../../shared/net/addr.ts';
import { apGet, buildState, emptyState } from '../../services/worker/state.ts';
import { dest, service, table } from '../support/engine-fakes.ts';

const ip = (s: string): number => ipv4FromText(s)!;
const TCP = 6;
const rng = (): number => 0.5;
const pick = (st: ReturnType<typeof buildState>, id: number): string => {
  const s = st.byId[id];
  const pos = s.sched!.schedule(s.views, { saddr: 1, sport: 1, daddr: 2, dport: 80 }, 0);
  return `${s.dests[pos].addr >>> 0 === ip('10.1.0.101') ? 'a' : s.dests[pos].addr >>> 0 === ip('10.1.0.102') ? 'b' : 'c'}`;
};

describe('worker/state: buildState', () => {
  it('worker/state: lookups by key, live dests, NAT endpoints, VIPs and timeouts come from the table', () => {
    const t = table([service(0, TCP, 80, [dest(3, '10.1.0.101', 8080, FwdCode.masq), dest(1, '10.1.0.102', 80, FwdCode.route)])]);
    const st = buildState(emptyState(), t, rng);
    expect(st.epoch).toBe(t.epoch);
    expect(apGet(st.byKey, TCP, t.services[0].vaddr, 80)).toBe(st.byId[0]);
    expect(apGet(st.byKey, TCP, t.services[0].vaddr, 81)).toBeUndefined();
    expect([...st.destLive]).toEqual([0, 1, 0, 1]);
    expect(apGet(st.natEndpoints, TCP, ip('10.1.0.101'), 8080)).toBe(true);
    expect(apGet(st.natEndpoints, TCP, ip('10.1.0.102'), 80)).toBeUndefined();
    expect([...st.vips]).toEqual(t.vips);
    expect(st.timeoutsMs).toEqual({ tcp: t.timeouts.tcp * 1000, tcpfin: t.timeouts.tcpfin * 1000, udp: t.timeouts.udp * 1000 });
    expect(st.classifier).toBeNull();
  });
  it('worker/state: rr keeps its place across a swap that adds a dest (added at the head, as the kernel lists it)', () => {
    const a = dest(0, '10.1.0.101', 80, FwdCode.route);
    const b = dest(1, '10.1.0.102', 80, FwdCode.route);
    const s1 = buildState(emptyState(), table([service(0, TCP, 80, [b, a], { scheduler: 'rr' })], 1), rng);
    expect([pick(s1, 0), pick(s1, 0)]).toEqual(['b', 'a']);
    const c = dest(2, '10.1.0.103', 80, FwdCode.route);
    const s2 = buildState(s1, table([service(0, TCP, 80, [c, b, a], { scheduler: 'rr' })], 2), rng);
    expect(s2.byId[0].sched).toBe(s1.byId[0].sched);
    // The cursor stayed on a (the last pick): the walk goes on from there, around to the new head.
    expect([pick(s2, 0), pick(s2, 0), pick(s2, 0)]).toEqual(['c', 'b', 'a']);
  });
  it('worker/state: another scheduler starts afresh; a removed service is gone', () => {
    const a = dest(0, '10.1.0.101', 80, FwdCode.route);
    const s1 = buildState(emptyState(), table([service(0, TCP, 80, [a], { scheduler: 'rr' }), service(1, TCP, 81, [a])], 1), rng);
    const s2 = buildState(s1, table([service(0, TCP, 80, [a], { scheduler: 'wlc' })], 2), rng);
    expect(s2.byId[0].sched).not.toBe(s1.byId[0].sched);
    expect(s2.byId[1]).toBeUndefined();
    expect(apGet(s2.byKey, TCP, s2.byId[0].svc.vaddr, 81)).toBeUndefined();
  });
});
