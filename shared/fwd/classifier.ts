// The fwmark classifier: iptables-style MARK rules compiled into an immutable matcher that gives a NEW connection's
// first packet the mark kernel netfilter would have given it (the AF_PACKET data plane runs before netfilter).
//
// Semantics are the kernel's, so that existing `iptables -t mangle ... -j MARK` scripts keep their meaning:
// the packet enters the chain with mark 0, every matching MARK rule rewrites it in order
// (`mark = (mark & ~mask) ^ value`, xt_MARK revision 2) and traversal continues, so for plain `--set-mark N`
// rules the LAST matching rule decides; a matching `-j ACCEPT` or `-j RETURN` rule ends traversal with the mark
// as it stands (that is how an iptables script says "first match wins").

/** What a matching rule does. MARK rewrites the mark and continues; ACCEPT and RETURN end the chain. */
export const MarkTarget = { MARK: 'MARK', ACCEPT: 'ACCEPT', RETURN: 'RETURN' } as const;
export type MarkTarget = (typeof MarkTarget)[keyof typeof MarkTarget];

/** An address condition: `(a & mask) === addr`, negated when `invert`. Host order; `addr` has no bits outside `mask`. */
export interface AddrMatch {
  readonly addr: number;
  /** Netmask, host order; usually a prefix (`/24`), but iptables accepts any dotted mask and so does this. */
  readonly mask: number;
  readonly invert: boolean;
}

/** An inclusive port range, 0..65535, `lo <= hi`. */
export interface PortRange {
  readonly lo: number;
  readonly hi: number;
}

/** A port condition: the port lies in one of `ranges` (negated when `invert`). */
export interface PortMatch {
  /** At least one range. */
  readonly ranges: readonly PortRange[];
  readonly invert: boolean;
  /** Spelling only: written with `-m multiport --dports/--sports` rather than `--dport/--sport`. */
  readonly multiport: boolean;
}

/** An interface condition (`-i eth0`, `-i eth+`): kept for listing, NOT evaluated (see {@link MarkRule.inIface}). */
export interface IfaceMatch {
  readonly name: string;
  readonly invert: boolean;
}

/**
 * One rule of the mangle PREROUTING chain, in the order the chain holds it. Every condition must hold for the
 * rule to match (null = no condition).
 */
export interface MarkRule {
  /** IP protocol number; 0 = any (`-p all` or no `-p`). */
  readonly protocol: number;
  /** `! -p PROTO`: any protocol but `protocol` (never with `protocol` 0 nor with port conditions). */
  readonly protocolInvert: boolean;
  readonly src: AddrMatch | null;
  readonly dst: AddrMatch | null;
  /** Source port condition; only with a non-inverted tcp (6), udp (17) or sctp (132) `protocol`. */
  readonly sport: PortMatch | null;
  /** Destination port condition; same restriction as `sport`. */
  readonly dport: PortMatch | null;
  /**
   * Input interface, as written. The classifier does NOT evaluate it: a worker only sees the interfaces it is
   * bound to and the per-connection call carries no interface. Kept so listings show the rule as written.
   */
  readonly inIface: IfaceMatch | null;
  /** `-m comment --comment TEXT`, kept for listing. */
  readonly comment: string | null;
  readonly target: MarkTarget;
  /**
   * MARK only: the rewrite `mark = (mark & ~mask) ^ value` (xt_MARK's `--set-xmark value/mask` form, into which
   * the parser turns `--set-mark`, `--and-mark`, `--or-mark`, `--xor-mark`). uint32. For ACCEPT/RETURN, 0.
   */
  readonly value: number;
  /** MARK only: uint32; 0xffffffff for a plain `--set-mark N` (which then sets the mark to exactly N). */
  readonly mask: number;
}

/** Stable codes of {@link MarkRulesError}. */
export const MarkRulesErrorCode = {
  /** A rules text that the parser does not understand (operator error). */
  SYNTAX: 'EMARKRULES_SYNTAX',
  /** A rule object that violates a {@link MarkRule} invariant (a bug in the caller, or a hand-built rule). */
  INVALID: 'EMARKRULES_INVALID',
} as const;
export type MarkRulesErrorCode = (typeof MarkRulesErrorCode)[keyof typeof MarkRulesErrorCode];

/** One problem found in a rules text (line, 1-based, and offending token) or a rule list (index, 0-based). */
export interface MarkRuleProblem {
  /** Line number in the text (1-based), or the rule's index in the list (0-based) for INVALID. */
  readonly at: number;
  /** The token that could not be understood, when one is to blame. */
  readonly token: string | null;
  /** Full text, e.g. `rules.conf:3: unknown option "--foo"`. */
  readonly message: string;
}

/** Every problem of one parse or compile; `message` is the problems' messages, one per line. */
export class MarkRulesError extends Error {
  readonly code: MarkRulesErrorCode;
  readonly problems: readonly MarkRuleProblem[];
  constructor(code: MarkRulesErrorCode, problems: readonly MarkRuleProblem[]) {
    super(problems.map((p) => p.message).join('\n'));
    this.name = 'MarkRulesError';
    this.code = code;
    this.problems = problems;
  }
}

const F_PROTO_INV = 1;
const F_SRC_INV = 2;
const F_DST_INV = 4;
const F_SPORT_INV = 8;
const F_DPORT_INV = 16;
const F_STOP = 32;
const FULL = 0xffffffff;

/** True when `mask` is a prefix mask (ones then zeros). */
export function isPrefixMask(mask: number): boolean {
  const inv = ~mask >>> 0;
  return (inv & (inv + 1)) === 0;
}

/** Checks a rule against the {@link MarkRule} invariants; returns the problems' descriptions. */
export function validateMarkRule(r: MarkRule): string[] {
  const out: string[] = [];
  const u32 = (v: number): boolean => Number.isInteger(v) && v >= 0 && v <= FULL;
  if (!Number.isInteger(r.protocol) || r.protocol < 0 || r.protocol > 255) out.push(`protocol ${r.protocol} not in 0..255`);
  if (r.protocolInvert && r.protocol === 0) out.push('inverted protocol 0 never matches');
  for (const [name, a] of [['src', r.src], ['dst', r.dst]] as const) {
    if (a === null) continue;
    if (!u32(a.addr) || !u32(a.mask)) out.push(`${name} address or mask not a uint32`);
    else if ((a.addr & ~a.mask) !== 0) out.push(`${name} address has bits outside its mask`);
  }
  for (const [name, p] of [['sport', r.sport], ['dport', r.dport]] as const) {
    if (p === null) continue;
    if (r.protocolInvert || (r.protocol !== 6 && r.protocol !== 17 && r.protocol !== 132)) out.push(`${name} needs protocol tcp, udp or sctp`);
    if (p.ranges.length === 0) out.push(`${name} has no ranges`);
    for (const g of p.ranges) {
      if (!Number.isInteger(g.lo) || !Number.isInteger(g.hi) || g.lo < 0 || g.hi > 65535 || g.lo > g.hi) out.push(`${name} range ${g.lo}:${g.hi} invalid`);
    }
  }
  if (r.target !== MarkTarget.MARK && r.target !== MarkTarget.ACCEPT && r.target !== MarkTarget.RETURN) out.push(`target ${String(r.target)} unknown`);
  if (!u32(r.value) || !u32(r.mask)) out.push('mark value or mask not a uint32');
  else if (r.target !== MarkTarget.MARK && (r.value !== 0 || r.mask !== 0)) out.push(`${r.target} rule carries a mark`);
  return out;
}

/**
 * An immutable compiled rule list. Build with {@link compileMarkRules}; share freely between batches and swap
 * whole when the rules change. Lookup cost: a binary search over the destination-address intervals the rules'
 * `-d` prefixes cut the address space into, then only the rules whose `-d` can hold in that interval.
 */
export class MarkClassifier {
  /** Number of rules compiled in. */
  readonly size: number;
  // Interval k covers destination addresses [bounds[k], bounds[k+1]) (the last one up to 2^32-1).
  private readonly bounds: Uint32Array;
  // Candidate rule indices of interval k, in chain order: cand[candStart[k] .. candStart[k+1]).
  private readonly candStart: Int32Array;
  private readonly cand: Int32Array;
  // 1 when every candidate of interval k is a full-mask MARK rule: then the last match decides, scan backwards.
  private readonly lastWins: Uint8Array;
  private readonly flags: Uint8Array;
  private readonly proto: Uint8Array;
  private readonly srcAddr: Uint32Array;
  private readonly srcMask: Uint32Array;
  private readonly dstAddr: Uint32Array;
  private readonly dstMask: Uint32Array;
  // Port ranges of rule i: portLo/portHi[sportAt[i] .. dportAt[i]) for sport, [dportAt[i] .. sportAt[i+1]) for dport.
  private readonly sportAt: Int32Array;
  private readonly dportAt: Int32Array;
  private readonly portLo: Uint16Array;
  private readonly portHi: Uint16Array;
  private readonly value: Uint32Array;
  private readonly mask: Uint32Array;

  /** Use {@link compileMarkRules}, which validates the rules first. */
  constructor(rules: readonly MarkRule[]) {
    const n = rules.length;
    this.size = n;
    this.flags = new Uint8Array(n);
    this.proto = new Uint8Array(n);
    this.srcAddr = new Uint32Array(n);
    this.srcMask = new Uint32Array(n);
    this.dstAddr = new Uint32Array(n);
    this.dstMask = new Uint32Array(n);
    this.value = new Uint32Array(n);
    this.mask = new Uint32Array(n);
    this.sportAt = new Int32Array(n + 1);
    this.dportAt = new Int32Array(n + 1);
    const lo: number[] = [];
    const hi: number[] = [];
    // Ports are laid out rule by rule: all of rule i's sport ranges, then its dport ranges.
    for (let i = 0; i < n; i++) {
      const r = rules[i];
      let f = 0;
      if (r.protocolInvert) f |= F_PROTO_INV;
      if (r.src?.invert) f |= F_SRC_INV;
      if (r.dst?.invert) f |= F_DST_INV;
      if (r.sport?.invert) f |= F_SPORT_INV;
      if (r.dport?.invert) f |= F_DPORT_INV;
      if (r.target !== MarkTarget.MARK) f |= F_STOP;
      this.flags[i] = f;
      this.proto[i] = r.protocol;
      this.srcAddr[i] = r.src?.addr ?? 0;
      this.srcMask[i] = r.src?.mask ?? 0;
      this.dstAddr[i] = r.dst?.addr ?? 0;
      this.dstMask[i] = r.dst?.mask ?? 0;
      this.value[i] = r.value;
      this.mask[i] = r.mask;
      this.sportAt[i] = lo.length;
      for (const g of r.sport?.ranges ?? []) {
        lo.push(g.lo);
        hi.push(g.hi);
      }
      this.dportAt[i] = lo.length;
      for (const g of r.dport?.ranges ?? []) {
        lo.push(g.lo);
        hi.push(g.hi);
      }
    }
    // Rule i's dport ranges end where rule i+1's sport ranges start.
    this.sportAt[n] = lo.length;
    this.dportAt[n] = lo.length;
    this.portLo = Uint16Array.from(lo);
    this.portHi = Uint16Array.from(hi);

    const cuts = new Set<number>([0]);
    for (const r of rules) {
      const d = r.dst;
      if (d === null || d.mask === 0 || !isPrefixMask(d.mask)) continue;
      cuts.add(d.addr);
      const end = d.addr + (~d.mask >>> 0) + 1;
      if (end <= FULL) cuts.add(end);
    }
    this.bounds = Uint32Array.from([...cuts].sort((a, b) => a - b));
    const k = this.bounds.length;
    this.candStart = new Int32Array(k + 1);
    this.lastWins = new Uint8Array(k);
    const cand: number[] = [];
    for (let j = 0; j < k; j++) {
      this.candStart[j] = cand.length;
      const b = this.bounds[j];
      let lastWins = 1;
      for (let i = 0; i < n; i++) {
        const d = rules[i].dst;
        // Exact for prefix masks (constant over the interval); other masks are always candidates.
        if (d !== null && isPrefixMask(d.mask) && (((b & d.mask) >>> 0) === d.addr) === d.invert) continue;
        cand.push(i);
        if ((this.flags[i] & F_STOP) !== 0 || this.mask[i] !== FULL) lastWins = 0;
      }
      this.lastWins[j] = lastWins;
    }
    this.candStart[k] = cand.length;
    this.cand = Int32Array.from(cand);
  }

  /**
   * The mark netfilter's mangle PREROUTING chain would give this packet (0 = no mark, no fwmark service).
   * Addresses are IPv4 host-order uint32; ports are host-order, 0 for protocols without ports. Pure, allocation-free
   * and never throws; called once per NEW connection.
   */
  classify(proto: number, saddr: number, daddr: number, sport: number, dport: number): number {
    const bounds = this.bounds;
    daddr >>>= 0;
    saddr >>>= 0;
    let lo = 0;
    let hi = bounds.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (bounds[mid] <= daddr) lo = mid;
      else hi = mid - 1;
    }
    const cand = this.cand;
    const s = this.candStart[lo];
    const e = this.candStart[lo + 1];
    if (this.lastWins[lo] === 1) {
      for (let c = e - 1; c >= s; c--) {
        const i = cand[c];
        if (this.matches(i, proto, saddr, daddr, sport, dport)) return this.value[i];
      }
      return 0;
    }
    let mark = 0;
    for (let c = s; c < e; c++) {
      const i = cand[c];
      if (!this.matches(i, proto, saddr, daddr, sport, dport)) continue;
      if ((this.flags[i] & F_STOP) !== 0) return mark;
      mark = ((mark & ~this.mask[i]) ^ this.value[i]) >>> 0;
    }
    return mark;
  }

  private matches(i: number, proto: number, saddr: number, daddr: number, sport: number, dport: number): boolean {
    const f = this.flags[i];
    const p = this.proto[i];
    if (p !== 0 && (p === proto) === ((f & F_PROTO_INV) !== 0)) return false;
    if ((((daddr & this.dstMask[i]) >>> 0) === this.dstAddr[i]) === ((f & F_DST_INV) !== 0)) return false;
    if ((((saddr & this.srcMask[i]) >>> 0) === this.srcAddr[i]) === ((f & F_SRC_INV) !== 0)) return false;
    const ds = this.dportAt[i];
    const de = this.sportAt[i + 1];
    if (ds < de && this.inRanges(ds, de, dport) === ((f & F_DPORT_INV) !== 0)) return false;
    const ss = this.sportAt[i];
    if (ss < ds && this.inRanges(ss, ds, sport) === ((f & F_SPORT_INV) !== 0)) return false;
    return true;
  }

  private inRanges(s: number, e: number, port: number): boolean {
    for (let k = s; k < e; k++) if (port >= this.portLo[k] && port <= this.portHi[k]) return true;
    return false;
  }
}

/**
 * Compiles a rule list (chain order) into a {@link MarkClassifier}. Pure; the rules are copied, so later changes
 * to them do not affect the classifier. Memory is O(rules × (2·dst prefixes + 1)) in the worst case.
 * @throws MarkRulesError (code INVALID) listing every rule that breaks a {@link MarkRule} invariant.
 */
export function compileMarkRules(rules: readonly MarkRule[]): MarkClassifier {
  const problems: MarkRuleProblem[] = [];
  rules.forEach((r, i) => {
    for (const m of validateMarkRule(r)) problems.push({ at: i, token: null, message: `mark rule ${i}: ${m}` });
  });
  if (problems.length > 0) throw new MarkRulesError(MarkRulesErrorCode.INVALID, problems);
  return new MarkClassifier(rules);
}
