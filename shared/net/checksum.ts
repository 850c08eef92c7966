// Internet checksums (RFC 1071) and their incremental updates (RFC 1624), for complete checksum fields and for
// the CHECKSUM_PARTIAL fields that veth and offloading senders leave behind (packet-io-notes pitfall 2).
//
// Conventions: a "sum" is an unfolded 32-bit-or-wider one's-complement accumulator (a JS number, exact below
// 2^53); a "folded" value is that sum folded to 16 bits and NOT complemented; a "checksum" is the complemented
// folded value as it is stored in a header. Every function takes and returns plain numbers: nothing allocates.

/**
 * Adds the bytes `buf[off, off+len)` as big-endian 16-bit words to `sum` (an odd trailing byte is padded with
 * zero, as RFC 1071 says). Returns the unfolded sum. The caller guarantees the range lies inside `buf`.
 */
export function csumAdd(sum: number, buf: Uint8Array, off: number, len: number): number {
  const end = off + (len & ~1);
  let s = sum;
  let i = off;
  for (; i < end; i += 2) s += (buf[i] << 8) | buf[i + 1];
  if (len & 1) s += buf[i] << 8;
  return s;
}

/** Folds an unfolded sum to 16 bits with end-around carry. Not complemented; 0 only when the sum is 0. */
export function csumFold(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

/** The checksum (complemented, 16 bits) of `buf[off, off+len)` plus an unfolded `initial` sum. */
export function inetChecksum(buf: Uint8Array, off: number, len: number, initial = 0): number {
  return ~csumFold(csumAdd(initial, buf, off, len)) & 0xffff;
}

/**
 * Unfolded sum of the IPv4 pseudo-header used by TCP and UDP: source and destination address (uint32, host
 * order of the numeric value), protocol number and L4 length in bytes.
 */
export function pseudoHeaderSum(saddr: number, daddr: number, proto: number, l4Len: number): number {
  return (saddr >>> 16) + (saddr & 0xffff) + (daddr >>> 16) + (daddr & 0xffff) + proto + l4Len;
}

/**
 * RFC 1624 eqn. 3 for a complete checksum field: returns the new checksum after a 16-bit word covered by it
 * changed from `from` to `to`. `HC' = ~(~HC + ~m + m')`.
 */
export function csumReplace16(check: number, from: number, to: number): number {
  return ~csumFold((~check & 0xffff) + (~from & 0xffff) + (to & 0xffff)) & 0xffff;
}

/** As {@link csumReplace16} for a 32-bit field (an IPv4 address), as two 16-bit words. */
export function csumReplace32(check: number, from: number, to: number): number {
  return (
    ~csumFold((~check & 0xffff) + (~from >>> 16 & 0xffff) + (~from & 0xffff) + (to >>> 16) + (to & 0xffff)) & 0xffff
  );
}

/**
 * The CHECKSUM_PARTIAL variant: the field holds the folded, uncomplemented pseudo-header sum (the kernel stores
 * `~csum_tcpudp_magic(...)`; the device later sums the L4 bytes from csum_start on top of it and stores the
 * complement). A change of a pseudo-header word must therefore move the field with the opposite sign of the
 * complete case: `new = fold(old + ~m + m')`, which equals `~csumReplace16(~old, m, m')`. Changes of bytes
 * inside the L4 segment (ports) must NOT be applied here: the device sums them later.
 */
export function partialReplace16(field: number, from: number, to: number): number {
  return csumFold((field & 0xffff) + (~from & 0xffff) + (to & 0xffff));
}

/** As {@link partialReplace16} for a 32-bit pseudo-header field (an IPv4 address). */
export function partialReplace32(field: number, from: number, to: number): number {
  return csumFold((field & 0xffff) + (~from >>> 16 & 0xffff) + (~from & 0xffff) + (to >>> 16) + (to & 0xffff));
}
