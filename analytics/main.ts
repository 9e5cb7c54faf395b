import { serveMetricsIfConfigured } from '../lib/metrics.ts';
import { runProcess } from '../lib/run-process.ts';
import { closeServices, connectServices } from '../lib/services.ts';
import { startAnalytics } from './reader.ts';

runProcess('analytics', async (config, logger) => {
  // Analytics reads PostgreSQL only (the feed, ADR 0016): it starts and counts while RabbitMQ is away.
  const services = await connectServices(config, logger, { name: 'comanda-analytics', broker: false });
  const analytics = startAnalytics(services);
  const metrics = await serveMetricsIfConfigured(config, logger);
  return {
    async stop() {
      await analytics.stop();
      await metrics?.stop();
      await closeServices(services);
    },
  };
});
