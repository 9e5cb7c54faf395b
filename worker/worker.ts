import { PermanentMessageError } from '../lib/errors.ts';
import { QueueConsumer, type IncomingMessage } from '../lib/amqp/consumer.ts';
import type { Services } from '../lib/services.ts';
import { parseOrderCreated } from '../orders/messages.ts';
import { SimulatedPaymentGateway, type PaymentGateway } from '../orders/payment-gateway.ts';
import { processOrder, type CompletedStep } from '../orders/process-order.ts';
import { isTransientDbError } from '../lib/db.ts';
import { currentTraceparent } from '../lib/telemetry.ts';
import { instrumentConsumer, instrumentPayments, recordOrderSteps, traceSteps } from './instrumentation.ts';

export interface RunningWorker {
  consumer: QueueConsumer;
  /** Stops taking messages and waits for the ones in hand to commit and be acked. */
  stop(): Promise<void>;
}

/** Consumes OrderCreated and drives each order to CONFIRMED or REJECTED. */
export function startWorker(services: Services, options: { payments?: PaymentGateway } = {}): RunningWorker {
  const { config, db, amqp, topology } = services;
  const logger = services.logger.child({ component: 'worker' });
  const payments = instrumentPayments(
    options.payments ??
      new SimulatedPaymentGateway({
        declineAbove: config.PAYMENT_DECLINE_ABOVE,
        latencyMs: config.PAYMENT_LATENCY_MS,
      }),
  );

  const handle = async (message: IncomingMessage): Promise<void> => {
    let envelope;
    try {
      envelope = parseOrderCreated(message.content);
    } catch (err) {
      throw new PermanentMessageError(
        `Malformed OrderCreated message: ${(err as Error).message.slice(0, 300)}`,
        {
          cause: err,
        },
      );
    }
    const header = message.headers['x-correlation-id'];
    const correlationId = typeof header === 'string' && header ? header : envelope.id;
    const log = logger.child({
      order_id: envelope.order_id,
      message_id: envelope.id,
      correlation_id: correlationId,
    });
    try {
      const steps: CompletedStep[] = [];
      const received = message.headers.traceparent as string | undefined;
      const status = await processOrder({ db: traceSteps(db, steps), payments }, envelope.order_id, {
        messageId: envelope.id,
        correlationId,
        // Read when a step writes its outbox row: with tracing on, the message continues from that step's span.
        get traceparent() {
          return currentTraceparent() ?? received;
        },
        steps,
      });
      log.info({ status }, 'order processed');
      recordOrderSteps(steps);
    } catch (err) {
      if (isTransientDbError(err)) log.warn({ err }, 'database unavailable; order will be retried');
      throw err;
    }
  };

  const consumer = new QueueConsumer(amqp, topology, {
    queue: 'workerOrderCreated',
    prefetch: config.AMQP_PREFETCH,
    handler: handle,
    logger,
  });
  instrumentConsumer(consumer, 'workerOrderCreated');
  consumer.start();
  return { consumer, stop: () => consumer.stop() };
}
