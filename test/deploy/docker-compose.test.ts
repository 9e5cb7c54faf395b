import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import test from 'ava';
import { CONFIG_KEYS, loadConfig } from '../../lib/config.ts';
import {
  loadCompose,
  readRepoFile,
  scriptArgv,
  serviceEnv,
  type ComposeFile,
  type ComposeService,
} from './deploy-files.ts';

const compose: ComposeFile = await loadCompose();
// What `docker compose up` starts: every service outside a profile.
const services = Object.fromEntries(Object.entries(compose.services).filter(([, s]) => !s.profiles?.length));

/** The comanda processes built from the Dockerfile, and the package script (compiled code) each one runs. */
const APP = {
  api: 'start:prod:api',
  worker: 'start:prod:worker',
  notifier: 'start:prod:notifier',
  analytics: 'start:prod:analytics',
} as const;
const ONE_SHOT = { migrate: { script: 'migrate:prod', args: ['--seed'] } } as const;
/** The services of `--profile observability`, which `docker compose up` alone does not start. */
const OBSERVABILITY = ['prometheus', 'grafana', 'jaeger'];
const BUILT = [...Object.keys(APP), ...Object.keys(ONE_SHOT)];

/** The backing services: what image each must run, the port comanda reaches it on, and its health command. */
const BACKING = {
  postgres: { image: /^postgres:1[56](\.\d+)*(-[a-z]+)?$/, port: 5432, check: /\bpg_isready\b/ },
  rabbitmq: {
    image: /^rabbitmq:(3\.13|4)(\.\d+)*-management$/,
    port: 5672,
    check: /\brabbitmq-diagnostics -q ping\b/,
  },
  redis: { image: /^redis:7(\.\d+)*(-[a-z]+)?$/, port: 6379, check: /\bredis-cli ping\b/ },
} as const;

const argv = (cmd: string | string[] | undefined): string[] =>
  Array.isArray(cmd) ? cmd : (cmd ?? '').split(/\s+/).filter(Boolean);

const healthCommand = (s: ComposeService): string => argv(s.healthcheck?.test).join(' ');

const dependsOn = (s: ComposeService): Record<string, string | undefined> =>
  Array.isArray(s.depends_on)
    ? Object.fromEntries(s.depends_on.map((name) => [name, undefined]))
    : Object.fromEntries(Object.entries(s.depends_on ?? {}).map(([name, d]) => [name, d.condition]));

test('when compose reads the file, then every dollar sign is a ${NAME…} substitution or an escaped $$', async (t) => {
  const source = await readRepoFile('docker-compose.yml');
  const stray = source
    .split('\n')
    .map((line, i) => ({
      line: i + 1,
      text: line.replace(/\$\$|\$\{[A-Za-z_][A-Za-z0-9_]*(:?[-?][^}]*)?\}/g, ''),
    }))
    .filter(({ text }) => text.includes('$'));
  t.deepEqual(stray, []);
});

test('when the stack is defined, then it has exactly the backing services and the comanda processes, and the observability profile', (t) => {
  t.deepEqual(Object.keys(services).sort(), [...Object.keys(BACKING), ...BUILT].sort());
  t.deepEqual(
    Object.entries(compose.services)
      .filter(([, s]) => s.profiles?.includes('observability'))
      .map(([name]) => name)
      .sort(),
    [...OBSERVABILITY].sort(),
  );
});

for (const [name, expected] of Object.entries(BACKING)) {
  test(`when ${name} starts, then it runs the expected image and has a health check`, (t) => {
    const service = services[name];
    t.regex(service.image ?? '', expected.image);
    t.is(service.build, undefined);
    t.regex(healthCommand(service), expected.check);
    t.not(service.healthcheck?.disable, true);
  });
}

test('when rabbitmq starts, then AMQP and the management UI are open to the other containers only', (t) => {
  const exposed = (services.rabbitmq.expose ?? []).map(String);
  t.true(exposed.includes('5672'));
  t.true(exposed.includes('15672'));
  t.is(services.rabbitmq.ports, undefined);
});

test('when the stack runs, then only the api publishes a port: 3000, its PORT', (t) => {
  const publishing = Object.entries(services)
    .filter(([, s]) => (s.ports ?? []).length > 0)
    .map(([name]) => name);
  t.deepEqual(publishing, ['api']);
  t.deepEqual(services.api.ports, ['3000:3000']);
  t.is(serviceEnv(services.api).PORT, '3000');
});

for (const name of BUILT) {
  test(`when ${name} starts, then it is built from this repository's Dockerfile`, (t) => {
    const { build } = services[name];
    const context = typeof build === 'string' ? build : build?.context;
    t.true(context === '.' || context === './', `build context is ${String(context)}`);
    if (typeof build === 'object' && build.dockerfile) t.is(build.dockerfile, 'Dockerfile');
  });
}

for (const [name, script] of Object.entries(APP)) {
  test(`when ${name} starts, then it runs \`npm run ${script}\`'s command, healthy and restarting`, async (t) => {
    const service = services[name];
    t.deepEqual(argv(service.command), await scriptArgv(script));
    t.is(service.restart, 'unless-stopped');
    t.true(service.init, 'an init process passes SIGTERM on to node');
    t.truthy(service.healthcheck?.test);
    t.not(service.healthcheck?.disable, true);
  });
}

test('when migrate runs, then it runs `npm run migrate:prod -- --seed` once, without restarts or health checks', async (t) => {
  const { script, args } = ONE_SHOT.migrate;
  t.deepEqual(argv(services.migrate.command), [...(await scriptArgv(script)), ...args]);
  t.is(services.migrate.restart, 'no');
  t.true(services.migrate.healthcheck?.disable);
});

for (const name of BUILT) {
  test(`when ${name} starts, then its URLs name the compose services with their credentials`, (t) => {
    const env = serviceEnv(services[name]);
    const urls = {
      postgres: new URL(env.DATABASE_URL ?? 'missing:'),
      rabbitmq: new URL(env.AMQP_URL ?? 'missing:'),
      redis: new URL(env.REDIS_URL ?? 'missing:'),
    };
    for (const [backing, url] of Object.entries(urls)) {
      t.is(url.hostname, backing, `${name} reaches ${backing} by its service name`);
      t.is(
        Number(url.port || BACKING[backing as keyof typeof BACKING].port),
        BACKING[backing as keyof typeof BACKING].port,
      );
    }
    const pg = serviceEnv(services.postgres);
    t.is(decodeURIComponent(urls.postgres.username), pg.POSTGRES_USER);
    t.is(decodeURIComponent(urls.postgres.password), pg.POSTGRES_PASSWORD);
    t.is(urls.postgres.pathname, `/${pg.POSTGRES_DB}`);
    const rabbit = serviceEnv(services.rabbitmq);
    t.not(rabbit.RABBITMQ_DEFAULT_USER ?? 'guest', 'guest', 'guest may only connect from localhost');
    t.is(decodeURIComponent(urls.rabbitmq.username), rabbit.RABBITMQ_DEFAULT_USER);
    t.is(decodeURIComponent(urls.rabbitmq.password), rabbit.RABBITMQ_DEFAULT_PASS);
  });

  test(`when ${name} starts, then every setting it is given is one comanda knows, and valid`, (t) => {
    const env = serviceEnv(services[name]);
    const known = new Set<string>(CONFIG_KEYS);
    t.deepEqual(
      Object.keys(env).filter((key) => !known.has(key)),
      [],
    );
    t.notThrows(() => loadConfig(env));
  });
}

for (const name of Object.keys(APP)) {
  test(`when ${name} starts, then it waits for healthy services and a completed migration`, (t) => {
    // Analytics reads PostgreSQL alone (ADR 0016): it needs neither the broker nor Redis to count.
    const expected =
      name === 'analytics'
        ? { postgres: 'service_healthy', migrate: 'service_completed_successfully' }
        : {
            postgres: 'service_healthy',
            rabbitmq: 'service_healthy',
            redis: 'service_healthy',
            migrate: 'service_completed_successfully',
          };
    t.deepEqual(dependsOn(services[name]), expected);
  });
}

test('when migrate runs, then it waits for a healthy PostgreSQL', (t) => {
  t.deepEqual(dependsOn(services.migrate), { postgres: 'service_healthy' });
});

test('when a service waits for another to be healthy, then that one has a health check', (t) => {
  const waitedOn = Object.values(services).flatMap((s) =>
    Object.entries(dependsOn(s))
      .filter(([, condition]) => condition === 'service_healthy')
      .map(([name]) => name),
  );
  for (const name of new Set(waitedOn)) {
    t.truthy(services[name]?.healthcheck?.test, `${name} has a health check`);
    t.not(services[name]?.healthcheck?.disable, true);
  }
});

test('when the api is up, then its health check asks /healthz on its PORT', (t) => {
  const check = healthCommand(services.api);
  t.true(check.includes(`127.0.0.1:${serviceEnv(services.api).PORT}/healthz`), check);
});

for (const name of ['worker', 'notifier', 'analytics'] as const) {
  test(`when ${name} runs, then its health check looks for the process running its own entry file`, async (t) => {
    const check = argv(services[name].healthcheck?.test);
    const entry = (await scriptArgv(APP[name])).at(-1);
    t.deepEqual(check.slice(0, 3), ['CMD', 'node', '-e']);
    t.is(check.at(-1), entry);
  });
}

/** Runs the worker's health check command on this machine, looking for `entry` instead of worker/main.ts. */
async function runProcessCheck(entry: string): Promise<number> {
  const [, command, ...args] = argv(services.worker.healthcheck?.test);
  args[args.length - 1] = entry;
  return new Promise((resolve) => {
    execFile(command, args, (err) => resolve(err ? Number(err.code ?? 1) : 0));
  });
}

test('when the process named in the check is alive, then the check passes; once it exits, the check fails', async (t) => {
  const entry = `deploy-check-${randomBytes(4).toString('hex')}/main.ts`;
  const child = spawn('node', ['-e', 'setInterval(() => {}, 1000)', entry], { stdio: 'ignore' });
  t.teardown(() => child.kill('SIGKILL'));
  await once(child, 'spawn');

  t.is(await runProcessCheck(entry), 0);

  child.kill('SIGTERM');
  await once(child, 'exit');
  t.is(await runProcessCheck(entry), 1, 'the check does not count itself, though it names the entry too');
});

test('when the image is built, then it runs as a non-root user, checks /healthz and starts the api by default', async (t) => {
  const dockerfile = await readRepoFile('Dockerfile');
  const lines = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const from = lines.filter((l) => /^FROM\s/i.test(l));
  t.true(from.length > 0);
  for (const line of from) t.regex(line, /^FROM node:20-bookworm-slim\b/);
  t.true(
    lines.some((l) => /^RUN\s.*\bnpm ci\b/.test(l)),
    'dependencies come from the lock file',
  );

  const final = lines.slice(lines.lastIndexOf(from.at(-1)!));
  const users = final.filter((l) => /^USER\s/i.test(l));
  t.true(users.length > 0, 'the final stage sets USER');
  t.notRegex(users.at(-1)!, /^USER\s+(root|0)(:|\s|$)/i);

  const healthcheck = final.find((l) => /^HEALTHCHECK\s/i.test(l));
  t.truthy(healthcheck);
  t.regex(healthcheck ?? '', /\/healthz/);

  const cmd = final.find((l) => /^CMD\s/i.test(l));
  t.deepEqual(JSON.parse(cmd?.replace(/^CMD\s+/i, '') ?? 'null'), await scriptArgv('start:prod:api'));
  t.true(
    lines.some((l) => /^RUN\s.*\bnpm run build\b/.test(l)),
    'the image compiles the TypeScript',
  );
  t.true(
    final.some((l) => /^COPY\s+--from=\S+\s+\/app\/dist\s/.test(l)),
    'the final stage takes the compiled dist/',
  );
});
