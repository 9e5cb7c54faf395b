import { randomUUID } from 'node:crypto';
import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import Koa from 'koa';

/**
 * The HTTP ceiling of the benchmark: Koa with the same body parser and router as comanda, answering
 * POST /orders with a 201 and a small order, touching nothing else. Started by the benchmark as its own
 * process on PORT, like comanda's api.
 */
const app = new Koa();
app.use(bodyParser({ enableTypes: ['json'], jsonLimit: '64kb' }));
const router = new Router();
router.post('/orders', (ctx) => {
  const id = randomUUID();
  ctx.status = 201;
  ctx.set('Location', `/orders/${id}`);
  ctx.body = {
    id,
    status: 'RECEIVED',
    items: (ctx.request as { body?: { items?: unknown } }).body?.items ?? [],
  };
});
router.get('/healthz', (ctx) => {
  ctx.body = { status: 'ok' };
});
app.use(router.routes());
const server = app.listen(Number(process.env.PORT ?? 0), '127.0.0.1');
server.keepAliveTimeout = 65_000;
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
