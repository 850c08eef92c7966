// A span processor with a bounded queue that counts what it drops: ended spans wait in the queue and go to the
// exporter in batches, one export in flight at a time; a full queue drops the new span and counts it (the SDK's
// BatchSpanProcessor drops too, but only logs the number).
import type { Context } from '@opentelemetry/api';
import type { ReadableSpan, Span, SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace';
import { ExportResultCode } from '@opentelemetry/core';

export interface BoundedOptions {
  exporter: SpanExporter;
  /** Spans held at most; further spans are dropped and counted. Default 8192. */
  maxQueue?: number;
  /** Spans per export request. Default 512. */
  maxBatch?: number;
  /** ms a partial batch waits before it is sent. Default 200. */
  delayMs?: number;
}

/** Counters of a {@link BoundedSpanProcessor}. */
export interface BoundedCounts {
  queued: number;
  dropped: number;
  exported: number;
  failed: number;
}

export class BoundedSpanProcessor implements SpanProcessor {
  readonly counts: BoundedCounts = { queued: 0, dropped: 0, exported: 0, failed: 0 };
  private readonly exporter: SpanExporter;
  private readonly maxQueue: number;
  private readonly maxBatch: number;
  private readonly delayMs: number;
  private queue: ReadableSpan[] = [];
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> | null = null;
  private closed = false;

  constructor(o: BoundedOptions) {
    this.exporter = o.exporter;
    this.maxQueue = o.maxQueue ?? 8192;
    this.maxBatch = o.maxBatch ?? 512;
    this.delayMs = o.delayMs ?? 200;
  }

  onStart(_span: Span, _ctx: Context): void {}

  onEnd(span: ReadableSpan): void {
    if (this.closed) return;
    if (this.queue.length >= this.maxQueue) {
      this.counts.dropped++;
      return;
    }
    this.queue.push(span);
    this.counts.queued = this.queue.length;
    if (this.queue.length >= this.maxBatch) this.kick();
    else if (this.timer === null) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.kick();
      }, this.delayMs);
      this.timer.unref();
    }
  }

  /** Starts an export if none is running; chains the next batch while the queue is not empty. */
  private kick(): void {
    if (this.inFlight !== null || this.queue.length === 0) return;
    const batch = this.queue.splice(0, this.maxBatch);
    this.counts.queued = this.queue.length;
    this.inFlight = new Promise<void>((resolve) => {
      this.exporter.export(batch, (r) => {
        if (r.code === ExportResultCode.SUCCESS) this.counts.exported += batch.length;
        else this.counts.failed += batch.length;
        resolve();
      });
    }).then(() => {
      this.inFlight = null;
      if (this.queue.length >= this.maxBatch || (this.closed && this.queue.length > 0)) this.kick();
      else if (this.queue.length > 0 && this.timer === null) {
        this.timer = setTimeout(() => {
          this.timer = null;
          this.kick();
        }, this.delayMs);
        this.timer.unref();
      }
    });
  }

  /** Exports everything queued (waits for the exports in flight). */
  async forceFlush(): Promise<void> {
    for (let guard = 0; guard < 1000; guard++) {
      if (this.inFlight !== null) await this.inFlight;
      else if (this.queue.length > 0) this.kick();
      else break;
    }
  }

  async shutdown(): Promise<void> {
    await this.forceFlush();
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    await this.exporter.shutdown();
  }
}
