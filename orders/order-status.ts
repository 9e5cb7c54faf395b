export const ORDER_STATUSES = [
  'RECEIVED',
  'INVENTORY_RESERVED',
  'CONFIRMED',
  'REJECTED',
  'CANCELLED',
  'SHIPPED',
  'DELIVERED',
] as const;

export type OrderStatus = (typeof ORDER_STATUSES)[number];

export const FINAL_STATUSES: ReadonlySet<OrderStatus> = new Set([
  'CONFIRMED',
  'REJECTED',
  'CANCELLED',
  'DELIVERED',
]);

export type RejectReason = 'OUT_OF_STOCK' | 'PAYMENT_DECLINED';
