import { serveMetrics, watchQueues } from '../lib/metrics.ts';
import { runProcess } from '../lib/run-process.ts';
import { closeServices, connectServices } from '../lib/services.ts';
import { startAnalytics } from './consumer.ts';

runProcess('analytics', async (config, logger) => {
  const services = await connectServices(config, logger, { name: 'comanda-analytics' });
  const analytics = startAnalytics(services);
  const metrics =
    config.METRICS_PORT === undefined
      ? undefined
      : await serveMetrics({ port: config.METRICS_PORT, host: config.HOST });
  if (metrics) {
    watchQueues(services.amqp, services.topology);
    logger.info({ url: metrics.url }, 'metrics listening');
  }
  return {
    async stop() {
      await analytics.stop();
      await metrics?.stop();
      await closeServices(services);
    },
  };
});
