import Router from '@koa/router';
import { z } from 'zod';
import {
  ForbiddenError,
  NotFoundError,
  PreconditionFailedError,
  UnsupportedMediaTypeError,
} from '../../lib/errors.ts';
import { UUID } from '../../lib/uuid.ts';
import { cancelOrder } from '../../orders/cancel-order.ts';
import { changeFulfilment } from '../../orders/fulfil-order.ts';
import { ORDER_STATUSES } from '../../orders/lifecycle.ts';
import { findOrderForViewer } from '../../orders/order-queries.ts';
import { requestPayment } from '../../orders/request-payment.ts';
import {
  lifecycleActor,
  requireAuth,
  requireRole,
  type ApiContext,
  type ApiDeps,
  type ApiState,
} from '../context.ts';
import { parseInput } from '../validation.ts';
import { orderETag } from './orders.ts';

const text = (max: number) => z.string().trim().min(1, { message: 'must not be empty' }).max(max);

export const cancelBodySchema = z.strictObject({ reason: text(500).optional() });

export const paymentBodySchema = z.strictObject({ token: text(200) });

export const statusBodySchema = z
  .strictObject({
    status: z.enum(ORDER_STATUSES, { message: `must be one of ${ORDER_STATUSES.join(', ')}` }),
    tracking_number: text(100).optional(),
    carrier: text(100).optional(),
    delivery_location: text(500).optional(),
    reason: text(500).optional(),
  })
  .superRefine((b, ctx) => {
    if (b.status === 'SHIPPED') {
      for (const field of ['tracking_number', 'carrier'] as const) {
        if (b[field] === undefined)
          ctx.addIssue({ code: 'custom', path: [field], message: 'required to ship' });
      }
    } else {
      for (const field of ['tracking_number', 'carrier'] as const) {
        if (b[field] !== undefined)
          ctx.addIssue({ code: 'custom', path: [field], message: 'only with SHIPPED' });
      }
    }
    if (b.delivery_location !== undefined && b.status !== 'DELIVERED') {
      ctx.addIssue({ code: 'custom', path: ['delivery_location'], message: 'only with DELIVERED' });
    }
    if (b.reason !== undefined && b.status !== 'CANCELLED') {
      ctx.addIssue({ code: 'custom', path: ['reason'], message: 'only with CANCELLED' });
    }
  });

/**
 * `If-Match` as a version: undefined when absent or `*`; a value that names no version can match nothing, so it
 * is a 412 like a stale one.
 */
function expectedVersion(ctx: ApiContext): number | undefined {
  const header = ctx.get('If-Match').trim();
  if (!header || header === '*') return undefined;
  const match = /^(?:W\/)?"(\d{1,9})"$/.exec(header);
  if (!match) throw new PreconditionFailedError(`If-Match must be an ETag of this order, such as "3"`);
  return Number(match[1]);
}

function orderId(ctx: ApiContext): string {
  const id = (ctx.params as { id?: string }).id ?? '';
  if (!UUID.test(id)) throw new NotFoundError(`Order ${id} not found`);
  return id;
}

function jsonBody(ctx: ApiContext, optional: boolean): unknown {
  const raw = (ctx.request as { body?: unknown }).body;
  if (optional && (raw === undefined || (typeof raw === 'object' && raw && !Object.keys(raw).length))) {
    if (!ctx.request.length || !ctx.is('application/json')) return {};
  }
  if (!ctx.is('application/json')) throw new UnsupportedMediaTypeError('Send the body as application/json');
  return raw;
}

/** The order's later life: cancel (customer or admin), pay a waiting order, and fulfilment (admin, operations). */
export function orderActionsRouter(deps: ApiDeps): Router<ApiState> {
  const router = new Router<ApiState>();
  const authed = requireAuth(deps.auth);

  const answer = async (ctx: ApiContext, id: string, status = 200) => {
    const order = await findOrderForViewer(deps.db, id, { sub: ctx.state.principal.sub, admin: true });
    ctx.status = status;
    ctx.set('ETag', orderETag(order!.version));
    ctx.body = order;
  };

  router.post('/orders/:id/cancel', authed, requireRole('customer', 'admin'), async (ctx: ApiContext) => {
    const id = orderId(ctx);
    const body = parseInput(cancelBodySchema, jsonBody(ctx, true));
    const actor = lifecycleActor(ctx.state.principal);
    if (actor === 'operations') throw new ForbiddenError('Operations users cannot cancel orders');
    const { changed } = await cancelOrder(
      deps,
      {
        orderId: id,
        viewer: ctx.state.principal,
        actor,
        note: body.reason,
        expectedVersion: expectedVersion(ctx),
      },
      context(ctx),
    );
    if (changed) deps.onOutboxWritten();
    await answer(ctx, id);
  });

  router.post('/orders/:id/payment', authed, requireRole('customer'), async (ctx: ApiContext) => {
    const id = orderId(ctx);
    const body = parseInput(paymentBodySchema, jsonBody(ctx, false));
    await requestPayment(deps, { orderId: id, viewer: ctx.state.principal, token: body.token }, context(ctx));
    deps.onOutboxWritten();
    await answer(ctx, id, 202);
  });

  router.patch('/orders/:id/status', authed, requireRole('admin', 'operations'), async (ctx: ApiContext) => {
    const id = orderId(ctx);
    const actor = lifecycleActor(ctx.state.principal);
    if (actor === 'customer')
      throw new ForbiddenError('Changing an order’s status needs an admin or operations token');
    const body = parseInput(statusBodySchema, jsonBody(ctx, false));
    const version = expectedVersion(ctx);
    const { changed } =
      body.status === 'CANCELLED'
        ? actor === 'admin'
          ? await cancelOrder(
              deps,
              {
                orderId: id,
                viewer: ctx.state.principal,
                actor,
                note: body.reason,
                expectedVersion: version,
              },
              context(ctx),
            )
          : forbidCancel()
        : await changeFulfilment(
            deps,
            {
              orderId: id,
              actor,
              expectedVersion: version,
              to: body.status,
              tracking_number: body.tracking_number,
              carrier: body.carrier,
              delivery_location: body.delivery_location,
            },
            context(ctx),
          );
    if (changed) deps.onOutboxWritten();
    await answer(ctx, id);
  });

  return router;
}

function forbidCancel(): never {
  throw new ForbiddenError('Operations users cannot cancel orders');
}

function context(ctx: ApiContext) {
  return { correlationId: ctx.state.requestId, traceparent: ctx.get('traceparent') || undefined };
}
