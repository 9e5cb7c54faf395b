import { lockStockOfOrders, ORDER_ITEMS_SQL, reserveStockOfOrdersCtes } from '../catalog/stock.ts';
import { PermanentMessageError } from '../lib/errors.ts';
import { commitWithNext, together, type Tx } from '../lib/db.ts';
import { insertInto } from '../lib/sql.ts';
import type { OrderRow } from './order-queries.ts';
import type { OrderStatus } from './lifecycle.ts';
import { lockOrder, lockOrdersWith, noteStep, type OrderDeps, type StepContext } from './order-steps.ts';
import { chargeOrders } from './take-payment.ts';
import { applyTransition, applyTransitions } from './transition.ts';

/** One new order to process, with the context of the message that announced it. */
export interface OrderJob {
  orderId: string;
  ctx: StepContext;
}

/**
 * Takes an order from RECEIVED to CONFIRMED or REJECTED (or, paying later, to AWAITING_PAYMENT). Each step is its
 * own transaction that re-reads the order under a row lock and acts only if the order is still where the step
 * expects it: a redelivered message resumes after the last committed step and never reserves or charges twice,
 * and an order cancelled meanwhile is left alone.
 */
export async function processOrder(deps: OrderDeps, orderId: string, ctx: StepContext): Promise<OrderStatus> {
  const [status] = await processOrders(deps, [{ orderId, ctx }]);
  return status;
}

/**
 * processOrder for a batch of orders (the deliveries a worker has in hand): each step is one transaction for the
 * whole batch, with one statement locking every order, one its stock rows and one per order's change, so a batch
 * of n orders costs 2n + 8 statements where n orders one by one cost 10n (ADR 0014). Every order still gets its
 * own trace steps and messages. If anything fails the whole step rolls back; the caller then processes the orders
 * one at a time, which resume after whatever step did commit.
 */
export async function processOrders(deps: OrderDeps, jobs: OrderJob[]): Promise<OrderStatus[]> {
  const orders = await deps.db.transaction((tx) => reserveInventory(deps, tx, jobs));
  const statuses: OrderStatus[] = orders.map((o) => o.status);
  const toCharge: number[] = [];
  for (const [i, order] of orders.entries()) {
    if (order.status !== 'INVENTORY_RESERVED') continue;
    if (order.payment_method === 'later') statuses[i] = await awaitPayment(deps, order.id, jobs[i].ctx);
    else toCharge.push(i);
  }
  if (toCharge.length) {
    const charged = await chargeOrders(
      deps,
      toCharge.map((i) => ({ order: orders[i], token: orders[i].payment_token, ctx: jobs[i].ctx })),
    );
    toCharge.forEach((i, k) => (statuses[i] = charged[k]));
  }
  return statuses;
}

function awaitPayment(deps: OrderDeps, orderId: string, ctx: StepContext): Promise<OrderStatus> {
  return deps.db.transaction(async (tx) => {
    const current = await lockOrder(tx, orderId, 'message');
    if (current.status !== 'INVENTORY_RESERVED') return current.status;
    const moved = await applyTransition(
      tx,
      deps.hooks,
      current,
      {
        to: 'AWAITING_PAYMENT',
        actor: 'worker',
        set: { payment_due_at: tx.raw('now() + make_interval(secs => ?)', [deps.paymentWindowS]) },
        details: {},
      },
      ctx,
    );
    noteStep(ctx, current.status, moved);
    return moved.status;
  });
}

interface OrderLine {
  product_id: string;
  quantity: number;
  sku: string;
}

interface ReservedLine extends OrderLine {
  stock_available: number;
}

/**
 * Reserves every item of each order or none; the orders are locked first, then every stock row the batch needs, in
 * id order (the two statements sent together). The catalogue's CTEs write the stock, the reservations, the ledger
 * and the stock messages in the move's statement. Orders of one batch that share a product see each other's
 * reservations: the stock read under the lock is counted down here, so the moves are decided before any is sent,
 * and then sent together, the last with the COMMIT.
 */
async function reserveInventory(deps: OrderDeps, tx: Tx, jobs: OrderJob[]): Promise<OrderRow[]> {
  const ids = jobs.map((j) => j.orderId);
  const [locked, stock] = await together(
    tx,
    () => lockOrdersWith<{ lines: OrderLine[] }>(tx, ids, { lines: ORDER_ITEMS_SQL }),
    () => lockStockOfOrders(tx, ids),
  );
  const taken = new Map<string, number>();
  // The same order twice in a batch (a redelivery beside its first delivery) gets the first one's outcome.
  const outcomes = new Map<string, () => Promise<OrderRow>>();
  const reservable: Reservation[] = [];
  let batch: Promise<Map<string, OrderRow>> | undefined;
  let moves = 0;
  for (const { orderId, ctx } of jobs) {
    const row = locked.get(orderId);
    if (!row) throw new PermanentMessageError(`Order ${orderId} does not exist`);
    if (outcomes.has(orderId)) continue;
    const { lines, ...order } = row;
    if (order.status !== 'RECEIVED') {
      outcomes.set(orderId, () => Promise.resolve(order));
      continue;
    }
    const items: ReservedLine[] = lines.map((l) => ({
      ...l,
      stock_available: (stock.get(l.product_id) ?? 0) - (taken.get(l.product_id) ?? 0),
    }));
    const short = items.filter((i) => i.stock_available < i.quantity);
    if (short.length) {
      moves++;
      outcomes.set(orderId, async () => {
        const moved = await rejectOutOfStock(deps, tx, order, short, ctx);
        noteStep(ctx, order.status, moved);
        return moved;
      });
      continue;
    }
    for (const i of items) taken.set(i.product_id, (taken.get(i.product_id) ?? 0) + i.quantity);
    reservable.push({ order, items, ctx });
    // Reserved together, in one statement (applyTransitions), which the first of them sends.
    outcomes.set(orderId, async () =>
      (await (batch ??= reserveTogether(deps, tx, reservable))).get(orderId)!,
    );
  }
  if (reservable.length) moves++;
  if (moves) await commitWithNext(tx, moves);
  const ran = await together(tx, ...[...outcomes.values()]);
  const done = new Map([...outcomes.keys()].map((id, i) => [id, ran[i]]));
  return jobs.map((j) => done.get(j.orderId)!);
}

interface Reservation {
  order: OrderRow;
  items: ReservedLine[];
  ctx: StepContext;
}

/**
 * Reserves the batch's orders that have their stock, in one statement: each order's INVENTORY_RESERVED step, message
 * and webhooks, the batch's stock changed once per product (reserveStockOfOrdersCtes), and its payments created.
 */
async function reserveTogether(
  deps: OrderDeps,
  tx: Tx,
  reservations: Reservation[],
): Promise<Map<string, OrderRow>> {
  const moved = await applyTransitions(
    tx,
    deps.hooks,
    reservations.map(({ order, items, ctx }) => ({
      order,
      spec: {
        to: 'INVENTORY_RESERVED',
        actor: 'worker',
        trace: { items: items.map((i) => ({ product_id: i.product_id, quantity: i.quantity })) },
      },
      ctx,
    })),
    [
      ...reserveStockOfOrdersCtes(
        reservations.map(({ order, items, ctx }) => ({ orderId: order.id, lines: items, context: ctx })),
        'worker',
      ),
      [
        'payment',
        insertInto(
          'payments',
          reservations.map(({ order }) => ({
            order_id: order.id,
            amount: order.total,
            currency: order.currency,
            status: 'pending',
          })),
        ),
      ],
    ],
  );
  moved.forEach((m, i) => noteStep(reservations[i].ctx, 'RECEIVED', m));
  return new Map(moved.map((m) => [m.id, m]));
}

function rejectOutOfStock(deps: OrderDeps, tx: Tx, order: OrderRow, short: ReservedLine[], ctx: StepContext) {
  return applyTransition(
    tx,
    deps.hooks,
    order,
    {
      to: 'REJECTED',
      actor: 'worker',
      reason: 'OUT_OF_STOCK',
      set: { reject_reason: 'OUT_OF_STOCK' },
      trace: {
        out_of_stock: short.map((i) => ({
          product_id: i.product_id,
          sku: i.sku,
          requested: i.quantity,
          available: i.stock_available,
        })),
      },
    },
    ctx,
  );
}
