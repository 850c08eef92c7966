// The mapping from a parsed ipvsadm table command to the admin API request that carries it, and the libipvs
// call whose error messages apply. Shared by tsvsadm (commands) and tsvsd (rules files).
import type { TableOp } from '../model/ops.ts';
import type { Command } from './parse.ts';
import type { IpvsCall } from './errors.ts';

/** Commands that change the table (everything but listing, saving, restoring, help and version). */
export type KernelCommand = Exclude<Command, { kind: 'help' | 'version' | 'list' | 'save' | 'restore' }>;

/** The admin request for a table-changing command and the libipvs call whose messages apply. */
export function toRequest(cmd: KernelCommand): [IpvsCall, TableOp] {
  switch (cmd.kind) {
    case 'add-service': return ['add-service', { op: 'add-service', svc: cmd.svc }];
    case 'edit-service': return ['edit-service', { op: 'edit-service', svc: cmd.svc }];
    case 'del-service': return ['del-service', { op: 'del-service', key: cmd.key }];
    case 'flush': return ['flush', { op: 'flush' }];
    case 'add-dest': return ['add-dest', { op: 'add-dest', key: cmd.key, dest: cmd.dest }];
    case 'edit-dest': return ['edit-dest', { op: 'edit-dest', key: cmd.key, dest: cmd.dest }];
    case 'del-dest': return ['del-dest', { op: 'del-dest', key: cmd.key, dest: cmd.dest }];
    case 'zero': return ['zero', cmd.key ? { op: 'zero', key: cmd.key } : { op: 'zero' }];
    case 'set-timeout': return ['set-timeout', { op: 'set-timeout', tcp: cmd.tcp, tcpfin: cmd.tcpfin, udp: cmd.udp }];
    case 'start-daemon': return ['start-daemon', { op: 'start-daemon', daemon: cmd.daemon }];
    case 'stop-daemon':
      return ['stop-daemon', cmd.syncid === undefined ? { op: 'stop-daemon', state: cmd.state } : { op: 'stop-daemon', state: cmd.state, syncid: cmd.syncid }];
  }
}
