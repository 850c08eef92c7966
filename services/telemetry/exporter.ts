// Spans from decision records and control events: the OTel SDK's tracer, a bounded queue, and the OTLP
// http/protobuf exporter. Runs in the telemetry child, never on tsvsd's admin loop or a worker.
import { SpanKind, SpanStatusCode, type Tracer } from '@opentelemetry/api';
import { AlwaysOnSampler, RandomIdGenerator, TracerProvider, type IdGenerator, type SpanExporter } from '@opentelemetry/sdk-trace';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { Attr, CONTROL_SPAN, DECISION_SPAN, recordToAttributes, type TraceSettings } from '../../shared/telemetry/attributes.ts';
import { OUTCOME_NAMES, isFailure, type DecisionRecord } from '../../shared/telemetry/decision-ring.ts';
import { DecisionSampler } from '../../shared/telemetry/sampler.ts';
import type { ControlEvent, TelemetryStats } from '../../shared/proto/telemetry.ts';
import { zeroTelemetryStats } from '../../shared/proto/telemetry.ts';
import { BoundedSpanProcessor } from './bounded-processor.ts';

/**
 * Trace IDs for the spans: the one the sampler chose for the next kept success (so that TraceIdRatioBased at the
 * same ratio keeps it), else random as the SDK makes them (failures, control events).
 */
class DecisionIdGenerator implements IdGenerator {
  next: string | null = null;
  private readonly random = new RandomIdGenerator();

  generateTraceId(): string {
    const id = this.next;
    if (id === null) return this.random.generateTraceId();
    this.next = null;
    return id;
  }

  generateSpanId(): string {
    return this.random.generateSpanId();
  }
}

export interface SpanSinkOptions {
  settings: TraceSettings;
  /** Overrides the OTLP exporter (null: count decisions, export nothing). */
  exporter?: SpanExporter | null;
  maxQueue?: number;
  delayMs?: number;
  /** Uniform draws in [0, 1) for ratio sampling (default Math.random). */
  rng?: () => number;
}

/**
 * Turns decision records into spans (ratio-sampled as TraceIdRatioBased samples; failures always: see
 * shared/telemetry/sampler.ts) and control events into always-kept spans. Sampling happens on the record's outcome
 * byte before the record is copied or decoded, so an unsampled decision costs a byte test and a decrement.
 */
export class SpanSink {
  readonly stats: TelemetryStats = zeroTelemetryStats();
  private readonly provider: TracerProvider | null;
  private readonly processor: BoundedSpanProcessor | null;
  private readonly tracer: Tracer | null;
  private readonly sampler: DecisionSampler;
  private readonly ids = new DecisionIdGenerator();

  constructor(o: SpanSinkOptions) {
    this.sampler = new DecisionSampler(o.settings.ratio, o.rng ?? Math.random);
    const exporter = o.exporter !== undefined ? o.exporter : o.settings.tracesUrl === null ? null : new OTLPTraceExporter({ url: o.settings.tracesUrl, timeoutMillis: 5000 });
    if (exporter === null) {
      this.provider = null;
      this.processor = null;
      this.tracer = null;
      return;
    }
    this.processor = new BoundedSpanProcessor({ exporter, maxQueue: o.maxQueue, delayMs: o.delayMs });
    this.provider = new TracerProvider({
      resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: o.settings.serviceName }),
      // The decision to keep a span is taken before it exists (the DecisionSampler); the SDK records what it gets.
      sampler: new AlwaysOnSampler(),
      idGenerator: this.ids,
      spanProcessors: [this.processor],
    });
    this.tracer = this.provider.getTracer('tsvs.decisions');
  }

  /** The sampling rule on a raw outcome code, for DecisionReader.poll's `keep` (decode only what is kept). */
  readonly keep = (outcome: number): boolean => this.sampler.keep(outcome);

  /** Decisions `keep` turned down: counted as read and unsampled. */
  readonly skipped = (n: number): void => {
    this.stats.decisionsRead += n;
    this.stats.decisionsUnsampled += n;
  };

  /** One decision record: counted, sampled, and (if kept) ended as a span at the record's time. */
  decision(r: DecisionRecord): void {
    if (!this.sampler.keep(OUTCOME_NAMES.indexOf(r.outcome))) {
      this.skipped(1);
      return;
    }
    this.sampled(r);
  }

  /** A decision already sampled (by {@link keep}): ended as a span at the record's time. */
  sampled(r: DecisionRecord): void {
    this.stats.decisionsRead++;
    this.stats.decisionsTraced++;
    if (this.tracer === null) return;
    if (!isFailure(r.outcome)) this.ids.next = this.sampler.traceId();
    const span = this.tracer.startSpan(DECISION_SPAN, { kind: SpanKind.INTERNAL, startTime: r.timeMs, attributes: recordToAttributes(r) });
    if (isFailure(r.outcome)) span.setStatus({ code: SpanStatusCode.ERROR, message: r.outcome });
    span.end(r.timeMs);
    this.sync();
  }

  /** A control event: always a span. */
  control(ev: ControlEvent): void {
    this.stats.controlEvents++;
    if (this.tracer === null) return;
    const attrs: Record<string, string | number | boolean> = { ...(ev.attributes ?? {}), [Attr.event]: ev.name };
    if (ev.error) attrs[Attr.errorType] = ev.name;
    const span = this.tracer.startSpan(`${CONTROL_SPAN} ${ev.name}`, { kind: SpanKind.INTERNAL, startTime: ev.timeMs, attributes: attrs });
    if (ev.error) span.setStatus({ code: SpanStatusCode.ERROR, message: ev.name });
    span.end(ev.timeMs);
    this.sync();
  }

  /** Ring losses found by the tail. */
  ringLoss(lost: number, torn: number): void {
    this.stats.ringLost += lost;
    this.stats.ringTorn += torn;
  }

  private sync(): void {
    const c = this.processor?.counts;
    if (c === undefined) return;
    this.stats.queueDropped = c.dropped;
    this.stats.exported = c.exported;
    this.stats.exportFailed = c.failed;
  }

  /** Current counters (after the exporter's latest results). */
  snapshot(): TelemetryStats {
    this.sync();
    return { ...this.stats };
  }

  async flush(): Promise<void> {
    await this.processor?.forceFlush();
    this.sync();
  }

  async shutdown(): Promise<void> {
    await this.provider?.shutdown();
    this.sync();
  }
}
