import Router from '@koa/router';
import { NotFoundError } from '../../lib/errors.ts';
import { DeadLetters } from '../../lib/amqp/dead-letters.ts';
import { requireAuth, requireRole, type ApiContext, type ApiDeps, type ApiState } from '../context.ts';

/** Operator routes (admin token): dead letters to inspect and replay. */
export function adminRouter(deps: ApiDeps): Router<ApiState> {
  const deadLetters = new DeadLetters(deps.amqp, deps.topology);
  const router = new Router<ApiState>({ prefix: '/admin' });
  const admin = [requireAuth(deps.auth), requireRole('admin')] as const;

  router.get('/dead-letters', ...admin, async (ctx: ApiContext) => {
    ctx.body = { data: await deadLetters.list() };
  });

  router.get('/dead-letters/:id', ...admin, async (ctx: ApiContext) => {
    const id = (ctx.params as { id: string }).id;
    const found = await deadLetters.show(id);
    if (!found) throw new NotFoundError(`No dead letter with id ${id}`);
    ctx.body = found;
  });

  router.post('/dead-letters/:id/replay', ...admin, async (ctx: ApiContext) => {
    const id = (ctx.params as { id: string }).id;
    const replayed = await deadLetters.replay([id]);
    if (replayed === 0) throw new NotFoundError(`No dead letter with id ${id}`);
    ctx.body = { replayed };
  });

  router.post('/dead-letters/replay', ...admin, async (ctx: ApiContext) => {
    ctx.body = { replayed: await deadLetters.replay() };
  });

  return router;
}
