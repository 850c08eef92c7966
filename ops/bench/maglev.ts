// npm run bench -- maglev: the Maglev paper's balance and disruption figures, measured on tsvs's mh table.
import { performance } from 'node:perf_hooks';
import { createScheduler } from '../../shared/sched/index.ts';
import type { DestView, SchedInput } from '../../shared/sched/index.ts';
import type { MaglevHashing } from '../../shared/sched/hashing.ts';
import { mulberry32 } from '../../shared/util/rng.ts';

interface Opts {
  n: number;
  m: number;
  trials: number;
  seed: number;
}

function parse(args: string[]): Opts {
  const o: Opts = { n: 1000, m: 65537, trials: 5, seed: 1 };
  for (let i = 0; i < args.length; i++) {
    const k = args[i].replace(/^--/, '');
    const v = Number(args[i + 1]);
    if ((k === 'n' || k === 'm' || k === 'trials' || k === 'seed') && Number.isInteger(v)) {
      o[k] = v;
      i++;
    } else throw new Error(`bench maglev: unknown option ${args[i]} (use --n --m --trials --seed)`);
  }
  return o;
}


/** Backends 10.1.x.y:80, weight 1, in list positions 0..n-1. */
function backends(n: number): DestView[] {
  return Array.from({ length: n }, (_, i) => ({
    index: i,
    addr: (0x0a010000 + i + 1) >>> 0,
    port: 80,
    weight: 1,
    lastWeight: 1,
    overloaded: false,
    available: true,
    activeConns: 0,
    inactConns: 0,
  }));
}

/** Table of backend addresses (owner identity that survives renumbering). */
function owners(s: MaglevHashing, ds: readonly DestView[]): Uint32Array {
  const out = new Uint32Array(s.size);
  for (let i = 0; i < s.size; i++) out[i] = ds[s.table[i]].addr;
  return out;
}

const pad = (s: string | number, w: number): string => String(s).padStart(w);

/** Runs the benchmark; prints a table, then one line of JSON. */
export async function main(args: string[]): Promise<void> {
  const o = parse(args);
  const { n, m } = o;
  const make = (): MaglevHashing => createScheduler('mh', { flags: 0, mhTableSize: m }) as MaglevHashing;

  // Balance.
  const ds = backends(n);
  const s = make();
  const t0 = performance.now();
  s.update(ds, { kind: 'init' });
  const buildMs = performance.now() - t0;
  const count = new Array<number>(n).fill(0);
  for (const x of s.table) count[x]++;
  const minE = Math.min(...count);
  const maxE = Math.max(...count);
  const avg = m / n;

  // Lookup cost.
  const pkt: SchedInput = { saddr: 0, sport: 0, daddr: 0, dport: 0 };
  const lookups = 2_000_000;
  let sink = 0;
  const t1 = performance.now();
  for (let i = 0; i < lookups; i++) {
    pkt.saddr = (0xc0a80000 + i) >>> 0;
    sink += s.schedule(ds, pkt, 0);
  }
  const lookupNs = ((performance.now() - t1) * 1e6) / lookups;
  if (sink === -Infinity) process.stdout.write('');

  // Disruption: remove k backends chosen at random, rebuild, count slots whose owner changed.
  const base = owners(s, ds);
  const rnd = mulberry32(o.seed);
  const changed: Record<string, number> = {};
  const changedMax: Record<string, number> = {};
  const excess: Record<string, number> = {};
  for (const pct of [1, 10]) {
    const k = Math.round((n * pct) / 100);
    let sum = 0;
    let worst = 0;
    let extra = 0;
    for (let t = 0; t < o.trials; t++) {
      const order = ds.map((_, i) => i);
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(rnd() * (i + 1));
        [order[i], order[j]] = [order[j], order[i]];
      }
      const gone = new Set(order.slice(0, k).map((i) => ds[i].addr));
      const kept = backends(n).filter((d) => !gone.has(d.addr));
      kept.forEach((d, i) => (d.index = i));
      const s2 = make();
      s2.update(kept, { kind: 'init' });
      const after = owners(s2, kept);
      let diff = 0;
      let needless = 0;
      for (let i = 0; i < m; i++) {
        if (after[i] !== base[i]) {
          diff++;
          if (!gone.has(base[i])) needless++;
        }
      }
      const p = (100 * diff) / m;
      sum += p;
      worst = Math.max(worst, p);
      extra += (100 * needless) / m;
    }
    changed[String(pct)] = +(sum / o.trials).toFixed(3);
    changedMax[String(pct)] = +worst.toFixed(3);
    excess[String(pct)] = +(extra / o.trials).toFixed(3);
  }

  const out = process.stdout;
  out.write(`Maglev (mh) on tsvs — N=${n} backends (weight 1, 10.1.0.1.., port 80), M=${m} slots, kernel hsiphash keys\n`);
  out.write(`table build ${buildMs.toFixed(1)} ms; lookup ${lookupNs.toFixed(0)} ns (hsiphash + table read, Node ${process.version})\n\n`);
  out.write('balance            entries per backend\n');
  out.write(`  min / max / avg  ${minE} / ${maxE} / ${avg.toFixed(3)}   max/avg ${(maxE / avg).toFixed(4)}   (paper: 65/66 for M=65537)\n\n`);
  out.write(`disruption         % of the ${m} slots whose owner changed, ${o.trials} random removals each (seed ${o.seed})\n`);
  out.write(`  removed  ideal %  mean %   worst %  moved without need %\n`);
  for (const pct of [1, 10]) {
    out.write(`  ${pad(pct + '%', 7)}  ${pad(pct.toFixed(2), 7)}  ${pad(changed[pct].toFixed(3), 6)}  ${pad(changedMax[pct].toFixed(3), 7)}  ${pad(excess[pct].toFixed(3), 8)}\n`);
  }
  out.write('  (ideal = only the removed backends\' share moves; Maglev trades a little extra movement for balance)\n');
  out.write(
    JSON.stringify({
      bench: 'maglev',
      N: n,
      M: m,
      max_over_avg: +(maxE / avg).toFixed(4),
      min_entries: minE,
      max_entries: maxE,
      avg_entries: +avg.toFixed(3),
      changed_pct: changed,
      changed_pct_worst: changedMax,
      ideal_pct: { '1': 1, '10': 10 },
      needless_pct: excess,
      trials: o.trials,
      seed: o.seed,
      build_ms: +buildMs.toFixed(1),
      lookup_ns: +lookupNs.toFixed(0),
      node: process.version,
    }) + '\n',
  );
}
