import { mkdir } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import type { Browser, Page } from 'playwright-core';
import { buildProduct, stockOf } from '../helpers/factories.ts';
import { sendJson } from '../helpers/http.ts';
import { startPipeline, until, type TestPipeline } from '../helpers/pipeline.ts';
import {
  createButton,
  launchBrowser,
  openPortal,
  timelineStatuses,
  timelineSteps,
  type Portal,
} from '../helpers/portal.ts';

const ARTIFACTS = new URL('../../test-artifacts/', import.meta.url);

let p: TestPipeline;
let browser: Browser;
test.before(async () => {
  [p, browser] = await Promise.all([startPipeline(), launchBrowser()]);
  await until(() => p.api.statusListener.listening, 'the status listener to bind its queue');
});
test.after.always(async () => {
  await browser?.close();
  await p?.stop();
});

const badge = (page: Page) => page.locator('#order-status');
const step = (page: Page, status: string) => page.locator(`#timeline li.step[data-status="${status}"]`);

/** A product of its own, and the portal open on it as a customer of its own. */
async function portalWithProduct(
  t: ExecutionContext,
  name = `Producto ${randomUUID().slice(0, 4)}`,
  stock = 10,
) {
  const product = await buildProduct(p.db, {
    name,
    stock_available: stock,
  });
  const portal = await openPortal(t, browser, p.url, product.sku);
  return { product, portal, page: portal.page };
}

/** Places an order of `quantity` through the page and returns its id once the page shows `until`. */
async function placeOrder(portal: Portal, sku: string, quantity: number, reach: string): Promise<string> {
  const orderId = portal.page.locator('#confirmation:not([hidden]) #order-id');
  const before = (await orderId.count()) ? await orderId.textContent() : null;
  await portal.product(sku).locator('input').fill(String(quantity));
  await createButton(portal.page).click();
  // The trace of the order placed before may show `reach` too: wait for this order's own.
  if (before) await orderId.filter({ hasNotText: before }).waitFor();
  await step(portal.page, reach).waitFor();
  return (await portal.page.locator('#order-id').textContent()) ?? '';
}

/** Changes an order's status as an admin would, through the API. */
async function adminSetStatus(orderId: string, body: Record<string, string>) {
  const res = await sendJson(
    'PATCH',
    p.url,
    `/orders/${orderId}/status`,
    await p.token('ops', 'admin'),
    body,
  );
  if (res.status !== 200) throw new Error(`PATCH ${JSON.stringify(body)} answered ${res.status}`);
  return res.body;
}

test.serial(
  'when the customer cancels a confirmed order, then its badge turns CANCELLED live and the refund appears in the trace',
  async (t) => {
    const { product, portal, page } = await portalWithProduct(t);
    const orderId = await placeOrder(portal, product.sku, 3, 'CONFIRMED');
    // A confirmed order is not the end any more: the trace waits for what comes next, not for an outcome.
    t.is(await page.locator('#timeline li.pending').filter({ hasText: 'Confirmado o rechazado' }).count(), 0);
    await page.locator('#stream-state[data-state="live"]').waitFor();

    await page.getByRole('button', { name: 'Cancelar' }).click();
    await page.locator('#timeline li.step[data-step="PaymentRefunded"]').waitFor();

    t.is(await badge(page).textContent(), 'CANCELLED');
    t.deepEqual(await timelineSteps(page), [
      'OrderReceived',
      'InventoryReserved',
      'OrderConfirmed',
      'OrderCancelled',
      'PaymentRefunded',
    ]);
    t.regex((await step(page, 'CANCELLED').locator('.reason').textContent()) ?? '', /lo cancelaste tú/);
    t.regex(
      (await page.locator('#timeline [data-step="PaymentRefunded"]').textContent()) ?? '',
      /Pago reembolsado.*Te hemos devuelto 30,00/s,
    );
    t.is(await page.locator(`#order-list [data-order-id="${orderId}"] .badge`).textContent(), 'Cancelado');
    await page.locator('#order-facts [data-fact="refund"]').waitFor();
    t.false(await page.getByRole('button', { name: 'Cancelar' }).isVisible());
    await page.locator('#stream-state[data-state="finished"]').waitFor();
    t.deepEqual(await stockOf(p.db, product.id), { available: 10, reserved: 0 });
    t.is((await p.db('payments').where({ order_id: orderId }).first()).status, 'refunded');
    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({
      path: new URL('portal-cancelled.png', ARTIFACTS).pathname,
      animations: 'disabled',
    });

    await page.getByRole('button', { name: 'EN' }).click();
    t.is(await page.locator(`#order-list [data-order-id="${orderId}"] .badge`).textContent(), 'Cancelled');
    t.regex(
      (await page.locator('#timeline [data-step="PaymentRefunded"]').textContent()) ?? '',
      /Payment refunded/,
    );
    t.deepEqual(portal.pageErrors, []);
  },
);

test.serial(
  'when a pay-later order is paid with a declined card, then it still waits with the decline in the trace, and a good card confirms it',
  async (t) => {
    const { product, portal, page } = await portalWithProduct(t);
    await page.getByLabel('Pagar después').check();
    const orderId = await placeOrder(portal, product.sku, 2, 'AWAITING_PAYMENT');
    const pay = page.getByRole('button', { name: 'Pagar', exact: true });
    await pay.waitFor();
    t.regex(
      (await page.locator('#order-facts [data-fact="due"]').textContent()) ?? '',
      /Paga antes de las \d\d:\d\d: si no/,
    );
    t.true(await page.getByRole('button', { name: 'Cancelar' }).isVisible());

    await page.getByLabel('Simular un pago rechazado').check();
    await pay.click();
    const declined = page.locator('#timeline li.step[data-step="PaymentDeclined"]');
    await declined.waitFor();
    t.is(await badge(page).textContent(), 'AWAITING_PAYMENT');
    t.regex((await declined.textContent()) ?? '', /Tarjeta rechazada.*sigue esperando el pago/s);
    await page.locator('#action-message').filter({ hasText: 'El banco no aceptó la tarjeta' }).waitFor();
    t.true(await pay.isVisible(), 'the customer can try another card');
    t.is((await p.db('orders').where({ id: orderId }).first()).status, 'AWAITING_PAYMENT');
    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({
      path: new URL('portal-declined.png', ARTIFACTS).pathname,
      animations: 'disabled',
    });

    await page.getByLabel('Simular un pago rechazado').uncheck();
    await pay.click();
    await step(page, 'CONFIRMED').waitFor();

    t.is(await badge(page).textContent(), 'CONFIRMED');
    t.deepEqual(await timelineStatuses(page), [
      'RECEIVED',
      'INVENTORY_RESERVED',
      'AWAITING_PAYMENT',
      'CONFIRMED',
    ]);
    t.deepEqual(await timelineSteps(page), [
      'OrderReceived',
      'InventoryReserved',
      'PaymentAwaited',
      'PaymentDeclined',
      'OrderConfirmed',
    ]);
    t.false(await pay.isVisible());
    t.is(await page.locator('#order-facts [data-fact="due"]').count(), 0);
    const payment = await p.db('payments').where({ order_id: orderId }).first();
    t.like(payment, { status: 'captured', attempts: 2 });
    t.deepEqual(await stockOf(p.db, product.id), { available: 8, reserved: 0 });
    t.deepEqual(portal.pageErrors, []);
  },
);

test.serial(
  "when an admin ships the order through the API, then the customer's page shows SHIPPED and the tracking number without a reload",
  async (t) => {
    const { product, portal, page } = await portalWithProduct(t, 'Taza de cerámica');
    let navigations = 0;
    page.on('framenavigated', (frame) => {
      if (frame === page.mainFrame()) navigations++;
    });
    // An older order the customer cancelled, for the list to show beside the shipped one.
    await placeOrder(portal, product.sku, 1, 'CONFIRMED');
    await page.getByRole('button', { name: 'Cancelar' }).click();
    await page.locator('#timeline li.step[data-step="PaymentRefunded"]').waitFor();
    const orderId = await placeOrder(portal, product.sku, 2, 'CONFIRMED');
    await page.locator('#stream-state[data-state="live"]').waitFor();

    await adminSetStatus(orderId, { status: 'PROCESSING' });
    await step(page, 'PROCESSING').waitFor();
    await adminSetStatus(orderId, { status: 'SHIPPED', tracking_number: 'ES123456789', carrier: 'Correos' });
    await step(page, 'SHIPPED').waitFor();

    t.is(await badge(page).textContent(), 'SHIPPED');
    t.regex(
      (await step(page, 'SHIPPED').textContent()) ?? '',
      /Enviado con Correos, seguimiento ES123456789/,
    );
    await page.locator('#order-facts [data-fact="tracking"]').filter({ hasText: 'ES123456789' }).waitFor();
    t.is(await page.locator(`#order-list [data-order-id="${orderId}"] .badge`).textContent(), 'Enviado');
    t.false(
      await page.getByRole('button', { name: 'Cancelar' }).isVisible(),
      'a shipped order cannot be cancelled',
    );
    t.deepEqual(await page.locator('#timeline li.pending code').allTextContents(), ['DELIVERED']);
    t.is(navigations, 0);

    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({
      path: new URL('portal-lifecycle.png', ARTIFACTS).pathname,
      fullPage: true,
      animations: 'disabled',
    });
    t.deepEqual(portal.pageErrors, []);
  },
);

test.serial(
  'when the order ships while Cancelar is on its way, then the page shows the server’s reason and the order stays shipped',
  async (t) => {
    const { product, portal, page } = await portalWithProduct(t);
    const orderId = await placeOrder(portal, product.sku, 1, 'CONFIRMED');
    // The race, forced: the admin ships between the click and the cancel reaching the API.
    await page.route(`**/orders/${orderId}/cancel`, async (route) => {
      await adminSetStatus(orderId, { status: 'PROCESSING' });
      await adminSetStatus(orderId, { status: 'SHIPPED', tracking_number: 'TRK-1', carrier: 'SEUR' });
      await route.continue();
    });

    await page.getByRole('button', { name: 'Cancelar' }).click();
    const message = page.locator('#action-message[data-kind="error"]');
    await message.waitFor();

    t.regex((await message.textContent()) ?? '', /No se pudo: .*SHIPPED/);
    await step(page, 'SHIPPED').waitFor();
    t.is((await p.db('orders').where({ id: orderId }).first()).status, 'SHIPPED');
    t.is(await page.locator('#timeline li.step[data-status="CANCELLED"]').count(), 0);
    t.deepEqual(portal.pageErrors, []);
  },
);
