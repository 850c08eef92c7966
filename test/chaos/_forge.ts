// A forger for chaos-forged.test.ts, run inside a lab node on the mgmt LAN: publishes to a cluster's sync subject
// what no director should accept, in order, and prints one JSON line saying what it sent:
//   1 a well-formed batch from a non-member ('mallory', never heard in a heartbeat) → foreign
//   2 garbage bytes → malformed           3 a batch cut in half (truncated msgpack) → malformed
//   4 a well-formed batch naming another cluster → foreign
//   5 'mallory' heartbeats (a backup that is not ready: never a candidate), then a batch from it whose records are
//     all bad (unknown op, unknown protocol, reserved words set, remaining > timeout) → 4 malformed records
// Every forged record describes client 10.200.0.99 → VIP: a table that shows that address took a forged record.
//   node _forge.ts NATS_URL CLUSTER VIP PORT RIP
import { connect } from '@nats-io/transport-node';
import { ClusterCodec, Role, subjects } from '../../shared/cluster/codec.ts';
import { ipv4FromText } from '../../shared/net/addr.ts';
import { RECORD_WORDS, RecordOp, writeRecord } from '../../shared/sync/record.ts';
import type { SyncRecord } from '../../shared/sync/record.ts';

const [url, clusterName, vip, portS, rip] = process.argv.slice(2);
if (!url || !clusterName || !vip || !portS || !rip) {
  process.stderr.write('usage: _forge.ts NATS_URL CLUSTER VIP PORT RIP\n');
  process.exit(2);
}
const port = Number(portS);

/** An ESTABLISHED TCP connection 10.200.0.99:(40000+i) → vip:port → rip:port, 15 min timeout. */
function record(i: number): SyncRecord {
  return {
    op: RecordOp.NEW, proto: 6, state: 1, flags: 0, shard: 0, caddr: ipv4FromText('10.200.0.99') as number, cport: 40000 + i,
    vaddr: ipv4FromText(vip) as number, vport: port, daddr: ipv4FromText(rip) as number, dport: port, fwmark: 0, timeoutMs: 900_000, remainingMs: 900_000,
  };
}

function bytes(words: Uint32Array): Uint8Array {
  return new Uint8Array(words.buffer, words.byteOffset, words.byteLength);
}

function goodWords(n: number): Uint32Array {
  const w = new Uint32Array(n * RECORD_WORDS);
  for (let i = 0; i < n; i++) writeRecord(w, i * RECORD_WORDS, record(i));
  return w;
}

const nc = await connect({ servers: url.split(','), timeout: 3000 });
const subj = subjects(clusterName).sync;
const epoch = Date.now();
const mallory = new ClusterCodec(clusterName, 'mallory', epoch);
const other = new ClusterCodec(`${clusterName}-other`, 'd1', epoch);
const sent: string[] = [];

nc.publish(subj, mallory.encode(mallory.batch(1, Date.now(), bytes(goodWords(4)))));
sent.push('non-member batch');
const garbage = new Uint8Array(97);
for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 151 + 7) & 0xff;
nc.publish(subj, garbage);
sent.push('garbage');
const whole = mallory.encode(mallory.batch(2, Date.now(), bytes(goodWords(4))));
nc.publish(subj, whole.subarray(0, Math.floor(whole.length / 2)));
sent.push('truncated');
// Another cluster's subject is another string: publish on this cluster's subject with the other cluster's name inside.
nc.publish(subj, other.encode(other.batch(1, Date.now(), bytes(goodWords(4)))));
sent.push('other cluster');

// Become a member the cheap way (heartbeats), then send records that are all bad.
const hb = subjects(clusterName).heartbeat;
for (let n = 1; n <= 3; n++) {
  nc.publish(hb, mallory.encode(mallory.heartbeat(n, Role.BACKUP, 0, 0, '', 1, false, false, Date.now())));
  await nc.flush();
  await new Promise((r) => setTimeout(r, 50));
}
const bad = goodWords(4);
bad[0] = (bad[0] & ~0xff) | 9; // op 9
bad[RECORD_WORDS + 0] = (bad[RECORD_WORDS] & ~0xff00) | (99 << 8); // protocol 99
bad[2 * RECORD_WORDS + 10] = 0xdeadbeef; // reserved word set
bad[3 * RECORD_WORDS + 9] = bad[3 * RECORD_WORDS + 8] + 1; // remaining > timeout
nc.publish(subj, mallory.encode(mallory.batch(3, Date.now(), bytes(bad))));
sent.push('member batch of 4 bad records');
await nc.flush();
await nc.close();
process.stdout.write(`${JSON.stringify({ subject: subj, sent })}\n`);
