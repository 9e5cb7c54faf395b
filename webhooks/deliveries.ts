import type { Db } from '../lib/db.ts';
import { sql } from '../lib/sql.ts';
import { ConflictError, NotFoundError } from '../lib/errors.ts';
import type { OrderStatus } from '../orders/lifecycle.ts';
import type { Viewer } from '../orders/order-queries.ts';
import type { ChangeHook } from '../orders/transition.ts';
import { UUID } from '../lib/uuid.ts';
import { currentTraceparent } from '../lib/telemetry.ts';
import type { WebhookEventType } from './event-types.ts';

/** The channel notifiers LISTEN on; a NOTIFY on it is delivered only when the transaction commits. */
export const DELIVERIES_CHANNEL = 'comanda_webhook_deliveries';

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

/** The body every receiver gets: Standard Webhooks' `{type, timestamp, data}`. */
export interface WebhookPayload {
  type: WebhookEventType;
  timestamp: string;
  data: {
    order_id: string;
    status: OrderStatus;
    previous_status: OrderStatus | null;
    /** The order's version after this change: a receiver keeps the highest it has seen and drops older ones. */
    version: number;
    reason: string | null;
    total: number;
    currency: string;
    customer_id: string;
    items: { product_id: string; sku: string; name: string; quantity: number; unit_price: number }[];
    created_at: string;
    updated_at: string;
  } & Record<string, unknown>;
}

const ISO = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;

/**
 * The lifecycle hook that creates a change's deliveries: one per enabled endpoint that subscribes to the event
 * the change announces (operations endpoints, and the order's customer's own). It runs as a CTE of the statement
 * that makes the change, so the deliveries exist if and only if the change commits, at no extra round trip; the
 * table's trigger wakes the notifiers on commit. The order's timestamps are the statement's `now()`, which is
 * what the change writes.
 */
export const webhookDeliveriesHook: ChangeHook = (_tx, change) => {
  const type = change.event;
  if (!type) return undefined;
  const { order } = change;
  const data = {
    ...change.details,
    order_id: order.id,
    status: order.status,
    previous_status: change.previousStatus,
    version: order.version,
    reason: change.reason,
    total: order.total,
    currency: order.currency,
    customer_id: order.customer_id,
  };
  const items = change.items
    ? sql`${JSON.stringify(change.items)}::jsonb`
    : sql`(select coalesce(jsonb_agg(jsonb_build_object('product_id', i.product_id, 'sku', p.sku, 'name', p.name,
                  'quantity', i.quantity, 'unit_price', i.unit_price) order by i.id), '[]'::jsonb)
            from order_items i join products p on p.id = i.product_id where i.order_id = ${order.id})`;
  const iso = sql.raw(ISO);
  // The span of the status change (with tracing on): the notifier's attempts continue its trace.
  const traceparent = currentTraceparent() ?? null;
  return sql`insert into webhook_deliveries (endpoint_id, order_id, event_type, payload, correlation_id, traceparent,
                                             created_at)
     select e.id, ${order.id}, ${type},
            jsonb_build_object(
              'type', ${type}::text,
              'timestamp', to_char(clock_timestamp() at time zone 'UTC', ${iso}),
              'data', ${JSON.stringify(data)}::jsonb || jsonb_build_object(
                'items', ${items},
                'created_at', to_char(o.created_at at time zone 'UTC', ${iso}),
                'updated_at', to_char(now() at time zone 'UTC', ${iso}))),
            ${change.correlationId}, ${traceparent}, clock_timestamp()
       from webhook_endpoints e,
            (select coalesce((select created_at from orders where id = ${order.id}), now()) as created_at) o
      where e.enabled and ${type} = any(e.event_types) and (e.owner = 'operations' or e.customer_id = ${order.customer_id})`;
};

interface DeliveryRow {
  id: string;
  endpoint_id: string;
  order_id: string | null;
  event_type: WebhookEventType;
  payload: WebhookPayload;
  status: DeliveryStatus;
  attempt_count: number;
  max_attempts: number | null;
  next_attempt_at: Date;
  last_attempt_at: Date | null;
  last_status_code: number | null;
  last_error: string | null;
  delivered_at: Date | null;
  created_at: Date;
}

interface AttemptRow {
  delivery_id: string;
  attempt: number;
  url: string;
  started_at: Date;
  status_code: number | null;
  latency_ms: number | null;
  error: string | null;
  response_excerpt: string | null;
}

export interface AttemptView {
  attempt: number;
  url: string;
  started_at: string;
  status_code: number | null;
  latency_ms: number | null;
  error: string | null;
  response_excerpt: string | null;
}

/** A delivery with its log; `id` is the `webhook-id` the receiver saw. */
export interface DeliveryView {
  id: string;
  endpoint_id: string;
  order_id: string | null;
  event_type: WebhookEventType;
  status: DeliveryStatus;
  attempt_count: number;
  next_attempt_at: string | null;
  last_status_code: number | null;
  last_error: string | null;
  delivered_at: string | null;
  created_at: string;
  payload: WebhookPayload;
  attempts: AttemptView[];
}

const DELIVERY_COLUMNS = [
  'd.id',
  'd.endpoint_id',
  'd.order_id',
  'd.event_type',
  'd.payload',
  'd.status',
  'd.attempt_count',
  'd.max_attempts',
  'd.next_attempt_at',
  'd.last_attempt_at',
  'd.last_status_code',
  'd.last_error',
  'd.delivered_at',
  'd.created_at',
];

async function withAttempts(db: Db, rows: DeliveryRow[]): Promise<DeliveryView[]> {
  const attempts: AttemptRow[] = rows.length
    ? await db('webhook_attempts')
        .whereIn(
          'delivery_id',
          rows.map((r) => r.id),
        )
        .orderBy('id')
        .select(
          'delivery_id',
          'attempt',
          'url',
          'started_at',
          'status_code',
          'latency_ms',
          'error',
          'response_excerpt',
        )
    : [];
  const byDelivery = new Map<string, AttemptView[]>();
  for (const { delivery_id, started_at, ...a } of attempts) {
    byDelivery.set(delivery_id, [
      ...(byDelivery.get(delivery_id) ?? []),
      { ...a, started_at: started_at.toISOString() },
    ]);
  }
  return rows.map((r) => ({
    id: r.id,
    endpoint_id: r.endpoint_id,
    order_id: r.order_id,
    event_type: r.event_type,
    status: r.status,
    attempt_count: r.attempt_count,
    next_attempt_at: r.status === 'pending' ? r.next_attempt_at.toISOString() : null,
    last_status_code: r.last_status_code,
    last_error: r.last_error,
    delivered_at: r.delivered_at?.toISOString() ?? null,
    created_at: r.created_at.toISOString(),
    payload: r.payload,
    attempts: byDelivery.get(r.id) ?? [],
  }));
}

export interface DeliveryPage {
  data: DeliveryView[];
  next_cursor: string | null;
}

/** An endpoint's deliveries, newest first, with their attempts; `cursor` is the last id of the previous page. */
export async function listEndpointDeliveries(
  db: Db,
  endpointId: string,
  options: { limit: number; cursor?: string | undefined; status?: DeliveryStatus | undefined },
): Promise<DeliveryPage> {
  const q = db('webhook_deliveries as d')
    .where('d.endpoint_id', endpointId)
    .orderBy([
      { column: 'd.created_at', order: 'desc' },
      { column: 'd.id', order: 'desc' },
    ])
    .limit(options.limit + 1)
    .select(DELIVERY_COLUMNS);
  if (options.status) void q.andWhere('d.status', options.status);
  if (options.cursor) {
    void q.whereRaw('(d.created_at, d.id) < (select created_at, id from webhook_deliveries where id = ?)', [
      options.cursor,
    ]);
  }
  const rows = (await q) as DeliveryRow[];
  const page = rows.slice(0, options.limit);
  return {
    data: await withAttempts(db, page),
    next_cursor: rows.length > options.limit ? page[page.length - 1].id : null,
  };
}

/** An order's deliveries (oldest first): all of them for an admin, a customer's own endpoints' for a customer. */
export async function listOrderDeliveries(db: Db, orderId: string, viewer: Viewer): Promise<DeliveryView[]> {
  const q = db('webhook_deliveries as d')
    .join('webhook_endpoints as e', 'e.id', 'd.endpoint_id')
    .where('d.order_id', orderId)
    .orderBy([
      { column: 'd.created_at', order: 'asc' },
      { column: 'd.id', order: 'asc' },
    ])
    .select(DELIVERY_COLUMNS);
  if (!viewer.admin) void q.andWhere({ 'e.owner': 'customer', 'e.customer_id': viewer.sub });
  return withAttempts(db, (await q) as DeliveryRow[]);
}

/**
 * Sends a delivery that is not pending (failed, or delivered and wanted again) once more, now, keeping its
 * `webhook-id`. It gets one more attempt; if that fails, it is failed again.
 */
export async function retryDelivery(db: Db, viewer: Viewer, id: string): Promise<DeliveryView> {
  const row = await db.transaction(async (tx) => {
    const q = tx('webhook_deliveries as d')
      .join('webhook_endpoints as e', 'e.id', 'd.endpoint_id')
      .where('d.id', UUID.test(id) ? id : '00000000-0000-0000-0000-000000000000')
      .forUpdate('d')
      .first('d.status', 'd.attempt_count', 'e.enabled');
    if (!viewer.admin) void q.andWhere({ 'e.owner': 'customer', 'e.customer_id': viewer.sub });
    const current = (await q) as
      { status: DeliveryStatus; attempt_count: number; enabled: boolean } | undefined;
    if (!current) throw new NotFoundError(`Webhook delivery ${id} not found`);
    if (current.status === 'pending') throw new ConflictError('This delivery is already waiting to be sent');
    if (!current.enabled) throw new ConflictError('The endpoint is disabled; enable it before retrying');
    await tx('webhook_deliveries')
      .where({ id })
      .update({
        status: 'pending',
        max_attempts: current.attempt_count + 1,
        next_attempt_at: tx.fn.now(),
        updated_at: tx.fn.now(),
      });
    await tx.raw('select pg_notify(?, ?)', [DELIVERIES_CHANNEL, '']);
    const updated: unknown = await tx('webhook_deliveries as d').where('d.id', id).first(DELIVERY_COLUMNS);
    return updated as DeliveryRow;
  });
  const [view] = await withAttempts(db, [row]);
  return view;
}
