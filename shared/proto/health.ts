// Messages between tsvsd and the health checker child process (services/health) over the child-process IPC channel.
// The checker pushes only transitions, batched; the full view comes once at start and on request.
import type { DestConfig, DestKey, ServiceKey } from '../model/ipvs.ts';
import type { KeepalivedConfig } from '../keepalived/model.ts';
import type { HealthView, NotifyEvent, VirtualServerStatus } from '../health/machine.ts';

/** Version of these messages; a receiver drops messages of another version. */
export const HEALTH_PROTO_VERSION = 1;

/** Messages from tsvsd to the checker. */
export type ToHealth =
  /** The configuration to check (the parsed keepalived model); the first message. `epoch` counts configurations. */
  | { v: 1; type: 'init'; epoch: number; config: KeepalivedConfig }
  /** A new configuration (SIGHUP): unchanged checkers keep their state. */
  | { v: 1; type: 'config'; epoch: number; config: KeepalivedConfig }
  /** Ask for every real server's state; answered by `status` with the same `id`. */
  | { v: 1; type: 'status-request'; id: number }
  /** Ask for the whole view; answered by `view` with the same `id`. */
  | { v: 1; type: 'view-request'; id: number }
  /** Stop checking (runs omega scripts), then exit. */
  | { v: 1; type: 'stop' };

/** One change of the table: a dest of each service of `vsId` is set to `dest`, or removed when `dest` is null. */
export interface HealthTransition {
  vsId: string;
  services: ServiceKey[];
  key: DestKey;
  dest: DestConfig | null;
}

/** Messages from the checker to tsvsd. Every one carries the epoch of the configuration it was computed from. */
export type FromHealth =
  /** After init: the table the checker wants at startup (keepalived's startup adds). */
  | { v: 1; type: 'ready'; epoch: number; pid: number; view: HealthView; warnings: string[] }
  /**
   * Transitions since the previous batch, in order; `seq` counts batches from 1 with no gap, so a receiver that
   * sees a gap asks for the view.
   */
  | { v: 1; type: 'transitions'; epoch: number; seq: number; changes: HealthTransition[] }
  /** A configuration was taken (after `config`); the transitions it caused follow as a batch. */
  | { v: 1; type: 'configured'; epoch: number; warnings: string[] }
  /** A configuration could not be used; the checker goes on with the previous one. */
  | { v: 1; type: 'config-error'; epoch: number; message: string }
  | { v: 1; type: 'status'; id: number; epoch: number; virtualServers: VirtualServerStatus[] }
  | { v: 1; type: 'view'; id: number; epoch: number; seq: number; view: HealthView }
  /** A notify script ran (or could not start). */
  | { v: 1; type: 'notified'; event: NotifyEvent; script: string; vsId: string; rsId: string | null; exitCode: number | null; error: string | null }
  | { v: 1; type: 'log'; line: string };
