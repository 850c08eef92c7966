// tsvsd's HTTP listener (`tsvsd --http ADDR:PORT`): /metrics in the Prometheus text format, /api/* JSON of the same
// read model, /api/events (server-sent events: a frame per tick) and the monitor page at /. One call starts it.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { formatMetrics, type MetricsInput } from '../../../shared/telemetry/prometheus.ts';
import { History, historyPoint, monitorFrame, type MonitorFrame } from '../../../shared/telemetry/monitor.ts';
import type { DecisionRecord } from '../../../shared/telemetry/decision-ring.ts';
import { MONITOR_PAGE } from './page.ts';

/**
 * What the listener reads, each time it needs it (nothing is cached beyond one tick). `read()` is the stats read
 * model (shared/proto/stats.ts StatsView has `table` and `dataplane`) plus the optional hooks; `decisions(max)` the
 * newest decision records, newest first (the telemetry rings; omit it when tracing is off).
 */
export interface HttpProvider {
  /** This director's name (shown on the page, label of cluster figures). */
  director: string;
  read(): MetricsInput;
  decisions?(max: number, filter?: (r: DecisionRecord) => boolean): DecisionRecord[];
}

export interface HttpOptions {
  /** ms between monitor frames (SSE and history). Default 1000. */
  tickMs?: number;
  /** ms of history the page plots. Default 5 minutes. */
  historyMs?: number;
  /** Decisions listed per frame. Default 12. */
  decisionsPerFrame?: number;
  /** Log line sink (rate-limited by the caller's logger). */
  log?: (msg: string, fields?: Record<string, string | number | boolean | undefined>) => void;
}

export interface RunningHttp {
  readonly address: string;
  readonly port: number;
  /** "http://127.0.0.1:9180" */
  readonly url: string;
  close(): Promise<void>;
}

/** A usage error in `--http`. */
export class HttpListenError extends Error {
  readonly code = 'ERR_HTTP_LISTEN' as const;
  constructor(message: string) {
    super(message);
    this.name = 'HttpListenError';
  }
}

/** Default listen address: loopback only. */
export const DEFAULT_HTTP_HOST = '127.0.0.1';

/**
 * Parses `--http` text: `ADDR:PORT`, `[V6ADDR]:PORT`, or `PORT` alone (loopback). Throws HttpListenError.
 */
export function parseListen(text: string): { host: string; port: number } {
  const t = text.trim();
  let host = DEFAULT_HTTP_HOST;
  let portText = t;
  const m6 = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(t);
  if (m6) {
    host = m6[1];
    portText = m6[2];
  } else if (t.includes(':')) {
    const i = t.lastIndexOf(':');
    host = t.slice(0, i);
    portText = t.slice(i + 1);
    if (host === '' || host.includes(':')) throw new HttpListenError(`--http ${text}: write an IPv6 address in brackets, [::1]:PORT`);
  }
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 0 || port > 65535) throw new HttpListenError(`--http ${text}: '${portText}' is not a port (0..65535)`);
  return { host, port };
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function json(res: ServerResponse, v: unknown, status = 200): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(v));
}

/** `--client ADDR[:PORT]` filter for /api/decisions. */
function clientFilter(q: string | null): ((r: DecisionRecord) => boolean) | undefined {
  if (q === null || q === '') return undefined;
  const i = q.lastIndexOf(':');
  const addr = i > 0 ? q.slice(0, i) : q;
  const port = i > 0 ? Number(q.slice(i + 1)) : -1;
  return (r) => r.clientAddress === addr && (port < 0 || r.clientPort === port);
}

/**
 * Starts the listener on `listen` (see {@link parseListen}) and resolves once it accepts connections. Rejects with
 * the listen error (address in use, no such address). Routes: GET / (monitor page), /metrics, /api/stats,
 * /api/frame, /api/history, /api/decisions[?client=ADDR[:PORT]&limit=N], /api/events (SSE). Other paths: 404;
 * other methods: 405. A provider that throws answers 500 with the message, the listener keeps running.
 */
export async function startHttp(listen: string, provider: HttpProvider, opts: HttpOptions = {}): Promise<RunningHttp> {
  const { host, port } = parseListen(listen);
  const tickMs = opts.tickMs ?? 1000;
  const perFrame = opts.decisionsPerFrame ?? 12;
  const history = new History(opts.historyMs ?? 5 * 60_000);
  const clients = new Set<ServerResponse>();
  let last: MonitorFrame | null = null;

  const frame = (): MonitorFrame => monitorFrame(Date.now(), provider.director, provider.read(), provider.decisions?.(perFrame) ?? []);

  const tick = (): void => {
    try {
      last = frame();
    } catch (e) {
      opts.log?.('http: read model failed', { error: (e as Error).message });
      return;
    }
    history.add(historyPoint(last));
    if (clients.size === 0) return;
    const msg = `event: frame\ndata: ${JSON.stringify(last)}\n\n`;
    for (const c of clients) c.write(msg);
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    try {
      switch (url.pathname) {
        case '/':
        case '/index.html':
          send(res, 200, 'text/html; charset=utf-8', MONITOR_PAGE);
          return;
        case '/metrics':
          send(res, 200, 'text/plain; version=0.0.4; charset=utf-8', formatMetrics(provider.read()));
          return;
        case '/api/stats':
          json(res, provider.read());
          return;
        case '/api/frame':
          json(res, frame());
          return;
        case '/api/history':
          json(res, history.all());
          return;
        case '/api/decisions': {
          const limit = Math.max(1, Math.min(4096, Number(url.searchParams.get('limit') ?? 100) || 100));
          json(res, provider.decisions?.(limit, clientFilter(url.searchParams.get('client'))) ?? []);
          return;
        }
        case '/api/events': {
          res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
          res.write(`retry: 2000\nevent: history\ndata: ${JSON.stringify(history.all())}\n\n`);
          if (last !== null) res.write(`event: frame\ndata: ${JSON.stringify(last)}\n\n`);
          clients.add(res);
          req.on('close', () => clients.delete(res));
          return;
        }
        default:
          json(res, { error: `no such path: ${url.pathname}` }, 404);
      }
    } catch (e) {
      opts.log?.('http: request failed', { path: url.pathname, error: (e as Error).message });
      if (!res.headersSent) json(res, { error: (e as Error).message }, 500);
      else res.end();
    }
  };

  const server: Server = createServer(handle);
  server.keepAliveTimeout = 5000;
  await new Promise<void>((ok, bad) => {
    server.once('error', bad);
    server.listen(port, host, () => {
      server.off('error', bad);
      ok();
    });
  });
  tick();
  const timer = setInterval(tick, tickMs);
  timer.unref();
  const a = server.address() as AddressInfo;
  const shown = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return {
    address: a.address,
    port: a.port,
    url: `http://${shown}:${a.port}`,
    close: async () => {
      clearInterval(timer);
      for (const c of clients) c.end();
      clients.clear();
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
    },
  };
}
