import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { loadConfig } from '../lib/config.ts';
import { migrateLatest } from '../lib/db.ts';
import { createLogger } from '../lib/logger.ts';
import { connectServices, destroyScratchRun } from '../lib/services.ts';
import { demoToken, drainDatabase, scratchRun, seedProducts, type Target } from './pipeline.ts';
import { freePort, freePortRange, ROOT, type BenchProcess } from './processes.ts';

const run = promisify(execFile);

/** A package script's command line, as package.json has it (`node …`). */
async function scriptArgv(name: string): Promise<string[]> {
  const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  };
  return pkg.scripts[name].split(/\s+/);
}

/**
 * Runs `npm start` itself (scripts/start.ts: the supervisor with the api, WORKERS workers and the notifier as
 * processes of their own) against a scratch database, AMQP prefix and Redis prefix, with its defaults but for
 * `overrides`. Its output goes straight to a log file (read line by line here, it cost the load generator's process
 * a tenth of its CPU); its children are found in /proc, so a restarted one is followed.
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

  // What `npm start` runs: it compiles the sources into dist/, then runs `start:prod`, the compiled supervisor.
  await run('npm', ['run', 'compile', '--silent'], { cwd: ROOT });
  const [, ...startProd] = await scriptArgv('start:prod');
  const logFile = path.join(logDir, 'npm-start.log');
  const log = openSync(logFile, 'a');
  const supervisor = spawn(process.execPath, [...(options.nodeArgs ?? []), ...startProd], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  const exited = once(supervisor, 'exit').then(([code]) => code as number | null);
  const self: BenchProcess = {
    name: 'supervisor',
    pid: supervisor.pid!,
    child: supervisor,
    logFile: '',
    exited,
  };
  const url = `http://127.0.0.1:${apiPort}`;
  const deadline = Date.now() + 60_000;
  while (!(await ready(url))) {
    if (Date.now() > deadline || supervisor.exitCode !== null) {
      supervisor.kill('SIGKILL');
      await destroyScratchRun(services);
      throw new Error(`npm start did not come up; see ${logDir}/npm-start.log`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const processes = () =>
    childrenFromProc(self.pid).map((c) => ({ ...c, child: supervisor, logFile, exited }));
  const workers = processes().filter((p) => p.name.startsWith('worker')).length;
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
    processes: () => [self, ...processes()],
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

async function ready(url: string): Promise<boolean> {
  try {
    return (await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1000) })).ok;
  } catch {
    return false;
  }
}

/**
 * The supervisor's children as /proc shows them: each one's role from the entry file it runs, workers numbered in the
 * order they started.
 */
function childrenFromProc(supervisorPid: number): { name: string; pid: number }[] {
  const found: { role: string; pid: number; started: number }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The fields after the command name (in parentheses): state, ppid, …, starttime (the 22nd field).
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) !== supervisorPid) continue;
      const main = readFileSync(`/proc/${entry}/cmdline`, 'utf8')
        .split('\0')
        .find((arg) => /\/(api|worker|notifier|analytics)\/main\.[jt]s$/.test(arg));
      if (main)
        found.push({
          role: path.basename(path.dirname(main)),
          pid: Number(entry),
          started: Number(fields[19]),
        });
    } catch {
      // It exited while we looked.
    }
  }
  let worker = 0;
  return found
    .sort((a, b) => a.started - b.started || a.pid - b.pid)
    .map(({ role, pid }) => ({ name: role === 'worker' ? `worker-${++worker}` : role, pid }));
}
