// Decision records and control events as span attributes: OpenTelemetry semantic-convention names where they
// exist (client.*, server.*, network.transport, error.type), the project's `lvs.*` namespace for the rest; and
// the sampling rule (a ratio for successes, always for failures and control events).
import type { DecisionRecord } from './decision-ring.ts';
import { isFailure } from './decision-ring.ts';

/** Attribute values a span takes (OTel's AttributeValue without undefined members). */
export type AttrValue = string | number | boolean | string[] | number[];
export type Attributes = Record<string, AttrValue>;

/** Span name of a decision record. */
export const DECISION_SPAN = 'lvs.schedule';
/** Span name prefix of a control event ("lvs.control config-applied"). */
export const CONTROL_SPAN = 'lvs.control';

/** Attribute keys used here (the semantic-convention ones spelled as in @opentelemetry/semantic-conventions 1.45). */
export const Attr = {
  clientAddress: 'client.address',
  clientPort: 'client.port',
  serverAddress: 'server.address',
  serverPort: 'server.port',
  networkTransport: 'network.transport',
  errorType: 'error.type',
  service: 'lvs.service',
  serviceId: 'lvs.service.id',
  fwmark: 'lvs.fwmark',
  scheduler: 'lvs.scheduler',
  outcome: 'lvs.outcome',
  template: 'lvs.template',
  method: 'lvs.method',
  destAddress: 'lvs.dest.address',
  destPort: 'lvs.dest.port',
  destId: 'lvs.dest.id',
  candidates: 'lvs.candidates',
  candidateCount: 'lvs.candidates.count',
  worker: 'lvs.worker',
  director: 'lvs.director',
  sequence: 'lvs.decision.seq',
  event: 'lvs.event',
} as const;

/** "TCP 10.0.0.1:80" or "FWM 5", as ipvsadm -L names a service. */
export function serviceLabel(r: Pick<DecisionRecord, 'protocol' | 'vip' | 'vport' | 'fwmark'>): string {
  return r.fwmark > 0 ? `FWM ${r.fwmark}` : `${r.protocol.toUpperCase()} ${r.vip}:${r.vport}`;
}

/**
 * The attributes of a decision's span. `lvs.candidates` holds one string per candidate in list order,
 * "ADDR:PORT w=WEIGHT a=ACTIVE i=INACTIVE o=OVERHEAD" plus " chosen", " overloaded", " unavailable" flags (one
 * string array, not parallel arrays of numbers: the SDK copies every array attribute, and that copy dominated the
 * cost per span when measured).
 */
export function recordToAttributes(r: DecisionRecord): Attributes {
  const a: Attributes = {
    [Attr.clientAddress]: r.clientAddress,
    [Attr.clientPort]: r.clientPort,
    [Attr.serverAddress]: r.vip,
    [Attr.serverPort]: r.vport,
    [Attr.networkTransport]: r.protocol,
    [Attr.service]: serviceLabel(r),
    [Attr.serviceId]: r.serviceId,
    [Attr.outcome]: r.outcome,
    [Attr.template]: r.template,
    [Attr.candidateCount]: r.candidateCount,
    [Attr.candidates]: r.candidates.map(
      (c) => `${c.address}:${c.port} w=${c.weight} a=${c.active} i=${c.inactive} o=${c.overhead}${c.chosen ? ' chosen' : ''}${c.overloaded ? ' overloaded' : ''}${c.available ? '' : ' unavailable'}`,
    ),
    [Attr.worker]: r.worker,
    [Attr.director]: r.director,
    [Attr.sequence]: r.seq,
  };
  if (r.scheduler !== '') a[Attr.scheduler] = r.scheduler;
  if (r.fwmark > 0) a[Attr.fwmark] = r.fwmark;
  if (r.dest !== null) {
    a[Attr.destAddress] = r.dest.address;
    a[Attr.destPort] = r.dest.port;
    a[Attr.destId] = r.dest.id;
    a[Attr.method] = r.dest.method;
  }
  if (isFailure(r.outcome)) a[Attr.errorType] = r.outcome;
  return a;
}

/** Thrown for an unusable sampling configuration (a bad --trace-ratio or OTEL_TRACES_SAMPLER_ARG). */
export class TraceConfigError extends Error {
  readonly code = 'ERR_TRACE_CONFIG' as const;
  constructor(message: string) {
    super(message);
    this.name = 'TraceConfigError';
  }
}

/** Parses a ratio 0..1 (the text of --trace-ratio or OTEL_TRACES_SAMPLER_ARG); throws TraceConfigError naming `what`. */
export function parseRatio(text: string, what: string): number {
  const v = Number(text.trim());
  if (text.trim() === '' || !Number.isFinite(v) || v < 0 || v > 1) throw new TraceConfigError(`${what}: '${text}' is not a ratio between 0 and 1`);
  return v;
}

/** Tracing settings after options and environment are combined. */
export interface TraceSettings {
  /** Base URL (spans go to `${endpoint}/v1/traces`), or null: tracing off. */
  endpoint: string | null;
  /** Full traces URL. */
  tracesUrl: string | null;
  ratio: number;
  serviceName: string;
}

/**
 * Combines `--otlp URL` / `--trace-ratio R` with the standard variables (OTEL_EXPORTER_OTLP_ENDPOINT,
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_TRACES_SAMPLER[_ARG], OTEL_SERVICE_NAME, OTEL_SDK_DISABLED);
 * the options win. OTEL_TRACES_SAMPLER: always_on → 1, always_off → 0, (parentbased_)traceidratio → the arg
 * (default 1, as the specification says); the default ratio without any setting is 1. Throws TraceConfigError.
 */
export function traceSettings(opts: { otlp?: string; ratio?: string }, env: Record<string, string | undefined>): TraceSettings {
  let ratio = 1;
  const sampler = (env.OTEL_TRACES_SAMPLER ?? '').trim().toLowerCase();
  if (sampler === 'always_off' || sampler === 'parentbased_always_off') ratio = 0;
  else if (sampler === 'always_on' || sampler === 'parentbased_always_on' || sampler === '') ratio = 1;
  else if (sampler === 'traceidratio' || sampler === 'parentbased_traceidratio') ratio = env.OTEL_TRACES_SAMPLER_ARG ? parseRatio(env.OTEL_TRACES_SAMPLER_ARG, 'OTEL_TRACES_SAMPLER_ARG') : 1;
  else throw new TraceConfigError(`OTEL_TRACES_SAMPLER: '${sampler}' is not supported (always_on, always_off, traceidratio, parentbased_*)`);
  if (opts.ratio !== undefined) ratio = parseRatio(opts.ratio, '--trace-ratio');
  let endpoint: string | null = null;
  let tracesUrl: string | null = null;
  if (opts.otlp !== undefined) {
    endpoint = opts.otlp.replace(/\/+$/, '');
    tracesUrl = `${endpoint}/v1/traces`;
  } else if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') {
    endpoint = null;
  } else if (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) {
    tracesUrl = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT.trim();
    endpoint = tracesUrl.replace(/\/v1\/traces\/?$/, '');
  } else if (env.OTEL_EXPORTER_OTLP_ENDPOINT) {
    endpoint = env.OTEL_EXPORTER_OTLP_ENDPOINT.trim().replace(/\/+$/, '');
    tracesUrl = `${endpoint}/v1/traces`;
  }
  for (const u of [tracesUrl]) {
    if (u !== null && !/^https?:\/\/[^/]+/.test(u)) throw new TraceConfigError(`OTLP endpoint '${u}' is not an http(s) URL`);
  }
  return { endpoint, tracesUrl, ratio, serviceName: env.OTEL_SERVICE_NAME?.trim() || 'tsvsd' };
}
