import { observeWebhookAttempts, serveMetrics, watchWebhookDeliveries } from '../lib/metrics.ts';
import { runProcess } from '../lib/run-process.ts';
import { closeServices, connectServices } from '../lib/services.ts';
import { startNotifier } from './notifier.ts';

runProcess('notifier', async (config, logger) => {
  const services = await connectServices(config, logger, { name: 'comanda-notifier' });
  const notifier = await startNotifier(services);
  observeWebhookAttempts(notifier);
  // Like the worker: a metrics server only when METRICS_PORT is set.
  const metrics =
    config.METRICS_PORT === undefined
      ? undefined
      : await serveMetrics({ port: config.METRICS_PORT, host: config.HOST });
  if (metrics) {
    watchWebhookDeliveries(services.db);
    logger.info({ url: metrics.url }, 'metrics listening');
  }
  logger.info('notifier started');
  return {
    async stop() {
      await notifier.stop();
      await metrics?.stop();
      await closeServices(services);
    },
  };
});
