import type { ExchangeKey } from '../lib/amqp/topology.ts';
import { buildEnvelope } from '../lib/messages.ts';
import { outboxRow, type MessageContext } from '../lib/outbox.ts';

export const PRODUCT_AGGREGATE = 'product';

export const PRODUCT_EVENTS = ['product.created', 'product.updated'] as const;
export const INVENTORY_EVENTS = [
  'inventory.updated',
  'inventory.low_stock',
  'inventory.back_in_stock',
] as const;

export type ProductEventType = (typeof PRODUCT_EVENTS)[number];
export type InventoryEventType = (typeof INVENTORY_EVENTS)[number];
export type CatalogEventType = ProductEventType | InventoryEventType;

/**
 * Every event the catalogue publishes, which operations webhook endpoints may also subscribe to (the message type
 * is the webhook event type).
 */
export const CATALOG_EVENTS = [...PRODUCT_EVENTS, ...INVENTORY_EVENTS] as const;

export function catalogExchange(type: CatalogEventType): ExchangeKey {
  return (PRODUCT_EVENTS as readonly string[]).includes(type) ? 'productEvents' : 'inventoryEvents';
}

/** What product.created and product.updated carry: the product as it is after the change. */
export interface ProductEventData {
  product_id: string;
  sku: string;
  name: string;
  price: number;
  currency: string;
  active: boolean;
  low_stock_threshold: number;
  stock_available: number;
  /** product.updated: the fields that changed. */
  changed?: string[];
}

/** What inventory.updated carries; `stock` is the available stock (what can be ordered). */
export interface InventoryUpdatedData {
  product_id: string;
  sku: string;
  stock: number;
  previous_stock: number;
  reason: string;
}

/** The outbox row of a product event at `version` of the product. */
export function productOutboxRow(
  product: { id: string; version: number },
  type: ProductEventType,
  data: ProductEventData,
  context: MessageContext,
) {
  const envelope = buildEnvelope(
    { type: PRODUCT_AGGREGATE, id: product.id, version: product.version },
    type,
    data,
  );
  return outboxRow(catalogExchange(type), envelope, context);
}
