import type { QueueConsumer } from '../lib/amqp/consumer.ts';
import type { Db } from '../lib/db.ts';
import { inSpan, tracingEnabled } from '../lib/telemetry.ts';
import { QUEUES, type QueueKey } from '../lib/amqp/topology.ts';
import {
  messageProcessingDuration,
  messagesConsumed,
  orderReceivedToFinal,
  orderStepDuration,
  ordersFinal,
  paymentDuration,
} from '../lib/metrics.ts';
import { PROCESSED_STATUSES } from '../orders/lifecycle.ts';
import type { CompletedStep } from '../orders/order-steps.ts';
import type { PaymentGateway } from '../orders/payment-gateway.ts';

/** Counts every delivery a consumer settles, and how long it took, by queue and outcome. */
export function instrumentConsumer(consumer: QueueConsumer, queue: QueueKey): void {
  const label = QUEUES[queue].name;
  consumer.on('settled', (e) => {
    messagesConsumed.inc({ queue: label, outcome: e.outcome });
    messageProcessingDuration.observe({ queue: label, outcome: e.outcome }, e.durationMs / 1000);
  });
}

/** The same gateway, timing each charge by its result (and, with tracing on, a span per charge). */
export function instrumentPayments(gateway: PaymentGateway): PaymentGateway {
  return {
    charge(request) {
      return inSpan('payment charge', async (span) => {
        const started = performance.now();
        let result = 'error';
        try {
          const outcome = await gateway.charge(request);
          result = outcome.status;
          return outcome;
        } finally {
          paymentDuration.observe({ result }, (performance.now() - started) / 1000);
          span?.setAttribute('comanda.payment.result', result);
        }
      });
    },
    refund: (request) => inSpan('payment refund', () => gateway.refund(request)),
  };
}

/**
 * With tracing on, the same database with a span around each transaction an order's processing runs: each is
 * one step of the order, named after the step it committed (`order step RECEIVED → INVENTORY_RESERVED`), or
 * `order step (none)` when a redelivered message found the step already done. With tracing off, `db` itself.
 */
export function traceSteps(db: Db, steps: CompletedStep[]): Db {
  if (!tracingEnabled()) return db;
  const transaction = (fn: Parameters<Db['transaction']>[0]) =>
    inSpan('order step', async (span) => {
      const before = steps.length;
      const result: unknown = await db.transaction(fn);
      const step = steps[before];
      span?.updateName(step ? `order step ${step.from} → ${step.to}` : 'order step (none)');
      if (step) span?.setAttributes({ 'comanda.order.from': step.from, 'comanda.order.to': step.to });
      return result;
    });
  return new Proxy(db, {
    get: (target, prop, receiver) =>
      prop === 'transaction' ? transaction : (Reflect.get(target, prop, receiver) as unknown),
  });
}

/**
 * Records the steps one handler run committed: each step's duration (from the step before it, or from RECEIVED),
 * and for a final step the order's outcome and RECEIVED → final. The times are the database's, from the rows the
 * steps updated, so no extra query and no two clocks compared. A redelivered message that finds the order final
 * commits no step and counts nothing.
 */
export function recordOrderSteps(steps: CompletedStep[]): void {
  let previous: Date | undefined;
  for (const step of steps) {
    const since = step.from === 'RECEIVED' ? step.receivedAt : previous;
    if (since) orderStepDuration.observe({ from: step.from, to: step.to }, seconds(step.at, since));
    if (PROCESSED_STATUSES.has(step.to)) {
      ordersFinal.inc({ status: step.to, reason: step.reason ?? 'none' });
      orderReceivedToFinal.observe({ status: step.to }, seconds(step.at, step.receivedAt));
    }
    previous = step.at;
  }
}

function seconds(to: Date, from: Date): number {
  return Math.max(0, (to.getTime() - from.getTime()) / 1000);
}
