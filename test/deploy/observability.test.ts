import { existsSync } from 'node:fs';
import test from 'ava';
import { parse } from 'yaml';
import { buildProduct, waitForProcessed } from '../helpers/factories.ts';
import { http, postOrder } from '../helpers/http.ts';
import { startPipeline, until, type TestPipeline } from '../helpers/pipeline.ts';
import { TestReceiver } from '../webhooks/receiver.ts';
import { observeWebhookAttempts } from '../../lib/metrics.ts';
import { loadCompose, readRepoFile, root, type ComposeService } from './deploy-files.ts';

interface Dashboard {
  panels: { type: string; title: string; targets?: { expr: string }[] }[];
}
interface Rules {
  groups: { rules: { alert: string; expr: string; annotations?: { runbook?: string } }[] }[];
}

const dashboard = JSON.parse(await readRepoFile('deploy/grafana/dashboards/comanda.json')) as Dashboard;
const rules = parse(await readRepoFile('deploy/prometheus/alerts.yml')) as Rules;
const prometheus = parse(await readRepoFile('deploy/prometheus/prometheus.yml')) as {
  rule_files: string[];
  scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
};
const compose = await loadCompose();
const alerts = rules.groups.flatMap((g) => g.rules);
const queries = [
  ...dashboard.panels.flatMap((p) =>
    (p.targets ?? []).map((t) => ({ where: `panel "${p.title}"`, expr: t.expr })),
  ),
  ...alerts.map((a) => ({ where: `alert ${a.alert}`, expr: a.expr })),
];

/** The metric names a PromQL expression reads: identifiers that are neither functions, keywords nor labels. */
function metricNames(expr: string): string[] {
  const withoutStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const withoutLabels = withoutStrings
    .replace(/\{[^}]*\}/g, '{}')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  const names = withoutLabels.match(/\b[a-z_][a-z0-9_]*\b(?=\s*(\{|\[|\)|$|\s|>|<|=|\/|\*|\+|-))/g) ?? [];
  const NOT_METRICS = new Set([
    'sum',
    'max',
    'min',
    'avg',
    'rate',
    'increase',
    'delta',
    'histogram_quantile',
    'or',
    'and',
    'unless',
    'le',
  ]);
  return [...new Set(names.filter((n) => !NOT_METRICS.has(n) && !/^\d/.test(n)))];
}

let p: TestPipeline;
let receiver: TestReceiver;
test.before(async () => {
  p = await startPipeline({ WEBHOOK_POLL_INTERVAL_MS: '50' }, { notifier: true });
  // As notifier/main.ts and npm start do: the notifier's attempts are counted in this process's metrics.
  observeWebhookAttempts(p.notifier!);
  receiver = await TestReceiver.start();
});
test.after.always(async () => {
  await receiver?.stop();
  await p?.stop();
});

test('when the dashboard and the alert rules are read, then they query something, and each alert has a runbook in docs/alerts.md', async (t) => {
  t.true(queries.length >= 15, `${queries.length} queries`);
  t.deepEqual(alerts.map((a) => a.alert).sort(), [
    'ComandaConsumerLag',
    'ComandaDeadLettersGrowing',
    'ComandaNotReady',
    'ComandaOutboxStuck',
    'ComandaWebhookFailureRatio',
  ]);
  const runbook = await readRepoFile('docs/alerts.md');
  for (const a of alerts) {
    t.is(a.annotations?.runbook, `docs/alerts.md#${a.alert.toLowerCase()}`);
    t.true(runbook.includes(`## ${a.alert}`), `docs/alerts.md has a section for ${a.alert}`);
  }
});

test('when an order with webhooks has gone through, then every metric the dashboard and the alerts query is in /metrics', async (t) => {
  const customer = await p.token();
  await http(`${p.url}/webhook-endpoints`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${customer}` },
    body: JSON.stringify({ url: receiver.url, event_types: ['order.created', 'order.confirmed'] }),
  });
  const product = await buildProduct(p.db);
  const order = await postOrder(p.url, customer, { items: [{ product_id: product.id, quantity: 1 }] });
  t.is(await waitForProcessed(p.db, order.body.id as string), 'CONFIRMED');
  await until(() => receiver.received.length >= 2, 'both webhooks to arrive');

  const text = (await http<string>(`${p.url}/metrics`)).body;
  const exported = new Set(
    text
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(l)![0]),
  );
  // `up` is Prometheus's own: whether it could scrape the target.
  const missing = queries.flatMap(({ where, expr }) =>
    metricNames(expr)
      .filter((name) => name !== 'up' && !exported.has(name))
      .map((name) => `${where}: ${name}`),
  );
  t.deepEqual(missing, []);
  const queried = new Set(queries.flatMap(({ expr }) => metricNames(expr)));
  for (const name of [
    'comanda_orders_final_total',
    'comanda_dependency_up',
    'process_resident_memory_bytes',
  ]) {
    t.true(queried.has(name), `the queries' names are read (${name})`);
  }
  t.true(
    metricNames('sum(rate(comanda_webhook_attempts_total{result!="delivered"}[5m]))').includes(
      'comanda_webhook_attempts_total',
    ),
  );
});

test('when the observability profile starts, then Prometheus scrapes every comanda process on the port it serves /metrics on', (t) => {
  const env = (s: ComposeService) => (s.environment ?? {}) as Record<string, unknown>;
  const targets = Object.fromEntries(
    prometheus.scrape_configs.map((c) => [c.job_name, c.static_configs.flatMap((s) => s.targets)]),
  );
  t.deepEqual(targets, {
    'comanda-api': [`api:${String(env(compose.services.api).PORT)}`],
    'comanda-worker': [`worker:${String(env(compose.services.worker).METRICS_PORT)}`],
    'comanda-notifier': [`notifier:${String(env(compose.services.notifier).METRICS_PORT)}`],
    'comanda-analytics': [`analytics:${String(env(compose.services.analytics).METRICS_PORT)}`],
  });
  t.deepEqual(prometheus.rule_files, ['/etc/prometheus/alerts.yml']);
});

test('when the observability profile starts, then each of its services is well-formed and mounts files that exist', (t) => {
  const { prometheus: prom, grafana, jaeger } = compose.services;
  for (const [name, s] of Object.entries({ prometheus: prom, grafana, jaeger })) {
    t.deepEqual(s.profiles, ['observability'], name);
    t.regex(s.image ?? '', /^[\w./-]+:[\w.-]+$/, `${name} runs a pinned image`);
    t.is(s.build, undefined);
    t.is(s.restart, 'unless-stopped');
    for (const volume of s.volumes ?? []) {
      const [source, target] = volume.split(':');
      if (source.startsWith('./')) t.true(existsSync(new URL(source, root)), `${name} mounts ${source}`);
      t.true(target.startsWith('/'), `${name} mounts at an absolute path`);
    }
  }
  t.true(
    prom.volumes?.some((v) => v.startsWith('./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml')),
  );
  t.true(grafana.volumes?.some((v) => v.startsWith('./deploy/grafana/dashboards:')));
  t.true(
    grafana.volumes?.some((v) => v.startsWith('./deploy/grafana/provisioning:/etc/grafana/provisioning')),
  );
  t.truthy(prom.healthcheck?.test);
  t.truthy(grafana.healthcheck?.test);
  t.deepEqual((jaeger.expose ?? []).map(String).sort(), ['4317', '4318'], 'OTLP from the other containers');
});
