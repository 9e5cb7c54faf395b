import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import test from 'ava';
import { getJson, postOrder } from './helpers/http.ts';
import { cleanupRun, isolatedEnv, until } from './helpers/pipeline.ts';
import { alive } from './helpers/processes.ts';

/** `npm start`'s supervisor (through tsx, as the tests run it), with its exit and its log lines. */
function startSupervisor(env: Record<string, string>) {
  const supervisor = spawn(process.execPath, ['--import', 'tsx', 'scripts/start.ts'], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exit = new Promise<number | null>((resolve) => supervisor.once('exit', resolve));
  return { supervisor, exit, lines: createInterface({ input: supervisor.stdout }) };
}

test('when npm start runs, then the api, each worker, the notifier and analytics are processes of their own; a killed worker is restarted and the orders still finish; SIGTERM stops every child and exits 0', async (t) => {
  t.timeout(120_000);
  const env = isolatedEnv({ LOG_LEVEL: 'info', PORT: '0', WORKERS: '2' });
  const { supervisor, exit, lines } = startSupervisor(env);
  const started: { role: string; index: number; pid: number }[] = [];
  const roles = new Set<string>();
  let url: string | undefined;
  lines.on('line', (line) => {
    const entry = JSON.parse(line) as {
      msg: string;
      role?: string;
      index?: number;
      pid: number;
      level: number;
    };
    if (entry.msg === 'child started')
      started.push({ role: entry.role!, index: entry.index!, pid: entry.pid });
    if (entry.role) roles.add(entry.role);
    if (entry.level >= 40 || entry.msg === 'role stopped') t.log(line.slice(0, 300));
    const match = /comanda is running: (http:\/\/[^ ]+)/.exec(entry.msg);
    if (match) url = match[1];
  });
  try {
    await until(() => url !== undefined, 'the api to listen', 60_000);
    await until(
      () =>
        roles.has('worker.0') && roles.has('worker.1') && roles.has('notifier.0') && roles.has('analytics.0'),
      'every role to log',
      30_000,
    );
    t.deepEqual(started.map((s) => `${s.role}.${s.index}`).sort(), [
      'analytics.0',
      'api.0',
      'notifier.0',
      'worker.0',
      'worker.1',
    ]);
    const pids = new Set([supervisor.pid, ...started.map((s) => s.pid)]);
    t.is(pids.size, 6, 'six processes: the supervisor and five children');

    const { body: login } = await getJson(url!, '/login-demo');
    const first = await Promise.all(
      Array.from({ length: 10 }, () =>
        postOrder(url!, login.token, { items: [{ sku: 'FILTROS-100', quantity: 1 }] }),
      ),
    );
    const victim = started.find((s) => s.role === 'worker' && s.index === 0)!;
    process.kill(victim.pid, 'SIGKILL');
    await until(
      () => started.filter((s) => s.role === 'worker' && s.index === 0).length === 2,
      'the worker to be restarted',
      30_000,
    );
    const second = await Promise.all(
      Array.from({ length: 10 }, () =>
        postOrder(url!, login.token, { items: [{ sku: 'FILTROS-100', quantity: 1 }] }),
      ),
    );
    const ids = [...first, ...second].map((r) => r.body.id as string);
    await until(
      async () => {
        const statuses = await Promise.all(
          ids.map(async (id) => (await getJson(url!, `/orders/${id}`, login.token)).body.status),
        );
        return statuses.every((s) => s === 'CONFIRMED');
      },
      'every order to be confirmed',
      60_000,
    );
    t.pass();

    supervisor.kill('SIGTERM');
    t.is(await exit, 0);
    const children = started.map((s) => s.pid).filter((pid) => pid !== victim.pid);
    t.deepEqual(children.filter(alive), [], 'no child outlives the supervisor');
  } finally {
    supervisor.kill('SIGKILL');
    await exit;
    for (const s of started) if (alive(s.pid)) process.kill(s.pid, 'SIGKILL');
    await cleanupRun(env);
  }
});

test('when the supervisor itself is killed, then its children, in process groups of their own, still stop by themselves', async (t) => {
  t.timeout(90_000);
  const env = isolatedEnv({ LOG_LEVEL: 'info', PORT: '0', WORKERS: '1' });
  const { supervisor, exit, lines } = startSupervisor(env);
  const children: number[] = [];
  let url: string | undefined;
  lines.on('line', (line) => {
    const entry = JSON.parse(line) as { msg: string; pid: number };
    if (entry.msg === 'child started') children.push(entry.pid);
    url ??= /comanda is running: (http:\/\/[^ ]+)/.exec(entry.msg)?.[1];
  });
  try {
    await until(() => url !== undefined && children.length === 4, 'the api and every child to start', 60_000);
    supervisor.kill('SIGKILL');
    await exit;
    await until(() => children.every((pid) => !alive(pid)), 'every child to stop on its own', 30_000);
    t.pass();
  } finally {
    for (const pid of children) if (alive(pid)) process.kill(pid, 'SIGKILL');
    await cleanupRun(env);
  }
});
