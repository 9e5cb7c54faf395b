import Router from '@koa/router';
import type { Context, Next } from 'koa';
import {
  httpRequestDuration,
  idempotencyOutcomes,
  METRICS_CONTENT_TYPE,
  ordersCreated,
  renderMetrics,
  watchOutbox,
  watchQueues,
  watchReadiness,
  watchWebhookDeliveries,
} from '../../lib/metrics.ts';
import { idempotencyEvents } from '../idempotency.ts';
import { countRelayBatches } from '../../relay/outbox-relay.ts';
import type { ApiDeps, ApiState } from '../context.ts';
import { checkReadiness } from './public.ts';

const UNMATCHED = '(unmatched)';

/**
 * Times every request by method, route template and status. The route is the router's template
 * (`/orders/:id`), never the raw path, so one label value stands for all orders; a path no route matched is
 * `(unmatched)`. Goes first, so the status is the one the client got (problem+json included).
 */
export function httpMetrics() {
  return async (ctx: Context, next: Next): Promise<void> => {
    const started = performance.now();
    let status = 500;
    try {
      await next();
      status = ctx.status;
    } finally {
      const route = (ctx as { _matchedRoute?: unknown })._matchedRoute;
      const labels = {
        method: ctx.method,
        route: typeof route === 'string' ? route : UNMATCHED,
        status: String(status),
      };
      httpRequestDuration.observe(labels, (performance.now() - started) / 1000);
      // A 201 that is not a replay is the one moment an order comes into being.
      if (labels.route === '/orders' && ctx.method === 'POST' && status === 201) {
        if (!ctx.response.get('Idempotent-Replayed')) ordersCreated.inc();
      }
    }
  };
}

let subscribed = false;

/** Counts what the API process does besides answering requests: idempotency outcomes and relay publishes. */
function subscribeToProcessEvents(): void {
  if (subscribed) return;
  subscribed = true;
  idempotencyEvents.on('outcome', (outcome) => idempotencyOutcomes.inc({ outcome }));
  countRelayBatches();
}

/**
 * `GET /metrics`: the Prometheus text of this process; outbox backlog, queue depths, pending webhook deliveries and
 * the readiness checks sampled on the spot.
 */
export function metricsRouter(deps: ApiDeps): Router<ApiState> {
  subscribeToProcessEvents();
  watchOutbox(deps.db);
  watchQueues(deps.amqp, deps.topology);
  watchWebhookDeliveries(deps.db);
  watchReadiness(() => checkReadiness(deps));
  const router = new Router<ApiState>();
  router.get('/metrics', async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.type = METRICS_CONTENT_TYPE;
    ctx.body = await renderMetrics();
  });
  return router;
}
