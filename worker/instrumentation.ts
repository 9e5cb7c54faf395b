import type { QueueConsumer } from '../lib/amqp/consumer.ts';
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
    refund: (request) => gateway.refund(request),
  };
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
