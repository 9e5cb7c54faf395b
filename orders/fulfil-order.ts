import { PreconditionFailedError } from '../lib/errors.ts';
import type { Actor, OrderStatus } from './lifecycle.ts';
import type { OrderRow } from './order-queries.ts';
import { lockOrder, type OrderDeps } from './order-steps.ts';
import { applyTransition, type ChangeContext } from './transition.ts';

export interface FulfilmentInput {
  orderId: string;
  actor: Actor;
  /** The version the caller last saw (`If-Match`): a later change makes this a 412. */
  expectedVersion?: number | undefined;
  to: OrderStatus;
  /** With SHIPPED. */
  tracking_number?: string | undefined;
  carrier?: string | undefined;
  /** With DELIVERED, optional. */
  delivery_location?: string | undefined;
}

/**
 * Moves an order along its fulfilment (PROCESSING, SHIPPED with its tracking, DELIVERED) — or anywhere else the
 * table lets `actor` take it. Asking for the status
 * the order already has changes nothing; a move the lifecycle does not allow is a 409 naming the allowed ones.
 */
export async function changeFulfilment(
  deps: Pick<OrderDeps, 'db' | 'hooks'>,
  input: FulfilmentInput,
  ctx: ChangeContext,
): Promise<{ order: OrderRow; changed: boolean }> {
  return deps.db.transaction(async (tx) => {
    const order = await lockOrder(tx, input.orderId, 'request');
    if (order.status === input.to) return { order, changed: false };
    if (input.expectedVersion !== undefined && input.expectedVersion !== order.version) {
      throw new PreconditionFailedError(
        `The order is at version ${order.version}, not ${input.expectedVersion}: read it again and decide anew`,
      );
    }
    // One clock for the column and what the message and webhooks say of it.
    const at = new Date().toISOString();
    const fields = {
      ...fulfilmentFields(input),
      ...(input.to === 'SHIPPED' ? { shipped_at: at } : {}),
      ...(input.to === 'DELIVERED' ? { delivered_at: at } : {}),
    };
    const moved = await applyTransition(
      tx,
      deps.hooks,
      order,
      {
        to: input.to,
        actor: input.actor,
        set: fields,
        trace: fields,
        details: fields,
      },
      ctx,
    );
    return { order: moved, changed: true };
  });
}

function fulfilmentFields(input: FulfilmentInput): Record<string, string | null> {
  if (input.to === 'SHIPPED') {
    return { tracking_number: input.tracking_number ?? null, carrier: input.carrier ?? null };
  }
  if (input.to === 'DELIVERED') return { delivery_location: input.delivery_location ?? null };
  return {};
}
