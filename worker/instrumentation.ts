import type { QueueConsumer } from '../lib/amqp/consumer.ts';
import { QUEUES, type QueueKey } from '../lib/amqp/topology.ts';
import type { Db } from '../lib/db.ts';
import type { Logger } from '../lib/logger.ts';
import {
  messageProcessingDuration,
  messagesConsumed,
  orderReceivedToFinal,
  orderStepDuration,
  ordersFinal,
  paymentDuration,
} from '../lib/metrics.ts';
import { FINAL_STATUSES, type OrderStatus } from '../orders/order-status.ts';
import type { PaymentGateway } from '../orders/payment-gateway.ts';

/** Counts every delivery a consumer settles, and how long it took, by queue and outcome. */
export function instrumentConsumer(consumer: QueueConsumer, queue: QueueKey): void {
  const label = QUEUES[queue].name;
  consumer.on('settled', (e) => {
    messagesConsumed.inc({ queue: label, outcome: e.outcome });
    messageProcessingDuration.observe({ queue: label, outcome: e.outcome }, e.durationMs / 1000);
  });
}

/** The same gateway, timing each charge by its result. */
export function instrumentPayments(gateway: PaymentGateway): PaymentGateway {
  return {
    async charge(request) {
      const started = performance.now();
      let result = 'error';
      try {
        const outcome = await gateway.charge(request);
        result = outcome.status;
        return outcome;
      } finally {
        paymentDuration.observe({ result }, (performance.now() - started) / 1000);
      }
    },
  };
}

interface TraceRow {
  to_status: OrderStatus | null;
  reason: string | null;
  at: number;
  now: number;
}

/**
 * Records a final order in the metrics: its status and reason, RECEIVED → final, and the time between each
 * pair of steps of its trace. The times come from the trace (PostgreSQL's clock at each step), so no two
 * clocks are compared. Called after a handler saw the order final; the order counts only when its final step
 * happened during that handler (younger than the handler itself), so a duplicate delivery of an order that was
 * already final is not counted again. Runs after the ack, never delaying it; a failure only loses a sample.
 */
export async function recordFinalOrder(
  db: Db,
  orderId: string,
  handlerStartedAt: number,
  logger: Logger,
): Promise<void> {
  try {
    const { rows } = await db.raw<{ rows: TraceRow[] }>(
      `select to_status, reason,
              extract(epoch from created_at)::float8 as at,
              extract(epoch from clock_timestamp())::float8 as now
         from order_events where order_id = ? order by id`,
      [orderId],
    );
    const finalIndex = rows.findIndex((r) => r.to_status !== null && FINAL_STATUSES.has(r.to_status));
    if (finalIndex <= 0) return;
    const final = rows[finalIndex];
    const finalAgeMs = (final.now - final.at) * 1000;
    if (finalAgeMs > performance.now() - handlerStartedAt) return;

    ordersFinal.inc({ status: final.to_status!, reason: final.reason ?? 'none' });
    orderReceivedToFinal.observe({ status: final.to_status! }, Math.max(0, final.at - rows[0].at));
    for (let i = 1; i <= finalIndex; i++) {
      const from = rows[i - 1].to_status ?? 'none';
      const to = rows[i].to_status ?? 'none';
      orderStepDuration.observe({ from, to }, Math.max(0, rows[i].at - rows[i - 1].at));
    }
  } catch (err) {
    logger.debug({ err, order_id: orderId }, 'could not record the final order in the metrics');
  }
}
