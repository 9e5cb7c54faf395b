import { bodyParser } from '@koa/bodyparser';
import Koa from 'koa';
import type { ApiDeps, ApiState } from './context.ts';
import { problemDetails } from './middleware/problem.ts';
import { requestContext } from './middleware/request-context.ts';
import { accountsRouter } from './routes/accounts.ts';
import { adminRouter } from './routes/admin.ts';
import { analyticsRouter, type AnalyticsDeps } from './routes/analytics.ts';
import { httpMetrics, metricsRouter } from './routes/metrics.ts';
import { orderActionsRouter } from './routes/order-actions.ts';
import { ordersRouter } from './routes/orders.ts';
import { portalRouter } from './routes/portal.ts';
import { productsRouter } from './routes/products.ts';
import { publicRouter } from './routes/public.ts';
import { webhooksRouter } from './routes/webhooks.ts';
import { adminStreamRouter } from './routes/admin-stream.ts';
import { createStreamTokens, streamRouter, type StreamDeps } from './routes/stream.ts';

/** The Koa application: middleware order is request context → problem details → body → routes. */
export function createApp(deps: ApiDeps & StreamDeps & AnalyticsDeps): Koa<ApiState> {
  const app = new Koa<ApiState>({ proxy: false });
  app.silent = true; // errors are logged once, by problemDetails
  app.use(httpMetrics());
  app.use(requestContext(deps.logger));
  app.use(problemDetails);
  app.use(
    bodyParser({
      // Forms only for the OAuth token endpoint (RFC 6749); every other route insists on JSON itself.
      enableTypes: ['json', 'form'],
      jsonLimit: deps.config.BODY_LIMIT,
      formLimit: deps.config.BODY_LIMIT,
      jsonStrict: true,
      onError: (err) => {
        throw err;
      },
    }),
  );
  app.use(metricsRouter(deps).routes());
  const streamTokens = createStreamTokens(deps.config);
  // The stream router comes before the orders router, which would read `/orders/stream` as an order id.
  for (const router of [
    portalRouter(),
    publicRouter(deps),
    accountsRouter(deps),
    productsRouter(deps),
    streamRouter(deps, streamTokens),
    adminStreamRouter(deps, streamTokens),
    ordersRouter(deps),
    orderActionsRouter(deps),
    adminRouter(deps),
    analyticsRouter(deps),
    webhooksRouter(deps),
  ]) {
    app.use(router.routes());
    app.use(router.allowedMethods());
  }
  return app;
}
