import { startAnalytics, type RunningAnalytics } from '../../analytics/reader.ts';
import { OUTCOME_BINS_MS } from '../../analytics/model.ts';
import { TALLY_COLUMNS } from '../../analytics/store.ts';
import type { Db } from '../../lib/db.ts';
import { buildProduct, waitForProcessed, whileStockIsHeld, type TestProduct } from '../helpers/factories.ts';
import { getJson, postOrder, sendJson } from '../helpers/http.ts';
import { until, type TestPipeline } from '../helpers/pipeline.ts';

export const ORDER_EXCHANGES = ['orderCreated', 'orderStatusChanged', 'orderPaymentEvents'];

/** Starts the analytics reader inside the test process, on the pipeline's services. */
export function startTestAnalytics(p: TestPipeline): RunningAnalytics {
  return startAnalytics(p.services);
}

/** How many rows of the feed are at or before analytics' position (counted, or passed over). */
export async function feedRowsPassed(db: Db): Promise<number> {
  const { rows } = await db.raw<{ rows: { n: number }[] }>(
    `select count(*)::int as n from admin_events e, analytics_progress p where (e.tx, e.id) <= (p.feed_tx, p.feed_id)`,
  );
  return rows[0].n;
}

/** Whether every row of the feed committed so far is at or before analytics' position. */
export async function feedCounted(db: Db): Promise<boolean> {
  const { rows } = await db.raw<{ rows: { done: boolean }[] }>(
    `select not exists (select 1 from admin_events e, analytics_progress p
                         where (e.tx, e.id) > (p.feed_tx, p.feed_id)) as done`,
  );
  return rows[0].done;
}

/** Waits until analytics has counted every order event committed so far. */
export async function waitForAnalytics(db: Db, timeoutMs = 30_000): Promise<void> {
  await until(() => feedCounted(db), 'analytics to count every order event', timeoutMs);
}

/** A day of orders whose outcomes the script decides; returns the ids of what it made. */
export async function scriptDay(p: TestPipeline): Promise<{ products: TestProduct[]; orders: string[] }> {
  const coffee = await buildProduct(p.db, { name: 'Café', price: 1250, stock_available: 1000 });
  const tea = await buildProduct(p.db, { name: 'Té', price: 800, stock_available: 1000 });
  const rare = await buildProduct(p.db, { name: 'Raro', price: 9900, stock_available: 1 });
  const scarce = await buildProduct(p.db, { name: 'Escaso', price: 5000, stock_available: 3 });
  const customer = await p.token();
  const admin = await p.token('boss', 'admin');
  const place = async (body: unknown) => {
    const res = await postOrder(p.url, customer, body);
    if (res.status !== 201) throw new Error(`order refused: ${JSON.stringify(res.body)}`);
    return res.body.id as string;
  };
  const fulfil = async (id: string, steps: Record<string, string>[]) => {
    for (const step of steps) {
      const res = await sendJson('PATCH', p.url, `/orders/${id}/status`, admin, step);
      if (res.status !== 200) throw new Error(`fulfilment refused: ${JSON.stringify(res.body)}`);
    }
  };
  const ship: Record<string, string>[] = [
    { status: 'PROCESSING' },
    { status: 'SHIPPED', tracking_number: 'TRK-1', carrier: 'Correos' },
  ];
  const orders: string[] = [];
  const confirmedOnly = [
    await place({ items: [{ product_id: coffee.id, quantity: 1 }] }),
    await place({
      items: [
        { product_id: coffee.id, quantity: 2 },
        { product_id: tea.id, quantity: 3 },
      ],
    }),
    await place({ items: [{ product_id: tea.id, quantity: 5 }] }),
  ];
  // Accepted while there is stock, rejected by the worker because it ran out before the reservation.
  const outOfStock = await whileStockIsHeld(
    p.db,
    scarce.id,
    () => place({ items: [{ product_id: scarce.id, quantity: 3 }] }),
    { takeAll: true },
  );
  const declined = await place({
    items: [{ product_id: coffee.id, quantity: 1 }],
    payment: { token: 'tok_decline' },
  });
  const cancelledByAdmin = await place({ items: [{ product_id: tea.id, quantity: 2 }] });
  const cancelledByCustomer = await place({ items: [{ product_id: coffee.id, quantity: 4 }] });
  const shipped = await place({
    items: [
      { product_id: coffee.id, quantity: 1 },
      { product_id: tea.id, quantity: 1 },
    ],
  });
  const delivered = await place({ items: [{ product_id: rare.id, quantity: 1 }] });
  const waiting = await place({ items: [{ product_id: tea.id, quantity: 1 }], payment: { method: 'later' } });
  orders.push(
    ...confirmedOnly,
    outOfStock,
    declined,
    cancelledByAdmin,
    cancelledByCustomer,
    shipped,
    delivered,
    waiting,
  );
  for (const id of orders) await waitForProcessed(p.db, id);

  const cancel = async (id: string, token: string) => {
    const res = await sendJson('POST', p.url, `/orders/${id}/cancel`, token, {});
    if (res.status !== 200) throw new Error(`cancel refused: ${JSON.stringify(res.body)}`);
  };
  await cancel(cancelledByAdmin, admin);
  await cancel(cancelledByCustomer, customer);
  await fulfil(shipped, ship);
  await fulfil(delivered, [...ship, { status: 'DELIVERED' }]);
  // Cancelling a charged order asks a worker for the refund: wait for both refunds to be recorded.
  await until(
    async () =>
      (await p.db('order_events').whereIn('order_id', orders).where({ type: 'PaymentRefunded' })).length ===
      2,
    'both refunds',
  );
  return { products: [coffee, tea, rare], orders };
}

/** The upper bound of the histogram bin holding `ms`, as the summary reports percentiles. */
function binOf(ms: number | null): number | null {
  if (ms === null) return null;
  return OUTCOME_BINS_MS.find((b) => ms <= b) ?? null;
}

/**
 * Every figure of /analytics/summary for `currency`, computed by SQL over the orders themselves (orders,
 * order_items, order_events, payments): what the analytics must agree with.
 */
export async function expectedSummary(db: Db, currency = 'EUR') {
  const orders = db('orders').where({ currency });
  const count = async (q: ReturnType<Db>) => Number((await q.count<{ n: string }[]>({ n: '*' }))[0].n);
  const confirmedIds = db('order_events').where({ type: 'OrderConfirmed' }).select('order_id');
  const byReason = async (status: string, column: string) =>
    Object.fromEntries(
      (
        await orders
          .clone()
          .where({ status })
          .groupBy(column)
          .select({ reason: column })
          .count<{ reason: string; n: string }[]>({ n: '*' })
      ).map((r) => [r.reason, Number(r.n)]),
    );
  const received = await count(orders.clone());
  const confirmed = await count(orders.clone().whereIn('id', confirmedIds));
  const gross = Number(
    (await orders.clone().whereIn('id', confirmedIds).sum<{ s: string | null }[]>({ s: 'total' }))[0].s ?? 0,
  );
  const refundRows = await db('payments as pay')
    .join('orders as o', 'o.id', 'pay.order_id')
    .where('o.currency', currency)
    .whereNotNull('pay.refunded_at')
    .select('pay.refunded_amount');
  const refunds = refundRows.reduce((s: number, r: { refunded_amount: number }) => s + r.refunded_amount, 0);
  const rejected = await byReason('REJECTED', 'reject_reason');
  const cancelled = await byReason('CANCELLED', 'cancel_reason');
  // RECEIVED → the order's outcome: its confirmation, rejection, or a cancel before it was confirmed.
  const { rows: times } = await db.raw<{
    rows: { n: number; p50: number | null; p95: number | null }[];
  }>(
    `with outcome as (
       select o.id, extract(epoch from (min(e.created_at) - r.created_at)) * 1000 as ms
         from orders o
         join order_events r on r.order_id = o.id and r.type = 'OrderReceived'
         join order_events e on e.order_id = o.id
          and (e.to_status in ('CONFIRMED', 'REJECTED')
               or (e.to_status = 'CANCELLED' and e.from_status in ('RECEIVED', 'INVENTORY_RESERVED', 'AWAITING_PAYMENT')))
        where o.currency = ?
        group by o.id, r.created_at)
     select count(*)::int as n,
            percentile_disc(0.5) within group (order by ms)::float8 as p50,
            percentile_disc(0.95) within group (order by ms)::float8 as p95
       from outcome`,
    [currency],
  );
  return {
    currency,
    received,
    confirmed,
    rejected: { total: Object.values(rejected).reduce((a, b) => a + b, 0), by_reason: rejected },
    cancelled: { total: Object.values(cancelled).reduce((a, b) => a + b, 0), by_reason: cancelled },
    shipped: await count(orders.clone().whereNotNull('shipped_at')),
    delivered: await count(orders.clone().whereNotNull('delivered_at')),
    gross_revenue: gross,
    refunds,
    refund_count: refundRows.length,
    net_revenue: gross - refunds,
    average_order_value: confirmed ? Math.round(gross / confirmed) : null,
    conversion: received ? confirmed / received : null,
    received_to_outcome: { count: times[0].n, p50_ms: binOf(times[0].p50), p95_ms: binOf(times[0].p95) },
  };
}

/** Units and revenue of each product over the confirmed orders, by SQL over order_items. */
export async function expectedProducts(db: Db) {
  const rows: { product_id: string; units: string; revenue: string }[] = await db('order_items as i')
    .whereIn('i.order_id', db('order_events').where({ type: 'OrderConfirmed' }).select('order_id'))
    .groupBy('i.product_id')
    .select('i.product_id')
    .sum({ units: 'i.quantity' })
    .select(db.raw('sum(i.quantity * i.unit_price) as revenue'));
  return Object.fromEntries(
    rows.map((r) => [r.product_id, { units: Number(r.units), revenue: Number(r.revenue) }]),
  );
}

/** GET /analytics/summary over the hour around now, as an admin. */
export async function fetchSummary(p: TestPipeline) {
  const admin = await p.token('analyst', 'admin');
  const from = new Date(Date.now() - 3_600_000).toISOString();
  const to = new Date(Date.now() + 3_600_000).toISOString();
  const res = await getJson(p.url, `/analytics/summary?from=${from}&to=${to}`, admin);
  if (res.status !== 200) throw new Error(`summary failed: ${JSON.stringify(res.body)}`);
  return res.body as { as_of: string; data: Record<string, unknown>[] };
}

/** Every row of the analytics tables, in a stable order: what "the same figures" means. */
export async function analyticsSnapshot(db: Db) {
  const rollups = await db('analytics_rollups')
    .orderBy(['granularity', 'metric', 'bucket', 'currency', 'dim'])
    .select('granularity', 'metric', 'bucket', 'currency', 'dim', 'value');
  const orders = (
    await db('analytics_orders')
      .orderBy('order_id')
      .select('order_id', ...TALLY_COLUMNS)
  ).map((o: { applied: string[] }) => ({ ...o, applied: [...o.applied].sort() }));
  return { rollups, orders };
}
