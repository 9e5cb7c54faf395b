import { mkdir } from 'node:fs/promises';
import test from 'ava';
import type { Browser, Page } from 'playwright-core';
import { buildProduct, stockOf, waitForStatus } from '../helpers/factories.ts';
import { sendJson } from '../helpers/http.ts';
import { startPipeline, until, type TestPipeline } from '../helpers/pipeline.ts';
import { createButton, launchBrowser, openConsole, openPortal, type Portal } from '../helpers/portal.ts';

const DOCS = new URL('../../docs/', import.meta.url);

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

/** Places an order of `quantity` through the customer's page; returns its id once the page confirms it. */
async function placeOrder(portal: Portal, sku: string, quantity: number): Promise<string> {
  const orderId = portal.page.locator('#confirmation:not([hidden]) #order-id');
  const before = (await orderId.count()) ? await orderId.textContent() : null;
  await portal.product(sku).locator('input').fill(String(quantity));
  await createButton(portal.page).click();
  if (before) await orderId.filter({ hasNotText: before }).waitFor();
  else await orderId.waitFor();
  return (await orderId.textContent()) ?? '';
}

async function adminSetStatus(orderId: string, body: Record<string, string>) {
  const res = await sendJson(
    'PATCH',
    p.url,
    `/orders/${orderId}/status`,
    await p.token('ops', 'admin'),
    body,
  );
  if (res.status !== 200) throw new Error(`PATCH ${JSON.stringify(body)} answered ${res.status}`);
}

const rowStatus = (page: Page, orderId: string) =>
  page.locator(`#orders-body tr[data-order-id="${orderId}"]`).getAttribute('data-status');

test.serial(
  'when the customer clicks Crear Pedido, then the admin table shows it within a second; when the admin ships it, then the customer sees shipped with the tracking number within a second',
  async (t) => {
    const product = await buildProduct(p.db, { name: 'Café de Colombia', stock_available: 20 });
    const [admin, customer] = await Promise.all([
      openConsole(t, browser, p.url),
      openPortal(t, browser, p.url, product.sku),
    ]);
    const orderId = await placeOrder(customer, product.sku, 2);
    await admin.row(orderId).waitFor({ timeout: 1000 });
    await until(
      async () => (await rowStatus(admin.page, orderId)) === 'CONFIRMED',
      'the row to turn CONFIRMED',
    );

    await admin.row(orderId).getByRole('button').click();
    await admin.page.getByRole('button', { name: 'Preparar' }).click();
    await admin.page.locator('#detail-message').filter({ hasText: 'Hecho' }).waitFor();
    await admin.page.getByRole('button', { name: 'Enviar' }).click();
    await admin.page.getByLabel('Número de seguimiento').fill('TRK-4242');
    await admin.page.getByLabel('Transportista').fill('Correos');
    await admin.page.getByRole('button', { name: 'Confirmar envío' }).click();

    const shipped = customer.page.locator('#order-facts [data-fact="tracking"]', { hasText: 'TRK-4242' });
    await shipped.waitFor({ timeout: 1000 });
    t.is(await customer.page.locator('#order-status').textContent(), 'SHIPPED');
    t.regex((await shipped.textContent()) ?? '', /Correos.*TRK-4242/);
    const listed = customer.page.locator(`#order-list [data-order-id="${orderId}"]`);
    await listed.locator('.tracking', { hasText: 'TRK-4242' }).waitFor({ timeout: 1000 });
    t.is(await listed.locator('.badge').textContent(), 'Enviado');
    t.is(await rowStatus(admin.page, orderId), 'SHIPPED');
    t.deepEqual(await admin.detailHistory(), ['Confirmado', 'En preparación', 'Enviado']);
    t.is((await p.db('orders').where({ id: orderId }).first()).tracking_number, 'TRK-4242');
    await mkdir(DOCS, { recursive: true });
    await admin.page.screenshot({
      path: new URL('console-orders.png', DOCS).pathname,
      animations: 'disabled',
    });
    t.deepEqual([...admin.pageErrors, ...customer.pageErrors], []);
  },
);

test.serial('when the customer cancels, then the admin sees the cancellation live', async (t) => {
  const product = await buildProduct(p.db, { stock_available: 10 });
  const [admin, customer] = await Promise.all([
    openConsole(t, browser, p.url),
    openPortal(t, browser, p.url, product.sku),
  ]);
  const orderId = await placeOrder(customer, product.sku, 3);
  await customer.page.locator('#timeline li.step[data-status="CONFIRMED"]').waitFor();
  await admin.row(orderId).getByRole('button').click();
  await admin.page.locator('#detail-status', { hasText: 'Confirmado' }).waitFor();

  await customer.page.getByRole('button', { name: 'Cancelar' }).click();

  await admin.page.locator(`#orders-body tr[data-order-id="${orderId}"][data-status="CANCELLED"]`).waitFor();
  await admin.page.locator('#detail-status', { hasText: 'Cancelado' }).waitFor();
  t.is(await admin.page.locator('#detail-actions button').count(), 0, 'nothing more can be done to it');
  t.deepEqual(await stockOf(p.db, product.id), { available: 10, reserved: 0 });
  t.deepEqual(admin.pageErrors, []);
});

test.serial(
  'when an admin ships from a stale page an order the customer has cancelled, then the optimistic change is put back with the server’s message',
  async (t) => {
    const product = await buildProduct(p.db, { stock_available: 10 });
    const customer = await openPortal(t, browser, p.url, product.sku);
    const orderId = await placeOrder(customer, product.sku, 1);
    await waitForStatus(p.db, orderId, ['CONFIRMED']);
    await adminSetStatus(orderId, { status: 'PROCESSING' });
    // A page whose feed tells it nothing: it still shows the order being prepared after the customer cancels.
    const admin = await openConsole(t, browser, p.url, { deafFeed: true });
    await admin.row(orderId).getByRole('button').click();
    await admin.page.locator('#detail-status', { hasText: 'En preparación' }).waitFor();
    await customer.page.getByRole('button', { name: 'Cancelar' }).click();
    await waitForStatus(p.db, orderId, ['CANCELLED']);

    await admin.page.getByRole('button', { name: 'Enviar' }).click();
    await admin.page.getByLabel('Número de seguimiento').fill('TRK-STALE');
    await admin.page.getByLabel('Transportista').fill('SEUR');
    await admin.page.getByRole('button', { name: 'Confirmar envío' }).click();

    const message = admin.page.locator('#detail-message[data-kind="error"]');
    await message.waitFor();
    t.regex((await message.textContent()) ?? '', /^No se aplicó: .+/);
    t.is(await admin.page.locator('#detail-status').textContent(), 'En preparación');
    t.is(await rowStatus(admin.page, orderId), 'PROCESSING');
    t.deepEqual(
      (await admin.detailHistory()).slice(-2),
      ['Enviado', 'En preparación'],
      'shown at once, then put back',
    );
    t.is((await p.db('orders').where({ id: orderId }).first()).status, 'CANCELLED');
  },
);
