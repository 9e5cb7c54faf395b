import { randomUUID } from 'node:crypto';
import test from 'ava';
import { CATALOG_EVENTS } from '../../catalog/messages.ts';
import { loadConfig, WEBHOOK_EVENT_NAMES } from '../../lib/config.ts';
import { IllegalTransitionError } from '../../orders/errors.ts';
import {
  ACTORS,
  findTransition,
  ORDER_STATUSES,
  ORDER_WEBHOOK_EVENTS,
  TERMINAL_STATUSES,
  type OrderStatus,
} from '../../orders/lifecycle.ts';
import type { OrderRow } from '../../orders/order-queries.ts';
import { applyTransition } from '../../orders/transition.ts';
import { WEBHOOK_EVENT_TYPES } from '../../webhooks/event-types.ts';
import { startPipeline, type TestPipeline } from '../helpers/pipeline.ts';

let p: TestPipeline;
test.before(async () => {
  p = await startPipeline({}, { worker: false });
});
test.after.always(async () => {
  await p?.stop();
});

class Rollback extends Error {}

/** Applies one move to an order sitting in `from`, inside a transaction that is always rolled back. */
async function attempt(from: OrderStatus, to: OrderStatus, actor: (typeof ACTORS)[number]) {
  let outcome: { moved: OrderRow; events: number; messages: number } | IllegalTransitionError | undefined;
  await p.db
    .transaction(async (tx) => {
      const [order] = await tx<OrderRow>('orders')
        .insert({ id: randomUUID(), customer_id: 'table-test', status: from, total: 100, currency: 'EUR' })
        .returning('*');
      try {
        const moved = await applyTransition(tx, [], order, { to, actor }, { correlationId: 'table-test' });
        const [events] = await tx('order_events')
          .where({ order_id: order.id })
          .count<{ n: string }[]>({ n: '*' });
        const [messages] = await tx('outbox')
          .where({ aggregate_id: order.id })
          .count<{ n: string }[]>({ n: '*' });
        outcome = { moved, events: Number(events.n), messages: Number(messages.n) };
      } catch (err) {
        if (!(err instanceof IllegalTransitionError)) throw err;
        outcome = err;
      }
      throw new Rollback();
    })
    .catch((err: unknown) => {
      if (!(err instanceof Rollback)) throw err;
    });
  return outcome!;
}

test('when every pair of statuses is tried by every actor through the one transition function, then exactly the table’s moves happen, each with one trace step, one message and version + 1', async (t) => {
  let allowed = 0;
  for (const from of ORDER_STATUSES) {
    for (const to of ORDER_STATUSES) {
      for (const actor of ACTORS) {
        const expected = findTransition(from, to)?.actors.includes(actor) ?? false;
        const outcome = await attempt(from, to, actor);
        const label = `${from} → ${to} by ${actor}`;
        if (expected) {
          allowed += 1;
          t.false(outcome instanceof IllegalTransitionError, `${label} is allowed`);
          if (outcome instanceof IllegalTransitionError) continue;
          t.is(outcome.moved.status, to, label);
          t.is(outcome.moved.version, 2, label);
          t.is(outcome.events, 1, `${label}: one trace step`);
          t.is(outcome.messages, 1, `${label}: one message`);
        } else {
          t.true(outcome instanceof IllegalTransitionError, `${label} is refused`);
          if (outcome instanceof IllegalTransitionError) {
            t.deepEqual(
              [...outcome.allowed].sort(),
              ORDER_STATUSES.filter((s) => findTransition(from, s)?.actors.includes(actor)).sort(),
              `${label}: the problem names the moves ${actor} has`,
            );
          }
        }
      }
    }
  }
  t.true(allowed > 10);
});

test('when the table is read, then nothing leaves SHIPPED except DELIVERED, and REJECTED, CANCELLED and DELIVERED are terminal', (t) => {
  t.deepEqual([...TERMINAL_STATUSES].sort(), ['CANCELLED', 'DELIVERED', 'REJECTED']);
  t.deepEqual(
    ORDER_STATUSES.filter((s) => findTransition('SHIPPED', s)),
    ['DELIVERED'],
  );
  for (const from of [
    'RECEIVED',
    'INVENTORY_RESERVED',
    'AWAITING_PAYMENT',
    'CONFIRMED',
    'PROCESSING',
  ] as const) {
    t.deepEqual(
      findTransition(from, 'CANCELLED')?.actors.includes('customer'),
      true,
      `${from} is cancellable`,
    );
  }
});

test('when the database, the config and the webhook API list statuses and events, then they are the table’s', async (t) => {
  const { rows } = await p.db.raw<{ rows: { def: string }[] }>(
    "select pg_get_constraintdef(oid) as def from pg_constraint where conname = 'orders_status_known'",
  );
  const inDb = [...rows[0].def.matchAll(/'([A-Z_]+)'/g)].map((m) => m[1]).sort();
  t.deepEqual(inDb, [...ORDER_STATUSES].sort());

  t.deepEqual([...WEBHOOK_EVENT_TYPES], [...ORDER_WEBHOOK_EVENTS, ...CATALOG_EVENTS]);
  t.deepEqual([...WEBHOOK_EVENT_NAMES].sort(), [...WEBHOOK_EVENT_TYPES].sort());
  const config = loadConfig({ OPS_WEBHOOK_EVENT_TYPES: WEBHOOK_EVENT_TYPES.join(',') });
  t.deepEqual(config.OPS_WEBHOOK_EVENT_TYPES, [...WEBHOOK_EVENT_TYPES]);
  t.throws(() => loadConfig({ OPS_WEBHOOK_EVENT_TYPES: 'order.teleported' }));

  const spec = (await (await fetch(`${p.url}/openapi.json`)).json()) as {
    components: { schemas: Record<string, { properties?: Record<string, { enum?: string[] }> }> };
  };
  const enums = JSON.stringify(spec.components.schemas);
  for (const status of ORDER_STATUSES) t.true(enums.includes(`"${status}"`), `OpenAPI names ${status}`);
});
