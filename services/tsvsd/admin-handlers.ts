// tsvsd's admin operations: one handler per op. Table changes and mark rules go to the config store (and are
// applied when its change event comes back); reads are answered from the store's table and the stats read model.
import { formatMarkRules } from '../../shared/fwd/mark-rules.ts';
import type { VirtualServerStatus } from '../../shared/health/machine.ts';
import type { TableOp } from '../../shared/model/ops.ts';
import type { AdminEnvelope, AdminReply, AdminRequest } from '../../shared/proto/admin.ts';
import type { ClusterStatus } from '../../shared/proto/cluster.ts';
import type { ConfigStore } from './config-store.ts';
import type { Logger } from './log.ts';
import type { StatsModel } from './stats.ts';

/** What the handlers work with. */
export interface AdminContext {
  store: ConfigStore;
  stats: StatsModel;
  log: Logger;
  /** False without --client-if: no data plane, so no mark rules to set. */
  forwarding: boolean;
  /** The health checker's status (tsvsd --keepalived); absent without a checker. */
  health?: () => Promise<VirtualServerStatus[]>;
  /** The cluster agent's status (absent: this director runs alone, without NATS). */
  cluster?: () => Promise<ClusterStatus>;
}

/** A handled request: the reply, and the store's change sequence it waits for before it is sent (mutations). */
export interface Handled {
  reply: AdminReply;
  seq?: number;
}

type Handler<Op extends AdminRequest['op']> = (env: AdminEnvelope & Extract<AdminRequest, { op: Op }>, ctx: AdminContext) => Handled | Promise<Handled>;
type HandlerMap = { [Op in AdminRequest['op']]: Handler<Op> };

async function tableOp(env: AdminEnvelope & TableOp, ctx: AdminContext): Promise<Handled> {
  const { v: _v, id, ...op } = env;
  const r = await ctx.store.apply(op as TableOp);
  if (r.ok) {
    ctx.log('table: applied', { op: env.op, epoch: ctx.store.table.epoch });
    return { reply: { id, ok: true }, seq: r.seq };
  }
  ctx.log('table: refused', { op: env.op, errno: r.errno, detail: r.detail });
  return { reply: { id, ok: false, errno: r.errno, detail: r.detail } };
}

/** The handlers, by op. Every op of the admin protocol has one (the type checker sees to it). */
export const ADMIN_HANDLERS: HandlerMap = {
  'add-service': tableOp,
  'edit-service': tableOp,
  'del-service': tableOp,
  flush: tableOp,
  'add-dest': tableOp,
  'edit-dest': tableOp,
  'del-dest': tableOp,
  zero: tableOp,
  'set-timeout': tableOp,
  'start-daemon': tableOp,
  'stop-daemon': tableOp,
  snapshot: (env, ctx) => ({ reply: { id: env.id, ok: true, snapshot: ctx.store.table.snapshot() } }),
  conns: (env, ctx) => ({ reply: { id: env.id, ok: true, conns: ctx.stats.conns() } }),
  dataplane: (env, ctx) => ({ reply: { id: env.id, ok: true, dataplane: ctx.stats.dataplane() } }),
  stats: (env, ctx) => ({ reply: { id: env.id, ok: true, stats: ctx.stats.view() } }),
  health: async (env, ctx) => {
    if (!ctx.health) return { reply: { id: env.id, ok: false, errno: 'EOPNOTSUPP', detail: 'tsvsd runs without --keepalived: no health checker' } };
    try {
      return { reply: { id: env.id, ok: true, health: await ctx.health() } };
    } catch (e) {
      return { reply: { id: env.id, ok: false, errno: 'EOPNOTSUPP', detail: (e as Error).message } };
    }
  },
  'get-marks': (env, ctx) => {
    if (!ctx.forwarding) return { reply: { id: env.id, ok: false, errno: 'EOPNOTSUPP', detail: 'tsvsd runs without --client-if: no data plane, no mark rules' } };
    return { reply: { id: env.id, ok: true, marks: formatMarkRules(ctx.store.marks()) } };
  },
  cluster: async (env, ctx) => {
    if (!ctx.cluster) return { reply: { id: env.id, ok: false, errno: 'EOPNOTSUPP', detail: 'this director runs alone (tsvsd without --nats): no cluster' } };
    try {
      return { reply: { id: env.id, ok: true, cluster: await ctx.cluster() } };
    } catch (e) {
      return { reply: { id: env.id, ok: false, errno: 'EAGAIN', detail: (e as Error).message } };
    }
  },
  'set-marks': async (env, ctx) => {
    if (!ctx.forwarding) return { reply: { id: env.id, ok: false, errno: 'EOPNOTSUPP', detail: 'tsvsd runs without --client-if: no data plane, no mark rules' } };
    const r = await ctx.store.setMarks(env.text);
    if (!r.ok) {
      ctx.log('marks: refused', { detail: r.detail });
      return { reply: { id: env.id, ok: false, errno: r.errno, detail: r.detail } };
    }
    ctx.log('marks: applied');
    return { reply: { id: env.id, ok: true }, seq: r.seq };
  },
};

/** Answers one checked request with its op's handler. */
export function handleAdmin(env: AdminEnvelope, ctx: AdminContext): Handled | Promise<Handled> {
  return (ADMIN_HANDLERS[env.op] as Handler<AdminRequest['op']>)(env as never, ctx);
}
