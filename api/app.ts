import { bodyParser } from '@koa/bodyparser';
import Koa from 'koa';
import type { ApiDeps, ApiState } from './context.ts';
import { problemDetails } from './middleware/problem.ts';
import { requestContext } from './middleware/request-context.ts';
import { ordersRouter } from './routes/orders.ts';
import { publicRouter } from './routes/public.ts';

/** The Koa application: middleware order is request context → problem details → body → routes. */
export function createApp(deps: ApiDeps): Koa<ApiState> {
  const app = new Koa<ApiState>({ proxy: false });
  app.silent = true; // errors are logged once, by problemDetails
  app.use(requestContext(deps.logger));
  app.use(problemDetails);
  app.use(
    bodyParser({
      enableTypes: ['json'],
      jsonLimit: deps.config.BODY_LIMIT,
      jsonStrict: true,
      onError: (err) => {
        throw err;
      },
    }),
  );
  for (const router of [publicRouter(deps), ordersRouter(deps)]) {
    app.use(router.routes());
    app.use(router.allowedMethods());
  }
  return app;
}
