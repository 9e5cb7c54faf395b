// @ts-check
// The console's inventory: every product with available, reserved and threshold (low stock highlighted), kept live
// by the feed; restock and adjust forms and the stock ledger of the chosen product.
import { ApiError } from './api.js';
import { $, dateTime, money, say, t } from './words.js';

/**
 * A product as an admin sees it (GET /products with an admin token).
 * @typedef {object} AdminProduct
 * @property {string} id
 * @property {string} sku
 * @property {string} name
 * @property {number} price
 * @property {string} currency
 * @property {number} stock_available
 * @property {number} stock_reserved
 * @property {number} low_stock_threshold
 * @property {boolean} low_stock
 * @property {boolean} active
 * @property {number} version  goes up with every change, stock included
 */

/**
 * @param {object} deps
 * @param {import('./api.js').ApiClient} deps.client
 * @param {(product: AdminProduct) => void} deps.onEdit  the admin wants to edit a product (the product form)
 */
export function createInventory({ client, onEdit }) {
  /** @type {Map<string, AdminProduct>} */
  let products = new Map();
  /** @type {string | null} the product whose ledger and stock forms are shown */
  let chosen = null;

  async function load() {
    const { data } = await client.api('/products?include_inactive=true');
    // Without the catalogue the API lists products without their stock details: nothing to manage here yet.
    const catalogue = data.length === 0 || 'low_stock_threshold' in data[0];
    $('#inventory-waiting').hidden = catalogue;
    $('#inventory-table').hidden = !catalogue;
    $('#product-form').closest('.card')?.toggleAttribute('hidden', !catalogue);
    if (!catalogue) return;
    // The feed may have brought a change newer than this answer while it was on its way: the newer one stays.
    products = new Map(
      data.map((/** @type {AdminProduct} */ p) => {
        const held = products.get(p.id);
        return [p.id, held && held.version > p.version ? held : p];
      }),
    );
    render();
    if (chosen) await loadLedger(chosen);
  }

  /** @param {string} [fresh]  the row that just changed */
  function render(fresh) {
    const body = $('#inventory-body');
    body.textContent = '';
    for (const p of products.values()) {
      const tr = document.createElement('tr');
      tr.dataset.productId = p.id;
      tr.dataset.sku = p.sku;
      tr.dataset.lowStock = String(p.stock_available < p.low_stock_threshold);
      if (!p.active) tr.dataset.inactive = 'true';
      if (p.id === fresh) tr.className = 'row-new';
      if (p.id === chosen) tr.setAttribute('aria-current', 'true');
      const open = document.createElement('button');
      open.type = 'button';
      open.className = 'link';
      open.textContent = p.sku;
      open.setAttribute('aria-label', t('stockOf', { name: p.name }));
      open.addEventListener('click', () => void choose(p.id));
      const edit = document.createElement('button');
      edit.type = 'button';
      edit.className = 'dismiss';
      edit.textContent = t('edit');
      edit.setAttribute('aria-label', `${t('edit')}: ${p.name}`);
      edit.addEventListener('click', () => onEdit(p));
      const low = p.stock_available < p.low_stock_threshold;
      const available = document.createElement('span');
      available.className = low ? 'badge low' : '';
      available.textContent = String(p.stock_available);
      if (low) available.title = t('lowStockNote');
      const name = p.active ? p.name : `${p.name} (${t('inactive')})`;
      const cells = [
        open,
        name,
        money(p.price, p.currency),
        available,
        String(p.stock_reserved),
        String(p.low_stock_threshold),
        edit,
      ];
      const labels = [
        'colSku',
        'colName',
        'colPrice',
        'colAvailable',
        'colReserved',
        'colThreshold',
        'colEdit',
      ];
      cells.forEach((content, i) => {
        const td = document.createElement(i === 0 ? 'th' : 'td');
        if (i === 0) td.setAttribute('scope', 'row');
        td.dataset.label = t(labels[i]);
        if (i === 3) td.className = 'available';
        td.append(content);
        tr.append(td);
      });
      body.append(tr);
    }
  }

  /** @param {string} id */
  async function choose(id) {
    chosen = id;
    const p = products.get(id);
    $('#stock-box').hidden = !p;
    if (!p) return;
    $('#stock-title').textContent = t('stockOf', { name: p.name });
    say($('#stock-message'), '', 'info');
    render();
    await loadLedger(id);
    $('#stock-title').focus();
  }

  /** @param {string} id */
  async function loadLedger(id) {
    const { data } = await client.api(`/products/${id}/stock-movements?limit=20`);
    if (chosen !== id) return;
    const list = $('#ledger');
    list.textContent = '';
    for (const m of data) {
      const li = document.createElement('li');
      li.dataset.reason = m.reason;
      const sign = m.delta > 0 ? `+${m.delta}` : String(m.delta);
      li.textContent = `${dateTime(m.created_at)} · ${t(`movement.${m.reason}`)} · ${sign} → ${m.stock_after}${m.note ? ` · ${m.note}` : ''}`;
      list.append(li);
    }
  }

  /**
   * An inventory or product event from the feed.
   * @param {{ type: string, aggregate_id: string, data: any }} e
   */
  function onEvent(e) {
    const p = products.get(e.aggregate_id);
    const d = e.data?.data ?? {};
    const version = e.data?.version;
    if (e.type.startsWith('inventory.') && p && typeof d.stock === 'number' && typeof version === 'number') {
      // The stock events of one change share its version; one already shown (or older) changes nothing.
      if (version <= p.version) return;
      p.stock_available = d.stock;
      p.version = version;
      render(p.id);
      if (chosen === p.id) void loadLedger(p.id).catch(() => {});
    } else {
      // A product created or changed, or stock we do not hold yet: read the list again.
      void load().catch(() => {});
    }
  }

  $('#stock-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void adjust();
  });

  async function adjust() {
    if (!chosen) return;
    const delta = Number(/** @type {HTMLInputElement} */ ($('#stock-delta')).value);
    const reason = /** @type {HTMLSelectElement} */ ($('#stock-reason')).value;
    const note = /** @type {HTMLInputElement} */ ($('#stock-note')).value.trim();
    const message = $('#stock-message');
    try {
      const { product } = await client.api(`/products/${chosen}/stock-adjustments`, {
        method: 'POST',
        body: { delta, reason, ...(note ? { note } : {}) },
      });
      products.set(product.id, product);
      render(product.id);
      await loadLedger(product.id);
      say(message, t('stockSaved', { n: product.stock_available }), 'ok');
    } catch (err) {
      say(message, err instanceof ApiError ? problemWords(err) : t('somethingFailed'), 'error');
    }
  }

  return {
    load,
    onEvent,
    render: () => render(),
    /** @param {string} id */
    nameOf: (id) => products.get(id)?.name,
  };
}

/**
 * The server's words for a refusal, with the fields it names.
 * @param {ApiError} err
 */
export function problemWords(err) {
  const fields = (err.problem?.errors ?? [])
    .map((/** @type {any} */ f) => `${f.field}: ${f.message}`)
    .join('; ');
  return [err.problem?.detail ?? err.message, fields].filter(Boolean).join(' — ');
}
