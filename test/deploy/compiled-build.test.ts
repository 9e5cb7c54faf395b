import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';
import { DEMO_PRODUCTS, seedDemoProducts } from '../../db/seeds/demo-products.ts';
import { createDb } from '../../lib/db.ts';
import { buildProduct, waitForProcessed } from '../helpers/factories.ts';
import { getJson, postOrder } from '../helpers/http.ts';
import { cleanupRun, isolatedEnv, until } from '../helpers/pipeline.ts';
import { alive, processTree } from '../helpers/processes.ts';
import { scriptArgv } from './deploy-files.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);

/** An OTLP/HTTP receiver standing in for Jaeger: it keeps the body of every export it is sent. */
function startOtlpReceiver(): Promise<{ server: Server; url: string; bodies: Buffer[] }> {
  const bodies: Buffer[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/v1/traces') bodies.push(Buffer.concat(chunks));
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, bodies }),
    ),
  );
}

/** Starts a package script's command as the image does (plain node, no npm in between), collecting its output. */
async function startScript(script: string, env: Record<string, string>) {
  const [command, ...args] = await scriptArgv(script);
  const child = spawn(command === 'node' ? process.execPath : command, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  createInterface({ input: child.stdout }).on('line', (l) => lines.push(l));
  createInterface({ input: child.stderr }).on('line', (l) => lines.push(l));
  const exit = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { child, lines, exit };
}

async function stop(p: { child: ChildProcess; exit: Promise<number | null> }): Promise<number | null> {
  p.child.kill('SIGTERM');
  return p.exit;
}

test.before(async () => {
  // What CI and the Dockerfile do before they run anything compiled.
  await run('npm', ['run', 'build'], { cwd: ROOT });
});

// Serial, as every test of this file: `npm start` compiles dist/ afresh, which the other tests run.
test.serial(
  'when a newcomer runs npm start on an empty machine, then it compiles, creates and seeds the database, an order posted with a demo token is CONFIRMED, and Ctrl-C stops every process cleanly',
  async (t) => {
    t.timeout(90_000);
    const env = isolatedEnv({ LOG_LEVEL: 'info', PORT: '0' });
    // A process group of its own, as a terminal gives it, so Ctrl-C (SIGINT to the group) reaches it as it would.
    const npm = spawn('npm', ['start'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
      detached: true,
    });
    const exit = new Promise<number | null>((resolve) => npm.once('exit', resolve));
    const stopped = new Map<string, number[]>();
    let running: { pid: number; argv: string[] }[] = [];
    let url: string | undefined;
    createInterface({ input: npm.stdout }).on('line', (line) => {
      if (!line.startsWith('{')) return; // npm's own lines
      const entry = JSON.parse(line) as { msg: string; role?: string; codes?: number[] };
      if (entry.msg === 'role stopped') stopped.set(entry.role!, entry.codes!);
      url ??= /comanda is running: (http:\/\/[^ ]+)/.exec(entry.msg)?.[1];
    });
    try {
      await until(() => url !== undefined, 'comanda to say where it runs', 60_000);
      running = processTree(npm.pid!);
      const comanda = running.filter((p) => p.argv.some((a) => /^(.*\/)?dist\/\S+\.js$/.test(a)));
      t.is(comanda.length, 5, 'the supervisor, the api, a worker, the notifier and analytics run from dist/');
      t.deepEqual(
        running.filter((p) => p.argv.some((a) => a.includes('tsx'))),
        [],
        'nothing runs through the TypeScript loader',
      );

      const products = await getJson(url!, '/products');
      t.deepEqual(
        products.body.data.map((p: { sku: string }) => p.sku).sort(),
        DEMO_PRODUCTS.map((p) => p.sku).sort(),
      );
      const { body: login } = await getJson(url!, '/login-demo');
      const order = await postOrder(url!, login.token, { items: [{ sku: 'CAFE-500', quantity: 1 }] });
      t.is(order.status, 201);
      let status = '';
      await until(async () => {
        status = (await getJson(url!, `/orders/${order.body.id}`, login.token)).body.status;
        return status === 'CONFIRMED' || status === 'REJECTED';
      }, 'the order to be final');
      t.is(status, 'CONFIRMED');

      process.kill(-npm.pid!, 'SIGINT');
      await exit;
      await until(() => running.every((p) => !alive(p.pid)), 'every process to end', 30_000);
      t.deepEqual(
        Object.fromEntries(stopped),
        { api: [0], worker: [0], analytics: [0], notifier: [0] },
        'each role stopped on its own, exit code 0',
      );
    } finally {
      // The supervisor's children have process groups of their own: end each one, not only npm's group.
      for (const p of [...processTree(npm.pid!), ...running]) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          // Gone already.
        }
      }
      await exit;
      const db = createDb({ url: env.DATABASE_URL, poolMax: 1, statementTimeoutMs: 0 });
      // Seeding again changes nothing: the demo catalogue is only ever added, never reset.
      const again = await seedDemoProducts(db).catch(() => -1);
      const stock = await db('products')
        .where({ sku: 'CAFE-500' })
        .first()
        .catch(() => undefined);
      await db.destroy();
      t.is(again, 0);
      t.is(stock?.stock_available, DEMO_PRODUCTS.find((p) => p.sku === 'CAFE-500')!.stock_available - 1);
      await cleanupRun(env);
    }
  },
);

test.serial(
  'when the build is compiled, then plain node runs the api and a worker: /healthz answers and an order is CONFIRMED, traced to OTLP',
  async (t) => {
    t.timeout(90_000);
    for (const script of ['start:prod:api', 'start:prod:worker', 'migrate:prod']) {
      t.false((await scriptArgv(script)).includes('tsx'), `${script} needs no loader`);
    }
    const otlp = await startOtlpReceiver();
    t.teardown(() => otlp.server.close());
    const env = isolatedEnv({
      LOG_LEVEL: 'info',
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
      // Export at once rather than every 5 s.
      OTEL_BSP_SCHEDULE_DELAY: '100',
    });
    const migrate = await run(process.execPath, (await scriptArgv('migrate:prod')).slice(1), {
      cwd: ROOT,
      env: { PATH: process.env.PATH, ...env },
    });
    t.regex(migrate.stdout, /applied: .*20261201000000_webhook_delivery_traceparent\.ts/);

    const api = await startScript('start:prod:api', env);
    const worker = await startScript('start:prod:worker', env);
    const db = createDb({ url: env.DATABASE_URL, poolMax: 2, statementTimeoutMs: 0 });
    try {
      let url: string | undefined;
      await until(
        () => {
          const line = api.lines.find((l) => l.includes('api listening'));
          url = line ? (JSON.parse(line) as { url: string }).url : undefined;
          return url !== undefined;
        },
        'the compiled api to listen',
        45_000,
      );
      const health = await getJson(url!, '/healthz');
      t.is(health.status, 200);

      const product = await buildProduct(db);
      const { body: login } = await getJson(url!, '/login-demo');
      const order = await postOrder(url!, login.token, { items: [{ product_id: product.id, quantity: 1 }] });
      t.is(order.status, 201);
      t.is(await waitForProcessed(db, order.body.id as string, 30_000), 'CONFIRMED');

      // Both processes traced the order and exported it over OTLP, with their service names.
      const exported = () => Buffer.concat(otlp.bodies).toString('latin1');
      await until(
        () => exported().includes('comanda-api') && exported().includes('comanda-worker'),
        'spans of both processes at the OTLP endpoint',
      );
      const events = await db('order_events')
        .where({ order_id: order.body.id as string })
        .orderBy('id');
      const traceIds = new Set(events.map((e: { data: { trace_id?: string } }) => e.data.trace_id));
      t.is(traceIds.size, 1, 'every step of the order carries the same trace id');
      t.regex([...traceIds][0] ?? '', /^[0-9a-f]{32}$/);

      t.is(await stop(worker), 0);
      t.is(await stop(api), 0);
    } catch (err) {
      t.log([...api.lines.slice(-20), ...worker.lines.slice(-20)].join('\n'));
      throw err;
    } finally {
      api.child.kill('SIGKILL');
      worker.child.kill('SIGKILL');
      await Promise.all([api.exit, worker.exit]);
      await db.destroy();
      await cleanupRun(env);
    }
  },
);

test.serial(
  'when the build is compiled, then every entry point the scripts name exists in dist/',
  async (t) => {
    for (const script of [
      'start:prod',
      'start:prod:api',
      'start:prod:worker',
      'start:prod:notifier',
      'start:prod:relay',
    ]) {
      const argv = await scriptArgv(script);
      const entry = argv.at(-1)!;
      t.regex(entry, /^dist\/.+\.js$/);
      await t.notThrowsAsync(run(process.execPath, ['--check', entry], { cwd: ROOT }), entry);
    }
    t.true(
      existsSync(new URL('../../dist/portal/index.html', import.meta.url)),
      'the portal is served from dist/',
    );
  },
);
