import { runProcess } from '../lib/run-process.ts';
import { closeServices, connectServices } from '../lib/services.ts';
import { startApi } from './server.ts';

runProcess('api', async (config, logger) => {
  const services = await connectServices(config, logger, { name: 'comanda-api' });
  const api = await startApi(services);
  return {
    url: api.url,
    async stop() {
      await api.stop();
      await closeServices(services);
    },
  };
});
