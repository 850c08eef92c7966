// telemetry trace: tsvsadm trace's filters and its line for people.
import { describe, expect, it } from 'vitest';
import { DecisionReader, DecisionWriter, Outcome, TemplateUse, decisionRingBytes, schedulerIndex, type DecisionRecord } from '../../shared/telemetry/decision-ring.ts';
import { formatTraceLine, matchTrace, parseTraceFilter, TraceUsageError } from '../../shared/telemetry/trace-format.ts';
import type { DestView } from '../../shared/sched/types.ts';

const ip = (s: string): number => s.split('.').reduce((a, b) => a * 256 + Number(b), 0);
const view = (i: number, a: string, w: number, act = 0, ina = 0): DestView => ({ index: i, addr: ip(a), port: 80, weight: w, lastWeight: w, overloaded: false, available: true, activeConns: act, inactConns: ina });

function records(): DecisionRecord[] {
  const buf = new ArrayBuffer(decisionRingBytes(8));
  const w = new DecisionWriter(buf, { init: true, worker: 1, director: 'd1', epochMs: Date.UTC(2026, 11, 5, 12, 0, 1) });
  const vs = [view(0, '10.0.1.1', 3, 0, 2), view(1, '10.0.1.2', 1)];
  w.begin(250, 6, ip('10.0.0.7'), 41234, ip('10.0.0.1'), 80, 0, 0);
  w.candidates(schedulerIndex('wrr'), vs, 1);
  w.commit(Outcome.scheduled, TemplateUse.none, 5, ip('10.0.1.2'), 80, 0);
  w.begin(300, 17, ip('10.0.0.8'), 5353, ip('10.0.0.1'), 53, 0, 1);
  w.candidates(schedulerIndex('rr'), [view(0, '10.0.1.1', 0)], -1);
  w.commit(Outcome.quiescent, TemplateUse.none, -1, 0, 0, 255);
  w.begin(400, 6, ip('10.0.0.7'), 41235, 0, 0, 7, 2);
  w.commit(Outcome.persistent, TemplateUse.hit, 5, ip('10.0.1.2'), 443, 3);
  return new DecisionReader(buf).recent().reverse();
}

describe('telemetry trace', () => {
  const [tcp, udp, fwm] = records();

  it('telemetry trace: one line names the client, service, scheduler, chosen server and the candidates compared', () => {
    expect(formatTraceLine(tcp)).toBe('12:00:01.250 d1/w1 10.0.0.7:41234 -> TCP 10.0.0.1:80 wrr => 10.0.1.2:80 masq [10.0.1.1:80 w=3 a=0 i=2 o=0, 10.0.1.2:80 w=1 a=0 i=0 o=0 *]');
    expect(formatTraceLine(udp)).toBe('12:00:01.300 d1/w1 10.0.0.8:5353 -> UDP 10.0.0.1:53 rr !! quiescent [10.0.1.1:80 w=0 a=0 i=0 o=0]');
    expect(formatTraceLine(fwm)).toBe('12:00:01.400 d1/w1 10.0.0.7:41235 -> FWM 7 template => 10.0.1.2:443 route (persistent)');
  });

  it('telemetry trace: --client, --dest and --service filter; addresses without a port match every port', () => {
    const all = [tcp, udp, fwm];
    const pick = (o: Parameters<typeof parseTraceFilter>[0]): number[] => all.filter((r) => matchTrace(parseTraceFilter(o), r)).map((r) => r.clientPort);
    expect(pick({})).toEqual([41234, 5353, 41235]);
    expect(pick({ client: '10.0.0.7' })).toEqual([41234, 41235]);
    expect(pick({ client: '10.0.0.7:41235' })).toEqual([41235]);
    expect(pick({ dest: '10.0.1.2:80' })).toEqual([41234]);
    expect(pick({ dest: '10.0.1.2' })).toEqual([41234, 41235]);
    expect(pick({ service: 'TCP 10.0.0.1:80' })).toEqual([41234]);
    expect(pick({ service: '10.0.0.1' })).toEqual([41234, 5353]);
    expect(pick({ service: 'udp 10.0.0.1:53' })).toEqual([5353]);
    expect(pick({ service: 'FWM 7' })).toEqual([41235]);
  });

  it('telemetry trace: bad filters are usage errors naming the option', () => {
    expect(() => parseTraceFilter({ client: '10.0.0.300' })).toThrow(TraceUsageError);
    expect(() => parseTraceFilter({ dest: '10.0.1.2:http' })).toThrow(/--dest 10.0.1.2:http: 'http' is not a port/);
    expect(() => parseTraceFilter({ service: 'ICMP 10.0.0.1' })).toThrow(/--service/);
  });
});
