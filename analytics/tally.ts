import type { OrderStatus } from '../orders/lifecycle.ts';
import { outcomeBin, type StoredMetric } from './model.ts';

/** One line of an order as analytics keeps it. */
export interface OrderLine {
  product_id: string;
  quantity: number;
  unit_price: number;
  sku?: string | undefined;
  name?: string | undefined;
}

/**
 * One change of an order, whether read from a message (the live consumer) or from the order history (the
 * rebuild): the same facts, so both count the same.
 */
export interface OrderFact {
  orderId: string;
  /** The order's version after the change. */
  version: number;
  /** The message type (OrderCreated, OrderConfirmed, OrderPaymentRefunded, …). */
  type: string;
  occurredAt: Date;
  currency: string;
  total: number;
  previousStatus: OrderStatus | null;
  status: OrderStatus;
  reason: string | null;
  /** OrderCreated only. */
  items?: OrderLine[] | undefined;
  /** OrderPaymentRefunded only. */
  refundAmount?: number | undefined;
}

/** What analytics remembers of one order between its messages. */
export interface OrderTally {
  currency: string | null;
  total: number | null;
  items: OrderLine[] | null;
  receivedAt: Date | null;
  confirmedAt: Date | null;
  outcomeAt: Date | null;
  status: OrderStatus | null;
  version: number;
  applied: string[];
  lastEventAt: Date | null;
}

/** One change to one rollup figure: `value` added to `metric`/`dim` in the buckets holding `at`. */
export interface Delta {
  at: Date;
  metric: StoredMetric;
  dim: string;
  value: number;
}

export const EMPTY_TALLY: OrderTally = {
  currency: null,
  total: null,
  items: null,
  receivedAt: null,
  confirmedAt: null,
  outcomeAt: null,
  status: null,
  version: 0,
  applied: [],
  lastEventAt: null,
};

/** A change from before confirmation: a cancel from here is the order's outcome, not a later loss. */
const BEFORE_CONFIRMATION: ReadonlySet<OrderStatus> = new Set([
  'RECEIVED',
  'INVENTORY_RESERVED',
  'AWAITING_PAYMENT',
]);

/**
 * Applies one fact to an order's tally and returns the figures it adds. Every effect has a key and is counted at
 * most once per order ('confirmed', 'refund:7', …), and each is bucketed by the time of the change it belongs
 * to, never by arrival. Effects that need two messages (units sold need the lines of OrderCreated and the time of
 * OrderConfirmed; RECEIVED → outcome needs both ends) are counted by whichever of the two arrives second. So
 * duplicates add nothing and any arrival order gives the same figures.
 */
export function tallyFact(before: OrderTally, fact: OrderFact): { tally: OrderTally; deltas: Delta[] } {
  const tally: OrderTally = { ...before, applied: [...before.applied] };
  const deltas: Delta[] = [];
  const at = fact.occurredAt;
  const once = (key: string, effect: () => void) => {
    if (tally.applied.includes(key)) return;
    tally.applied.push(key);
    effect();
  };
  const add = (metric: StoredMetric, value: number, when = at, dim = '') =>
    deltas.push({ at: when, metric, dim, value });

  tally.currency = fact.currency;
  tally.total = fact.total;
  if (fact.items)
    tally.items = fact.items.map(({ product_id, quantity, unit_price }) => ({
      product_id,
      quantity,
      unit_price,
    }));
  if (fact.version > tally.version) {
    tally.version = fact.version;
    tally.status = fact.status;
  }
  if (!tally.lastEventAt || at > tally.lastEventAt) tally.lastEventAt = at;

  switch (fact.type) {
    case 'OrderCreated':
      once('received', () => {
        tally.receivedAt = at;
        add('received', 1);
      });
      break;
    case 'OrderConfirmed':
      once('confirmed', () => {
        tally.confirmedAt = at;
        tally.outcomeAt = at;
        add('confirmed', 1);
        add('gross_revenue', fact.total);
      });
      break;
    case 'OrderRejected':
      once('rejected', () => {
        tally.outcomeAt = at;
        add('rejected', 1, at, fact.reason ?? 'UNKNOWN');
      });
      break;
    case 'OrderCancelled':
      once('cancelled', () => {
        if (fact.previousStatus && BEFORE_CONFIRMATION.has(fact.previousStatus)) tally.outcomeAt = at;
        add('cancelled', 1, at, fact.reason ?? 'UNKNOWN');
      });
      break;
    case 'OrderShipped':
      once('shipped', () => add('shipped', 1));
      break;
    case 'OrderDelivered':
      once('delivered', () => add('delivered', 1));
      break;
    case 'OrderPaymentRefunded':
      once(`refund:${fact.version}`, () => {
        add('refunds', fact.refundAmount ?? 0);
        add('refund_count', 1);
      });
      break;
    default:
      // Reservations, payment attempts, fulfilment steps without a figure: they only move the status.
      break;
  }

  const { items, confirmedAt, receivedAt, outcomeAt } = tally;
  if (items && confirmedAt) {
    once('products', () => {
      for (const line of items) {
        add('product_units', line.quantity, confirmedAt, line.product_id);
        add('product_revenue', line.quantity * line.unit_price, confirmedAt, line.product_id);
      }
    });
  }
  if (receivedAt && outcomeAt) {
    once('outcome_time', () =>
      add('outcome_time', 1, outcomeAt, outcomeBin(outcomeAt.getTime() - receivedAt.getTime())),
    );
  }
  return { tally, deltas };
}
