import Router from '@koa/router';
import { z } from 'zod';
import { NotFoundError } from '../../lib/errors.ts';
import { describeLifecycle } from '../../orders/lifecycle.ts';
import type { ApiContext, ApiDeps, ApiState } from '../context.ts';
import { openApiDocument } from '../openapi.ts';
import { parseInput } from '../validation.ts';

const loginQuery = z.strictObject({
  customer: z
    .string()
    .regex(/^[a-z0-9_-]{1,40}$/i, 'letters, digits, dash or underscore, at most 40')
    .default('cliente-demo'),
  role: z.enum(['customer', 'admin']).default('customer'),
});

/** Routes without a token: the demo login, the catalogue, the order lifecycle, liveness and readiness. */
export function publicRouter(deps: ApiDeps): Router<ApiState> {
  const router = new Router<ApiState>();

  router.get('/login-demo', async (ctx: ApiContext) => {
    if (!deps.config.DEMO_LOGIN) throw new NotFoundError('The demo login is disabled (DEMO_LOGIN=false)');
    const q = parseInput(loginQuery, ctx.query, 'query string');
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await deps.auth.issueDemoToken(q.customer, q.role);
  });

  router.get('/products', async (ctx: ApiContext) => {
    ctx.body = {
      data: await deps
        .db('products')
        .orderBy('sku')
        .select('id', 'sku', 'name', 'price', 'currency', 'stock_available'),
    };
  });

  // The same for everyone and fixed for the life of the process: the portal derives its buttons from it.
  const lifecycle = describeLifecycle();
  router.get('/lifecycle', (ctx: ApiContext) => {
    ctx.set('Cache-Control', 'public, max-age=300');
    ctx.body = lifecycle;
  });

  const openapi = openApiDocument(deps.config);
  router.get('/openapi.json', (ctx: ApiContext) => {
    ctx.body = openapi;
  });

  router.get('/healthz', (ctx: ApiContext) => {
    ctx.body = { status: 'ok' };
  });

  router.get('/readyz', async (ctx: ApiContext) => {
    const checks = await checkReadiness(deps);
    const ready = Object.values(checks).every((s) => s === 'up');
    ctx.status = ready ? 200 : 503;
    ctx.body = { status: ready ? 'ready' : 'degraded', ...checks };
  });

  return router;
}

/** Whether the api reaches each of its dependencies: what `/readyz` answers and `comanda_dependency_up` reports. */
export async function checkReadiness(
  deps: Pick<ApiDeps, 'db' | 'amqp' | 'publisher' | 'redis'>,
): Promise<{ postgres: 'up' | 'down'; rabbitmq: 'up' | 'down'; redis: 'up' | 'down' }> {
  const [postgres, rabbitmq, redis] = await Promise.all([
    probe(() => deps.db.raw('select 1')),
    probe(() =>
      deps.amqp.connected && deps.publisher.ready
        ? Promise.resolve()
        : Promise.reject(new Error('not connected')),
    ),
    probe(() => deps.redis.ping()),
  ]);
  return { postgres, rabbitmq, redis };
}

async function probe(check: () => Promise<unknown>, timeoutMs = 1000): Promise<'up' | 'down'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), timeoutMs);
      }),
    ]);
    return 'up';
  } catch {
    return 'down';
  } finally {
    clearTimeout(timer);
  }
}
