// The fixed table of packet-codec outcomes: OK or a named drop reason, each with a stable index for counters.

/**
 * Outcome codes of the shared/net parsers and rewriters. `OK` is 0; every other code names why a packet cannot
 * be handled, and indexes a counter slot (`new Float64Array(NET_VERDICT_COUNT)`). Codes are stable: append only.
 */
export const NetVerdict = {
  OK: 0,
  /** Shorter than an Ethernet header (or its 802.1Q tag). */
  DROP_TRUNCATED_ETH: 1,
  /** Ethertype is not IPv4 (ARP, IPv6, a second VLAN tag, ...); `meta.etherType` says which. */
  DROP_NOT_IPV4: 2,
  /** Fewer than 20 bytes of IP header captured. */
  DROP_TRUNCATED_IP: 3,
  DROP_BAD_IP_VERSION: 4,
  /** IHL below 5, or the header (with options) longer than the capture or than the total length. */
  DROP_BAD_IHL: 5,
  /** Total length smaller than the header or larger than the captured bytes. */
  DROP_BAD_TOTAL_LEN: 6,
  DROP_BAD_IP_CSUM: 7,
  /** MF set or fragment offset non-zero: the worker does not reassemble. */
  DROP_FRAGMENT: 8,
  /** The TCP/UDP/ICMP header does not fit in the IP payload. */
  DROP_TRUNCATED_L4: 9,
  /** TCP data offset below 5 words or beyond the payload. */
  DROP_BAD_TCP_DOFF: 10,
  /** UDP length field below 8 or beyond the IP payload. */
  DROP_BAD_UDP_LEN: 11,
  /** IP protocol other than TCP, UDP, ICMP or IPIP. */
  DROP_UNSUPPORTED_PROTO: 12,
  /** An ICMP error whose embedded IP header plus 8 bytes do not fit, or whose embedded header is malformed. */
  DROP_BAD_ICMP_INNER: 13,
  /** TTL would reach 0 when forwarding (the kernel would send ICMP time exceeded). */
  DROP_TTL_EXPIRED: 14,
  /** An output buffer is too small for the result (encapsulation, frame building). */
  DROP_NO_ROOM: 15,
  /** A rewrite was asked of a packet whose protocol it does not apply to (e.g. ICMP NAT on a non-error). */
  DROP_WRONG_PROTO: 16,
  /** Not an Ethernet/IPv4 ARP packet, or a malformed one. */
  DROP_BAD_ARP: 17,
  /** GUE header with a version, control bit or header length this decapsulator does not accept. */
  DROP_BAD_GUE: 18,
} as const;

export type NetVerdictCode = (typeof NetVerdict)[keyof typeof NetVerdict];

/** Number of verdict codes: the size of a per-reason counter array. */
export const NET_VERDICT_COUNT = Object.keys(NetVerdict).length;

/** Names indexed by code, for counters and logs (e.g. `NET_VERDICT_NAMES[7] === 'DROP_BAD_IP_CSUM'`). */
export const NET_VERDICT_NAMES: readonly string[] = (() => {
  const names: string[] = [];
  for (const [k, v] of Object.entries(NetVerdict)) names[v] = k;
  return Object.freeze(names);
})();
