import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import test from 'ava';
import type { Browser } from 'playwright-core';
import { buildProduct, waitForStatus } from '../helpers/factories.ts';
import { postOrder, sendJson } from '../helpers/http.ts';
import { startPipeline, until, type TestPipeline } from '../helpers/pipeline.ts';
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

test.serial(
  'when the customer cancels, then the admin sees the cancellation and the product’s stock go back up, live',
  async (t) => {
    const product = await buildProduct(p.db, { stock_available: 10, low_stock_threshold: 2 });
    const [admin, customer] = await Promise.all([
      openConsole(t, browser, p.url),
      openPortal(t, browser, p.url, product.sku),
    ]);
    const orderId = await placeOrder(customer, product.sku, 3);
    await customer.page.locator('#timeline li.step[data-status="CONFIRMED"]').waitFor();
    await admin.page.getByRole('tab', { name: 'Inventario' }).click();
    const available = admin.page.locator(`#inventory-body tr[data-sku="${product.sku}"] .available`);
    await available.filter({ hasText: /^7$/ }).waitFor();

    await customer.page.getByRole('button', { name: 'Cancelar' }).click();

    await available.filter({ hasText: /^10$/ }).waitFor();
    await admin.page.getByRole('tab', { name: 'Pedidos' }).click();
    await admin.page
      .locator(`#orders-body tr[data-order-id="${orderId}"][data-status="CANCELLED"]`)
      .waitFor();
    t.deepEqual(admin.pageErrors, []);
  },
);

test.serial(
  'when orders take a product below its threshold, then the admin gets one low-stock toast, not one per order',
  async (t) => {
    const product = await buildProduct(p.db, {
      name: 'Chocolate negro',
      stock_available: 9,
      low_stock_threshold: 5,
    });
    const admin = await openConsole(t, browser, p.url);
    const token = await p.token();
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await postOrder(p.url, token, { items: [{ product_id: product.id, quantity: 2 }] });
      ids.push(res.body.id);
      await waitForStatus(p.db, res.body.id, ['CONFIRMED']);
    }
    // 9 → 7 → 5 → 3 → 1: one crossing of 5.
    await admin.page.getByRole('tab', { name: 'Inventario' }).click();
    const row = admin.page.locator(`#inventory-body tr[data-sku="${product.sku}"]`);
    await row.locator('.available', { hasText: /^1$/ }).waitFor();
    t.is(await row.getAttribute('data-low-stock'), 'true');
    const toasts = admin.page.locator('#toasts .toast[data-kind="low_stock"]', {
      hasText: 'Chocolate negro',
    });
    await toasts.first().waitFor();
    for (const id of ids) await admin.row(id).waitFor({ state: 'attached' });
    t.is(await toasts.count(), 1);
    t.regex((await toasts.textContent()) ?? '', /Stock bajo: Chocolate negro/);
    await admin.page.getByRole('tab', { name: /Alertas/ }).click();
    t.is(
      await admin.page
        .locator('#alert-list li[data-kind="low_stock"]', { hasText: 'Chocolate negro' })
        .count(),
      1,
    );
    t.deepEqual(admin.pageErrors, []);
  },
);

test.serial(
  'when the catalogue answers with stock older than a change the feed already showed, then the inventory keeps the newer stock',
  async (t) => {
    const product = await buildProduct(p.db, { stock_available: 9, low_stock_threshold: 2 });
    const admin = await openConsole(t, browser, p.url);
    const { page } = admin;
    await page.getByRole('tab', { name: 'Inventario' }).click();
    const available = page.locator(`#inventory-body tr[data-sku="${product.sku}"] .available`);
    await available.filter({ hasText: /^9$/ }).waitFor();

    // The next catalogue answer is read from the server at once but reaches the page only when released.
    let read = false;
    let delivered = false;
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    await page.route('**/products?include_inactive=true', async (route) => {
      const response = await route.fetch();
      read = true;
      await released;
      await route.fulfill({ response });
      delivered = true;
    });
    // A product created elsewhere makes the console read the catalogue again.
    const ops = await p.token('ops', 'admin');
    const other = {
      sku: `SKU-${randomUUID().slice(0, 8)}`,
      name: 'Té verde',
      price: 450,
      currency: 'EUR',
      stock: 3,
    };
    t.is((await sendJson('POST', p.url, '/products', ops, other)).status, 201);
    await until(() => read, 'the console to read the catalogue');

    const order = await postOrder(p.url, await p.token(), {
      items: [{ product_id: product.id, quantity: 2 }],
    });
    await waitForStatus(p.db, order.body.id, ['CONFIRMED']);
    await available.filter({ hasText: /^7$/ }).waitFor();

    release();
    await until(() => delivered, 'the held answer to reach the console');
    await page.locator(`#inventory-body tr[data-sku="${other.sku}"]`).waitFor();
    t.is(await available.textContent(), '7');
    t.deepEqual(admin.pageErrors, []);
  },
);

test.serial(
  'when the admin creates a product and uploads a CSV from the console, then the new products appear in the customer’s catalogue',
  async (t) => {
    const seed = await buildProduct(p.db, { stock_available: 5 });
    const [admin, customer] = await Promise.all([
      openConsole(t, browser, p.url),
      openPortal(t, browser, p.url, seed.sku),
    ]);
    const { page } = admin;
    await page.getByRole('tab', { name: 'Inventario' }).click();
    const form = page.locator('#product-form');
    const sku = `MIEL-${randomUUID().slice(0, 6)}`;
    await form.getByLabel('SKU', { exact: true }).fill(sku);
    await form.getByLabel('Nombre', { exact: true }).fill('Miel de azahar');
    await form.getByLabel('Precio', { exact: true }).fill('6,50');
    await form.getByLabel('Moneda', { exact: true }).fill('EUR');
    await form.getByLabel('Stock inicial', { exact: true }).fill('12');
    await form.getByLabel('Umbral de stock bajo', { exact: true }).fill('3');
    await page.getByRole('button', { name: 'Guardar producto' }).click();
    await page.locator('#product-message[data-kind="ok"]', { hasText: 'Miel de azahar' }).waitFor();
    await page.locator(`#inventory-body tr[data-sku="${sku}"]`).waitFor();

    const csvSku = `ACEITE-${randomUUID().slice(0, 6)}`;
    const csv = `sku,name,price,currency,stock,low_stock_threshold\n${csvSku},Aceite de oliva,1250,EUR,30,5\n,Sin sku,100,EUR,1,1\n`;
    await page
      .getByLabel(/Archivo CSV/)
      .setInputFiles({ name: 'productos.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
    await page.getByRole('button', { name: 'Importar', exact: true }).click();
    const report = page.locator('#csv-message[data-kind="warn"]');
    await report.waitFor();
    t.regex(
      (await report.textContent()) ?? '',
      /2 filas: 1 nuevas, 0 actualizadas, 0 sin cambios, 1 rechazadas/,
    );
    t.is(await page.locator('#csv-rejected li').count(), 1);
    await page.locator(`#inventory-body tr[data-sku="${csvSku}"]`).waitFor();
    await mkdir(DOCS, { recursive: true });
    await page.screenshot({ path: new URL('console-inventory.png', DOCS).pathname, animations: 'disabled' });

    // The customer's page reads the catalogue again every few seconds: both appear without a reload.
    await customer.product(sku).waitFor({ timeout: 15_000 });
    await customer.product(csvSku).waitFor({ timeout: 15_000 });
    t.regex((await customer.product(sku).textContent()) ?? '', /Miel de azahar.*6,50/s);
    t.deepEqual([...admin.pageErrors, ...customer.pageErrors], []);
  },
);

test.serial(
  'when the admin restocks a product and then deactivates it, then the ledger shows the restock and the customer’s catalogue drops the product',
  async (t) => {
    const product = await buildProduct(p.db, {
      name: 'Galletas',
      stock_available: 4,
      low_stock_threshold: 2,
    });
    const [admin, customer] = await Promise.all([
      openConsole(t, browser, p.url),
      openPortal(t, browser, p.url, product.sku),
    ]);
    const { page } = admin;
    await page.getByRole('tab', { name: 'Inventario' }).click();
    await page.getByRole('button', { name: 'Stock de Galletas' }).click();
    await page.getByLabel('Cantidad (+ entra, − sale)').fill('6');
    await page.getByLabel('Nota').fill('pedido al proveedor');
    await page.getByRole('button', { name: 'Guardar movimiento' }).click();
    await page.locator('#stock-message[data-kind="ok"]', { hasText: '10 disponibles' }).waitFor();
    // Newest first: the opening stock (a restock of 4) is below it.
    const restock = page.locator('#ledger li[data-reason="restock"]').first();
    await restock.filter({ hasText: 'pedido al proveedor' }).waitFor();
    t.regex((await restock.textContent()) ?? '', /Reposición · \+6 → 10 · pedido al proveedor/);
    t.is(await page.locator(`#inventory-body tr[data-sku="${product.sku}"] .available`).textContent(), '10');

    await page.getByRole('button', { name: 'Editar: Galletas' }).click();
    await page.getByRole('button', { name: 'Desactivar' }).click();
    await page.locator('#product-message[data-kind="ok"]', { hasText: 'Desactivado: Galletas' }).waitFor();
    await page.locator(`#inventory-body tr[data-sku="${product.sku}"][data-inactive="true"]`).waitFor();
    await customer.product(product.sku).waitFor({ state: 'detached', timeout: 15_000 });
    t.is((await p.db('products').where({ id: product.id }).first()).active, false);
    t.deepEqual([...admin.pageErrors, ...customer.pageErrors], []);
  },
);
