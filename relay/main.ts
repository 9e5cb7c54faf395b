import { ConfirmPublisher } from '../lib/amqp/publisher.ts';
import { runProcess } from '../lib/run-process.ts';
import { closeServices, connectServices } from '../lib/services.ts';
import { OutboxRelay } from './outbox-relay.ts';

/** The outbox relay on its own, for deployments that scale it apart from the API (RELAY_ENABLED=false there). */
runProcess('relay', async (config, logger) => {
  const services = await connectServices(config, logger, { name: 'comanda-relay' });
  const publisher = new ConfirmPublisher(services.amqp, services.topology);
  publisher.start();
  const relay = new OutboxRelay({
    db: services.db,
    publisher,
    topology: services.topology,
    logger: logger.child({ component: 'relay' }),
    batchSize: config.RELAY_BATCH_SIZE,
    sweepIntervalMs: config.RELAY_SWEEP_INTERVAL_MS,
    coalesceMs: config.RELAY_COALESCE_MS,
    housekeeping: {
      intervalMs: config.HOUSEKEEPING_INTERVAL_MS,
      outboxRetentionHours: config.OUTBOX_RETENTION_HOURS,
      deliveryRetentionHours: config.WEBHOOK_DELIVERY_RETENTION_HOURS,
    },
  });
  relay.start();
  return {
    async stop() {
      await relay.stop();
      await closeServices(services);
    },
  };
});
