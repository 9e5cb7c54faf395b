import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { loadConfig } from '../lib/config.ts';
import { migrateLatest } from '../lib/db.ts';
import { createLogger } from '../lib/logger.ts';
import { connectServices, destroyScratchRun } from '../lib/services.ts';
import { demoToken, drainDatabase, scratchRun, seedProducts, type Target } from './pipeline.ts';
import { freePort, freePortRange, ROOT, type BenchProcess } from './processes.ts';

/**
 * Runs `npm start` itself (scripts/start.ts: the supervisor with the api, WORKERS workers and the notifier as
 * processes of their own) against a scratch database, AMQP prefix and Redis prefix, with its defaults but for
 * `overrides`. The children are found from the supervisor's `child started` lines, so a restarted one is followed.
 */
export async function startSupervisedPipeline(options: {
  overrides: Record<string, string>;
  /** Node options of the supervisor, which its children inherit (e.g. --cpu-prof). */
  nodeArgs?: string[] | undefined;
}): Promise<Target> {
  const apiPort = await freePort();
  const metricsBase = await freePortRange(16);
  const { logDir, env } = scratchRun({
    LOG_LEVEL: 'info',
    PORT: String(apiPort),
    METRICS_PORT: String(metricsBase),
    ...options.overrides,
  });
  const config = loadConfig(env);
  const services = await connectServices(config, createLogger({ level: 'warn', name: 'comanda-bench' }), {
    createDatabase: true,
    name: 'comanda-bench',
  });
  await migrateLatest(services.db);
  const productIds = await seedProducts(services.db);

  const log = createWriteStream(path.join(logDir, 'npm-start.log'));
  const supervisor = spawn(
    process.execPath,
    [...(options.nodeArgs ?? []), '--import', 'tsx', 'scripts/start.ts'],
    {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  supervisor.stderr.pipe(log);
  const exited = once(supervisor, 'exit').then(([code]) => code as number | null);
  const children = new Map<string, BenchProcess>();
  let listening = false;
  createInterface({ input: supervisor.stdout }).on('line', (line) => {
    log.write(line + '\n');
    if (line.includes('"child started"')) {
      const entry = JSON.parse(line) as { role: string; index: number; pid: number };
      const name = entry.role === 'worker' ? `worker-${entry.index + 1}` : entry.role;
      children.set(name, { name, pid: entry.pid, child: supervisor, logFile: log.path as string, exited });
    }
    if (line.includes('comanda is running')) listening = true;
  });
  const self: BenchProcess = {
    name: 'supervisor',
    pid: supervisor.pid!,
    child: supervisor,
    logFile: '',
    exited,
  };
  const deadline = Date.now() + 60_000;
  while (!listening) {
    if (Date.now() > deadline || supervisor.exitCode !== null) {
      supervisor.kill('SIGKILL');
      await destroyScratchRun(services);
      throw new Error(`npm start did not come up; see ${logDir}/npm-start.log`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const workers = [...children.keys()].filter((n) => n.startsWith('worker')).length;
  const url = `http://127.0.0.1:${apiPort}`;
  const tokens = await Promise.all(Array.from({ length: 16 }, (_, i) => demoToken(url, `bench-${i}`)));
  let stopped = false;
  return {
    kind: 'own',
    url,
    tokens,
    productIds,
    db: services.db,
    apiPoolMax: config.DATABASE_POOL_MAX,
    logDir,
    processes: () => [self, ...children.values()],
    metricsUrls: () => [
      `${url}/metrics`,
      ...Array.from({ length: workers + 2 }, (_, i) => `http://127.0.0.1:${metricsBase + i}/metrics`),
    ],
    workerCount: () => workers,
    setWorkers: (n) =>
      n === workers
        ? Promise.resolve()
        : Promise.reject(new Error(`npm start runs ${workers} workers here (set --env WORKERS=${n})`)),
    drain: (timeoutMs) => drainDatabase(services.db, timeoutMs),
    async stop() {
      if (stopped) return;
      stopped = true;
      supervisor.kill('SIGTERM');
      const timer = setTimeout(() => supervisor.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
      await destroyScratchRun(services);
    },
  };
}
