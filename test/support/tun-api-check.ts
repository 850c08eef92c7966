// Exercises shared/sys/tun.ts in the current (scratch) namespace and prints one JSON line of findings for
// test/lab/tun-local.test.ts: multi-queue opens, EBUSY on a second single-queue open, bounds rejection,
// reading a packet the kernel routed out through the device, and the device vanishing after the last close.
import { execFileSync } from 'node:child_process';
import { SysError } from '../../shared/sys/errors.ts';
import { TunCounter, openTun, removeTun } from '../../shared/sys/tun.ts';

const out: Record<string, unknown> = {};
const ip = (...a: string[]): string => execFileSync('ip', a, { encoding: 'utf8' });
const exists = (n: string): boolean => ip('-o', 'link', 'show').includes(`: ${n}:`);

const errOf = (f: () => void): string => {
  try {
    f();
    return 'none';
  } catch (e) {
    return e instanceof SysError ? `${e.op} ${e.code}` : String(e);
  }
};

// Single queue: a second opener is refused with EBUSY (16).
const a = openTun({ name: 'tsvs-tlq0' });
out.singleQueueSecondOpen = errOf(() => openTun({ name: 'tsvs-tlq0' }).close());
out.badName = errOf(() => openTun({ name: 'x'.repeat(16) }));
// Bounds: never writes outside the buffer.
const small = new Uint8Array(64);
out.rejectedBefore = a.counters[TunCounter.WRITE_REJECTED];
a.write(small, 10, 60);
a.write(small, -1, 20);
a.write(small, 0, 0);
out.rejected = a.counters[TunCounter.WRITE_REJECTED];
// A malformed packet (version nibble 0) is refused by the kernel: counted as a write error with errno.
out.badPacketWritten = a.write(small, 0, 20);
out.writeErrors = a.counters[TunCounter.WRITE_ERRORS];
out.lastWriteErrno = a.lastWriteErrno;
// Read: route a prefix out through the device, send a UDP datagram there, read it back from the queue.
ip('addr', 'add', '10.77.60.1/24', 'dev', 'tsvs-tlq0');
execFileSync('python3', ['-c', "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b'ping-tun', ('10.77.60.9', 7777))"]);
const rbuf = new Uint8Array(2048);
let n = -1;
for (let i = 0; i < 200 && n < 0; i++) {
  n = a.read(rbuf, 4);
  if (n >= 0 && rbuf[4 + 9] !== 17) n = -1; // skip anything but our UDP datagram
  if (n < 0) execFileSync('sleep', ['0.01']);
}
out.readLen = n;
out.readDst = n > 0 ? [...rbuf.subarray(4 + 16, 4 + 20)].join('.') : null;
out.readPayload = n > 0 ? Buffer.from(rbuf.subarray(4 + 28, 4 + n)).toString() : null;
out.readEmpty = a.read(rbuf);
a.close();
out.goneAfterClose = !exists('tsvs-tlq0');
// Multi-queue: several queues of one device in one process (as several workers would hold), mode must agree.
const q0 = openTun({ name: 'tsvs-tlm0', multiQueue: true });
const q1 = openTun({ name: 'tsvs-tlm0', multiQueue: true });
out.multiQueueFds = [q0.fd, q1.fd].every((fd) => fd >= 0) && q0.fd !== q1.fd;
out.singleOnMulti = errOf(() => openTun({ name: 'tsvs-tlm0' }).close());
q0.close();
out.aliveWithOneQueue = exists('tsvs-tlm0');
q1.close();
out.multiGoneAfterClose = !exists('tsvs-tlm0');
removeTun('tsvs-tlm0');
out.removeMissingOk = true;
process.stdout.write(`${JSON.stringify(out)}\n`);
