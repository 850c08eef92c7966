// tsvsadm's logic, drivable in-process: parse argv, talk to tsvsd, print as ipvsadm 1.31 does, return the exit code.
import type { AdminReply, AdminRequest } from '../../shared/proto/admin.ts';
import type { TableSnapshot } from '../../shared/model/ipvs.ts';
import type { NameResolver } from '../../shared/ipvsadm/names.ts';
import type { Command } from '../../shared/ipvsadm/parse.ts';
import { parseArgs } from '../../shared/ipvsadm/parse.ts';
import type { IpvsCall, IpvsErrno } from '../../shared/ipvsadm/errors.ts';
import { EXIT_FAIL, EXIT_KERNEL, EXIT_LIST, INIT_FAILURE, initFailure, ipvsStrerror } from '../../shared/ipvsadm/errors.ts';
import { formatConns, formatDaemons, formatList, formatSave, formatServiceList, formatTimeout, usageText, VERSION_LINE } from '../../shared/ipvsadm/format.ts';
import { tokenizeRestoreStream } from '../../shared/ipvsadm/restore.ts';
import { toRequest } from '../../shared/ipvsadm/request.ts';
import { serviceKeyString } from '../../shared/model/ipvs.ts';
import type { AdminClient } from './client.ts';

/** Everything run() touches outside itself. */
export interface RunIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** The whole of stdin (read only by -R). */
  readStdin(): Promise<string>;
  /** Opens the admin connection; rejects when tsvsd is not reachable. */
  connect(): Promise<AdminClient>;
  resolver: NameResolver;
  /** argv[0] for messages; "ipvsadm" by default so output matches ipvsadm byte for byte. */
  program?: string;
}

/** Ends the whole run with a status, as ipvsadm's exit() does from deep inside a -R stream. */
class Exit {
  code: number;
  constructor(code: number) {
    this.code = code;
  }
}

type Reply = AdminReply | { id: number; ok: false; errno: IpvsErrno };

/**
 * Runs one tsvsadm invocation (argv[0] is the program name) and resolves to its exit status. Like ipvsadm, it first
 * "initialises IPVS" (connects to tsvsd) and fails every command, -h and -v included, with exit 2 when it cannot.
 */
export async function run(argv: readonly string[], io: RunIo): Promise<number> {
  let client: AdminClient;
  try {
    client = await io.connect();
  } catch (e) {
    // A non-root caller cannot reach the root-only socket (EACCES); ipvsadm gets EPERM from the kernel then.
    const code = (e as NodeJS.ErrnoException).code;
    io.stderr((code === 'EACCES' || code === 'EPERM' ? initFailure('EPERM') : INIT_FAILURE) + '\n');
    return EXIT_FAIL;
  }
  try {
    const code = await processOptions(argv, false, io, client);
    return code;
  } catch (e) {
    if (e instanceof Exit) return e.code;
    throw e;
  } finally {
    client.close();
  }
}

async function send(client: AdminClient, req: AdminRequest): Promise<Reply> {
  try {
    return await client.request(req);
  } catch {
    return { id: 0, ok: false, errno: 'ENOPROTOOPT' };
  }
}

async function snapshot(client: AdminClient, io: RunIo): Promise<TableSnapshot> {
  const r = await send(client, { op: 'snapshot' });
  if (!r.ok || !r.snapshot) {
    io.stderr(ipvsStrerror('get-services', r.ok ? 'ENOPROTOOPT' : r.errno) + '\n');
    throw new Exit(EXIT_LIST);
  }
  return r.snapshot;
}

/** process_options: one argv, 0 on success, 255 after a failed kernel call or popt error; throws Exit to stop everything. */
async function processOptions(argv: readonly string[], readingStdin: boolean, io: RunIo, client: AdminClient): Promise<number> {
  const program = io.program ?? 'ipvsadm';
  const parsed = parseArgs(argv, { resolver: io.resolver, program, readingStdin });
  if (parsed.kind === 'exit') {
    io.stderr(parsed.stderr);
    throw new Exit(parsed.code);
  }
  if (parsed.kind === 'error') {
    io.stderr(parsed.stderr);
    return EXIT_KERNEL;
  }
  return execute(parsed.command, io, client);
}

async function execute(cmd: Command, io: RunIo, client: AdminClient): Promise<number> {
  switch (cmd.kind) {
    case 'help':
      io.stdout(usageText(io.program ?? 'ipvsadm'));
      throw new Exit(0);
    case 'version':
      io.stdout(VERSION_LINE);
      throw new Exit(0);
    case 'list':
      return list(cmd, io, client);
    case 'save':
      io.stdout(formatSave(await snapshot(client, io), cmd.format, io.resolver));
      return 0;
    case 'restore': {
      let result = 0;
      for (const line of tokenizeRestoreStream(await io.readStdin(), io.program ?? 'ipvsadm')) {
        result = await processOptions(line, true, io, client);
      }
      return result;
    }
    default: {
      const [call, req] = toRequest(cmd);
      const r = await send(client, req);
      if (r.ok) return 0;
      io.stderr(ipvsStrerror(call, r.errno) + '\n');
      // ipvsadm never gets EAGAIN from the kernel; tsvsd answers it when the cluster config store is unreachable
      if (r.errno === 'EAGAIN' && 'detail' in r && r.detail) io.stderr(`${io.program ?? 'ipvsadm'}: ${r.detail}\n`);
      return EXIT_KERNEL;
    }
  }
}

async function list(cmd: Extract<Command, { kind: 'list' }>, io: RunIo, client: AdminClient): Promise<number> {
  const t = cmd.target;
  if (t.type === 'conns') {
    const r = await send(client, { op: 'conns' });
    if (!r.ok || !r.conns) {
      io.stderr('cannot open file /proc/net/ip_vs_conn\n');
      throw new Exit(EXIT_LIST);
    }
    io.stdout(formatConns(r.conns, cmd.format, io.resolver));
    return 0;
  }
  const snap = await snapshot(client, io);
  if (t.type === 'all') io.stdout(formatList(snap, cmd.format, io.resolver));
  else if (t.type === 'timeout') io.stdout(formatTimeout(snap.timeouts));
  else if (t.type === 'daemon') io.stdout(formatDaemons(snap.daemons));
  else {
    const want = serviceKeyString(t.key);
    const se = snap.services.find((s) => s.af === t.key.af && serviceKeyString(s) === want);
    if (!se) {
      io.stderr(ipvsStrerror('get-service', 'ESRCH') + '\n');
      throw new Exit(EXIT_LIST);
    }
    io.stdout(formatServiceList(se, cmd.format, io.resolver));
  }
  return 0;
}
