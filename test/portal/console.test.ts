import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import test from 'ava';
import type { Browser, Page } from 'playwright-core';
import { startApi } from '../../api/server.ts';
import { destroyScratchRun } from '../../lib/services.ts';
import { startWorker } from '../../worker/worker.ts';
import { buildProduct, stockOf, waitForAllProcessed, waitForStatus } from '../helpers/factories.ts';
import { postOrder, sendJson } from '../helpers/http.ts';
import { publishRaw, startPipeline, until, type TestPipeline } from '../helpers/pipeline.ts';
import { launchBrowser, openConsole, openPortal, placeOrder, SCREENSHOTS } from '../helpers/portal.ts';

const DOCS = SCREENSHOTS;

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

test.serial(
  'when the API restarts while orders move on, then the console resumes its feed with every missed event once',
  async (t) => {
    const q = await startPipeline();
    let api = q.api;
    let worker = q.worker;
    t.teardown(async () => {
      await worker?.stop();
      await api.stop();
      await destroyScratchRun(q.services);
    });
    await until(() => q.api.statusListener.listening, 'the status listener to bind its queue');
    await worker!.stop();
    worker = undefined;
    const product = await buildProduct(q.db, { stock_available: 50 });
    const admin = await openConsole(t, browser, q.url);
    const token = await q.token();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await postOrder(q.url, token, { items: [{ product_id: product.id, quantity: 1 }] });
      ids.push(res.body.id);
    }
    for (const id of ids)
      await admin.page.locator(`#orders-body tr[data-order-id="${id}"][data-status="RECEIVED"]`).waitFor();

    // The API goes away; the worker confirms the orders meanwhile; a new API comes up on the same address.
    await api.stop();
    await admin.page.locator('#feed-state[data-state="reconnecting"]').waitFor();
    worker = startWorker(q.services);
    await waitForAllProcessed(q.db, ids);
    api = await startApi(q.services, { port: Number(new URL(q.url).port) });

    for (const id of ids)
      await admin.page.locator(`#orders-body tr[data-order-id="${id}"][data-status="CONFIRMED"]`).waitFor();
    await admin.page.locator('#feed-state[data-state="live"]').waitFor();
    const written: string[] = (
      await q.db.raw(
        `select tx::text || '-' || id as position from admin_events where aggregate_id = any(?) order by tx, id`,
        [ids],
      )
    ).rows.map((r: { position: string }) => r.position);
    await until(async () => {
      const received = await admin.feedIds();
      return written.every((w) => received.includes(w));
    }, 'every event to arrive');
    const received = (await admin.feedIds()).filter((id) => written.includes(id));
    t.deepEqual(received, written, 'every event once, in order');
    t.deepEqual(admin.pageErrors, []);
  },
);

test.serial(
  'when a message is dead-lettered, then the admin gets one toast and an alert whose count survives a reload until it is dismissed',
  async (t) => {
    const admin = await openConsole(t, browser, p.url);
    const { page } = admin;
    await publishRaw(p, 'orderCreated', '{"not": "an order"', {
      messageId: randomUUID(),
      type: 'OrderCreated',
    });

    const toast = page.locator('#toasts .toast[data-kind="dead_letter"]');
    await toast.waitFor();
    t.regex((await toast.textContent()) ?? '', /cola de errores/);
    t.is(await toast.count(), 1);
    t.is(await page.locator('#alerts-count').textContent(), '1');

    await page.reload();
    await page.locator('#feed-state[data-state="live"]').waitFor();
    t.is(await page.locator('#alerts-count').textContent(), '1');
    await page.getByRole('tab', { name: /Alertas/ }).click();
    const alert = page.locator('#alert-list li[data-kind="dead_letter"]');
    t.is(await alert.count(), 1);
    await page.screenshot({ path: new URL('console-alerts.png', DOCS).pathname, animations: 'disabled' });
    await alert.getByRole('button', { name: /Descartar/ }).click();
    t.is(await page.locator('#alerts-count').textContent(), '0');
    await page.reload();
    await page.locator('#feed-state[data-state="live"]').waitFor();
    t.is(await page.locator('#alerts-count').textContent(), '0');
    t.deepEqual(admin.pageErrors, []);
  },
);

test.serial(
  'when the console is opened without an admin session, then it shows the sign-in and reads no data; a customer’s session is refused',
  async (t) => {
    const visitor = await openConsole(t, browser, p.url, { signIn: false });
    const requested: string[] = [];
    visitor.page.on('request', (r) => requested.push(new URL(r.url()).pathname));
    await visitor.page.locator('#signin').waitFor();
    t.true(await visitor.page.getByRole('button', { name: 'Entrar como administrador (demo)' }).isVisible());
    t.false(await visitor.page.locator('#console').isVisible());

    // A customer's token where the admin's would be: the console says so and stays closed.
    const customerToken = await p.token();
    await visitor.page.context().route('**/login-demo**', (route) =>
      route.fulfill({
        status: 200,
        contentType: 'application/json',
        body: JSON.stringify({ token: customerToken, expires_in: 900 }),
      }),
    );
    await visitor.page.locator('#signin-demo').click();
    await visitor.page.locator('#signin-message[data-kind="error"]').waitFor();
    t.regex((await visitor.page.locator('#signin-message').textContent()) ?? '', /no es de administrador/);
    t.false(await visitor.page.locator('#console').isVisible());
    t.deepEqual(
      requested.filter((path) => path.startsWith('/orders') || path.startsWith('/admin/')),
      [],
      'no order or admin data asked for',
    );
    const stream = await fetch(`${p.url}/admin/stream?access_token=${customerToken}`);
    t.is(stream.status, 403);
  },
);

test.serial(
  'when the console is used at phone width with the keyboard, then an order opens and moves with labelled controls and nothing overflows',
  async (t) => {
    const product = await buildProduct(p.db, { name: 'Té verde', stock_available: 10 });
    const customer = await openPortal(t, browser, p.url, product.sku);
    const orderId = await placeOrder(customer, product.sku, 1);
    await waitForStatus(p.db, orderId, ['CONFIRMED']);
    const admin = await openConsole(t, browser, p.url, { viewport: { width: 375, height: 800 } });
    const { page } = admin;
    const open = admin.row(orderId).getByRole('button', { name: /Ver el pedido/ });
    await open.waitFor();
    await open.focus();
    await page.keyboard.press('Enter');
    await page.locator('#detail-status', { hasText: 'Confirmado' }).waitFor();
    await page.getByRole('button', { name: 'Preparar' }).focus();
    await page.keyboard.press('Enter');
    await page.locator(`#orders-body tr[data-order-id="${orderId}"][data-status="PROCESSING"]`).waitFor();
    t.true(await page.evaluate<boolean>('document.documentElement.scrollWidth <= window.innerWidth'));
    const unlabelled =
      await page.evaluate<number>(`[...document.querySelectorAll('#console input, #console select')]
      .filter((el) => !el.labels?.length && !el.getAttribute('aria-label')).length`);
    t.is(unlabelled, 0);
    await page.getByRole('tab', { name: /Pedidos/ }).focus();
    await page.keyboard.press('ArrowRight');
    t.is(await page.getByRole('tab', { name: /Inventario/ }).getAttribute('aria-selected'), 'true');
    await page.keyboard.press('ArrowLeft');
    await page.locator('#detail-title').scrollIntoViewIfNeeded();
    await mkdir(DOCS, { recursive: true });
    await page.screenshot({ path: new URL('console-phone.png', DOCS).pathname, animations: 'disabled' });
    t.deepEqual(admin.pageErrors, []);
  },
);

test.serial(
  'when the admin opens the Analítica tab, then the analytics dashboard loads inside the console',
  async (t) => {
    const admin = await openConsole(t, browser, p.url);
    await admin.page.getByRole('tab', { name: 'Analítica' }).click();
    const dashboard = admin.page.frameLocator('iframe.analytics-frame');
    await dashboard.locator('#kpi-received').filter({ hasNotText: '—' }).waitFor();
    t.regex((await dashboard.locator('#kpi-received').textContent()) ?? '', /\d/);
    t.false(await admin.page.locator('#analytics-waiting').isVisible());
    t.deepEqual(admin.pageErrors, []);
  },
);
