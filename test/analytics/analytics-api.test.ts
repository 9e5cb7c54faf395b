import test from 'ava';
import { getJson } from '../helpers/http.ts';
import { startPipeline, type TestPipeline } from '../helpers/pipeline.ts';

let p: TestPipeline;
test.before(async () => {
  p = await startPipeline({}, { worker: false });
});
test.after.always(() => p?.stop());

const BAD: [string, string][] = [
  ['/analytics/summary?from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z', 'from'],
  ['/analytics/summary?from=yesterday', 'from'],
  ['/analytics/summary?currency=euros', 'currency'],
  ['/analytics/summary?colour=blue', 'colour'],
  ['/analytics/timeseries?metric=happiness', 'metric'],
  ['/analytics/timeseries', 'metric'],
  ['/analytics/timeseries?metric=received&granularity=week', 'granularity'],
  [
    '/analytics/timeseries?metric=received&granularity=minute&from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z',
    'from',
  ],
  ['/analytics/top-products?by=love', 'by'],
  ['/analytics/top-products?limit=0', 'limit'],
  ['/analytics/top-products?limit=abc', 'limit'],
];

for (const [path, field] of BAD) {
  test(`when an admin asks for ${path}, then the answer is a 400 problem naming ${field}`, async (t) => {
    const res = await getJson(p.url, path, await p.token('analyst', 'admin'));
    t.is(res.status, 400);
    t.regex(res.headers.get('content-type') ?? '', /application\/problem\+json/);
    t.is(res.body.status, 400);
    t.true(
      res.body.errors.some((e: { field: string }) => e.field === field),
      JSON.stringify(res.body.errors),
    );
  });
}

test('when a range of exactly 10,000 minutes is asked for, then it is answered rather than refused (the limit is inclusive)', async (t) => {
  const to = new Date(Date.UTC(2026, 10, 1));
  const from = new Date(to.getTime() - 10_000 * 60_000);
  const res = await getJson(
    p.url,
    `/analytics/timeseries?metric=received&granularity=minute&from=${from.toISOString()}&to=${to.toISOString()}`,
    await p.token('analyst', 'admin'),
  );
  t.is(res.status, 200);
  t.deepEqual(res.body.series, []);
});

for (const path of [
  '/analytics/summary',
  '/analytics/timeseries?metric=received',
  '/analytics/top-products',
  '/analytics/stream',
]) {
  test(`when a customer asks for ${path}, then it is refused with 403; without a token, 401`, async (t) => {
    const res = await getJson(p.url, path, await p.token('ana'));
    t.is(res.status, 403);
    t.regex(res.headers.get('content-type') ?? '', /application\/problem\+json/);
    t.is((await getJson(p.url, path)).status, 401);
  });
}

test('when an admin asks for each analytics route with good parameters, then each answers 200 and OpenAPI documents them', async (t) => {
  const admin = await p.token('analyst', 'admin');
  for (const path of [
    '/analytics/summary?from=2026-11-01&to=2026-12-01',
    '/analytics/timeseries?metric=conversion&granularity=day&from=2026-11-01&to=2026-12-01',
    '/analytics/top-products?by=revenue&limit=5',
  ]) {
    t.is((await getJson(p.url, path, admin)).status, 200, path);
  }
  const doc = await getJson(p.url, '/openapi.json');
  for (const path of [
    '/analytics/summary',
    '/analytics/timeseries',
    '/analytics/top-products',
    '/analytics/stream',
  ]) {
    t.truthy(doc.body.paths[path]?.get, path);
  }
});
