// keepalived reader fuzz: seeded truncations and garbage in the compat files never throw anything but KeepalivedError.
import { describe, expect, it } from 'vitest';
import { readKeepalivedConfig } from '../../shared/keepalived/index.ts';
import { KeepalivedError } from '../../shared/keepalived/errors.ts';
import { ipvsSnapshot, keepalivedToIpvs } from '../../shared/keepalived/ipvs.ts';
import { formatSave } from '../../shared/ipvsadm/format.ts';
import { numericResolver } from '../../shared/ipvsadm/names.ts';
import type { ListFormat } from '../../shared/ipvsadm/parse.ts';
import { mulberry32 } from '../../shared/util/rng.ts';
import { keepalivedCompatFiles, keepalivedCompatText, memoryFs } from '../support/keepalived-files.ts';

const SAVE_N: ListFormat = { numeric: true, stats: false, rate: false, thresholds: false, persistentConn: false, nosort: false, exact: false, tunInfo: false };
/** Characters that matter to the language, plus some that do not. */
const ALPHABET = '{}"!#$@^=-.:/\\ \t\n\r0123456789abcdefxyzINCLUDE*?[]~';
const WORDS = ['{', '}', '"', '\n', 'include *.conf', 'include a.conf', '$X=', '$X', '${X}', '@a ', '@^a ', 'fwmark', 'group', 'real_server', 'virtual_server', 'TCP_CHECK', 'url', '-', '999999999999', '::', '10.0.0.1-300', 'nb_get_retry', 'quorum 0', 'weight -1'];
const MUTATIONS_PER_FILE = 1500;

function mutate(text: string, rnd: () => number): string {
  const pick = (n: number): number => Math.floor(rnd() * n);
  let t = text;
  for (let k = 1 + pick(4); k > 0; k--) {
    const at = pick(t.length + 1);
    switch (pick(5)) {
      case 0: t = t.slice(0, at); break;
      case 1: t = t.slice(0, at) + Array.from({ length: 1 + pick(8) }, () => ALPHABET[pick(ALPHABET.length)]).join('') + t.slice(at); break;
      case 2: t = t.slice(0, at) + t.slice(at + 1 + pick(40)); break;
      case 3: t = t.slice(0, at) + WORDS[pick(WORDS.length)] + t.slice(at); break;
      default: { const from = pick(t.length + 1); t = t.slice(0, at) + t.slice(from, from + pick(80)) + t.slice(at); }
    }
  }
  return t;
}

describe('keepalived fuzz', () => {
  it('fuzz: mutated compat files are read, mapped and printed, or rejected with KeepalivedError only', () => {
    const rnd = mulberry32(0x6b61);
    let rejected = 0;
    let read = 0;
    for (const f of keepalivedCompatFiles()) {
      const base = keepalivedCompatText(f);
      for (let i = 0; i < MUTATIONS_PER_FILE; i++) {
        const text = mutate(base, rnd);
        const fs = memoryFs({ '/k/a.conf': mutate(base, rnd), '/k/b.conf': 'include a.conf\n' });
        try {
          const cfg = readKeepalivedConfig('/k/main.conf', text, fs, { configId: 'a' });
          formatSave(ipvsSnapshot(keepalivedToIpvs(cfg)), SAVE_N, numericResolver);
          read++;
        } catch (e) {
          if (!(e instanceof KeepalivedError)) throw new Error(`${f} mutation ${i} threw ${String(e)}\n--- input ---\n${text}`);
          expect(e.problems.length).toBeGreaterThan(0);
          for (const p of e.problems) expect(p.message).toMatch(/^[^:]+:\d+: /);
          rejected++;
        }
      }
    }
    expect(read).toBeGreaterThan(100);
    expect(rejected).toBeGreaterThan(100);
  });
});
