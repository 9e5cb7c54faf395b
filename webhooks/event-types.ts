import type { OrderStatus } from '../orders/order-status.ts';

/** The events a webhook endpoint can subscribe to (OPS_WEBHOOK_EVENT_TYPES in lib/config.ts lists the same). */
export const WEBHOOK_EVENT_TYPES = ['order.created', 'order.confirmed', 'order.rejected'] as const;

export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** The event an order's new status announces, if any. Later states add their line here. */
export const EVENT_FOR_STATUS: Partial<Record<OrderStatus, WebhookEventType>> = {
  RECEIVED: 'order.created',
  CONFIRMED: 'order.confirmed',
  REJECTED: 'order.rejected',
};
