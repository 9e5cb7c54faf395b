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
import type { Cte } from '../catalog/stock.ts';
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
  alongside?: Cte[] | undefined;
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

/** What a change writes besides the order's row: its messages, its trace step, and its hooks' CTEs. */
function changeWrites(
  tx: Tx,
  hooks: readonly ChangeHook[],
  order: ChangeBase,
  target: { to: OrderStatus; items?: OrderChange['items'] },
  what: { step: string; message: string; webhook: string | null },
  spec: ChangeSpec,
  ctx: ChangeContext,
) {
  const { to } = target;
  const version = order.version + 1;
  const reason = spec.reason ?? null;
  const details = spec.details ?? {};
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
  const messages = [
    orderOutboxRow({ id: order.id, version }, what.message as OrderMessageType, data, ctx),
    ...(spec.outbox ?? []),
  ];
  const step = orderEventRow({
    orderId: order.id,
    type: what.step,
    fromStatus: order.status,
    toStatus: to,
    reason,
    data: spec.trace ?? {},
    messageId: ctx.messageId ?? messages[0].id,
    correlationId: ctx.correlationId,
    // One instant for the step and its message, so figures counted from the messages (analytics) and
    // recomputed from the trace fall into the same time buckets (ADR 0008).
    createdAt: messages[0].payload.occurred_at,
  });
  const change: OrderChange = {
    order: { ...order, status: to, version },
    previousStatus: order.status,
    reason,
    event: what.webhook,
    details,
    items: target.items,
    correlationId: ctx.correlationId,
  };
  const hooked = hooks.map((hook) => hook(tx, change));
  return { messages, step, hooked };
}

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
  const ctes: Cte[] = [...(spec.alongside ?? [])];
  ctes.push([
    'moved',
    target.moved ??
      sql`update orders set ${assignments({ ...spec.set, status: to, version, updated_at: sql.raw('now()') })}
           where id = ${order.id} and version = ${order.version} returning *`,
  ]);
  const { messages, step, hooked } = changeWrites(tx, hooks, order, target, what, spec, ctx);
  ctes.push(['message', insertInto('outbox', messages)], ['step', insertInto('order_events', [step])]);
  hooked.forEach((cte, i) => cte && ctes.push([`hook_${i}`, cte]));
  const {
    rows: [moved],
  } = await query<OrderRow>(tx, statementWith(ctes, sql`select * from moved`));
  if (!moved) throw new Error(`Order ${order.id} changed under its row lock (version ${order.version})`);
  return moved;
}

/** One order's move in `applyTransitions`: no columns of its own to set, no writes of its own. */
export interface BatchMove {
  order: OrderRow;
  spec: Omit<TransitionSpec, 'set' | 'alongside' | 'outbox'>;
  ctx: ChangeContext;
}

/**
 * applyTransition for several locked orders in one statement: each order's status, version, trace step, message
 * and hooks as a move of its own would write them, with `alongside` the writes of the whole batch (set-based CTEs
 * over all its orders). One statement instead of one per order: most of such a statement's cost is per statement
 * (opening and locking some thirty tables and indexes, starting its nodes, firing its triggers), not per row.
 * Returns the orders as they are now, in the order given.
 */
export async function applyTransitions(
  tx: Tx,
  hooks: readonly ChangeHook[],
  moves: readonly BatchMove[],
  alongside: readonly Cte[],
): Promise<OrderRow[]> {
  const messages: ReturnType<typeof orderOutboxRow>[] = [];
  const steps: ReturnType<typeof orderEventRow>[] = [];
  const hookCtes: Cte[] = [];
  moves.forEach(({ order, spec, ctx }, k) => {
    const move = findTransition(order.status, spec.to);
    if (!move || !move.actors.includes(spec.actor)) {
      throw new IllegalTransitionError(order.status, spec.to, nextStatuses(order.status, spec.actor));
    }
    const writes = changeWrites(tx, hooks, order, { to: spec.to }, move, spec, ctx);
    messages.push(...writes.messages);
    steps.push(writes.step);
    writes.hooked.forEach((cte, i) => cte && hookCtes.push([`hook_${i}_${k}`, cte]));
  });
  const wanted = JSON.stringify(
    moves.map(({ order, spec }) => ({ id: order.id, version: order.version, status: spec.to })),
  );
  const ctes: Cte[] = [...alongside];
  ctes.push([
    'moved',
    sql`update orders o set status = v.status, version = o.version + 1, updated_at = now()
          from json_to_recordset(${wanted}::json) as v(id uuid, version int, status text)
         where o.id = v.id and o.version = v.version and o.id = any(${moves.map((m) => m.order.id)}::uuid[])
     returning o.*`,
  ]);
  ctes.push(
    ['message', insertInto('outbox', messages)],
    ['step', insertInto('order_events', steps)],
    ...hookCtes,
  );
  const { rows } = await query<OrderRow>(tx, statementWith(ctes, sql`select * from moved`));
  const byId = new Map(rows.map((r) => [r.id, r]));
  return moves.map(({ order }) => {
    const moved = byId.get(order.id);
    if (!moved) throw new Error(`Order ${order.id} changed under its row lock (version ${order.version})`);
    return moved;
  });
}
