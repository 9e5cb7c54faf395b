import { PermanentMessageError } from '../lib/errors.ts';
import { MessageBatcher } from '../lib/amqp/batcher.ts';
import { QueueConsumer, type IncomingMessage } from '../lib/amqp/consumer.ts';
import { ConfirmPublisher } from '../lib/amqp/publisher.ts';
import type { QueueKey } from '../lib/amqp/topology.ts';
import { isTransientDbError } from '../lib/db.ts';
import type { Logger } from '../lib/logger.ts';
import { parseEnvelope, type Envelope } from '../lib/messages.ts';
import type { Services } from '../lib/services.ts';
import { cancelOverduePayments } from '../orders/cancel-order.ts';
import type { OrderDeps, StepContext } from '../orders/order-steps.ts';
import { SimulatedPaymentGateway, type PaymentGateway } from '../orders/payment-gateway.ts';
import { processOrder, processOrders, type OrderJob } from '../orders/process-order.ts';
import { payOrder, refundOrder } from '../orders/take-payment.ts';
import { relayFor } from '../relay/outbox-relay.ts';
import { webhookDeliveriesHook } from '../webhooks/deliveries.ts';
import { currentTraceparent, tracingEnabled } from '../lib/telemetry.ts';
import { instrumentConsumer, instrumentPayments, recordOrderSteps, traceSteps } from './instrumentation.ts';

export interface RunningWorker {
  /** The OrderCreated consumer. */
  consumer: QueueConsumer;
  /** Where the OrderCreated deliveries are gathered into batches. */
  newOrders: MessageBatcher;
  /** The consumer of the lifecycle's commands (payments of pay-later orders, refunds). */
  commands: QueueConsumer;
  /** Stops taking messages and waits for the ones in hand to commit and be acked. */
  stop(): Promise<void>;
}

type Handler = (
  envelope: Envelope<Record<string, unknown>>,
  ctx: StepContext & { messageId: string },
) => Promise<unknown>;

/**
 * The worker: drives each new order to its first outcome (OrderCreated), charges pay-later orders and refunds
 * cancelled ones (the order commands), and cancels orders whose payment window has passed (a sweep).
 */
export function startWorker(services: Services, options: { payments?: PaymentGateway } = {}): RunningWorker {
  const { config, db, amqp, topology } = services;
  const logger = services.logger.child({ component: 'worker' });
  const deps: OrderDeps = {
    db,
    hooks: [webhookDeliveriesHook],
    payments: instrumentPayments(
      options.payments ??
        new SimulatedPaymentGateway({
          declineAbove: config.PAYMENT_DECLINE_ABOVE,
          latencyMs: config.PAYMENT_LATENCY_MS,
        }),
    ),
    paymentWindowS: config.PAYMENT_WINDOW_S,
  };
  // With tracing on, each transaction a message's handling runs is a span named after the step it committed.
  const traced = (ctx: StepContext): OrderDeps => ({ ...deps, db: traceSteps(db, ctx.steps ?? []) });

  // The worker publishes what its steps commit through a relay of its own, kicked after each message: no NOTIFY
  // round through PostgreSQL, and no wait for another process's relay.
  const publisher = config.RELAY_ENABLED ? new ConfirmPublisher(amqp, topology) : undefined;
  publisher?.start();
  const relay = publisher ? relayFor(services, publisher, { housekeeping: false }) : undefined;
  relay?.start();

  const consume = (queue: QueueKey, handlers: Record<string, Handler>, batcher?: MessageBatcher) => {
    const consumer = new QueueConsumer(amqp, topology, {
      queue,
      prefetch: config.AMQP_PREFETCH,
      handler: async (message) => {
        try {
          await handleEnvelope(message, handlers, logger);
        } finally {
          relay?.kick();
        }
      },
      batcher,
      logger,
    });
    instrumentConsumer(consumer, queue);
    consumer.start();
    return consumer;
  };

  // New orders are processed in batches of the deliveries in hand (one transaction per step for the batch); a
  // batch that fails is processed one order at a time, each resuming after whatever step committed. With tracing
  // on they are processed one at a time, so each order's steps are spans under its own message's span.
  const newOrders = new MessageBatcher({
    handler: async (messages) => {
      try {
        const jobs = messages.map((m) => orderJob(m, 'OrderCreated'));
        const statuses = await processOrders(deps, jobs);
        for (const [i, { orderId, ctx }] of jobs.entries()) {
          recordOrderSteps(ctx.steps ?? []);
          logger.info(
            {
              order_id: orderId,
              message_id: ctx.messageId,
              correlation_id: ctx.correlationId,
              status: statuses[i],
            },
            'message processed',
          );
        }
      } finally {
        relay?.kick();
      }
    },
    failsEveryMessage: isTransientDbError,
    logger,
  });
  const consumer = consume(
    'workerOrderCreated',
    {
      OrderCreated: async (envelope, ctx) => {
        const status = await processOrder(traced(ctx), envelope.aggregate_id, ctx);
        recordOrderSteps(ctx.steps ?? []);
        return status;
      },
    },
    tracingEnabled() ? undefined : newOrders,
  );
  const commands = consume('workerOrderCommands', {
    PaymentRequested: async (envelope, ctx) => {
      const token = envelope.data.token;
      if (typeof token !== 'string') throw new PermanentMessageError('PaymentRequested without a card token');
      const status = await payOrder(traced(ctx), envelope.aggregate_id, token, ctx);
      recordOrderSteps(ctx.steps ?? []);
      return status;
    },
    RefundRequested: (envelope, ctx) => {
      const { reason } = envelope.data;
      return refundOrder(
        traced(ctx),
        envelope.aggregate_id,
        typeof reason === 'string' ? reason : 'order cancelled',
        ctx,
      );
    },
  });

  // The payment window's timer is each order's own payment_due_at: any worker, started at any time, sweeps it.
  let sweeping: Promise<unknown> = Promise.resolve();
  const sweep = setInterval(() => {
    sweeping = cancelOverduePayments(deps).then(
      (n) => {
        if (!n) return;
        logger.info({ cancelled: n }, 'orders cancelled: payment window passed');
        relay?.kick();
      },
      (err: unknown) => logger.warn({ err }, 'payment window sweep failed; will try again'),
    );
  }, config.PAYMENT_SWEEP_INTERVAL_MS);
  sweep.unref();

  return {
    consumer,
    newOrders,
    commands,
    async stop() {
      clearInterval(sweep);
      await Promise.all([consumer.stop(), commands.stop(), sweeping]);
      // What the last messages committed goes out before the relay stops (else the next relay's sweep sends it).
      await relay?.drain();
      await relay?.stop();
      if (publisher) amqp.remove(publisher);
    },
  };
}

/** Reads a delivery of `type` into an order job; a malformed one is a permanent failure. */
function orderJob(message: IncomingMessage, type: string): OrderJob & { ctx: { messageId: string } } {
  const envelope = readEnvelope(message, [type]);
  return {
    orderId: envelope.aggregate_id,
    ctx: {
      messageId: envelope.id,
      correlationId: correlationIdOf(message, envelope),
      // A batch runs in no message's span: each order's messages continue the trace its own message came with.
      traceparent: message.headers.traceparent as string | undefined,
      steps: [],
    },
  };
}

function readEnvelope(message: IncomingMessage, types: string[]): Envelope<Record<string, unknown>> {
  try {
    return parseEnvelope(message.content, types);
  } catch (err) {
    throw new PermanentMessageError(
      `Malformed ${types.join('/')} message: ${(err as Error).message.slice(0, 300)}`,
      { cause: err },
    );
  }
}

function correlationIdOf(message: IncomingMessage, envelope: Envelope<unknown>): string {
  const header = message.headers['x-correlation-id'];
  return typeof header === 'string' && header ? header : envelope.id;
}

async function handleEnvelope(
  message: IncomingMessage,
  handlers: Record<string, Handler>,
  logger: Logger,
): Promise<void> {
  const envelope = readEnvelope(message, Object.keys(handlers));
  const correlationId = correlationIdOf(message, envelope);
  const log = logger.child({
    order_id: envelope.aggregate_id,
    message_id: envelope.id,
    message_type: envelope.type,
    correlation_id: correlationId,
  });
  try {
    const received = message.headers.traceparent as string | undefined;
    const status = await handlers[envelope.type](envelope, {
      messageId: envelope.id,
      correlationId,
      // Read when a step writes its outbox row: with tracing on, the message continues from that step's span.
      get traceparent() {
        return currentTraceparent() ?? received;
      },
      steps: [],
    });
    log.info({ status }, 'message processed');
  } catch (err) {
    if (isTransientDbError(err)) log.warn({ err }, 'database unavailable; message will be retried');
    throw err;
  }
}
