import type { Knex, Tx } from '../lib/db.ts';
import { assignments, insertInto, query, sql, statementWith, type Sql } from '../lib/sql.ts';
import { IllegalTransitionError } from './errors.ts';
import type { MessageContext } from '../lib/outbox.ts';
import {
  findTransition,
  nextStatuses,
  ORDER_STEPS,
  type Actor,
  type OrderMessageType,
  type OrderStatus,
  type OrderStepKind,
} from './lifecycle.ts';
import { orderOutboxRow, type OrderChangedData } from './messages.ts';
import { orderEventRow } from './order-events.ts';
import type { OrderRow } from './order-queries.ts';

/** What one change of an order is, as the lifecycle's hooks see it: the order after the change. */
export interface OrderChange {
  order: Pick<OrderRow, 'id' | 'customer_id' | 'total' | 'currency' | 'status' | 'version'>;
  previousStatus: OrderStatus | null;
  reason: string | null;
  /** The webhook event the change announces, if any. */
  event: string | null;
  /** The change's own fields for receivers (tracking, refund, …). */
  details: Record<string, unknown>;
  /** The order's lines, when the statement inserts them (a new order); hooks read them otherwise. */
  items?: { product_id: string; sku: string; name: string; quantity: number; unit_price: number }[];
  correlationId: string;
}

/**
 * Something another component adds to every change's statement (webhook deliveries, say): a data-modifying CTE,
 * so it commits if and only if the change does, at no extra round trip. Undefined: nothing for this change.
 */
export type ChangeHook = (tx: Tx, change: OrderChange) => Sql | Knex.QueryBuilder | Knex.Raw | undefined;

export interface ChangeContext extends MessageContext {
  /**
   * The message that caused the change, named in the trace. Absent for a change a request made (creation,
   * cancel, fulfilment): the trace then names the message the change publishes.
   */
  messageId?: string | undefined;
}

/** The common part of a change: why, what the trace and the message say, and the step's own writes. */
interface ChangeSpec {
  reason?: string | null | undefined;
  /** The trace step's data. */
  trace?: Record<string, unknown> | undefined;
  /** Extra fields of the message and the webhook payload. */
  details?: Record<string, unknown> | undefined;
  /** Columns of the order the change sets besides status and version. */
  set?: Record<string, unknown> | undefined;
  /** The step's own writes, each a named data-modifying CTE (later ones may read earlier ones). */
  alongside?: [string, Sql | Knex.QueryBuilder | Knex.Raw][] | undefined;
  /** More outbox rows (commands) committed with the change. */
  outbox?: ReturnType<typeof orderOutboxRow>[] | undefined;
}

export interface TransitionSpec extends ChangeSpec {
  to: OrderStatus;
  actor: Actor;
}

/**
 * Moves a locked order to `spec.to` — the one way any status is written after an order exists. Checks the move
 * against the lifecycle table (an illegal move throws IllegalTransitionError with the allowed next statuses),
 * then in one statement writes the status and `version + 1`, the trace step, the status-changed message, the
 * step's own changes and whatever the hooks add (webhook deliveries). Returns the order as it is now.
 */
export async function applyTransition(
  tx: Tx,
  hooks: readonly ChangeHook[],
  order: OrderRow,
  spec: TransitionSpec,
  ctx: ChangeContext,
): Promise<OrderRow> {
  const move = findTransition(order.status, spec.to);
  if (!move || !move.actors.includes(spec.actor)) {
    throw new IllegalTransitionError(order.status, spec.to, nextStatuses(order.status, spec.actor));
  }
  return writeChange(tx, hooks, order, { to: spec.to }, move, spec, ctx);
}

/**
 * Records a step that changes no status but that others must hear of (a declined attempt, a refund): version
 * + 1, its trace step, its message and its webhook event, in one statement with the step's own writes.
 */
export async function recordStep(
  tx: Tx,
  hooks: readonly ChangeHook[],
  order: OrderRow,
  kind: OrderStepKind,
  spec: ChangeSpec,
  ctx: ChangeContext,
): Promise<OrderRow> {
  return writeChange(tx, hooks, order, { to: order.status }, ORDER_STEPS[kind], spec, ctx);
}

/** A new order's row as `createOrder` inserts it. */
export type NewOrderRow = Pick<OrderRow, 'id' | 'customer_id' | 'total' | 'currency'> &
  Record<string, unknown>;

/**
 * Records a new order as RECEIVED (the lifecycle's move from nothing), with the same trace step, message and
 * hooks as every later move; `items` are the order's lines, inserted by the same statement.
 */
export async function applyCreation(
  tx: Tx,
  hooks: readonly ChangeHook[],
  order: NewOrderRow,
  items: NonNullable<OrderChange['items']>,
  spec: ChangeSpec & { actor: Actor },
  ctx: ChangeContext,
): Promise<OrderRow> {
  const move = findTransition(null, 'RECEIVED');
  if (!move || !move.actors.includes(spec.actor)) {
    throw new IllegalTransitionError(null, 'RECEIVED', []);
  }
  const lines = items.map((i) => ({
    order_id: order.id,
    product_id: i.product_id,
    quantity: i.quantity,
    unit_price: i.unit_price,
  }));
  const insert = sql`${insertInto('orders', [{ ...order, ...spec.set, status: 'RECEIVED', version: 1 }])} returning *`;
  return writeChange(
    tx,
    hooks,
    { ...order, status: null, version: 0 },
    { to: 'RECEIVED', moved: insert, items },
    move,
    { ...spec, alongside: [['lines', insertInto('order_items', lines)], ...(spec.alongside ?? [])] },
    ctx,
  );
}

type ChangeBase = Pick<OrderRow, 'id' | 'customer_id' | 'total' | 'currency' | 'version'> & {
  status: OrderStatus | null;
};

async function writeChange(
  tx: Tx,
  hooks: readonly ChangeHook[],
  order: ChangeBase,
  target: { to: OrderStatus; moved?: Sql; items?: OrderChange['items'] },
  what: { step: string; message: string; webhook: string | null },
  spec: ChangeSpec,
  ctx: ChangeContext,
): Promise<OrderRow> {
  const { to } = target;
  const version = order.version + 1;
  const reason = spec.reason ?? null;
  const details = spec.details ?? {};
  const ctes: [string, Sql | Knex.QueryBuilder | Knex.Raw][] = [...(spec.alongside ?? [])];
  ctes.push([
    'moved',
    target.moved ??
      sql`update orders set ${assignments({ ...spec.set, status: to, version, updated_at: sql.raw('now()') })}
           where id = ${order.id} and version = ${order.version} returning *`,
  ]);
  const data = order.status
    ? ({
        customer_id: order.customer_id,
        previous_status: order.status,
        status: to,
        reason,
        total: order.total,
        currency: order.currency,
        ...details,
      } satisfies OrderChangedData)
    : details;
  const rows = [
    orderOutboxRow({ id: order.id, version }, what.message as OrderMessageType, data, ctx),
    ...(spec.outbox ?? []),
  ];
  ctes.push(['message', insertInto('outbox', rows)]);
  ctes.push([
    'step',
    insertInto('order_events', [
      orderEventRow({
        orderId: order.id,
        type: what.step,
        fromStatus: order.status,
        toStatus: to,
        reason,
        data: spec.trace ?? {},
        messageId: ctx.messageId ?? rows[0].id,
        correlationId: ctx.correlationId,
        // One instant for the step and its message, so figures counted from the messages (analytics) and
        // recomputed from the trace fall into the same time buckets (ADR 0008).
        createdAt: rows[0].payload.occurred_at,
      }),
    ]),
  ]);
  const change: OrderChange = {
    order: { ...order, status: to, version },
    previousStatus: order.status,
    reason,
    event: what.webhook,
    details,
    items: target.items,
    correlationId: ctx.correlationId,
  };
  hooks.forEach((hook, i) => {
    const cte = hook(tx, change);
    if (cte) ctes.push([`hook_${i}`, cte]);
  });
  const {
    rows: [moved],
  } = await query<OrderRow>(tx, statementWith(ctes, sql`select * from moved`));
  if (!moved) throw new Error(`Order ${order.id} changed under its row lock (version ${order.version})`);
  return moved;
}
