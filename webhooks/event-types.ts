import { ORDER_WEBHOOK_EVENTS } from '../orders/lifecycle.ts';

/**
 * The events a webhook endpoint can subscribe to: those the order lifecycle announces (its table says which move
 * or step announces which). OPS_WEBHOOK_EVENT_TYPES in lib/config.ts accepts the same (a test keeps them equal).
 */
export const WEBHOOK_EVENT_TYPES = ORDER_WEBHOOK_EVENTS;

export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];
