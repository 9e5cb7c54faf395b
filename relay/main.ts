import { ConfirmPublisher } from '../lib/amqp/publisher.ts';
import { runProcess } from '../lib/run-process.ts';
import { closeServices, connectServices } from '../lib/services.ts';
import { relayFor } from './outbox-relay.ts';

/** The outbox relay on its own, for deployments that scale it apart from the API (RELAY_ENABLED=false there). */
runProcess('relay', async (config, logger) => {
  const services = await connectServices(config, logger, { name: 'comanda-relay' });
  const publisher = new ConfirmPublisher(services.amqp, services.topology);
  publisher.start();
  const relay = relayFor(services, publisher, { housekeeping: true });
  relay.start();
  return {
    async stop() {
      await relay.stop();
      await closeServices(services);
    },
  };
});
