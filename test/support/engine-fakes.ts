// Fakes for engine tests: TX ports that keep what was sent, an L2 resolver for a fixed two-segment topology
// (clients on 10.0.0.0/24 behind the front port, real servers 10.1.0.101/102 behind the back port), an NFQUEUE
// port that records verdicts, and builders of forwarding-table entries.
import type { FwdDest, FwdService, FwdTable } from '../../shared/fwd/table.ts';
import type { Hop, L2Resolver } from '../../services/worker/engine.ts';
import type { TxPort, VerdictPort as L3Port } from '../../services/worker/io/port.ts';
import { mac } from './packet-ref.ts';
import { ipv4FromText, ipv4ToText } from '../../shared/net/addr.ts';

export const DIR_FRONT = '02:00:00:00:00:01';
export const DIR_BACK = '02:00:00:00:00:02';
export const CLIENT_MAC = '02:00:00:00:00:aa';
export const RS_MAC: Record<string, string> = { '10.1.0.101': '02:00:00:00:01:01', '10.1.0.102': '02:00:00:00:01:02' };
export const VIP = '10.0.0.10';
export const CLIENT = '10.0.0.100';

export class FakePort implements TxPort {
  readonly txBuf = new Uint8Array(64 * 2048);
  readonly txFrameMax = 2048 - 18;
  readonly sent: { bytes: Uint8Array; vnet: number; csumStart: number; csumOffset: number }[] = [];
  private slot = 0;
  readonly ifindex: number;
  constructor(ifindex: number) {
    this.ifindex = ifindex;
  }
  txReserve(): number {
    return this.slot < 64 ? this.slot * 2048 : -1;
  }
  txCommit(len: number, vnet: number, csumStart: number, csumOffset: number): void {
    const o = this.slot * 2048;
    this.sent.push({ bytes: this.txBuf.slice(o, o + len), vnet, csumStart, csumOffset });
    this.slot++;
  }
  take(): { bytes: Uint8Array; vnet: number; csumStart: number; csumOffset: number }[] {
    const s = this.sent.splice(0);
    this.slot = 0;
    return s;
  }
}

export class FakeL2 implements L2Resolver {
  local = new Set<number>();
  resolve(daddr: number, hop: Hop): boolean {
    const a = ipv4ToText(daddr);
    const rsMac = RS_MAC[a];
    const m = rsMac ?? (a.startsWith('10.0.0.') ? CLIENT_MAC : null);
    if (m === null) return false;
    hop.dstMac.set(mac(m));
    hop.srcMac.set(mac(rsMac ? DIR_BACK : DIR_FRONT));
    hop.ifindex = rsMac ? 2 : 1;
    hop.srcIp = rsMac ? ipv4FromText('10.1.0.1')! : ipv4FromText('10.0.0.1')!;
    return true;
  }
  isLocal(addr: number): boolean {
    return this.local.has(addr);
  }
  sourceFor(daddr: number): number {
    return (daddr >>> 24) === 10 && ((daddr >>> 16) & 255) === 1 ? ipv4FromText('10.1.0.1')! : ipv4FromText('10.0.0.1')!;
  }
  /** No hold queue here: unresolved packets take the engine's fallback (NAT through the kernel, others dropped). */
  hold(): TxPort | null {
    return null;
  }
}

export function dest(id: number, addr: string, port: number, method: number, weight = 1, extra: Partial<FwdDest> = {}): FwdDest {
  return { id, addr: ipv4FromText(addr)!, addrText: addr, port, method, weight, lastWeight: weight, uThreshold: 0, lThreshold: 0, tunType: 'ipip', tunPort: 0, tunCsum: '', ...extra };
}

export function service(id: number, proto: number, vport: number, dests: FwdDest[], extra: Partial<FwdService> = {}): FwdService {
  return { id, protocol: proto, vaddr: ipv4FromText(VIP)!, vport, fwmark: 0, scheduler: 'rr', flags: 0, persistMs: 0, netmask: 0xffffffff, dests, ...extra };
}

export function table(services: FwdService[], epoch = 1): FwdTable {
  return { epoch, services, timeouts: { tcp: 900, tcpfin: 120, udp: 300 }, vips: [ipv4FromText(VIP)!] };
}

export class FakeL3 implements L3Port {
  readonly verdictBuf = new Uint8Array(65536);
  readonly verdicts: { id: number; kind: string; mark?: number; bytes?: Uint8Array }[] = [];
  private reserved: { id: number; off: number; len: number } | null = null;
  accept(id: number): void {
    this.verdicts.push({ id, kind: 'accept' });
  }
  drop(id: number): void {
    this.verdicts.push({ id, kind: 'drop' });
  }
  acceptMark(id: number, mark: number): void {
    this.verdicts.push({ id, kind: 'mark', mark });
  }
  acceptModified(id: number, buf: Uint8Array, off: number, len: number): boolean {
    this.verdicts.push({ id, kind: 'modified', bytes: buf.slice(off, off + len) });
    return true;
  }
  reserveModified(id: number, len: number): number {
    this.reserved = { id, off: 128, len };
    this.verdicts.push({ id, kind: 'reserved' });
    return 128;
  }
  dropReserved(): boolean {
    return true;
  }
  /** The bytes of the last reservation. */
  grown(): Uint8Array {
    const r = this.reserved!;
    return this.verdictBuf.slice(r.off, r.off + r.len);
  }
}

