// IPVS's protocol state machines as pure tables: TCP states and transitions (ip_vs_proto_tcp.c), UDP's single
// state, the active/inactive classification, and the per-state timeouts that `ipvsadm --set` adjusts.

/** TCP connection states, numbered as the kernel's IP_VS_TCP_S_* (the value stored in a table entry). */
export const TcpState = {
  NONE: 0,
  ESTABLISHED: 1,
  SYN_SENT: 2,
  SYN_RECV: 3,
  FIN_WAIT: 4,
  TIME_WAIT: 5,
  CLOSE: 6,
  CLOSE_WAIT: 7,
  LAST_ACK: 8,
  LISTEN: 9,
  SYNACK: 10,
} as const;
export type TcpStateValue = (typeof TcpState)[keyof typeof TcpState];

/** Number of TCP states (IP_VS_TCP_S_LAST). */
export const TCP_STATE_COUNT = 11;

/** State names as /proc/net/ip_vs_conn and `ipvsadm -L -c` print them, indexed by TcpState. */
export const TCP_STATE_NAMES: readonly string[] = [
  'NONE', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT', 'TIME_WAIT', 'CLOSE', 'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'SYNACK',
];

/** The UDP state (IP_VS_UDP_S_NORMAL); printed as "UDP". */
export const UDP_STATE_NORMAL = 0;
/** Template states (IP_VS_CTPL_S_*): a template is NONE until a controlled connection reaches ESTABLISHED. */
export const TemplateState = { NONE: 0, ASSURED: 1 } as const;
/** Template state names as /proc/net/ip_vs_conn prints them. */
export const TEMPLATE_STATE_NAMES: readonly string[] = ['NONE', 'ASSURED'];

/** Packet direction as the kernel passes it to the state machine (IP_VS_DIR_*). */
export const Dir = { INPUT: 0, OUTPUT: 1, INPUT_ONLY: 2 } as const;
export type DirValue = (typeof Dir)[keyof typeof Dir];

/** TCP header flag bits (byte 13 of the TCP header) that the state machine reads. */
export const TcpFlag = { FIN: 0x01, SYN: 0x02, RST: 0x04, ACK: 0x10 } as const;

const sNO = 0, sES = 1, sSS = 2, sSR = 3, sFW = 4, sTW = 5, sCL = 6, sCW = 7, sLA = 8, sLI = 9, sSA = 10;

/**
 * The normal transition table (`tcp_states`): 12 rows of 11 next states. Row = direction offset (INPUT 0,
 * OUTPUT 4, INPUT_ONLY 8) + flag row (syn 0, fin 1, ack 2, rst 3); column = current state.
 */
export const TCP_STATE_TABLE: Readonly<Uint8Array> = Uint8Array.from([
  // INPUT
  /* syn */ sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR,
  /* fin */ sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sTW,
  /* ack */ sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES,
  /* rst */ sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sSR,
  // OUTPUT
  /* syn */ sSS, sES, sSS, sSR, sSS, sSS, sSS, sSS, sSS, sLI, sSR,
  /* fin */ sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW,
  /* ack */ sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES,
  /* rst */ sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL,
  // INPUT_ONLY
  /* syn */ sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR,
  /* fin */ sCL, sFW, sSS, sTW, sFW, sTW, sCL, sCW, sLA, sLI, sTW,
  /* ack */ sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES,
  /* rst */ sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL,
]);

/** 1 for the states counted as ActiveConn (ESTABLISHED, SYN_SENT, SYN_RECV, SYNACK), 0 otherwise. */
export const TCP_STATE_ACTIVE: Readonly<Uint8Array> = Uint8Array.from([0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1]);

/**
 * Flag row of a TCP packet (`tcp_state_idx`): RST 3 > SYN 0 > FIN 1 > ACK 2; -1 when none of the four is set
 * (the kernel then moves the connection to CLOSE without consulting the table).
 */
export function tcpFlagRow(tcpFlags: number): number {
  if (tcpFlags & TcpFlag.RST) return 3;
  if (tcpFlags & TcpFlag.SYN) return 0;
  if (tcpFlags & TcpFlag.FIN) return 1;
  if (tcpFlags & TcpFlag.ACK) return 2;
  return -1;
}

/**
 * Next TCP state for a packet (`set_tcp_state`, without the side effects). `dir` is the packet's direction;
 * pass INPUT for client→director packets and OUTPUT for replies. `noOutput` is the connection's NOOUTPUT
 * flag: while set, INPUT packets use the INPUT_ONLY rows (the caller clears the flag on the first OUTPUT
 * packet; see {@link tcpNoOutputAfter}). A packet with none of RST/SYN/FIN/ACK gives CLOSE. Out-of-range
 * states give CLOSE too (never throws).
 */
export function tcpNextState(state: number, dir: number, tcpFlags: number, noOutput: boolean): number {
  let off = dir === Dir.OUTPUT ? 4 : dir === Dir.INPUT_ONLY ? 8 : 0;
  if (noOutput && off === 0) off = 8;
  const row = tcpFlagRow(tcpFlags);
  if (row < 0 || state < 0 || state >= TCP_STATE_COUNT) return TcpState.CLOSE;
  return TCP_STATE_TABLE[(off + row) * TCP_STATE_COUNT + state];
}

/** Whether NOOUTPUT is still set after a packet in `dir`: the first OUTPUT packet clears it. */
export function tcpNoOutputAfter(noOutput: boolean, dir: number): boolean {
  return noOutput && dir !== Dir.OUTPUT;
}

/** Whether a TCP state counts as ActiveConn (`tcp_state_active_table`). */
export function tcpStateActive(state: number): boolean {
  return TCP_STATE_ACTIVE[state] === 1;
}

/** Timeout of a brand-new entry before its first state transition (ip_vs_conn_new: 3 s), in ms. */
export const NEW_CONN_TIMEOUT_MS = 3000;
/** Re-arm period of an expiring template that still controls connections (ip_vs_conn_expire: 60 s), in ms. */
export const TEMPLATE_REARM_MS = 60_000;

/** Default TCP timeouts per state in seconds (`tcp_timeouts`), indexed by TcpState. */
export const TCP_DEFAULT_TIMEOUTS_S: readonly number[] = [2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120];
/** Default UDP NORMAL timeout in seconds. */
export const UDP_DEFAULT_TIMEOUT_S = 300;
/**
 * Largest timeout a table entry can hold, in ms (2^31 - 1 ≈ 24.8 days): expiries are u32 ms and compared
 * modulo 2^32. Longer timeouts are clamped to it.
 */
export const MAX_TIMEOUT_MS = 0x7fffffff;

/**
 * Per-state timeouts in ms, as the forwarding path reads them: `tcp[state]` and `udp`. A plain object that
 * the control plane builds (defaults + `--set`) and hands to each table; mutate it only between batches.
 */
export interface ProtoTimeouts {
  /** TCP timeout per TcpState, in ms (11 entries). */
  tcp: Uint32Array;
  /** UDP NORMAL timeout, in ms; also used for protocols without a state machine here. */
  udp: number;
}

/** Kernel default timeouts (900/120/300 for `ipvsadm -L --timeout`). */
export function defaultTimeouts(): ProtoTimeouts {
  return { tcp: Uint32Array.from(TCP_DEFAULT_TIMEOUTS_S, (s) => s * 1000), udp: UDP_DEFAULT_TIMEOUT_S * 1000 };
}

/**
 * Apply `ipvsadm --set tcp tcpfin udp` (seconds): tcp sets ESTABLISHED, tcpfin sets FIN_WAIT, udp sets UDP
 * NORMAL; 0 leaves that entry unchanged. Values are clamped to {@link MAX_TIMEOUT_MS}. Returns `t`.
 */
export function setTimeouts(t: ProtoTimeouts, tcpS: number, tcpfinS: number, udpS: number): ProtoTimeouts {
  if (tcpS > 0) t.tcp[TcpState.ESTABLISHED] = clampMs(tcpS);
  if (tcpfinS > 0) t.tcp[TcpState.FIN_WAIT] = clampMs(tcpfinS);
  if (udpS > 0) t.udp = clampMs(udpS);
  return t;
}

/** The three values `ipvsadm -L --timeout` prints, in seconds. */
export function getTimeouts(t: ProtoTimeouts): { tcp: number; tcpfin: number; udp: number } {
  return { tcp: Math.floor(t.tcp[TcpState.ESTABLISHED] / 1000), tcpfin: Math.floor(t.tcp[TcpState.FIN_WAIT] / 1000), udp: Math.floor(t.udp / 1000) };
}

function clampMs(s: number): number {
  return Math.min(Math.floor(s) * 1000, MAX_TIMEOUT_MS);
}
