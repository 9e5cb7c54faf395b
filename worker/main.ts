import { serveMetricsIfConfigured, watchOutbox, watchQueues } from '../lib/metrics.ts';
import { runProcess } from '../lib/run-process.ts';
import { closeServices, connectServices } from '../lib/services.ts';
import { countRelayBatches } from '../relay/outbox-relay.ts';
import { startWorker } from './worker.ts';

runProcess('worker', async (config, logger) => {
  const services = await connectServices(config, logger, { name: 'comanda-worker' });
  const worker = startWorker(services);
  const metrics = await serveMetricsIfConfigured(config, logger, () => {
    watchQueues(services.amqp, services.topology);
    watchOutbox(services.db);
    countRelayBatches();
  });
  return {
    async stop() {
      await worker.stop();
      await metrics?.stop();
      await closeServices(services);
    },
  };
});
