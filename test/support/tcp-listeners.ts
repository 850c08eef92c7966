// Real TCP servers on loopback for health-check tests: each accepts and closes at once (a TCP check sees it up);
// stopping one makes the port refuse connections (down).
import { createServer, type Server } from 'node:net';

/** A set of listening ports, each started and stopped by the test. */
export class TcpListeners {
  readonly #servers = new Map<number, Server>();

  /** Listens on 127.0.0.1:`port`. */
  listen(port: number): Promise<void> {
    const s = createServer((c) => c.end());
    this.#servers.set(port, s);
    return new Promise((r, j) => s.once('error', j).listen(port, '127.0.0.1', () => r()));
  }

  /** Stops listening on `port` (nothing if it was not). */
  unlisten(port: number): Promise<void> {
    const s = this.#servers.get(port);
    this.#servers.delete(port);
    return new Promise((r) => (s ? s.close(() => r()) : r()));
  }

  /** Stops every listener. */
  async closeAll(): Promise<void> {
    for (const port of [...this.#servers.keys()]) await this.unlisten(port);
  }
}
