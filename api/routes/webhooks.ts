import Router from '@koa/router';
import { z } from 'zod';
import { NotFoundError, UnsupportedMediaTypeError, ValidationError } from '../../lib/errors.ts';
import { findOrderForViewer } from '../../orders/order-queries.ts';
import { listEndpointDeliveries, listOrderDeliveries, retryDelivery } from '../../webhooks/deliveries.ts';
import {
  createEndpoint,
  deleteEndpoint,
  findEndpoint,
  listEndpoints,
  rotateSecret,
  toEndpointView,
  updateEndpoint,
} from '../../webhooks/endpoints.ts';
import { UUID } from '../../lib/uuid.ts';
import { OPERATIONS_ONLY_EVENTS, WEBHOOK_EVENT_TYPES } from '../../webhooks/event-types.ts';
import { requireAuth, requireRole, type ApiContext, type ApiDeps, type ApiState } from '../context.ts';
import { parseInput } from '../validation.ts';

const eventTypes = z
  .array(z.enum(WEBHOOK_EVENT_TYPES, { message: `must be one of ${WEBHOOK_EVENT_TYPES.join(', ')}` }), {
    message: 'must be a list of event types',
  })
  .min(1, { message: 'subscribe to at least one event type' });
const url = z.string({ message: 'must be a URL' }).min(1).max(2000);
const description = z.string().max(500);

export const createEndpointBody = z.strictObject({
  url,
  event_types: eventTypes,
  description: description.optional(),
});
const patchBody = z
  .strictObject({
    url: url.optional(),
    event_types: eventTypes.optional(),
    enabled: z.boolean({ message: 'must be true or false' }).optional(),
    description: description.optional(),
  })
  .refine((p) => Object.keys(p).length > 0, {
    message: 'change at least one of url, event_types, enabled, description',
  });
const deliveriesQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().regex(UUID, 'must be a next_cursor value from a previous page').optional(),
  status: z.enum(['pending', 'delivered', 'failed']).optional(),
});

function jsonBody(ctx: ApiContext): unknown {
  if (!ctx.is('application/json')) throw new UnsupportedMediaTypeError('Send the body as application/json');
  return (ctx.request as { body?: unknown }).body;
}

const idOf = (ctx: ApiContext) => (ctx.params as { id: string }).id;

/** A customer's endpoint hears of that customer's orders only: the catalogue's events are for operations. */
function refuseOperationsEvents(ctx: ApiContext, types: readonly string[] | undefined): void {
  if (ctx.state.principal.admin) return;
  const refused = (types ?? []).filter((t) => OPERATIONS_ONLY_EVENTS.has(t));
  if (refused.length) {
    throw new ValidationError('Only operations endpoints (admins) hear the catalogue', [
      { field: 'event_types', message: `not for a customer's endpoint: ${refused.join(', ')}` },
    ]);
  }
}

/**
 * Webhook endpoints and their delivery log. An admin manages operations endpoints (and sees every endpoint); a
 * customer manages endpoints that hear only about their own orders, and never sees another customer's (404).
 */
export function webhooksRouter(deps: ApiDeps): Router<ApiState> {
  const router = new Router<ApiState>();
  // Customers manage their own endpoints, admins the operations ones (and see all); operations have none here.
  const authed = [requireAuth(deps.auth), requireRole('customer', 'admin')] as const;
  const options = { allowPrivateUrls: deps.config.WEBHOOK_ALLOW_PRIVATE_URLS, box: deps.box };

  router.post('/webhook-endpoints', ...authed, async (ctx: ApiContext) => {
    const input = parseInput(createEndpointBody, jsonBody(ctx));
    refuseOperationsEvents(ctx, input.event_types);
    const endpoint = await createEndpoint(deps.db, ctx.state.principal, input, options);
    ctx.status = 201;
    ctx.set('Location', `/webhook-endpoints/${endpoint.id}`);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = endpoint;
  });

  router.get('/webhook-endpoints', ...authed, async (ctx: ApiContext) => {
    ctx.body = { data: await listEndpoints(deps.db, ctx.state.principal) };
  });

  router.get('/webhook-endpoints/:id', ...authed, async (ctx: ApiContext) => {
    ctx.body = toEndpointView(await findEndpoint(deps.db, ctx.state.principal, idOf(ctx)));
  });

  router.patch('/webhook-endpoints/:id', ...authed, async (ctx: ApiContext) => {
    const patch = parseInput(patchBody, jsonBody(ctx));
    refuseOperationsEvents(ctx, patch.event_types);
    ctx.body = await updateEndpoint(deps.db, ctx.state.principal, idOf(ctx), patch, options);
  });

  router.delete('/webhook-endpoints/:id', ...authed, async (ctx: ApiContext) => {
    await deleteEndpoint(deps.db, ctx.state.principal, idOf(ctx));
    ctx.status = 204;
  });

  router.post('/webhook-endpoints/:id/rotate-secret', ...authed, async (ctx: ApiContext) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await rotateSecret(
      deps.db,
      ctx.state.principal,
      idOf(ctx),
      deps.config.WEBHOOK_SECRET_OVERLAP_HOURS,
      deps.box,
    );
  });

  router.get('/webhook-endpoints/:id/deliveries', ...authed, async (ctx: ApiContext) => {
    const query = parseInput(deliveriesQuery, ctx.query, 'query string');
    const endpoint = await findEndpoint(deps.db, ctx.state.principal, idOf(ctx));
    ctx.body = await listEndpointDeliveries(deps.db, endpoint.id, query);
  });

  router.post('/webhook-deliveries/:id/retry', ...authed, async (ctx: ApiContext) => {
    ctx.status = 202;
    ctx.body = await retryDelivery(deps.db, ctx.state.principal, idOf(ctx));
  });

  router.get('/orders/:id/deliveries', ...authed, async (ctx: ApiContext) => {
    const id = idOf(ctx);
    const order = UUID.test(id) ? await findOrderForViewer(deps.db, id, ctx.state.principal) : undefined;
    if (!order) throw new NotFoundError(`Order ${id} not found`);
    ctx.body = { data: await listOrderDeliveries(deps.db, order.id, ctx.state.principal) };
  });

  return router;
}
