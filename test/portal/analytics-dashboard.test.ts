import test, { type ExecutionContext } from 'ava';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { RunningAnalytics } from '../../analytics/reader.ts';
import { startTestAnalytics, waitForAnalytics } from '../analytics/helpers.ts';
import { buildProduct, waitForProcessed } from '../helpers/factories.ts';
import { postOrder } from '../helpers/http.ts';
import { startPipeline, until, type TestPipeline } from '../helpers/pipeline.ts';

let p: TestPipeline;
let analytics: RunningAnalytics;
let browser: Browser;
test.before(async () => {
  [p, browser] = await Promise.all([
    startPipeline(),
    chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    }),
  ]);
  analytics = startTestAnalytics(p);
});
test.after.always(async () => {
  await browser?.close();
  await analytics?.stop();
  await p?.stop();
});

async function openDashboard(t: ExecutionContext, viewport = { width: 1200, height: 900 }) {
  const context = await browser.newContext({ viewport, locale: 'es-ES' });
  t.teardown(() => context.close());
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(err.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(m.text());
  });
  page.on('response', (r) => {
    if (r.status() >= 400 && !r.url().endsWith('/favicon.ico')) problems.push(`${r.status()} ${r.url()}`);
  });
  const reads: string[] = [];
  page.on('request', (r) => {
    if (r.url().includes('/analytics/summary')) reads.push(r.url());
  });
  await page.goto(`${p.url}/analytics`);
  await page.locator('#freshness').filter({ hasText: 'En directo' }).waitFor();
  return { page, problems, reads };
}

const CHARTS = ['chart-orders', 'chart-revenue', 'chart-reasons', 'chart-products', 'chart-times'];

function chartsDrawn(page: Page): Promise<string[]> {
  return page.evaluate<string[], string[]>(
    (ids) => ids.filter((id) => (globalThis as any).Chart.getChart(id) !== undefined),
    CHARTS,
  );
}

test.serial(
  'when an admin opens the dashboard, then it shows every chart, and a new order moves the orders figure without a reload or polling',
  async (t) => {
    const product = await buildProduct(p.db, { name: 'Café del panel', price: 1500 });
    const first = await postOrder(p.url, await p.token(), {
      items: [{ product_id: product.id, quantity: 2 }],
    });
    await waitForProcessed(p.db, first.body.id);
    await waitForAnalytics(p.db);

    const { page, problems, reads } = await openDashboard(t);
    let navigations = 0;
    page.on('framenavigated', (frame) => {
      if (frame === page.mainFrame()) navigations++;
    });
    await page.locator('#kpi-received').filter({ hasText: /^1$/ }).waitFor();
    t.deepEqual(await chartsDrawn(page), CHARTS);
    const products = await page.evaluate<string[]>(`Chart.getChart('chart-products').data.labels.slice()`);
    t.deepEqual(products, ['Café del panel']);
    t.regex((await page.locator('#kpi-gross').textContent()) ?? '', /30,00/);

    // Idle: the page does not read the figures on a timer. A change the analytics consumer announced late (it
    // tells the API at most every 200 ms) may still bring a read; the idle window starts once a second is quiet.
    let seen = -1;
    await until(
      () => {
        const quiet = reads.length === seen;
        seen = reads.length;
        return quiet;
      },
      'the dashboard to stop reading',
      10_000,
      1000,
    );
    const readsBefore = reads.length;
    await page.waitForTimeout(2500);
    t.is(reads.length, readsBefore, 'no polling while nothing happens');

    const second = await postOrder(p.url, await p.token(), {
      items: [{ product_id: product.id, quantity: 1 }],
    });
    t.is(second.status, 201);
    await page.locator('#kpi-received').filter({ hasText: /^2$/ }).waitFor({ timeout: 15_000 });
    await page.locator('#kpi-confirmed').filter({ hasText: /^2$/ }).waitFor({ timeout: 15_000 });
    t.is(navigations, 0);
    t.regex((await page.locator('#freshness').textContent()) ?? '', /hasta el evento de las/);

    await page.getByRole('button', { name: 'EN' }).click();
    await page.locator('#orders-chart-title').filter({ hasText: 'Orders by outcome' }).waitFor();
    t.deepEqual(await chartsDrawn(page), CHARTS);
    t.deepEqual(problems, []);
  },
);

test.serial(
  'when the dashboard is opened at phone width, then nothing overflows sideways and the charts are drawn',
  async (t) => {
    const { page, problems } = await openDashboard(t, { width: 360, height: 740 });
    t.deepEqual(await chartsDrawn(page), CHARTS);
    const widths = await page.evaluate<{ scroll: number; client: number }>(
      `({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth })`,
    );
    t.true(widths.scroll <= widths.client, JSON.stringify(widths));
    const canvasWidth = await page
      .locator('#chart-orders')
      .evaluate((c: any) => c.getBoundingClientRect().width);
    t.true(canvasWidth > 250 && canvasWidth <= 360);
    t.deepEqual(problems, []);
  },
);
