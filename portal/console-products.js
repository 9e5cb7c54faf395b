// @ts-check
// The console's product form (create, edit, deactivate) and the CSV import with its report.
import { ApiError } from './api.js';
import { problemWords } from './console-inventory.js';
import { $, say, t } from './words.js';

/**
 * @param {object} deps
 * @param {import('./api.js').ApiClient} deps.client
 * @param {() => void} deps.onSaved  a product was created, changed or imported
 */
export function createProductForms({ client, onSaved }) {
  /** @type {import('./console-inventory.js').AdminProduct | null} the product being edited, or null for a new one */
  let editing = null;
  const field = (/** @type {string} */ id) => /** @type {HTMLInputElement} */ ($(`#product-${id}`));

  /** @param {import('./console-inventory.js').AdminProduct | null} product */
  function edit(product) {
    editing = product;
    $('#product-form-title').textContent = t(product ? 'editProduct' : 'newProduct');
    field('sku').value = product?.sku ?? '';
    field('sku').readOnly = Boolean(product);
    field('name').value = product?.name ?? '';
    field('price').value = product ? (product.price / 100).toFixed(2) : '';
    field('currency').value = product?.currency ?? 'EUR';
    field('currency').readOnly = Boolean(product);
    field('stock').value = product ? String(product.stock_available) : '0';
    field('stock').closest('.field')?.toggleAttribute('hidden', Boolean(product));
    field('threshold').value = product ? String(product.low_stock_threshold) : '';
    $('#product-deactivate').hidden = !product;
    $('#product-deactivate').textContent = t(product?.active === false ? 'activate' : 'deactivate');
    $('#product-cancel').hidden = !product;
    say($('#product-message'), '', 'info');
    if (product) field('name').focus();
  }

  async function save() {
    const message = $('#product-message');
    const price = Math.round(Number(field('price').value.replace(',', '.')) * 100);
    const threshold = field('threshold').value.trim();
    /** @type {Record<string, unknown>} */
    const body = { name: field('name').value.trim(), price };
    if (threshold) body.low_stock_threshold = Number(threshold);
    try {
      if (editing) {
        await client.api(`/products/${editing.id}`, { method: 'PATCH', body });
        say(message, t('productSaved', { name: body.name }), 'ok');
      } else {
        Object.assign(body, {
          sku: field('sku').value.trim(),
          currency: field('currency').value.trim().toUpperCase(),
          stock: Number(field('stock').value),
        });
        await client.api('/products', { method: 'POST', body });
        edit(null);
        say(message, t('productCreated', { name: body.name }), 'ok');
      }
      onSaved();
    } catch (err) {
      say(message, err instanceof ApiError ? problemWords(err) : t('somethingFailed'), 'error');
    }
  }

  async function toggleActive() {
    if (!editing) return;
    try {
      await client.api(`/products/${editing.id}`, { method: 'PATCH', body: { active: !editing.active } });
      const done = t(editing.active ? 'deactivated' : 'activated', { name: editing.name });
      edit(null);
      say($('#product-message'), done, 'ok');
      onSaved();
    } catch (err) {
      say($('#product-message'), err instanceof ApiError ? problemWords(err) : t('somethingFailed'), 'error');
    }
  }

  async function upload() {
    const input = /** @type {HTMLInputElement} */ ($('#csv-file'));
    const file = input.files?.[0];
    const message = $('#csv-message');
    if (!file) return say(message, t('pickCsv'), 'error');
    say(message, t('importing'), 'info');
    try {
      const report = await client.api('/products/import', {
        method: 'POST',
        body: await file.text(),
        raw: true,
        headers: { 'content-type': 'text/csv' },
      });
      say(
        message,
        t('importReport', { ...report, rejected: report.rejected.length }),
        report.rejected.length ? 'warn' : 'ok',
      );
      const list = $('#csv-rejected');
      list.textContent = '';
      for (const r of report.rejected) {
        const li = document.createElement('li');
        const why = r.errors.map((/** @type {any} */ e) => `${e.field}: ${e.message}`).join('; ');
        li.textContent = t('rejectedRow', { line: r.line, sku: r.sku ?? '—', why });
        list.append(li);
      }
      onSaved();
    } catch (err) {
      say(message, err instanceof ApiError ? problemWords(err) : t('somethingFailed'), 'error');
    }
  }

  $('#product-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void save();
  });
  $('#product-cancel').addEventListener('click', () => edit(null));
  $('#product-deactivate').addEventListener('click', () => void toggleActive());
  $('#csv-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void upload();
  });
  edit(null);

  return { edit, render: () => edit(editing) };
}
