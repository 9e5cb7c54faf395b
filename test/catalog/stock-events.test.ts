import test from 'ava';
import { Webhook } from 'standardwebhooks';
import { waitForProcessed } from '../helpers/factories.ts';
import { postOrder, sendJson } from '../helpers/http.ts';
import { startPipeline, until, type TestPipeline } from '../helpers/pipeline.ts';
import { probeExchange } from '../helpers/probe.ts';
import { TestReceiver, webhookHeaders } from '../webhooks/receiver.ts';

let p: TestPipeline;
let admin: string;

test.before(async () => {
  p = await startPipeline(
    { WEBHOOK_RETRY_SCHEDULE: '0s,200ms', WEBHOOK_POLL_INTERVAL_MS: '100' },
    { notifier: true },
  );
  admin = await p.token('ops', 'admin');
});
test.after.always(async () => {
  await p?.stop();
});

test.serial(
  'when orders take a product from 12 to 8 and a restock brings it to 30, then one low_stock, one back_in_stock and an inventory.updated per change are published and sent to operations',
  async (t) => {
    const receiver = await TestReceiver.start();
    const inventory = await probeExchange(p, 'inventoryEvents');
    try {
      const endpoint = await sendJson('POST', p.url, '/webhook-endpoints', admin, {
        url: receiver.url,
        event_types: ['inventory.low_stock', 'inventory.back_in_stock'],
      });
      t.is(endpoint.status, 201);
      const product = (
        await sendJson('POST', p.url, '/products', admin, {
          sku: `LOW-${Date.now()}`,
          name: 'Molinillo eléctrico',
          price: 5900,
          currency: 'EUR',
          stock: 12,
          low_stock_threshold: 10,
        })
      ).body;
      const token = await p.token();

      // 12 → 10 (not below 10 yet) → 9 (crossed) → 8 (still below: no second warning)
      for (const quantity of [2, 1, 1]) {
        const order = await postOrder(p.url, token, { items: [{ product_id: product.id, quantity }] });
        t.is(await waitForProcessed(p.db, order.body.id), 'CONFIRMED');
      }
      const restock = await sendJson('POST', p.url, `/products/${product.id}/stock-adjustments`, admin, {
        delta: 22,
        reason: 'restock',
        note: 'pallet from the supplier',
      });
      t.is(restock.status, 201);
      t.is(restock.body.product.stock_available, 30);
      t.like(restock.body.movement, {
        delta: 22,
        reason: 'restock',
        note: 'pallet from the supplier',
        stock_after: 30,
      });

      await until(
        () =>
          inventory.about(product.id, 'inventory.back_in_stock').length === 1 &&
          inventory.about(product.id, 'inventory.updated').length === 5,
        'inventory.back_in_stock and the restock’s inventory.updated',
      );
      // Relays of several processes may publish out of order: the product's version puts the changes in order.
      const updates = inventory
        .about(product.id, 'inventory.updated')
        .sort((a, b) => a.version - b.version)
        .map((m) => m.data);
      t.deepEqual(
        updates.map(({ stock, previous_stock, reason }) => ({ stock, previous_stock, reason })),
        [
          { stock: 12, previous_stock: 0, reason: 'restock' },
          { stock: 10, previous_stock: 12, reason: 'reservation' },
          { stock: 9, previous_stock: 10, reason: 'reservation' },
          { stock: 8, previous_stock: 9, reason: 'reservation' },
          { stock: 30, previous_stock: 8, reason: 'restock' },
        ],
      );
      t.true(updates.every((u) => u.product_id === product.id && u.sku === product.sku));
      const low = inventory.about(product.id, 'inventory.low_stock');
      t.is(low.length, 1);
      t.like(low[0].data, { stock: 9, previous_stock: 10, threshold: 10 });
      t.like(inventory.about(product.id, 'inventory.back_in_stock')[0].data, { stock: 30, threshold: 10 });
      const versions = inventory
        .about(product.id, 'inventory.updated')
        .map((m) => m.version)
        .sort((a, b) => a - b);
      t.true(
        versions.every((v, i) => i === 0 || v > versions[i - 1]),
        `each change has a version of its own: ${versions.join(', ')}`,
      );

      await until(() => receiver.received.length >= 2, 'two webhooks');
      const secret = endpoint.body.secret as string;
      const payloads = receiver.received.map(
        (r) => new Webhook(secret).verify(r.body, webhookHeaders(r)) as { type: string; data: any },
      );
      t.deepEqual(
        payloads.map((w) => [w.type, w.data.product_id, w.data.stock]),
        [
          ['inventory.low_stock', product.id, 9],
          ['inventory.back_in_stock', product.id, 30],
        ],
      );
      const deliveries = await p.db('webhook_deliveries').where({ endpoint_id: endpoint.body.id });
      t.is(deliveries.length, 2, 'one delivery per crossing, none for the orders in between');
    } finally {
      await inventory.close();
      await receiver.stop();
    }
  },
);
