// Loopback TCP across network namespaces through unix sockets (a path is visible from every namespace), as two
// processes: `tcp-unix-bridge.ts listen PORT=SOCK ...` (run inside a namespace) accepts on 127.0.0.1:PORT and pipes
// each connection to SOCK; `tcp-unix-bridge.ts serve PORT=SOCK ...` (run on the host) accepts on SOCK and connects
// to 127.0.0.1:PORT. Lets a tsvsd in its own namespace reach a nats-server that listens only on the host's loopback.
// Separate processes, so that a test blocking its own event loop (spawnSync) never delays the traffic.
import { createConnection, createServer, type Socket } from 'node:net';

function pipeBoth(a: Socket, b: Socket): void {
  // NATS heartbeats are small writes: no Nagle delay on either side
  a.setNoDelay(true);
  b.setNoDelay(true);
  a.pipe(b);
  b.pipe(a);
  const end = (): void => {
    a.destroy();
    b.destroy();
  };
  a.on('error', end).on('close', end);
  b.on('error', end).on('close', end);
}

if (import.meta.main) {
  const [cmd, ...pairs] = process.argv.slice(2);
  if ((cmd !== 'listen' && cmd !== 'serve') || pairs.length === 0) {
    process.stderr.write('usage: tcp-unix-bridge.ts listen|serve PORT=SOCK ...\n');
    process.exit(2);
  }
  let ready = 0;
  for (const p of pairs) {
    const [port, sock] = p.split('=');
    const srv = createServer((c) => pipeBoth(c, cmd === 'listen' ? createConnection({ path: sock }) : createConnection({ host: '127.0.0.1', port: Number(port) })));
    srv.on('error', (e) => {
      process.stderr.write(`tcp-unix-bridge: ${cmd} ${p}: ${e.message}\n`);
      process.exit(1);
    });
    const done = (): void => {
      if (++ready === pairs.length) process.stdout.write('ready\n');
    };
    if (cmd === 'listen') srv.listen(Number(port), '127.0.0.1', done);
    else srv.listen(sock, done);
  }
}
