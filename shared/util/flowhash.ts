// The client-side flow hash: the one function that decides which worker (and which connection-table shard)
// owns a flow. The AF_PACKET fanout filter computes the same thing in classic BPF on the client side: in
// requests it is the source, in NAT replies the destination, so both directions meet. Workers steer on the
// client's address alone (port 0): IPVS persistence templates are keyed by client address, so all of a
// client's connections and its template must live in one shard.

/**
 * 32-bit multiplicative hash of the client's IPv4 address (host order) and port. Multiplicative, not an
 * xor-fold: Linux prefers even ephemeral ports, and a hash that keeps the low bit sends them all to one
 * worker (packet-io-notes pitfall 8). Matches the cBPF program `A = addr ^ port; A *= 0x9e3779b1; A >>= 16`.
 */
export function clientHash(addr: number, port: number): number {
  return Math.imul((addr ^ port) >>> 0, 0x9e3779b1) >>> 16;
}

/** The worker / shard index of a client in [0, n): `clientHash % n`, as the fanout program returns it. */
export function clientShard(addr: number, port: number, n: number): number {
  return clientHash(addr, port) % n;
}
