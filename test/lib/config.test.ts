import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import test from 'ava';
import amqp from 'amqplib';
import { Redis } from 'ioredis';
import { ConfigError, defaultDatabaseUrl, loadConfig } from '../../lib/config.ts';
import { buildProduct } from '../helpers/factories.ts';
import { postOrder } from '../helpers/http.ts';
import { baseUrls, isolatedEnv, startPipeline } from '../helpers/pipeline.ts';

const run = promisify(execFile);

test("when PostgreSQL's local socket exists, then the default database is reached through it, else over TCP on 127.0.0.1", (t) => {
  t.is(defaultDatabaseUrl(true), 'postgres://postgres@%2Fvar%2Frun%2Fpostgresql/comanda');
  t.is(defaultDatabaseUrl(false), 'postgres://postgres@127.0.0.1:5432/comanda');
});

test('when the environment is empty, then the defaults point at the local services', (t) => {
  const config = loadConfig({});

  t.is(config.PORT, 3000);
  t.is(config.DATABASE_URL, defaultDatabaseUrl());
  t.is(config.AMQP_URL, 'amqp://guest:guest@127.0.0.1:5672');
  t.is(config.REDIS_URL, 'redis://127.0.0.1:6379');
  t.true(config.DEMO_LOGIN);
});

test('when settings are bad, then the error names every bad key', (t) => {
  const err = t.throws(() => loadConfig({ PORT: 'eighty', AMQP_URL: 'http://x', AMQP_PREFETCH: '0' }), {
    instanceOf: ConfigError,
  });

  t.regex(err.message, /PORT/);
  t.regex(err.message, /AMQP_URL/);
  t.regex(err.message, /AMQP_PREFETCH/);
});

test('when NODE_ENV=production, then a JWT secret is required and the demo login is off', (t) => {
  t.throws(() => loadConfig({ NODE_ENV: 'production' }), { message: /JWT_SECRET/ });
  const config = loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(40) });
  t.false(config.DEMO_LOGIN);
});

async function startProcess(env: Record<string, string>) {
  return run(process.execPath, ['--import', 'tsx', 'api/main.ts'], {
    env: { PATH: process.env.PATH, ...isolatedEnv(), LOG_LEVEL: 'fatal', ...env },
    timeout: 30_000,
  }).then(
    () => ({ code: 0, stderr: '' }),
    (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
  );
}

test('when PostgreSQL cannot be reached, then the process exits with one line naming it, its URL and how to start it', async (t) => {
  const res = await startProcess({ DATABASE_URL: 'postgres://postgres:s3cret@127.0.0.1:1/comanda' });

  t.is(res.code, 1);
  t.regex(res.stderr, /PostgreSQL is not reachable at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/comanda/);
  t.regex(res.stderr, /start it/);
  t.false(res.stderr.includes('s3cret'));
  t.false(/\n\s+at /.test(res.stderr), 'no stack trace');
});

test('when RabbitMQ cannot be reached, then the process exits with one line naming it', async (t) => {
  const res = await startProcess({
    DATABASE_URL: baseUrls().postgres,
    AMQP_URL: 'amqp://guest:guest@127.0.0.1:1',
  });

  t.is(res.code, 1);
  t.regex(res.stderr, /RabbitMQ is not reachable at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:1/);
  t.false(/\n\s+at /.test(res.stderr), 'no stack trace');
});

test('when the database does not exist yet, then the process says to run the migrations', async (t) => {
  const res = await startProcess({});

  t.is(res.code, 1);
  t.regex(res.stderr, /has no such database: create it and its schema with "npm run migrate"/);
});

test('when a setting is bad, then the process exits with a line naming the key', async (t) => {
  const res = await startProcess({ PORT: 'eighty' });

  t.is(res.code, 78);
  t.regex(res.stderr, /Invalid configuration — PORT/);
});

test('when AMQP_URL names a vhost, then comanda declares its topology in that vhost', async (t) => {
  const vhost = `comanda-test-${Date.now()}`;
  await run('rabbitmqctl', ['-q', 'add_vhost', vhost]);
  await run('rabbitmqctl', ['-q', 'set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*']);
  const url = `${baseUrls().amqp}/${encodeURIComponent(vhost)}`;
  const p = await startPipeline({ AMQP_URL: url });
  try {
    const conn = await amqp.connect(url);
    const ch = await conn.createChannel();
    const q = await ch.checkQueue(p.services.topology.queue('workerOrderCreated'));
    t.is(q.consumerCount, 1);
    await conn.close();

    const root = await amqp.connect(baseUrls().amqp);
    const rootCh = await root.createChannel();
    rootCh.on('error', () => {});
    await t.throwsAsync(rootCh.checkQueue(p.services.topology.queue('workerOrderCreated')), {
      message: /NOT_FOUND/,
    });
    await root.close();
  } finally {
    await p.stop();
    await run('rabbitmqctl', ['-q', 'delete_vhost', vhost]);
  }
});

test('when REDIS_URL names a database index, then the fast path writes to that database', async (t) => {
  const url = `${baseUrls().redis}/7`;
  const p = await startPipeline({ REDIS_URL: url }, { worker: false });
  const direct = new Redis(url);
  try {
    const product = await buildProduct(p.db);
    const token = await p.token();
    const body = { items: [{ product_id: product.id, quantity: 1 }] };
    await postOrder(p.url, token, body, { key: 'once' });
    await postOrder(p.url, token, body, { key: 'once' });

    const keys = await direct.keys(`${p.config.REDIS_KEY_PREFIX}idem:*`);
    t.is(keys.length, 1);
  } finally {
    direct.disconnect();
    await p.stop();
  }
});
