/**
 * The order lifecycle as data: every status, every allowed move between them, who may make it, the trace step it
 * writes, the message it publishes and the webhook event it announces. Guards, message types, webhook event types,
 * the API's enums and the portal's labels are derived from this table (or checked against it by a test); nothing
 * else in comanda decides which status may follow which.
 */

export const ORDER_STATUSES = [
  'RECEIVED',
  'INVENTORY_RESERVED',
  'AWAITING_PAYMENT',
  'CONFIRMED',
  'PROCESSING',
  'SHIPPED',
  'DELIVERED',
  'REJECTED',
  'CANCELLED',
] as const;

export type OrderStatus = (typeof ORDER_STATUSES)[number];

/**
 * Who makes a move: the worker (reservation and payment), the order's customer, an admin, an operations user
 * (fulfilment only), or the system itself (timers such as the payment window).
 */
export const ACTORS = ['worker', 'customer', 'admin', 'operations', 'system'] as const;
export type Actor = (typeof ACTORS)[number];

export const REJECT_REASONS = ['OUT_OF_STOCK', 'PAYMENT_DECLINED'] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];
export const CANCEL_REASONS = ['CUSTOMER_REQUEST', 'ADMIN', 'PAYMENT_TIMEOUT'] as const;
export type CancelReason = (typeof CANCEL_REASONS)[number];

export interface Transition {
  /** null: the order does not exist yet (its creation). */
  from: OrderStatus | null;
  to: OrderStatus;
  actors: readonly Actor[];
  /** The `order_events.type` of the step. */
  step: string;
  /** The message the move publishes (through the outbox). */
  message: string;
  /** The webhook event it announces, if any. */
  webhook: string | null;
}

const CANCELLERS = ['customer', 'admin'] as const;
const FULFILLERS = ['admin', 'operations'] as const;

function cancellation(from: OrderStatus, actors: readonly Actor[] = CANCELLERS) {
  return {
    from,
    to: 'CANCELLED',
    actors,
    step: 'OrderCancelled',
    message: 'OrderCancelled',
    webhook: 'order.cancelled',
  } as const;
}

// The table reads best as a table: one move per line.
// prettier-ignore
export const TRANSITIONS = [
  { from: null, to: 'RECEIVED', actors: ['customer', 'admin'], step: 'OrderReceived', message: 'OrderCreated', webhook: 'order.created' },
  { from: 'RECEIVED', to: 'INVENTORY_RESERVED', actors: ['worker'], step: 'InventoryReserved', message: 'OrderInventoryReserved', webhook: null },
  { from: 'RECEIVED', to: 'REJECTED', actors: ['worker'], step: 'OrderRejected', message: 'OrderRejected', webhook: 'order.rejected' },
  { from: 'INVENTORY_RESERVED', to: 'CONFIRMED', actors: ['worker'], step: 'OrderConfirmed', message: 'OrderConfirmed', webhook: 'order.confirmed' },
  { from: 'INVENTORY_RESERVED', to: 'REJECTED', actors: ['worker'], step: 'OrderRejected', message: 'OrderRejected', webhook: 'order.rejected' },
  { from: 'INVENTORY_RESERVED', to: 'AWAITING_PAYMENT', actors: ['worker'], step: 'PaymentAwaited', message: 'OrderAwaitingPayment', webhook: 'order.awaiting_payment' },
  { from: 'AWAITING_PAYMENT', to: 'CONFIRMED', actors: ['worker'], step: 'OrderConfirmed', message: 'OrderConfirmed', webhook: 'order.confirmed' },
  { from: 'CONFIRMED', to: 'PROCESSING', actors: FULFILLERS, step: 'OrderProcessing', message: 'OrderProcessing', webhook: 'order.processing' },
  { from: 'PROCESSING', to: 'SHIPPED', actors: FULFILLERS, step: 'OrderShipped', message: 'OrderShipped', webhook: 'order.shipped' },
  { from: 'SHIPPED', to: 'DELIVERED', actors: FULFILLERS, step: 'OrderDelivered', message: 'OrderDelivered', webhook: 'order.delivered' },
  cancellation('RECEIVED'),
  cancellation('INVENTORY_RESERVED'),
  cancellation('AWAITING_PAYMENT', [...CANCELLERS, 'system']),
  cancellation('CONFIRMED'),
  cancellation('PROCESSING'),
] as const satisfies readonly Transition[];

/**
 * Steps of an order's trace that change no status but that others must hear of: each has its own trace step,
 * message and webhook event, and, like a transition, adds one to the order's version.
 */
export const ORDER_STEPS = {
  PaymentDeclined: { step: 'PaymentDeclined', message: 'OrderPaymentDeclined', webhook: null },
  PaymentRefunded: { step: 'PaymentRefunded', message: 'OrderPaymentRefunded', webhook: 'order.refunded' },
} as const;

export type OrderStepKind = keyof typeof ORDER_STEPS;

type TableRow = (typeof TRANSITIONS)[number];
/** Every message a move or a step publishes. */
export type OrderMessageType = TableRow['message'] | (typeof ORDER_STEPS)[OrderStepKind]['message'];
/** Every webhook event the lifecycle announces. */
export type OrderWebhookEvent =
  Exclude<TableRow['webhook'], null> | Exclude<(typeof ORDER_STEPS)[OrderStepKind]['webhook'], null>;

function unique<T>(values: T[]): T[] {
  return [...new Set(values)];
}

export const ORDER_MESSAGE_TYPES = unique<OrderMessageType>([
  ...TRANSITIONS.map((t) => t.message),
  ...Object.values(ORDER_STEPS).map((s) => s.message),
]);

export const ORDER_WEBHOOK_EVENTS = unique<OrderWebhookEvent>([
  ...TRANSITIONS.flatMap((t) => (t.webhook ? [t.webhook] : [])),
  ...Object.values(ORDER_STEPS).flatMap((s) => (s.webhook ? [s.webhook] : [])),
]) as [OrderWebhookEvent, ...OrderWebhookEvent[]];

/** The move from `from` to `to`, or undefined when the table has none. */
export function findTransition(from: OrderStatus | null, to: OrderStatus): Transition | undefined {
  return (TRANSITIONS as readonly Transition[]).find((t) => t.from === from && t.to === to);
}

/** The statuses `actor` may move an order in `from` to. */
export function nextStatuses(from: OrderStatus, actor?: Actor): OrderStatus[] {
  return (TRANSITIONS as readonly Transition[])
    .filter((t) => t.from === from && (actor === undefined || t.actors.includes(actor)))
    .map((t) => t.to);
}

/** Statuses with no way out: the order can no longer change. */
export const TERMINAL_STATUSES: ReadonlySet<OrderStatus> = new Set(
  ORDER_STATUSES.filter((s) => nextStatuses(s).length === 0),
);

/**
 * Statuses in which the worker is done with an order's OrderCreated message: the order's first outcome. Not the
 * same as terminal — a CONFIRMED order still moves on to PROCESSING, an AWAITING_PAYMENT one waits for its customer.
 * These are the statuses no worker move started from RECEIVED leads beyond on its own.
 */
export const PROCESSED_STATUSES: ReadonlySet<OrderStatus> = new Set(
  ORDER_STATUSES.filter((s) => s !== 'RECEIVED' && s !== 'INVENTORY_RESERVED'),
);

/** Statuses an order may be cancelled from (by its customer or an admin). */
export const CANCELLABLE_STATUSES: ReadonlySet<OrderStatus> = new Set(
  ORDER_STATUSES.filter((s) => findTransition(s, 'CANCELLED')?.actors.includes('customer')),
);

/** The lifecycle as plain data for clients (the portal reads it from `GET /lifecycle` instead of copying rules). */
export interface LifecycleDocument {
  statuses: readonly OrderStatus[];
  terminal: OrderStatus[];
  cancellable: OrderStatus[];
  processed: OrderStatus[];
  transitions: { from: OrderStatus | null; to: OrderStatus; actors: readonly Actor[]; step: string }[];
  /** Trace steps that change no status. */
  steps: string[];
  reasons: { rejected: readonly RejectReason[]; cancelled: readonly CancelReason[] };
}

export function describeLifecycle(): LifecycleDocument {
  return {
    statuses: ORDER_STATUSES,
    terminal: [...TERMINAL_STATUSES],
    cancellable: [...CANCELLABLE_STATUSES],
    processed: [...PROCESSED_STATUSES],
    transitions: TRANSITIONS.map(({ from, to, actors, step }) => ({ from, to, actors, step })),
    steps: Object.values(ORDER_STEPS).map((s) => s.step),
    reasons: { rejected: REJECT_REASONS, cancelled: CANCEL_REASONS },
  };
}
