import Router from '@koa/router';
import { z } from 'zod';
import {
  AppError,
  IdempotencyKeyMissingError,
  NotFoundError,
  UnsupportedMediaTypeError,
} from '../../lib/errors.ts';
import { GroupCommit } from '../../lib/group-commit.ts';
import { orderAcceptPhaseDuration, orderCommitGroupSize } from '../../lib/metrics.ts';
import { lineProductsOf, productsForLinesSql } from '../../catalog/products.ts';
import { createOrder, productKeysOf } from '../../orders/create-order.ts';
import { fingerprintRequest, parseIdempotencyKey, runIdempotent } from '../idempotency.ts';
import { ORDER_STATUSES } from '../../orders/lifecycle.ts';
import { listOrderEvents } from '../../orders/order-events.ts';
import { findOrderForViewer, listOrders, type OrderView } from '../../orders/order-queries.ts';
import {
  ANY_ROLE,
  requireAuth,
  requireRole,
  type ApiContext,
  type ApiDeps,
  type ApiState,
} from '../context.ts';
import { parseInput } from '../validation.ts';
import { UUID } from '../../lib/uuid.ts';
import { currentTraceparent, inSpan } from '../../lib/telemetry.ts';
import { commitWithNext } from '../../lib/db.ts';

export function orderBodySchema(maxItems: number, maxQuantity: number) {
  const line = z
    .strictObject({
      product_id: z.uuid({ message: 'must be a product id (uuid)' }).optional(),
      sku: z.string().min(1).max(64).optional(),
      quantity: z
        .number({ message: 'must be a whole number' })
        .int({ message: 'must be a whole number' })
        .min(1, { message: 'must be at least 1' })
        .max(maxQuantity, { message: `must be at most ${maxQuantity}` }),
    })
    .refine((l) => (l.product_id === undefined) !== (l.sku === undefined), {
      message: 'give either product_id or sku',
    });
  return z.strictObject({
    id: z.uuid({ message: 'must be a uuid' }).optional(),
    items: z
      .array(line, { message: 'must be a list of order lines' })
      .min(1, { message: 'an order needs at least one item' })
      .max(maxItems, { message: `at most ${maxItems} lines per order` }),
    payment: z
      .strictObject({
        method: z.enum(['card', 'later'], { message: 'must be "card" or "later"' }).optional(),
        token: z.string().min(1).max(200).optional(),
      })
      .refine((p) => !(p.method === 'later' && p.token !== undefined), {
        message: 'a pay-later order takes its card later, with POST /orders/{id}/payment',
        path: ['token'],
      })
      .refine((p) => p.method === 'later' || p.token !== undefined, {
        message: 'give the card token, or "method": "later" to pay after ordering',
        path: ['token'],
      })
      .optional(),
  });
}

const listQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().regex(UUID, 'must be a next_cursor value from a previous page').optional(),
  status: z.enum(ORDER_STATUSES).optional(),
  /** Admins only: one customer's orders (a customer always sees only their own). */
  customer: z.string().min(1).max(200).optional(),
});

export function ordersRouter(deps: ApiDeps): Router<ApiState> {
  const router = new Router<ApiState>();
  const bodySchema = orderBodySchema(deps.config.ORDER_MAX_ITEMS, deps.config.ORDER_MAX_QUANTITY);
  const authed = requireAuth(deps.auth);
  // Operations read every order but place none; a customer (or a service client acting as one) and admins do.
  const placers = requireRole('customer', 'admin');
  const readers = requireRole(...ANY_ROLE);
  // Orders placed at the same time share a transaction; a refused one (a 4xx decided before it writes) fails alone.
  // Their statements share the connection at once, which takes pipelining (without it, each has its transaction).
  const group = new GroupCommit(deps.db, {
    maxBatch: deps.config.DATABASE_PIPELINE ? deps.config.ORDERS_GROUP_COMMIT_MAX : 1,
    isRefusal: (err) => err instanceof AppError && err.status < 500,
    observe: (size) => orderCommitGroupSize.observe(size),
  });

  router.post('/orders', authed, placers, async (ctx: ApiContext) => {
    if (!ctx.is('application/json'))
      throw new UnsupportedMediaTypeError('Send the order as application/json');
    const raw = (ctx.request as { body?: unknown }).body;
    const input = parseInput(bodySchema, raw);
    const header = ctx.get('Idempotency-Key');
    const key = header ? parseIdempotencyKey(header) : input.id;
    if (!key) {
      throw new IdempotencyKeyMissingError(
        'Send an Idempotency-Key header (or an order "id" chosen by you) so that a retry cannot create a second order',
      );
    }
    const principal = ctx.state.principal;
    const result = await runIdempotent(
      {
        db: deps.db,
        redis: deps.redis,
        logger: ctx.state.log,
        ttlHours: deps.config.IDEMPOTENCY_TTL_HOURS,
        group,
        observePhase: (phase, seconds) => orderAcceptPhaseDuration.observe({ phase }, seconds),
      },
      { principal: principal.sub, key, fingerprint: fingerprintRequest('POST', '/orders', raw) },
      async (tx, store, prefetched) => {
        const created = (order: OrderView) => ({
          status: 201,
          body: order,
          headers: { Location: `/orders/${order.id}` },
        });
        // The order's statement is the transaction's last: it goes out with the COMMIT, in one round trip.
        await commitWithNext(tx);
        // With tracing on, the outbox row carries this span's context: the relay's publish continues from it.
        const order = await inSpan('order create', async (span) => {
          const view = await createOrder(
            tx,
            deps.hooks,
            {
              id: input.id,
              customerId: principal.sub,
              items: input.items,
              paymentToken: input.payment?.token,
              paymentMethod: input.payment?.method,
            },
            {
              correlationId: ctx.state.requestId,
              traceparent: currentTraceparent() ?? (ctx.get('traceparent') || undefined),
            },
            lineProductsOf(prefetched),
            // The response is stored with the key in the order's own statement.
            (view) => store(created(view)),
          );
          span?.setAttribute('comanda.order.id', view.id);
          return view;
        });
        return created(order);
      },
      // The lines' products are read in the statement that takes the key.
      productsForLinesSql(...productKeysOf(input.items)),
    );
    if (!result.replayed) deps.onOutboxWritten();
    ctx.status = result.status;
    ctx.set(result.headers);
    if (result.replayed) ctx.set('Idempotent-Replayed', 'true');
    ctx.body = result.body;
  });

  router.get('/orders', authed, readers, async (ctx: ApiContext) => {
    const query = parseInput(listQuery, ctx.query, 'query string');
    ctx.body = await listOrders(deps.db, ctx.state.principal, query);
  });

  router.get('/orders/:id', authed, readers, async (ctx: ApiContext) => {
    const order = await visibleOrder(deps, ctx, (ctx.params as { id?: string }).id);
    ctx.set('ETag', orderETag(order.version));
    ctx.body = order;
  });

  router.get('/orders/:id/events', authed, readers, async (ctx: ApiContext) => {
    const order = await visibleOrder(deps, ctx, (ctx.params as { id?: string }).id);
    ctx.body = { data: await listOrderEvents(deps.db, order.id) };
  });

  return router;
}

export async function visibleOrder(deps: ApiDeps, ctx: ApiContext, id: string | undefined) {
  const order = id && UUID.test(id) ? await findOrderForViewer(deps.db, id, ctx.state.principal) : undefined;
  if (!order) throw new NotFoundError(`Order ${id} not found`);
  return order;
}

/** The `ETag` of an order: its version, which grows with every change. */
export function orderETag(version: number): string {
  return `"${version}"`;
}
