import { mkdir } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import type { Browser } from 'playwright-core';
import { buildProduct, stockOf, waitForProcessed, type TestProduct } from '../helpers/factories.ts';
import { http, postOrder } from '../helpers/http.ts';
import { startPipeline, until, type TestPipeline } from '../helpers/pipeline.ts';
import { TcpProxy } from '../helpers/tcp-proxy.ts';
import { seedDemoProducts } from '../../db/seeds/demo-products.ts';
import { TestReceiver } from '../webhooks/receiver.ts';
import {
  createButton,
  launchBrowser,
  openPortal as openPortalAt,
  timelineStatuses,
} from '../helpers/portal.ts';

const ARTIFACTS = new URL('../../test-artifacts/', import.meta.url);

let p: TestPipeline;
let browser: Browser;
test.before(async () => {
  [p, browser] = await Promise.all([startPipeline({}, { notifier: true }), launchBrowser()]);
  await until(() => p.api.statusListener.listening, 'the status listener to bind its queue');
  await seedDemoProducts(p.db);
});
test.after.always(async () => {
  await browser?.close();
  await p?.stop();
});

function openPortal(
  t: ExecutionContext,
  sku: string,
  options: { baseUrl?: string; customer?: string; viewport?: { width: number; height: number } } = {},
) {
  return openPortalAt(t, browser, options.baseUrl ?? p.url, sku, options);
}

async function ordersOf(customer: string) {
  return p.db('orders').where({ customer_id: `demo:${customer}` });
}

async function buildScarceProduct(overrides: Partial<TestProduct> = {}) {
  return buildProduct(p.db, { name: `Producto ${randomUUID().slice(0, 4)}`, ...overrides });
}

test.serial(
  'when a product is picked and Crear Pedido is clicked, then the confirmation shows RECEIVED and the timeline reaches CONFIRMED without a reload',
  async (t) => {
    // The demo catalogue and customer, as a newcomer sees them after `npm start` (this is the README's picture).
    const product = await p.db('products').where({ sku: 'CAFE-500' }).first();
    const portal = await openPortal(t, product.sku, { customer: 'cliente-demo' });
    const { page } = portal;
    let navigations = 0;
    page.on('framenavigated', (frame) => {
      if (frame === page.mainFrame()) navigations++;
    });

    await portal.product(product.sku).locator('input').fill('2');
    await t.notThrowsAsync(page.locator('#total').filter({ hasText: '25,80' }).waitFor());
    await createButton(page).click();

    await page.locator('#confirmation:not([hidden])').waitFor();
    const orderId = (await page.locator('#order-id').textContent()) ?? '';
    t.regex(orderId, /^[0-9a-f-]{36}$/);
    await page.locator('#timeline li.step[data-status="CONFIRMED"]').waitFor();

    t.deepEqual(await timelineStatuses(page), ['RECEIVED', 'INVENTORY_RESERVED', 'CONFIRMED']);
    const history = await portal.badgeHistory();
    t.is(history[0], 'RECEIVED');
    t.is(history.at(-1), 'CONFIRMED');
    t.is(navigations, 0);
    const took = await page.locator('#timeline li.step .took').allTextContents();
    t.regex(took[1], /^\+\d+ ms$/);
    t.is(await page.locator('#timeline li.step time').count(), 3);
    t.is(await page.locator(`#order-list [data-order-id="${orderId}"] .badge`).textContent(), 'Confirmado');
    t.is((await p.db('orders').where({ id: orderId }).first()).status, 'CONFIRMED');
    await t.notThrowsAsync(
      portal
        .product(product.sku)
        .locator(`.stock[data-stock="${product.stock_available - 2}"]`)
        .waitFor(),
    );

    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({
      path: new URL('portal-confirmed.png', ARTIFACTS).pathname,
      fullPage: true,
      animations: 'disabled',
    });
    t.deepEqual(portal.pageErrors, []);
  },
);

test.serial('when Crear Pedido is double-clicked, then exactly one order is created', async (t) => {
  const product = await buildScarceProduct({ stock_available: 10 });
  const portal = await openPortal(t, product.sku);
  const { page } = portal;
  const posts: string[] = [];
  page.on('request', (req) => {
    if (req.method() === 'POST' && new URL(req.url()).pathname === '/orders') {
      posts.push(req.headers()['idempotency-key'] ?? '');
    }
  });

  await portal.product(product.sku).locator('input').fill('1');
  await createButton(page).dblclick();
  await page.locator('#timeline li.step[data-status="CONFIRMED"]').waitFor();

  const orders = await ordersOf(portal.customer);
  t.is(orders.length, 1);
  t.true(posts.length >= 1);
  t.is(new Set(posts).size, 1, 'every request of one order carries the same Idempotency-Key');
  t.is(await page.locator('#order-list li').count(), 1);
  t.deepEqual(portal.pageErrors, []);
});

test.serial(
  'when an order was just placed, then Crear Pedido places the same order again without re-entering it',
  async (t) => {
    const product = await buildScarceProduct({ stock_available: 10 });
    const portal = await openPortal(t, product.sku);
    const { page } = portal;
    const input = portal.product(product.sku).locator('input');

    await input.fill('2');
    await createButton(page).click();
    await page.locator('#timeline li.step[data-status="CONFIRMED"]').waitFor();
    const first = await page.locator('#order-id').textContent();
    t.is(await input.inputValue(), '2', 'the quantity is still there');
    await createButton(page).click();
    await page
      .locator('#order-id')
      .filter({ hasNotText: first ?? '' })
      .waitFor();
    await page.locator('#timeline li.step[data-status="CONFIRMED"]').waitFor();

    const orders = await ordersOf(portal.customer);
    t.is(orders.length, 2, 'two orders, one per click');
    t.deepEqual(orders.map((o: any) => o.status).sort(), ['CONFIRMED', 'CONFIRMED']);
    t.is(await page.locator('#order-list li').count(), 2);
    t.deepEqual(await stockOf(p.db, product.id), { available: 6, reserved: 0 });
    t.deepEqual(portal.pageErrors, []);
  },
);

test.serial(
  'when the decline option is ticked, then the order is REJECTED with "pago rechazado", and in English "payment declined"',
  async (t) => {
    const product = await buildScarceProduct({ stock_available: 10 });
    const portal = await openPortal(t, product.sku);
    const { page } = portal;

    await portal.product(product.sku).locator('input').fill('3');
    await page.getByLabel('Simular un pago rechazado').check();
    await createButton(page).click();
    const rejected = page.locator('#timeline li.step[data-status="REJECTED"]');
    await rejected.waitFor();

    t.regex((await rejected.locator('.reason').textContent()) ?? '', /pago rechazado/i);
    t.deepEqual(await timelineStatuses(page), ['RECEIVED', 'INVENTORY_RESERVED', 'REJECTED']);
    await page.getByRole('button', { name: 'EN' }).click();
    t.regex((await rejected.locator('.reason').textContent()) ?? '', /payment declined/i);
    t.is(await page.locator('html').getAttribute('lang'), 'en');
    t.is(await page.locator('#order-list .badge').first().textContent(), 'Rejected');
    // The reservation was released: the stock shown is what it was.
    await t.notThrowsAsync(portal.product(product.sku).locator('.stock[data-stock="10"]').waitFor());
    t.deepEqual(await stockOf(p.db, product.id), { available: 10, reserved: 0 });
    t.deepEqual(portal.pageErrors, []);
  },
);

test.serial(
  'when the stock ran out after the page loaded, then the order is REJECTED as out of stock and the stock shown updates',
  async (t) => {
    const product = await buildScarceProduct({ name: 'Edición limitada', stock_available: 2 });
    const portal = await openPortal(t, product.sku);
    const { page } = portal;
    const stock = portal.product(product.sku).locator('.stock');
    t.is(await stock.getAttribute('data-stock'), '2');

    // Someone else buys the last two while this page still shows them.
    const other = await postOrder(p.url, await p.token(), {
      items: [{ product_id: product.id, quantity: 2 }],
    });
    t.is(await waitForProcessed(p.db, other.body.id), 'CONFIRMED');
    await portal.product(product.sku).locator('input').fill('2');
    await createButton(page).click();
    const rejected = page.locator('#timeline li.step[data-status="REJECTED"]');
    await rejected.waitFor();

    const reason = (await rejected.locator('.reason').textContent()) ?? '';
    t.regex(reason, /sin stock/i);
    t.regex(reason, /Edición limitada: pediste 2, quedaban 0/);
    await t.notThrowsAsync(portal.product(product.sku).locator('.stock[data-stock="0"]').waitFor());
    t.is(await stock.textContent(), 'Agotado');
    t.deepEqual(portal.pageErrors, []);
  },
);

test.serial(
  'when the API stops answering, then the page says so in words, and when it returns the order goes through once',
  async (t) => {
    const product = await buildScarceProduct({ stock_available: 10 });
    const proxy = new TcpProxy('127.0.0.1', Number(new URL(p.url).port));
    await proxy.start();
    t.teardown(() => proxy.stop());
    const portal = await openPortal(t, product.sku, { baseUrl: `http://127.0.0.1:${proxy.port}` });
    const { page } = portal;
    await page.locator('#system-status [data-check="postgres"][data-status="up"]').waitFor();

    proxy.cut();
    const banner = page.locator('#banner');
    await banner.filter({ hasText: 'No hay conexión con el servicio' }).waitFor();
    t.is(await page.locator('#system-status [data-check="api"]').getAttribute('data-status'), 'down');
    await portal.product(product.sku).locator('input').fill('1');
    await createButton(page).click();
    await page.locator('#form-message').filter({ hasText: 'reintentando' }).waitFor();
    t.is((await ordersOf(portal.customer)).length, 0);

    proxy.restore();
    await page.locator('#timeline li.step[data-status="CONFIRMED"]').waitFor({ timeout: 20_000 });
    await banner
      .filter({ hasText: 'No hay conexión' })
      .waitFor({ state: 'detached', timeout: 1 })
      .catch(() => {});
    t.false(await banner.filter({ hasText: 'No hay conexión' }).isVisible());
    await page.locator('#system-status [data-check="api"][data-status="up"]').waitFor();
    t.is((await ordersOf(portal.customer)).length, 1);
    t.deepEqual(portal.pageErrors, []);
  },
);

test.serial(
  'when the page is used at phone width with the keyboard only, then every control is labelled and an order goes through',
  async (t) => {
    const product = await buildScarceProduct({ stock_available: 10 });
    const portal = await openPortal(t, product.sku, { viewport: { width: 360, height: 740 } });
    const { page } = portal;

    const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
    t.true(overflow <= 0, `the page scrolls sideways by ${overflow}px`);
    const unlabelled = await page
      .locator('input, select, button')
      .evaluateAll((els: any[]) =>
        els
          .filter((e) => !(e.labels?.length || e.getAttribute('aria-label') || e.textContent?.trim()))
          .map((e) => String(e.outerHTML).slice(0, 80)),
      );
    t.deepEqual(unlabelled, []);

    const input = portal.product(product.sku).locator('input');
    await input.focus();
    await page.keyboard.type('1');
    await page.keyboard.press('Enter');
    await page.locator('#timeline li.step[data-status="CONFIRMED"]').waitFor();
    await page.keyboard.press('Tab');
    t.true(await page.evaluate<boolean>('document.activeElement !== document.body'));
    t.is((await ordersOf(portal.customer)).length, 1);
    t.deepEqual(portal.pageErrors, []);
  },
);

test.serial(
  "when the customer has a webhook endpoint, then the order's deliveries show with their attempts",
  async (t) => {
    const product = await buildScarceProduct({ stock_available: 10 });
    const receiver = await TestReceiver.start(() => ({ status: 204 }));
    t.teardown(() => receiver.stop());
    const portal = await openPortal(t, product.sku);
    const { page } = portal;
    const registered = await http(`${p.url}/webhook-endpoints`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await p.token(portal.customer)}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ url: receiver.url, event_types: ['order.created', 'order.confirmed'] }),
    });
    t.is(registered.status, 201);

    await portal.product(product.sku).locator('input').fill('1');
    await createButton(page).click();
    const delivered = page.locator('#deliveries:not([hidden]) .delivery[data-status="delivered"]');
    await until(async () => (await delivered.count()) === 2, 'both deliveries to show as delivered', 20_000);

    t.deepEqual(await delivered.locator('code').allTextContents(), ['order.created', 'order.confirmed']);
    t.regex((await delivered.first().locator('.attempts').textContent()) ?? '', /HTTP 204/);
    t.is(receiver.received.length, 2);
    t.deepEqual(portal.pageErrors, []);
  },
);
