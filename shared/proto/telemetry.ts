// Messages between tsvsd and its telemetry exporter child (services/telemetry) over the child-process IPC
// channel: which decision rings to tail, control events to export as always-kept spans, and the child's counters.

/** A control-plane event exported as an always-kept span ("lvs.control <name>"), never sampled away. */
export interface ControlEvent {
  /** Event name: 'config-applied', 'failover', 'health-transition', 'sync-gap', 'resync', 'worker-restart', ... */
  name: string;
  /** Wall-clock ms when it happened. */
  timeMs: number;
  /** Extra attributes (lvs.* names preferred). */
  attributes?: Record<string, string | number | boolean>;
  /** True when the event is a failure (the span gets status ERROR and error.type = name). */
  error?: boolean;
}

/** Messages from tsvsd to the exporter. */
export type ToTelemetry =
  /** The decision-ring segments to tail (replaces the set; missing files are retried). */
  | { type: 'rings'; paths: string[] }
  | { type: 'control-event'; event: ControlEvent }
  /** Flush what is queued and exit. */
  | { type: 'stop' };

/** The exporter's counters, cumulative since it started. */
export interface TelemetryStats {
  /** Decision records read from the rings. */
  decisionsRead: number;
  /** Decisions turned into spans (sampled, or failures). */
  decisionsTraced: number;
  /** Decisions not sampled (ratio). */
  decisionsUnsampled: number;
  /** Records overwritten in a ring before the exporter read them. */
  ringLost: number;
  /** Records overwritten while being read. */
  ringTorn: number;
  /** Control events exported as spans. */
  controlEvents: number;
  /** Spans dropped because the export queue was full. */
  queueDropped: number;
  /** Spans the OTLP endpoint did not accept (export failed or timed out). */
  exportFailed: number;
  /** Spans the OTLP endpoint accepted. */
  exported: number;
}

/** Messages from the exporter to tsvsd. */
export type FromTelemetry =
  | { type: 'ready'; pid: number; tracesUrl: string | null; ratio: number }
  | { type: 'stats'; stats: TelemetryStats }
  | { type: 'log'; line: string };

export function zeroTelemetryStats(): TelemetryStats {
  return { decisionsRead: 0, decisionsTraced: 0, decisionsUnsampled: 0, ringLost: 0, ringTorn: 0, controlEvents: 0, queueDropped: 0, exportFailed: 0, exported: 0 };
}
