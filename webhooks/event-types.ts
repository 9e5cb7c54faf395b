import { CATALOG_EVENTS } from '../catalog/messages.ts';
import { ORDER_WEBHOOK_EVENTS } from '../orders/lifecycle.ts';

/**
 * The events a webhook endpoint can subscribe to: those the order lifecycle announces (its table says which move
 * or step announces which) and the catalogue's product and stock events, which only operations endpoints hear.
 * OPS_WEBHOOK_EVENT_TYPES in lib/config.ts accepts the same (a test keeps them equal).
 */
export const WEBHOOK_EVENT_TYPES = [...ORDER_WEBHOOK_EVENTS, ...CATALOG_EVENTS] as const;

export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** Events about the catalogue rather than one customer's order: for operations endpoints only. */
export const OPERATIONS_ONLY_EVENTS: ReadonlySet<string> = new Set(CATALOG_EVENTS);
