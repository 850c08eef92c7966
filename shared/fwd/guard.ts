// The dead-destination and flood-defence settings of the workers (IPVS's expire_nodest_conn, expire_quiescent_template,
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

/** The command-line flags of the guard, the same in tsvsd and the worker (tsvsd passes them through). */
export const GUARD_FLAGS = ['expire-nodest-conn', 'expire-quiescent-template', 'nodest-tcp', 'syn-pressure', 'syn-pressure-timeout', 'new-conn-rate', 'new-conn-burst'] as const;

/** parseArgs option specs of {@link GUARD_FLAGS}. */
export const GUARD_ARG_SPECS: { readonly [K in (typeof GUARD_FLAGS)[number]]: { type: 'string' } } = {
  'expire-nodest-conn': { type: 'string' },
  'expire-quiescent-template': { type: 'string' },
  'nodest-tcp': { type: 'string' },
  'syn-pressure': { type: 'string' },
  'syn-pressure-timeout': { type: 'string' },
  'new-conn-rate': { type: 'string' },
  'new-conn-burst': { type: 'string' },
};

/** The -h lines of the guard flags (tsvsd's usage). */
export const GUARD_USAGE = `  --expire-nodest-conn 0|1  end a connection of a removed real server on its next packet (default 1): UDP
                  is scheduled afresh, TCP gets a reset (see --nodest-tcp); 0 drops until it times out
  --expire-quiescent-template 0|1  a persistence template (and a UDP flow) of a weight-0 real server is
                  dropped so the client is scheduled afresh (default 1); 0 keeps them (graceful UDP drain)
  --nodest-tcp rst|drop  TCP packets of a removed real server: reset the client (default) or drop silently
  --syn-pressure PCT  table fill (% of capacity) from which half-open TCP entries get --syn-pressure-timeout
                  (default 75); a full table always evicts its oldest half-open entry first
  --syn-pressure-timeout MS  SYN_RECV timeout under pressure (default 3000; IPVS's 60 s otherwise)
  --new-conn-rate N  new connections per second one source address may open (default 0: no limit)
  --new-conn-burst N  burst allowed above --new-conn-rate (default 2 × the rate)
`;

/**
 * Reads the guard flags from parseArgs values; unset flags are left out (the defaults apply where the engine
 * is made). Returns the settings or a one-line error naming the flag. Never throws.
 */
export function parseGuardFlags(v: { readonly [k: string]: string | boolean | (string | boolean)[] | undefined }): Partial<GuardOptions> | { error: string } {
  const g: Partial<GuardOptions> = {};
  const str = (k: string): string | undefined => (typeof v[k] === 'string' ? (v[k] as string) : undefined);
  const int = (k: string, lo: number, hi: number): number | undefined | { error: string } => {
    const s = str(k);
    if (s === undefined) return undefined;
    const n = /^\d+$/.test(s) ? Number(s) : NaN;
    return n >= lo && n <= hi ? n : { error: `--${k}: want ${lo}..${hi}, got '${s}'` };
  };
  for (const [k, f] of [['expire-nodest-conn', 'expireNodestConn'], ['expire-quiescent-template', 'expireQuiescentTemplate']] as const) {
    const s = str(k);
    if (s === undefined) continue;
    if (s !== '0' && s !== '1') return { error: `--${k}: want 0 or 1, got '${s}'` };
    g[f] = s === '1';
  }
  const t = str('nodest-tcp');
  if (t !== undefined) {
    if (t !== 'rst' && t !== 'drop') return { error: `--nodest-tcp: want rst or drop, got '${t}'` };
    g.nodestTcp = t;
  }
  for (const [k, f, lo, hi] of [['syn-pressure', 'pressurePct', 1, 100], ['syn-pressure-timeout', 'pressureSynRecvMs', 100, 60_000], ['new-conn-rate', 'newConnRate', 0, 10_000_000], ['new-conn-burst', 'newConnBurst', 1, 10_000_000]] as const) {
    const n = int(k, lo, hi);
    if (typeof n === 'object') return n;
    if (n !== undefined) g[f] = n;
  }
  if (g.newConnBurst !== undefined && !g.newConnRate) return { error: '--new-conn-burst needs --new-conn-rate' };
  return g;
}

/** The flags that give `g` on a command line (tsvsd → worker). */
export function guardArgs(g: Partial<GuardOptions>): string[] {
  const a: string[] = [];
  if (g.expireNodestConn !== undefined) a.push('--expire-nodest-conn', g.expireNodestConn ? '1' : '0');
  if (g.expireQuiescentTemplate !== undefined) a.push('--expire-quiescent-template', g.expireQuiescentTemplate ? '1' : '0');
  if (g.nodestTcp !== undefined) a.push('--nodest-tcp', g.nodestTcp);
  if (g.pressurePct !== undefined) a.push('--syn-pressure', String(g.pressurePct));
  if (g.pressureSynRecvMs !== undefined) a.push('--syn-pressure-timeout', String(g.pressureSynRecvMs));
  if (g.newConnRate !== undefined) a.push('--new-conn-rate', String(g.newConnRate));
  if (g.newConnBurst !== undefined) a.push('--new-conn-burst', String(g.newConnBurst));
  return a;
}
