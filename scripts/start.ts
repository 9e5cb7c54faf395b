import { startAnalytics } from '../analytics/consumer.ts';
import { startApi } from '../api/server.ts';
import { seedDemoProducts } from '../db/seeds/demo-products.ts';
import { migrateLatest } from '../lib/db.ts';
import { observeWebhookAttempts } from '../lib/metrics.ts';
import { runProcess } from '../lib/run-process.ts';
import { closeServices, connectServices, withOwnPool } from '../lib/services.ts';
import { startNotifier } from '../notifier/notifier.ts';
import { startWorker } from '../worker/worker.ts';

/**
 * `npm start`: the whole pipeline in one process for a newcomer — migrations, the demo seed, the API with its
 * relay, the worker, the notifier and the analytics consumer. The same code as the separate processes.
 */
runProcess('all-in-one', async (config, logger) => {
  const services = await connectServices(config, logger, { createDatabase: true, name: 'comanda' });
  const applied = await migrateLatest(services.db);
  if (applied.length) logger.info({ applied }, 'migrations applied');
  if (config.SEED_DEMO) {
    const added = await seedDemoProducts(services.db);
    if (added) logger.info({ added }, 'demo products seeded');
  }
  // The notifier first: it mirrors OPS_WEBHOOK_URL into an endpoint before the first order can need it.
  const notifierServices = withOwnPool(services, 'comanda-notifier');
  const workerServices = withOwnPool(services, 'comanda-worker');
  const analyticsServices = withOwnPool(services, 'comanda-analytics');
  const notifier = await startNotifier(notifierServices);
  observeWebhookAttempts(notifier);
  const api = await startApi(services);
  const worker = startWorker(workerServices);
  const analytics = startAnalytics(analyticsServices);
  logger.info(`comanda is running: ${api.url} (try: curl ${api.url}/login-demo)`);
  return {
    async stop() {
      await api.stop();
      await worker.stop();
      await notifier.stop();
      await analytics.stop();
      await Promise.all([
        workerServices.db.destroy(),
        notifierServices.db.destroy(),
        analyticsServices.db.destroy(),
      ]);
      await closeServices(services);
    },
  };
});
