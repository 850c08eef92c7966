// conntab: IPVS TCP state machine tables, flag priority, INPUT vs INPUT_ONLY, timeouts and --set.
import { describe, expect, it } from 'vitest';
import {
  defaultTimeouts, Dir, getTimeouts, setTimeouts, TCP_STATE_NAMES, TcpFlag, tcpFlagRow, tcpNextState, tcpNoOutputAfter, tcpStateActive, TcpState,
} from '../../shared/conntab/tcp-state.ts';

const { SYN, FIN, ACK, RST } = TcpFlag;
const S = TcpState;

describe('conntab: tcp state machine', () => {
  it('conntab: flag priority is RST > SYN > FIN > ACK, none gives -1', () => {
    expect(tcpFlagRow(RST | SYN | FIN | ACK)).toBe(3);
    expect(tcpFlagRow(SYN | FIN | ACK)).toBe(0);
    expect(tcpFlagRow(FIN | ACK)).toBe(1);
    expect(tcpFlagRow(ACK)).toBe(2);
    expect(tcpFlagRow(0x08 /* PSH */)).toBe(-1);
  });

  it('conntab: a packet with no RST/SYN/FIN/ACK moves any state to CLOSE', () => {
    for (let s = 0; s < 11; s++) {
      expect(tcpNextState(s, Dir.INPUT, 0x08, false)).toBe(S.CLOSE);
      expect(tcpNextState(s, Dir.OUTPUT, 0, false)).toBe(S.CLOSE);
    }
  });

  it('conntab: NAT life: SYN, SYN-ACK out, ACK, data, client FIN, server FIN', () => {
    let s: number = S.NONE;
    s = tcpNextState(s, Dir.INPUT, SYN, false);
    expect(TCP_STATE_NAMES[s]).toBe('SYN_RECV');
    s = tcpNextState(s, Dir.OUTPUT, SYN | ACK, false);
    expect(TCP_STATE_NAMES[s]).toBe('SYN_RECV');
    s = tcpNextState(s, Dir.INPUT, ACK, false);
    expect(TCP_STATE_NAMES[s]).toBe('ESTABLISHED');
    s = tcpNextState(s, Dir.INPUT, ACK | 0x08, false);
    s = tcpNextState(s, Dir.OUTPUT, ACK, false);
    expect(s).toBe(S.ESTABLISHED);
    s = tcpNextState(s, Dir.INPUT, FIN | ACK, false);
    expect(TCP_STATE_NAMES[s]).toBe('CLOSE_WAIT');
    s = tcpNextState(s, Dir.OUTPUT, ACK, false);
    expect(s).toBe(S.CLOSE_WAIT);
    s = tcpNextState(s, Dir.OUTPUT, FIN | ACK, false);
    expect(TCP_STATE_NAMES[s]).toBe('TIME_WAIT');
    s = tcpNextState(s, Dir.INPUT, ACK, false);
    expect(s).toBe(S.TIME_WAIT);
  });

  it('conntab: server closes first in NAT: ES -> FIN_WAIT (out FIN) -> TIME_WAIT (client FIN)', () => {
    let s = tcpNextState(S.ESTABLISHED, Dir.OUTPUT, FIN | ACK, false);
    expect(s).toBe(S.FIN_WAIT);
    s = tcpNextState(s, Dir.INPUT, FIN | ACK, false);
    expect(s).toBe(S.TIME_WAIT);
  });

  it('conntab: DR life via INPUT_ONLY ends in FIN_WAIT', () => {
    let s: number = S.NONE;
    for (const f of [SYN, ACK, ACK, FIN | ACK, ACK]) s = tcpNextState(s, Dir.INPUT, f, true);
    expect(TCP_STATE_NAMES[s]).toBe('FIN_WAIT');
    expect(defaultTimeouts().tcp[s]).toBe(120_000);
  });

  it('conntab: INPUT vs INPUT_ONLY differ exactly in the three cells of the reference', () => {
    const diffs: string[] = [];
    for (const [name, f] of [['syn', SYN], ['fin', FIN], ['ack', ACK], ['rst', RST]] as const) {
      for (let s = 0; s < 11; s++) {
        const a = tcpNextState(s, Dir.INPUT, f, false);
        const b = tcpNextState(s, Dir.INPUT, f, true);
        expect(tcpNextState(s, Dir.INPUT_ONLY, f, false)).toBe(b);
        if (a !== b) diffs.push(`${name} ${TCP_STATE_NAMES[s]}: ${TCP_STATE_NAMES[a]} / ${TCP_STATE_NAMES[b]}`);
      }
    }
    expect(diffs).toEqual(['fin ESTABLISHED: CLOSE_WAIT / FIN_WAIT', 'fin FIN_WAIT: TIME_WAIT / FIN_WAIT', 'rst SYNACK: SYN_RECV / CLOSE']);
  });

  it('conntab: RST closes from ESTABLISHED in every direction; RST in SYN_RECV from the client stays SYN_RECV', () => {
    expect(tcpNextState(S.ESTABLISHED, Dir.INPUT, RST, false)).toBe(S.CLOSE);
    expect(tcpNextState(S.ESTABLISHED, Dir.OUTPUT, RST | ACK, false)).toBe(S.CLOSE);
    expect(tcpNextState(S.ESTABLISHED, Dir.INPUT, RST, true)).toBe(S.CLOSE);
    expect(tcpNextState(S.SYN_RECV, Dir.INPUT, RST, false)).toBe(S.SYN_RECV);
    expect(tcpNextState(S.SYN_RECV, Dir.OUTPUT, RST, false)).toBe(S.CLOSE);
    expect(tcpNextState(S.TIME_WAIT, Dir.OUTPUT, RST, false)).toBe(S.TIME_WAIT);
  });

  it('conntab: LAST_ACK is unreachable from every other state', () => {
    for (let s = 0; s < 11; s++) {
      if (s === S.LAST_ACK) continue;
      for (const d of [Dir.INPUT, Dir.OUTPUT, Dir.INPUT_ONLY]) for (const f of [SYN, FIN, ACK, RST, 0]) expect(tcpNextState(s, d, f, false)).not.toBe(S.LAST_ACK);
    }
  });

  it('conntab: NOOUTPUT is cleared by the first OUTPUT packet only', () => {
    expect(tcpNoOutputAfter(true, Dir.INPUT)).toBe(true);
    expect(tcpNoOutputAfter(true, Dir.OUTPUT)).toBe(false);
    expect(tcpNoOutputAfter(false, Dir.INPUT)).toBe(false);
  });

  it('conntab: active states are ESTABLISHED, SYN_SENT, SYN_RECV, SYNACK', () => {
    const active = TCP_STATE_NAMES.filter((_, s) => tcpStateActive(s));
    expect(active).toEqual(['ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'SYNACK']);
  });

  it('conntab: default timeouts and --set (0 leaves unchanged)', () => {
    const t = defaultTimeouts();
    expect(Array.from(t.tcp, (ms) => ms / 1000)).toEqual([2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120]);
    expect(getTimeouts(t)).toEqual({ tcp: 900, tcpfin: 120, udp: 300 });
    setTimeouts(t, 0, 30, 0);
    expect(getTimeouts(t)).toEqual({ tcp: 900, tcpfin: 30, udp: 300 });
    setTimeouts(t, 3600, 0, 60);
    expect(getTimeouts(t)).toEqual({ tcp: 3600, tcpfin: 30, udp: 60 });
    expect(t.tcp[S.TIME_WAIT]).toBe(120_000);
  });
});
