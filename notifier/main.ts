import { observeWebhookAttempts, serveMetricsIfConfigured, watchWebhookDeliveries } from '../lib/metrics.ts';
import { runProcess } from '../lib/run-process.ts';
import { closeServices, connectServices } from '../lib/services.ts';
import { startNotifier } from './notifier.ts';

runProcess('notifier', async (config, logger) => {
  const services = await connectServices(config, logger, { name: 'comanda-notifier' });
  const notifier = await startNotifier(services);
  observeWebhookAttempts(notifier);
  const metrics = await serveMetricsIfConfigured(config, logger, () => {
    watchWebhookDeliveries(services.db);
  });
  logger.info('notifier started');
  return {
    async stop() {
      await notifier.stop();
      await metrics?.stop();
      await closeServices(services);
    },
  };
});
