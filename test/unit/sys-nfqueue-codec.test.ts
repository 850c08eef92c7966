// sys/nfqueue-codec: packet messages parsed from built bytes; verdict and config messages pinned byte for byte.
import { describe, expect, it } from 'vitest';
import {
  NfVerdict, NfqCmd, NfqMsg, NfqPacketInfo, NfqParse, NfqaCfg, VERDICT_MSG, be32, cmdAttr, configMsg, paramsAttr, parseNfqPacket,
  parseQueueStats, rewriteAsDrop, writeMarkAttr, writePayloadAttr, writeVerdictHeader,
} from '../../shared/sys/nfqueue-codec.ts';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** An attribute: u16 length (LE), u16 type (LE), value, padded to 4. */
function attr(type: number, value: number[]): number[] {
  const len = 4 + value.length;
  const out = [len & 255, len >> 8, type & 255, type >> 8, ...value];
  while (out.length % 4) out.push(0);
  return out;
}

const PACKET = [0x45, 0, 0, 20, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];

function body(...attrs: number[][]): DataView {
  const b = new Uint8Array(attrs.flat());
  return new DataView(b.buffer);
}

describe('sys/nfqueue-codec: packet messages', () => {
  it('nfqueue-codec: a packet message yields id, hook, mark, interfaces and the payload span', () => {
    const dv = body(
      attr(1, [0, 0, 0x01, 0x02, 0x08, 0x00, 0]), // PACKET_HDR: id 258, hw_protocol 0x0800, hook 0 (PRE_ROUTING)
      attr(3, [0, 0, 0, 7]), // MARK 7
      attr(5, [0, 0, 0, 3]), // INDEV 3
      attr(10, PACKET),
    );
    const pk = new NfqPacketInfo();
    expect(parseNfqPacket(dv, 0, dv.byteLength, pk)).toBe(NfqParse.OK);
    expect({ id: pk.id, hook: pk.hook, mark: pk.mark, indev: pk.indev, outdev: pk.outdev, payLen: pk.payLen, capLen: pk.capLen }).toEqual({
      id: 258, hook: 0, mark: 7, indev: 3, outdev: 0, payLen: 20, capLen: -1,
    });
    expect([...new Uint8Array(dv.buffer, pk.payOff, pk.payLen)]).toEqual(PACKET);
  });
  it('nfqueue-codec: CAP_LEN above the payload length reports the wire length (truncated copy)', () => {
    const dv = body(attr(1, [0, 0, 0, 9, 8, 0, 2]), attr(10, PACKET), attr(13, [0, 0, 5, 220]));
    const pk = new NfqPacketInfo();
    expect(parseNfqPacket(dv, 0, dv.byteLength, pk)).toBe(NfqParse.OK);
    expect([pk.id, pk.hook, pk.capLen]).toEqual([9, 2, 1500]);
  });
  it('nfqueue-codec: no packet header is NO_ID; a header without payload or a bad attribute is BAD with the id kept', () => {
    const pk = new NfqPacketInfo();
    const noHdr = body(attr(10, PACKET));
    expect(parseNfqPacket(noHdr, 0, noHdr.byteLength, pk)).toBe(NfqParse.NO_ID);
    const noPayload = body(attr(1, [0, 0, 0, 5, 8, 0, 0]));
    expect(parseNfqPacket(noPayload, 0, noPayload.byteLength, pk)).toBe(NfqParse.BAD);
    expect(pk.id).toBe(5);
    const badLen = body(attr(1, [0, 0, 0, 6, 8, 0, 0]), [40, 0, 10, 0, 1, 2, 3, 4]); // payload claims 40 bytes, 8 present
    expect(parseNfqPacket(badLen, 0, badLen.byteLength, pk)).toBe(NfqParse.BAD);
    expect(pk.id).toBe(6);
    const tiny = body([2, 0, 1, 0]);
    expect(parseNfqPacket(tiny, 0, tiny.byteLength, pk)).toBe(NfqParse.NO_ID);
  });
  it('nfqueue-codec: an end past the buffer is clamped, never read beyond it', () => {
    const dv = body(attr(1, [0, 0, 0, 1, 8, 0, 0]), attr(10, PACKET));
    const pk = new NfqPacketInfo();
    expect(parseNfqPacket(dv, 0, dv.byteLength + 100, pk)).toBe(NfqParse.OK);
  });
});

describe('sys/nfqueue-codec: verdicts and config', () => {
  it('nfqueue-codec: an ACCEPT verdict with a mark, byte for byte', () => {
    const b = new Uint8Array(VERDICT_MSG + 8);
    const dv = new DataView(b.buffer);
    writeVerdictHeader(dv, 0, b.length, 5, 0x01020304, NfVerdict.ACCEPT);
    writeMarkAttr(dv, VERDICT_MSG, 0xabcd);
    expect(hex(b)).toBe(
      '28000000' + '0103' + '0100' + '00000000' + '00000000' + // nlmsghdr: len 40, type VERDICT (0x0301), REQUEST
        '0000' + '0005' + // nfgenmsg: family, version, queue 5 (BE)
        '0c00' + '0200' + '00000001' + '01020304' + // VERDICT_HDR: ACCEPT, id
        '0800' + '0300' + '0000abcd', // MARK
    );
    expect(NfqMsg.VERDICT).toBe(0x0301);
  });
  it('nfqueue-codec: a payload attribute header, and a reservation turned into a bare DROP', () => {
    const b = new Uint8Array(VERDICT_MSG + 4 + 20);
    const dv = new DataView(b.buffer);
    writeVerdictHeader(dv, 0, b.length, 1, 7, NfVerdict.ACCEPT);
    writePayloadAttr(dv, VERDICT_MSG, 20);
    expect(hex(b.subarray(VERDICT_MSG, VERDICT_MSG + 4))).toBe('18000a00');
    rewriteAsDrop(dv, 0);
    expect(dv.getUint32(0, true)).toBe(VERDICT_MSG);
    expect(dv.getUint32(24, false)).toBe(NfVerdict.DROP);
    expect(dv.getUint32(28, false)).toBe(7);
  });
  it('nfqueue-codec: config messages (BIND, PARAMS copy_range, MAXLEN) byte for byte', () => {
    expect(hex(configMsg(3, 9, true, [NfqaCfg.CMD, cmdAttr(NfqCmd.BIND)]))).toBe(
      '1c000000' + '0203' + '0500' + '09000000' + '00000000' + '0000' + '0003' + '0800' + '0100' + '01000002',
    );
    expect(hex(configMsg(0, 1, false, [NfqaCfg.PARAMS, paramsAttr(0xffff)]))).toBe(
      '20000000' + '0203' + '0100' + '01000000' + '00000000' + '0000' + '0000' + '0900' + '0200' + '0000ffff02000000',
    );
    expect(hex(configMsg(0, 2, true, [NfqaCfg.QUEUE_MAXLEN, be32(8192)]))).toBe(
      '1c000000' + '0203' + '0500' + '02000000' + '00000000' + '0000' + '0000' + '0800' + '0300' + '00002000',
    );
  });
  it('nfqueue-codec: /proc/net/netfilter/nfnetlink_queue lines give queued and drop counts for one queue', () => {
    const text = '    0  12345     0 2 65535     0     0       10  1\n    1  12346     3 2 65535     4     5       22  1\n';
    expect(parseQueueStats(text, 1)).toEqual({ queued: 3, queueDropped: 4, userDropped: 5 });
    expect(parseQueueStats(text, 7)).toEqual({ queued: 0, queueDropped: 0, userDropped: 0 });
  });
});
