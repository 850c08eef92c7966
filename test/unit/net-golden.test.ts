// net golden packets: each fixture's input frame, run through the named shared/net operation, must give the
// fixture's output bytes exactly; the fixtures must equal what the independent reference builder produces;
// and every output must pass a full checksum recompute.
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NetVerdict, NET_VERDICT_NAMES } from '../../shared/net/verdict.ts';
import { PacketMeta, parseFrame } from '../../shared/net/parse.ts';
import { decTtl, encapGue, encapIpip, natIcmpIn, natIcmpOut, natIn, natOut, setMacs, writeEth, GUE_OVERHEAD, IPIP_OVERHEAD } from '../../shared/net/rewrite.ts';
import { goldenCases } from '../support/golden-cases.ts';
import { fromHex, refSum, toHex } from '../support/packet-ref.ts';
import { ipv4FromTextOrThrow, parseMac } from '../../shared/net/addr.ts';

const dir = join(import.meta.dirname, '../fixtures/packets');

interface Fixture {
  name: string;
  op: string[];
  input: Uint8Array;
  output: Uint8Array;
}

function load(file: string): Fixture {
  const lines = readFileSync(join(dir, file), 'utf8').split('\n');
  const get = (k: string): string => {
    const l = lines.find((x) => x.startsWith(k + ' '));
    if (!l) throw new Error(`${file}: no "${k}" line`);
    return l.slice(k.length + 1);
  };
  return { name: file.replace(/\.hex$/, ''), op: get('op').split(' '), input: fromHex(get('in')), output: fromHex(get('out')) };
}

function mac(s: string): Uint8Array {
  const m = parseMac(s);
  if (!m) throw new Error(`bad mac ${s}`);
  return m;
}

/** Runs the fixture's operation; returns the verdict and the resulting frame. */
function run(f: Fixture): { v: number; out: Uint8Array } {
  const buf = Uint8Array.from(f.input);
  const m = new PacketMeta();
  const pv = parseFrame(buf, buf.length, m);
  if (pv !== NetVerdict.OK) return { v: pv, out: buf };
  const [fn, ...a] = f.op;
  switch (fn) {
    case 'natIn':
      return { v: natIn(buf, m, ipv4FromTextOrThrow(a[0]), Number(a[1]), a[2] === 'partial'), out: buf };
    case 'natOut':
      return { v: natOut(buf, m, ipv4FromTextOrThrow(a[0]), Number(a[1]), a[2] === 'partial'), out: buf };
    case 'natIcmpOut':
      return { v: natIcmpOut(buf, m, ipv4FromTextOrThrow(a[0]), Number(a[1])), out: buf };
    case 'natIcmpIn':
      return { v: natIcmpIn(buf, m, ipv4FromTextOrThrow(a[0]), Number(a[1])), out: buf };
    case 'dr': {
      const v = decTtl(buf, m);
      setMacs(buf, mac(a[0]), mac(a[1]));
      return { v, out: buf };
    }
    case 'ipip': {
      const out = new Uint8Array(2048);
      writeEth(out, 0, mac(a[2]), mac(a[3]), 0x0800);
      const v = encapIpip(buf, m, out, 14, ipv4FromTextOrThrow(a[0]), ipv4FromTextOrThrow(a[1]), 0);
      return { v, out: out.subarray(0, 14 + IPIP_OVERHEAD + m.totalLen) };
    }
    case 'gue': {
      const out = new Uint8Array(2048);
      writeEth(out, 0, mac(a[2]), mac(a[3]), 0x0800);
      const v = encapGue(buf, m, out, 14, ipv4FromTextOrThrow(a[0]), ipv4FromTextOrThrow(a[1]), Number(a[4]), Number(a[5]), a[6] === 'csum', 0);
      return { v, out: out.subarray(0, 14 + GUE_OVERHEAD + m.totalLen) };
    }
    default:
      throw new Error(`${f.name}: unknown op ${fn}`);
  }
}

/** Independent full verification of every checksum in an output frame (partial ones: the pseudo-header sum). */
function verifyChecksums(frame: Uint8Array, partial: boolean): void {
  let o = 14;
  if (frame[12] === 0x81) o = 18;
  const ihl = (frame[o] & 15) * 4;
  const tot = frame[o + 2] * 256 + frame[o + 3];
  expect(refSum(frame.subarray(o, o + ihl)), 'IP header checksum').toBe(0xffff);
  const proto = frame[o + 9];
  const l4 = frame.subarray(o + ihl, o + tot);
  const ps = refSum([...frame.subarray(o + 12, o + 20), 0, proto, l4.length >> 8, l4.length & 255]);
  if (proto === 6 || proto === 17) {
    const field = proto === 6 ? l4[16] * 256 + l4[17] : l4[6] * 256 + l4[7];
    if (partial) expect(field, 'partial field = pseudo-header sum').toBe(ps);
    else if (!(proto === 17 && field === 0)) expect(refSum(l4, ps), 'L4 checksum').toBe(0xffff);
    if (proto === 17 && l4.length >= 12 && l4[9] === 4) verifyChecksums(Uint8Array.from([...frame.subarray(0, 14), ...l4.subarray(12)]), false);
  } else if (proto === 1) {
    expect(refSum(l4), 'ICMP checksum').toBe(0xffff);
    const e = l4.subarray(8);
    expect(refSum(e.subarray(0, (e[0] & 15) * 4)), 'embedded IP header checksum').toBe(0xffff);
  } else if (proto === 4) {
    verifyChecksums(Uint8Array.from([...frame.subarray(0, 14), ...l4]), false);
  }
}

const files = readdirSync(dir).filter((f) => f.endsWith('.hex')).sort();

describe('net golden packets', () => {
  it('net golden: every reference case has a fixture and every fixture matches the reference builder', () => {
    const byName = new Map(files.map((f) => [f.replace(/\.hex$/, ''), load(f)]));
    for (const c of goldenCases()) {
      const f = byName.get(c.name);
      expect(f, `fixture for ${c.name} (run node test/support/gen-packet-fixtures.ts)`).toBeDefined();
      expect(toHex(f!.input)).toBe(toHex(c.input));
      expect(toHex(f!.output)).toBe(toHex(c.expected));
      expect(f!.op.join(' ')).toBe(c.op);
    }
    expect(files.length).toBe(goldenCases().length);
  });

  for (const file of files) {
    it(`net golden: ${file.replace(/\.hex$/, '')} gives the expected bytes and valid checksums`, () => {
      const f = load(file);
      const { v, out } = run(f);
      expect(NET_VERDICT_NAMES[v]).toBe('OK');
      expect(toHex(out)).toBe(toHex(f.output));
      verifyChecksums(out, f.op.includes('partial'));
    });
  }
});
