// Exercises shared/sys in the current (scratch) network namespace and prints one JSON line of findings for
// test/integration/sys-platform.test.ts: gratuitous ARP seen on the wire, sysctl save-and-restore, the address
// list and its follower, link up/delete over rtnetlink, and the SysError codes of the failure cases.
// Expects veth pair sc-a (10.77.70.1/24) ↔ sc-b, both in this namespace, sc-b up.
import { execFileSync } from 'node:child_process';
import { ArpMeta, ArpOp, parseArp } from '../../shared/net/arp.ts';
import { formatMac, ipv4FromText, ipv4ToText } from '../../shared/net/addr.ts';
import { NetVerdict } from '../../shared/net/verdict.ts';
import { AddressWatch, listAddresses } from '../../shared/sys/addresses.ts';
import { interfaceMac, sendGratuitousArp } from '../../shared/sys/arp.ts';
import { SysError } from '../../shared/sys/errors.ts';
import { C, bind, close, htons, ifIndex, raw, socket } from '../../shared/sys/libc.ts';
import { addressDelete, addressReplace, linkDelete, linkSetUp } from '../../shared/sys/rtnl.ts';
import { SysctlSet, readSysctl, writeSysctl } from '../../shared/sys/sysctl.ts';

const out: Record<string, unknown> = {};
const ip = (...a: string[]): string => execFileSync('ip', a, { encoding: 'utf8' });
const codeOf = async (f: () => unknown): Promise<string> => {
  try {
    await f();
    return 'none';
  } catch (e) {
    return e instanceof SysError ? e.code : `not a SysError: ${String(e)}`;
  }
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// --- gratuitous ARP: capture on the peer with an AF_PACKET socket, parse with the shared codec.
const cap = socket(C.AF_PACKET, C.SOCK_RAW | C.SOCK_NONBLOCK, htons(C.ETH_P_ARP), 'capture socket');
const sll = new Uint8Array(20);
new DataView(sll.buffer).setUint16(0, C.AF_PACKET, true);
new DataView(sll.buffer).setUint16(2, htons(C.ETH_P_ARP), true);
new DataView(sll.buffer).setInt32(4, ifIndex('sc-b'), true);
bind(cap, sll, 'bind capture');
const t0 = performance.now();
const res = await sendGratuitousArp('sc-a', '10.77.70.1', { count: 3, intervalMs: 50 });
out.arpElapsedMs = Math.round(performance.now() - t0);
out.arpResult = res;
out.macSeen = formatMac(interfaceMac('sc-a'));
await sleep(50);
const buf = new Uint8Array(2048);
const meta = new ArpMeta();
const frames: string[] = [];
for (;;) {
  const n = raw.recv(cap, buf, buf.length, 0);
  if (n < 0) break;
  if (parseArp(buf, n, meta) !== NetVerdict.OK) continue;
  if (meta.op !== ArpOp.REQUEST) continue;
  frames.push(`${n} ${formatMac(buf, 0)} ${formatMac(buf, 6)} ${ipv4ToText(meta.senderIp)}>${ipv4ToText(meta.targetIp)} tha=${meta.targetMac}`);
}
close(cap);
out.arpFrames = frames;
out.arpNoIf = await codeOf(() => sendGratuitousArp('sc-none', '10.77.70.1'));
out.arpBadIp = await codeOf(() => sendGratuitousArp('sc-a', '10.77.70'));
out.arpBadCount = await codeOf(() => sendGratuitousArp('sc-a', '10.77.70.1', { count: 0 }));

// --- sysctl: a set changes values and puts them back; missing keys; refused values.
const K1 = 'net.ipv4.conf.sc-a.rp_filter';
const K2 = 'net.ipv4.conf.sc-a.arp_ignore';
const before = [readSysctl(K1), readSysctl(K2)];
const set = new SysctlSet();
out.sysctlWrote = [set.set(K1, '2'), set.set(K2, '1'), set.set(K2, '1'), set.set('net.bridge.no-such-key', '0', { optional: true })];
out.sysctlDuring = [readSysctl(K1), readSysctl(K2)];
out.sysctlSaved = set.saved();
const again = SysctlSet.from(set.saved());
out.sysctlRestore = again.restore();
out.sysctlAfter = [readSysctl(K1), readSysctl(K2)];
out.sysctlBefore = before;
out.sysctlMissing = readSysctl('net.ipv4.conf.sc-none.rp_filter');
out.sysctlMissingSet = await codeOf(() => new SysctlSet().set('net.ipv4.conf.sc-none.rp_filter', '0'));
out.sysctlBadValue = await codeOf(() => writeSysctl(K1, 'not-a-number'));

// --- addresses: one dump, then a follower that sees an address added and removed.
out.listed = listAddresses().filter((a) => a.ifname === 'sc-a').map((a) => `${ipv4ToText(a.addr)}/${a.prefixLen}`);
const changes: string[][] = [];
const w = AddressWatch.open({ minIntervalMs: 10, onChange: (l) => changes.push(l.filter((a) => a.ifname === 'sc-a').map((a) => ipv4ToText(a.addr))) });
const vip = ipv4FromText('10.77.70.9')!;
out.hasBefore = w.has(vip);
ip('addr', 'add', '10.77.70.9/32', 'dev', 'sc-a');
let t = performance.now();
while (!w.has(vip) && performance.now() - t < 3000) await sleep(5);
out.hasAfterAdd = w.has(vip);
out.followAddMs = Math.round(performance.now() - t);
ip('addr', 'del', '10.77.70.9/32', 'dev', 'sc-a');
t = performance.now();
while (w.has(vip) && performance.now() - t < 3000) await sleep(5);
out.hasAfterDel = w.has(vip);
out.changes = changes;
out.watchProblems = w.problems();
w.close();

// --- links over rtnetlink: up, delete, delete again, missing.
ip('link', 'add', 'sc-dummy', 'type', 'veth', 'peer', 'name', 'sc-dummy-p');
linkSetUp('sc-dummy');
out.dummyUp = (JSON.parse(ip('-j', 'link', 'show', 'sc-dummy')) as { flags: string[] }[])[0].flags.includes('UP');
out.deleted = [linkDelete('sc-dummy'), linkDelete('sc-dummy')];
out.upMissing = await codeOf(() => linkSetUp('sc-none'));

// --- addresses over rtnetlink (VIP ownership): replace with a lifetime (twice: replace, not a duplicate), as `ip`
// shows it; delete, delete again (absent), and a missing interface.
const vip2 = ipv4FromText('10.77.70.10')!;
const shown = (): { local: string; prefixlen: number; valid_life_time: number; preferred_life_time: number }[] =>
  (JSON.parse(ip('-j', 'addr', 'show', 'dev', 'sc-a')) as { addr_info: { local: string; prefixlen: number; valid_life_time: number; preferred_life_time: number }[] }[])[0].addr_info.filter((a) => a.local === '10.77.70.10');
t = performance.now();
addressReplace('sc-a', vip2, 32, 2);
out.replaceMs = performance.now() - t;
addressReplace('sc-a', vip2, 32, 2);
out.replaced = shown().map((a) => `${a.local}/${a.prefixlen} valid ${a.valid_life_time} preferred ${a.preferred_life_time}`);
addressReplace('sc-a', vip2, 32);
out.forever = shown().map((a) => a.valid_life_time);
t = performance.now();
out.addrDeleted = [addressDelete('sc-a', vip2, 32), addressDelete('sc-a', vip2, 32), addressDelete('sc-none', vip2, 32)];
out.deleteMs = performance.now() - t;
out.afterDelete = shown().length;
out.replaceMissing = await codeOf(() => addressReplace('sc-none', vip2, 32));
// A lifetime runs out in the kernel: the address goes by itself (what a killed director's VIP does).
addressReplace('sc-a', vip2, 32, 1);
t = performance.now();
while (shown().length > 0 && performance.now() - t < 4000) await sleep(50);
out.expiredMs = Math.round(performance.now() - t);
out.expired = shown().length === 0;

process.stdout.write(`${JSON.stringify(out)}\n`);
