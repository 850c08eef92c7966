// Helpers for the health checker's integration tests: the real checker as a child process over IPC, and small real
// servers on loopback (127.45.x.y, ports 45000-45199) that can be stopped, started, hung or flapped.
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import type { Socket as UdpSocket } from 'node:dgram';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { resolve } from 'node:path';
import { readKeepalivedConfig } from '../../shared/keepalived/index.ts';
import type { DestConfig } from '../../shared/model/ipvs.ts';
import type { FromHealth, HealthTransition, ToHealth } from '../../shared/proto/health.ts';
import type { VirtualServerStatus } from '../../shared/health/machine.ts';

const MAIN = resolve(import.meta.dirname, '../../services/health/main.ts');

/** A transition as received, with the time it arrived (ms, Date.now()). */
export interface Seen {
  at: number;
  change: HealthTransition;
}

/** The checker child: keeps the table it was told about and every transition with its arrival time. */
export class HealthChild {
  readonly proc: ChildProcess;
  readonly messages: FromHealth[] = [];
  readonly seen: Seen[] = [];
  /** vsId → `addr:port` → dest. */
  readonly table = new Map<string, Map<string, DestConfig>>();
  private waiters: (() => void)[] = [];
  private nextId = 1;
  stderr = '';

  constructor() {
    this.proc = fork(MAIN, [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    this.proc.stderr?.on('data', (d) => { this.stderr += String(d); });
    this.proc.on('message', (m) => {
      const msg = m as FromHealth;
      this.messages.push(msg);
      if (msg.type === 'ready') {
        for (const v of msg.view.virtualServers) this.table.set(v.vsId, new Map(v.dests.map((d) => [`${d.addr}:${d.port}`, d])));
      } else if (msg.type === 'transitions') {
        const at = Date.now();
        for (const c of msg.changes) {
          this.seen.push({ at, change: c });
          const t = this.table.get(c.vsId) ?? new Map<string, DestConfig>();
          this.table.set(c.vsId, t);
          if (c.dest) t.set(`${c.key.addr}:${c.key.port}`, c.dest);
          else t.delete(`${c.key.addr}:${c.key.port}`);
        }
      }
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f();
    });
  }

  send(m: ToHealth): void {
    this.proc.send(m);
  }

  /** Starts checking a keepalived.conf given as text. */
  init(text: string, epoch = 1): void {
    this.send({ v: 1, type: 'init', epoch, config: readKeepalivedConfig('test.conf', text) });
  }

  reload(text: string, epoch: number): void {
    this.send({ v: 1, type: 'config', epoch, config: readKeepalivedConfig('test.conf', text) });
  }

  /** Resolves when `pred` holds (checked after each message), or rejects after `ms`. */
  async until(pred: () => boolean, ms: number, what: string): Promise<void> {
    const end = Date.now() + ms;
    while (!pred()) {
      const left = end - Date.now();
      if (left <= 0) throw new Error(`health: timed out after ${ms} ms waiting for ${what}; stderr: ${this.stderr}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => { clearTimeout(t); r(); });
      });
    }
  }

  /** The table of the only (or the named) virtual server as `addr:port wN` lines, sorted. */
  dests(vsId?: string): string[] {
    const t = vsId ? this.table.get(vsId) : [...this.table.values()][0];
    return [...(t?.values() ?? [])].map((d) => `${d.addr}:${d.port} w${d.weight}`).sort();
  }

  async status(): Promise<VirtualServerStatus[]> {
    const id = this.nextId++;
    this.send({ v: 1, type: 'status-request', id });
    let got: VirtualServerStatus[] | null = null;
    await this.until(() => {
      const m = this.messages.find((x) => x.type === 'status' && x.id === id);
      if (m && m.type === 'status') got = m.virtualServers;
      return got !== null;
    }, 5000, `status ${id}`);
    return got as unknown as VirtualServerStatus[];
  }

  /** Polls `status` until the real server whose id contains `rs` is alive (or not). */
  async waitAlive(rs: string, alive: boolean, ms: number): Promise<void> {
    const end = Date.now() + ms;
    for (;;) {
      const st = await this.status();
      const r = st.flatMap((v) => v.realServers).find((x) => x.rs.includes(rs));
      if (r && r.alive === alive && r.checkers.every((c) => c.lastResult !== null)) return;
      if (Date.now() > end) throw new Error(`health: ${rs} not ${alive ? 'alive' : 'dead'} after ${ms} ms: ${JSON.stringify(r)}`);
      await sleep(100);
    }
  }

  /** The last error of the first checker of the real server whose id contains `rs`. */
  async lastError(rs: string): Promise<string | null> {
    const st = await this.status();
    return st.flatMap((v) => v.realServers).find((x) => x.rs.includes(rs))?.checkers[0]?.lastError ?? null;
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise<void>((r) => this.proc.once('exit', () => r()));
    this.send({ v: 1, type: 'stop' });
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }
}

/** A TCP listener that can be stopped and started again on the same address; `mode` decides what it does. */
export class TcpPeer {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  /** 'http': answers each request with `body`; 'silent': accepts and never answers; 'slow-body': headers, then stalls; 'smtp': a tiny SMTP greeter. */
  mode: 'http' | 'silent' | 'slow-body' | 'smtp' = 'http';
  body = 'ok\n';
  status = 200;
  /** The last HTTP request's head, as received. */
  lastRequest = '';
  readonly host: string;
  readonly port: number;
  constructor(host: string, port: number) {
    this.host = host;
    this.port = port;
  }

  async start(): Promise<void> {
    if (this.server) return;
    const server = createServer((s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      s.on('error', () => s.destroy());
      if (this.mode === 'smtp') {
        s.write('220 tsvs-test ESMTP\r\n');
        s.on('data', (d) => {
          const line = String(d);
          if (/^HELO /i.test(line)) s.write('250 hello\r\n');
          else if (/^QUIT/i.test(line)) s.end('221 bye\r\n');
        });
        return;
      }
      if (this.mode === 'silent') return;
      let buf = '';
      s.on('data', (d) => {
        buf += String(d);
        if (!buf.includes('\r\n\r\n')) return;
        this.lastRequest = buf;
        if (this.mode === 'slow-body') {
          s.write(`HTTP/1.0 200 OK\r\nContent-Length: 1000\r\n\r\npartial`);
          return;
        }
        s.end(`HTTP/1.0 ${this.status} X\r\nContent-Length: ${Buffer.byteLength(this.body)}\r\n\r\n${this.body}`);
      });
    });
    await new Promise<void>((r, j) => { server.once('error', j); server.listen(this.port, this.host, () => r()); });
    this.server = server;
  }

  /** Stops listening and resets every open connection (a killed server). */
  async stop(): Promise<void> {
    const s = this.server;
    if (!s) return;
    this.server = null;
    for (const c of this.sockets) c.resetAndDestroy();
    await new Promise<void>((r) => s.close(() => r()));
  }
}

/** A UDP peer: echoes datagrams ('echo') or answers DNS queries with one A record ('dns'); can be stopped. */
export class UdpPeer {
  private sock: UdpSocket | null = null;
  readonly host: string;
  readonly port: number;
  readonly mode: 'echo' | 'dns';
  constructor(host: string, port: number, mode: 'echo' | 'dns') {
    this.host = host;
    this.port = port;
    this.mode = mode;
  }

  async start(): Promise<void> {
    if (this.sock) return;
    const s = createSocket('udp4');
    s.on('message', (m, r) => {
      if (this.mode === 'echo') { s.send(m, r.port, r.address); return; }
      if (m.length < 12) return;
      // answer: the question echoed, QR|RD|RA, one A record 127.45.0.53 pointing at the question name
      const q = m.subarray(12);
      const a = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 45, 0, 53]);
      const h = Buffer.alloc(12);
      m.copy(h, 0, 0, 2);
      h.writeUInt16BE(0x8180, 2);
      h.writeUInt16BE(1, 4);
      h.writeUInt16BE(1, 6);
      s.send(Buffer.concat([h, q, a]), r.port, r.address);
    });
    await new Promise<void>((r, j) => { s.once('error', j); s.bind(this.port, this.host, () => r()); });
    this.sock = s;
  }

  async stop(): Promise<void> {
    const s = this.sock;
    if (!s) return;
    this.sock = null;
    await new Promise<void>((r) => s.close(() => r()));
  }
}

/** A virtual_server block with NAT/rr/TCP and the given body. */
export function vsConf(addr: string, port: number, body: string, proto = 'TCP'): string {
  return `virtual_server ${addr} ${port} {\n protocol ${proto}\n lb_algo rr\n lb_kind NAT\n${body}\n}\n`;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
