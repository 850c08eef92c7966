// A worker's dead-destination and flood-defence settings (IPVS's expire_nodest_conn, expire_quiescent_template,
// drop_entry and secure_tcp ideas; docs/dataplane.md) and the per-source new-connection rate limiter. Pure.

/** How the engine treats connections of dead real servers and new connections under pressure. */
export interface GuardOptions {
  /**
   * expire_nodest_conn: a packet of a connection whose real server is no longer in the table ends that
   * connection at once instead of being dropped until the connection times out. UDP: the packet is scheduled
   * afresh to a live server (the flow moves on its next packet). TCP: see `nodestTcp`. Default true.
   */
  expireNodestConn: boolean;
  /**
   * expire_quiescent_template: a persistence template whose real server has weight 0 is dropped when a new
   * connection looks it up, so the client is scheduled afresh. tsvs also moves UDP connections of a weight-0
   * server on their next packet (a server inhibited after failing its check is not a UDP blackhole); a graceful
   * UDP drain at weight 0 then needs this off. TCP connections of a weight-0 server continue. Default true.
   */
  expireQuiescentTemplate: boolean;
  /**
   * TCP packets of a connection whose real server is gone: 'rst' sends the client a reset (its connection ends
   * now, and it reconnects to a live server), 'drop' drops silently (the client learns only at its own timeout,
   * unless it was still retransmitting its SYN, which is then scheduled afresh). Default 'rst'.
   */
  nodestTcp: 'rst' | 'drop';
  /** Table fill, in percent of capacity, from which embryonic TCP entries get `pressureSynRecvMs`. Default 75. */
  pressurePct: number;
  /** SYN_RECV timeout under pressure, ms (IPVS's is 60 s otherwise). Default 3000. */
  pressureSynRecvMs: number;
  /** New connections per second allowed from one source address; 0 = no limit. Default 0. */
  newConnRate: number;
  /** Burst of new connections a source may open at once; default 2 × newConnRate (at least 1). */
  newConnBurst: number;
}

/** The defaults (see each field). */
export function defaultGuard(): GuardOptions {
  return { expireNodestConn: true, expireQuiescentTemplate: true, nodestTcp: 'rst', pressurePct: 75, pressureSynRecvMs: 3000, newConnRate: 0, newConnBurst: 0 };
}

/** Bucket count of the source limiter: sources hash into 2^SOURCE_BITS token buckets. */
export const SOURCE_BITS = 14;

/**
 * Per-source token buckets (`rate` tokens per second, at most `burst`), hashed by source address into a fixed
 * array: no allocation, constant memory. Sources that share a bucket share its budget (16384 buckets: a
 * handful of heavy sources rarely collide; a random-source flood spreads over all of them, each source then
 * gets the budget it would alone, so the limit defends against few heavy sources, not a spoofed flood).
 */
export class SourceLimiter {
  private readonly tokens = new Float64Array(1 << SOURCE_BITS);
  private readonly last = new Float64Array(1 << SOURCE_BITS);
  private readonly rate: number;
  private readonly burst: number;

  /** `rate` per second (> 0) and `burst` (≥ 1). */
  constructor(rate: number, burst: number) {
    this.rate = rate;
    this.burst = Math.max(1, burst);
    this.tokens.fill(this.burst);
  }

  /** Takes a token for source `saddr` (host-order u32) at `nowMs`; false when its bucket is empty. */
  take(saddr: number, nowMs: number): boolean {
    let h = Math.imul(saddr >>> 0, 0x9e3779b1) >>> 0;
    h = (h ^ (h >>> 16)) & ((1 << SOURCE_BITS) - 1);
    const elapsed = nowMs - this.last[h];
    this.last[h] = nowMs;
    let t = this.tokens[h];
    if (elapsed > 0) t = Math.min(this.burst, t + (elapsed * this.rate) / 1000);
    if (t < 1) {
      this.tokens[h] = t;
      return false;
    }
    this.tokens[h] = t - 1;
    return true;
  }
}
