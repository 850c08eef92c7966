// OTLP/protobuf for the telemetry tests: decodes an ExportTraceServiceRequest by walking the wire format
// (opentelemetry-proto trace/v1 field numbers), so tests check what an OTLP collector would receive.

export type Value = string | number | boolean | Value[] | null;
export interface DecodedSpan {
  name: string;
  startNs: bigint;
  statusCode: number;
  attributes: Record<string, Value>;
  resource: Record<string, Value>;
}
type Field = [number, number, Uint8Array | bigint];

function fields(b: Uint8Array): Field[] {
  let pos = 0;
  const varint = (): bigint => {
    let r = 0n;
    let s = 0n;
    for (;;) {
      const x = b[pos++];
      r |= BigInt(x & 0x7f) << s;
      if ((x & 0x80) === 0) return r;
      s += 7n;
    }
  };
  const out: Field[] = [];
  while (pos < b.length) {
    const key = Number(varint());
    const f = key >>> 3;
    const t = key & 7;
    if (t === 0) out.push([f, t, varint()]);
    else if (t === 1) {
      out.push([f, t, new DataView(b.buffer, b.byteOffset + pos, 8).getBigUint64(0, true)]);
      pos += 8;
    } else if (t === 5) {
      out.push([f, t, BigInt(new DataView(b.buffer, b.byteOffset + pos, 4).getUint32(0, true))]);
      pos += 4;
    } else if (t === 2) {
      const n = Number(varint());
      out.push([f, t, b.subarray(pos, pos + n)]);
      pos += n;
    } else throw new Error(`protobuf: wire type ${t} at ${pos}`);
  }
  return out;
}
const text = (b: Uint8Array): string => new TextDecoder().decode(b);
function anyValue(b: Uint8Array): Value {
  for (const [f, t, v] of fields(b)) {
    if (f === 1) return text(v as Uint8Array);
    if (f === 2) return (v as bigint) !== 0n;
    if (f === 3) return Number(BigInt.asIntN(64, v as bigint));
    if (f === 4 && t === 1) return new DataView(new BigUint64Array([v as bigint]).buffer).getFloat64(0, true);
    if (f === 5) return fields(v as Uint8Array).filter(([g]) => g === 1).map(([, , x]) => anyValue(x as Uint8Array));
  }
  return null;
}
function keyValues(list: Uint8Array[]): Record<string, Value> {
  const out: Record<string, Value> = {};
  for (const kv of list) {
    let k = '';
    let val: Value = null;
    for (const [f, , v] of fields(kv)) {
      if (f === 1) k = text(v as Uint8Array);
      if (f === 2) val = anyValue(v as Uint8Array);
    }
    out[k] = val;
  }
  return out;
}
/** ExportTraceServiceRequest → spans (resource_spans 1 → resource 1 / scope_spans 2 → spans 2). */
export function decodeTraces(body: Uint8Array): DecodedSpan[] {
  const spans: DecodedSpan[] = [];
  for (const [f1, , rs] of fields(body)) {
    if (f1 !== 1) continue;
    let resource: Record<string, Value> = {};
    const scopeSpans: Uint8Array[] = [];
    for (const [f, , v] of fields(rs as Uint8Array)) {
      if (f === 1) resource = keyValues(fields(v as Uint8Array).filter(([g]) => g === 1).map(([, , x]) => x as Uint8Array));
      if (f === 2) scopeSpans.push(v as Uint8Array);
    }
    for (const ss of scopeSpans) {
      for (const [f, , sp] of fields(ss)) {
        if (f !== 2) continue;
        const s: DecodedSpan = { name: '', startNs: 0n, statusCode: 0, attributes: {}, resource };
        const attrs: Uint8Array[] = [];
        for (const [g, , v] of fields(sp as Uint8Array)) {
          if (g === 5) s.name = text(v as Uint8Array);
          if (g === 7) s.startNs = v as bigint;
          if (g === 9) attrs.push(v as Uint8Array);
          if (g === 15) for (const [h, , c] of fields(v as Uint8Array)) if (h === 3) s.statusCode = Number(c);
        }
        s.attributes = keyValues(attrs);
        spans.push(s);
      }
    }
  }
  return spans;
}
