// Writes COUNT frames into an AF_PACKET TX port whose vector holds SLOTS frames, as one batch (reserve and commit
// each, flush once at the end, the way the engine does within an RX batch), and prints one JSON line
// {committed, failed, sent, txFull}: a batch larger than the vector must still go out whole.
//   node tx-burst.ts IFACE SLOTS COUNT
import { Counter, openAfPacketPort } from '../../services/worker/io/af-packet.ts';
import { wr16 } from '../../shared/net/parse.ts';

const [ifname, slotsS, countS] = process.argv.slice(2);
const port = openAfPacketPort({ ifname, rx: null, tx: { slots: Number(slotsS) } });
let committed = 0;
let failed = 0;
let sent = 0;
for (let i = 0; i < Number(countS); i++) {
  const at = port.txReserve();
  if (at < 0) {
    failed++;
    continue;
  }
  const f = port.txBuf;
  f.fill(0xff, at, at + 6);
  f.set([0x02, 0, 0, 0, 0, 0x77], at + 6);
  wr16(f, at + 12, 0x88b5); // IEEE local experimental EtherType: no stack takes it
  wr16(f, at + 14, i);
  f.fill(0, at + 16, at + 60);
  port.txCommit(60, 0, 0, 0);
  committed++;
}
sent += port.txFlush();
const c = port.counters;
process.stdout.write(`${JSON.stringify({ committed, failed, sent: c[Counter.TX], txFull: c[Counter.TX_FULL], flushed: sent })}\n`);
port.close();
