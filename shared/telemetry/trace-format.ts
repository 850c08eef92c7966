// `tsvsadm trace`: its filters (service, client, real server) and how a decision reads, for people (one line) and
// for tools (one JSON object per line). Pure: the command (services/tsvsadm/trace.ts) reads the rings.
import type { DecisionRecord } from './decision-ring.ts';
import { serviceLabel } from './attributes.ts';

/** What `--service`, `--client` and `--dest` ask for; absent fields match everything. */
export interface TraceFilter {
  /** "TCP 10.0.0.1:80" / "UDP …" / "FWM 5", or an address:port matched over every protocol. */
  service?: { proto: string | null; addr: string; port: number | null; fwmark: number };
  client?: { addr: string; port: number | null };
  dest?: { addr: string; port: number | null };
}

/** A usage error of `tsvsadm trace`. */
export class TraceUsageError extends Error {
  readonly code = 'ERR_TRACE_USAGE' as const;
  constructor(message: string) {
    super(message);
    this.name = 'TraceUsageError';
  }
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function addrPort(text: string, what: string): { addr: string; port: number | null } {
  const i = text.lastIndexOf(':');
  const addr = i >= 0 ? text.slice(0, i) : text;
  const portText = i >= 0 ? text.slice(i + 1) : null;
  const m = IPV4.exec(addr);
  if (!m || m.slice(1).some((x) => Number(x) > 255)) throw new TraceUsageError(`${what} ${text}: want an IPv4 address, optionally :PORT`);
  if (portText === null) return { addr, port: null };
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) throw new TraceUsageError(`${what} ${text}: '${portText}' is not a port`);
  return { addr, port };
}

/** Parses the filter options' values. Throws TraceUsageError naming the option. */
export function parseTraceFilter(o: { service?: string; client?: string; dest?: string }): TraceFilter {
  const f: TraceFilter = {};
  if (o.service !== undefined) {
    const t = o.service.trim();
    const fw = /^(?:FWM|fwm|-f)\s+(\d+)$/.exec(t);
    if (fw) f.service = { proto: null, addr: '', port: null, fwmark: Number(fw[1]) };
    else {
      const m = /^(?:(TCP|UDP|SCTP|tcp|udp|sctp)\s+)?(\S+)$/.exec(t);
      if (!m) throw new TraceUsageError(`--service ${o.service}: want [TCP|UDP|SCTP] ADDR[:PORT] or FWM MARK`);
      const ap = addrPort(m[2], '--service');
      f.service = { proto: m[1] ? m[1].toLowerCase() : null, addr: ap.addr, port: ap.port, fwmark: 0 };
    }
  }
  if (o.client !== undefined) f.client = addrPort(o.client.trim(), '--client');
  if (o.dest !== undefined) f.dest = addrPort(o.dest.trim(), '--dest');
  return f;
}

/** Whether a decision passes the filter. */
export function matchTrace(f: TraceFilter, r: DecisionRecord): boolean {
  const s = f.service;
  if (s) {
    if (s.fwmark > 0) {
      if (r.fwmark !== s.fwmark) return false;
    } else if (r.fwmark > 0 || r.vip !== s.addr || (s.port !== null && r.vport !== s.port) || (s.proto !== null && r.protocol !== s.proto)) return false;
  }
  const c = f.client;
  if (c && (r.clientAddress !== c.addr || (c.port !== null && r.clientPort !== c.port))) return false;
  const d = f.dest;
  if (d && (r.dest === null || r.dest.address !== d.addr || (d.port !== null && r.dest.port !== d.port))) return false;
  return true;
}

function clock(ms: number): string {
  const t = new Date(ms);
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${p(t.getUTCHours())}:${p(t.getUTCMinutes())}:${p(t.getUTCSeconds())}.${p(t.getUTCMilliseconds(), 3)}`;
}

/**
 * One decision for people: "12:00:01.250 d1/w0 10.0.0.7:41234 -> TCP 10.0.0.1:80 wrr => 10.0.1.2:80 masq
 * [10.0.1.1:80 w=3 a=0 i=2 o=0, 10.0.1.2:80 w=1 a=0 i=0 o=0 *]" (time UTC; * marks the chosen candidate; a
 * failure prints its outcome instead of the arrow and server).
 */
export function formatTraceLine(r: DecisionRecord): string {
  const sched = r.scheduler === '' ? (r.template === 'hit' ? 'template' : '-') : r.scheduler;
  const what = r.dest === null ? `!! ${r.outcome}` : `=> ${r.dest.address}:${r.dest.port} ${r.dest.method}${r.outcome === 'persistent' ? ' (persistent)' : r.outcome === 'table-full' ? ' (table-full)' : ''}`;
  const cands = r.candidates.length === 0 ? '' : ` [${r.candidates.map((c) => `${c.address}:${c.port} w=${c.weight} a=${c.active} i=${c.inactive} o=${c.overhead}${c.chosen ? ' *' : ''}`).join(', ')}${r.candidateCount > r.candidates.length ? `, +${r.candidateCount - r.candidates.length}` : ''}]`;
  return `${clock(r.timeMs)} ${r.director}/w${r.worker} ${r.clientAddress}:${r.clientPort} -> ${serviceLabel(r)} ${sched} ${what}${cands}`;
}
