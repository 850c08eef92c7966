// DNS_CHECK's wire format: one query (RFC 1035 §4) built into bytes, and a reply judged as the checker judges it.

/** Query types DNS_CHECK accepts (keepalived's list), by name. */
export const DnsType = {
  A: 1, NS: 2, CNAME: 5, SOA: 6, MX: 15, TXT: 16, AAAA: 28, RRSIG: 46, DNSKEY: 48,
} as const;
export type DnsTypeName = keyof typeof DnsType;

/** Builds a recursive-desired query for `name` (`.` is the root) of `type`, with message id `id`. */
export function dnsQuery(id: number, name: string, type: DnsTypeName): Uint8Array {
  const labels = name === '.' || name === '' ? [] : name.replace(/\.$/, '').split('.');
  const enc = new TextEncoder();
  const parts = labels.map((l) => enc.encode(l));
  for (const p of parts) if (p.length === 0 || p.length > 63) throw new RangeError(`dns: bad label in name "${name}"`);
  const qlen = parts.reduce((s, p) => s + 1 + p.length, 1) + 4;
  const out = new Uint8Array(12 + qlen);
  const v = new DataView(out.buffer);
  v.setUint16(0, id & 0xffff);
  v.setUint16(2, 0x0100); // RD
  v.setUint16(4, 1); // QDCOUNT
  let o = 12;
  for (const p of parts) {
    out[o++] = p.length;
    out.set(p, o);
    o += p.length;
  }
  out[o++] = 0;
  v.setUint16(o, DnsType[type]);
  v.setUint16(o + 2, 1); // IN
  return out;
}

/**
 * Judges a datagram received for the query with id `id`, as keepalived's check_dns.c does: undefined when it is not
 * the answer (too short, another id, not a response: keep waiting), a reason when RCODE is not 0, null when good.
 * keepalived does not look at the answer count, and neither does this.
 */
export function dnsReplyProblem(id: number, reply: Uint8Array): string | null | undefined {
  if (reply.length < 12) return undefined;
  const v = new DataView(reply.buffer, reply.byteOffset, reply.byteLength);
  if (v.getUint16(0) !== (id & 0xffff)) return undefined;
  const flags = v.getUint16(2);
  if ((flags & 0x8000) === 0) return undefined;
  const rcode = flags & 0xf;
  return rcode === 0 ? null : `rcode ${rcode}`;
}
