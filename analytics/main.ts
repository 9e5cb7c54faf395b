import { serveMetricsIfConfigured, watchQueues } from '../lib/metrics.ts';
import { runProcess } from '../lib/run-process.ts';
import { closeServices, connectServices } from '../lib/services.ts';
import { startAnalytics } from './consumer.ts';

runProcess('analytics', async (config, logger) => {
  const services = await connectServices(config, logger, { name: 'comanda-analytics' });
  const analytics = startAnalytics(services);
  const metrics = await serveMetricsIfConfigured(config, logger, () => {
    watchQueues(services.amqp, services.topology);
  });
  return {
    async stop() {
      await analytics.stop();
      await metrics?.stop();
      await closeServices(services);
    },
  };
});
