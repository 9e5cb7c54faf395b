import { runProcess } from '../lib/run-process.ts';
import { closeServices, connectServices } from '../lib/services.ts';
import { startNotifier } from './notifier.ts';

runProcess('notifier', async (config, logger) => {
  const services = await connectServices(config, logger, { name: 'comanda-notifier' });
  const notifier = await startNotifier(services);
  logger.info('notifier started');
  return {
    async stop() {
      await notifier.stop();
      await closeServices(services);
    },
  };
});
