// tsvsd's one event queue: every input (leadership and VIP ownership, health transitions, child exits, config
// changes, admin requests) is handled here one at a time, highest priority first, FIFO within a priority.

/** Priorities, lowest number first: leadership and ownership changes overtake everything queued behind them. */
export const EventPriority = { leadership: 0, ownership: 1, health: 2, child: 3, config: 4, admin: 5 } as const;
export type EventPriority = (typeof EventPriority)[keyof typeof EventPriority];

/** Why an event was refused by {@link EventQueue.push}. */
export class QueueClosedError extends Error {
  override readonly name = 'QueueClosedError';
}

interface Item<E, R> {
  event: E;
  resolve: (r: R) => void;
  reject: (e: unknown) => void;
}

/**
 * A serial queue with priorities. `push` resolves with the handler's result once the event was handled (or
 * rejects with its error); a handler never runs concurrently with another, so the state it touches needs no
 * locking. A handler that throws fails only its own event. No timers: it runs on promise turns.
 */
export class EventQueue<E, R> {
  readonly #handle: (e: E) => R | Promise<R>;
  readonly #priority: (e: E) => number;
  readonly #buckets: Item<E, R>[][] = [];
  #running = false;
  #closed = false;
  #idle: (() => void)[] = [];
  /** Events handled so far. */
  handled = 0;

  constructor(handle: (e: E) => R | Promise<R>, priority: (e: E) => number) {
    this.#handle = handle;
    this.#priority = priority;
  }

  /** Events waiting (not counting the one being handled). */
  get length(): number {
    return this.#buckets.reduce((n, b) => n + (b ? b.length : 0), 0);
  }

  /** Queues `event`; resolves with its handler's result. Rejects with QueueClosedError after {@link close}. */
  push(event: E): Promise<R> {
    if (this.#closed) return Promise.reject(new QueueClosedError('event queue closed'));
    return new Promise<R>((resolve, reject) => {
      const p = this.#priority(event);
      (this.#buckets[p] ??= []).push({ event, resolve, reject });
      if (!this.#running) void this.#drain();
    });
  }

  /** Refuses new events; resolves once the events already queued are handled. */
  close(): Promise<void> {
    this.#closed = true;
    return this.idle();
  }

  /** Resolves when nothing is queued or running. */
  idle(): Promise<void> {
    if (!this.#running && this.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #next(): Item<E, R> | undefined {
    for (const b of this.#buckets) if (b && b.length) return b.shift();
    return undefined;
  }

  async #drain(): Promise<void> {
    this.#running = true;
    for (let item = this.#next(); item; item = this.#next()) {
      try {
        item.resolve(await this.#handle(item.event));
      } catch (e) {
        item.reject(e);
      }
      this.handled++;
    }
    this.#running = false;
    const idle = this.#idle;
    this.#idle = [];
    for (const f of idle) f();
  }
}
