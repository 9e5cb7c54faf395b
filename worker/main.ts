import { runProcess } from '../lib/run-process.ts';
import { closeServices, connectServices } from '../lib/services.ts';
import { startWorker } from './worker.ts';

runProcess('worker', async (config, logger) => {
  const services = await connectServices(config, logger, { name: 'comanda-worker' });
  const worker = startWorker(services);
  return {
    async stop() {
      await worker.stop();
      await closeServices(services);
    },
  };
});
