// @ts-check
// The console's orders table: newest first, filtered by status and customer, paged by cursor, with new orders and
// status changes from the feed applied in place.
import { $, dateTime, money, shortId, t } from './words.js';

const PAGE = 20;

/**
 * An order as GET /orders returns it (the parts used here).
 * @typedef {object} ConsoleOrder
 * @property {string} id
 * @property {string} customer_id
 * @property {string} status
 * @property {number} total
 * @property {string} currency
 * @property {string} created_at
 * @property {number} version
 */

/**
 * @param {object} deps
 * @param {import('./api.js').ApiClient} deps.client
 * @param {(id: string) => void} deps.onOpen  the admin opened an order
 * @param {() => string | null} deps.selectedId
 */
export function createOrdersTable({ client, onOpen, selectedId }) {
  /** @type {Map<string, ConsoleOrder>} newest first */
  let orders = new Map();
  /** @type {string | null} */
  let nextCursor = null;
  const filters = { status: '', customer: '' };
  let loads = 0;

  function query(cursor = '') {
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (filters.status) q.set('status', filters.status);
    if (filters.customer) q.set('customer', filters.customer);
    if (cursor) q.set('cursor', cursor);
    return `/orders?${q}`;
  }

  /** @param {{ more?: boolean }} [options]  more: the next page, after what is shown */
  async function load({ more = false } = {}) {
    const n = ++loads;
    const page = await client.api(query(more && nextCursor ? nextCursor : ''));
    if (n !== loads) return;
    if (!more) orders = new Map();
    for (const o of /** @type {ConsoleOrder[]} */ (page.data)) if (!orders.has(o.id)) orders.set(o.id, o);
    nextCursor = page.next_cursor;
    render();
  }

  /** @param {ConsoleOrder} o */
  const matches = (o) =>
    (!filters.status || o.status === filters.status) &&
    (!filters.customer || o.customer_id === filters.customer);

  /**
   * A new order from the feed: read it and put it on top, if the filters let it in.
   * @param {string} id
   */
  async function added(id) {
    if (orders.has(id)) return;
    const order = await client.api(`/orders/${id}`);
    if (!matches(order) || orders.has(id)) return;
    orders = new Map([[id, order], ...orders]);
    render(id);
  }

  /**
   * A status change from the feed (or one the admin applies optimistically, or puts back).
   * @param {string} id
   * @param {string} status
   * @param {number} [version]  the order's version after the change; an older one than shown is ignored
   */
  function changed(id, status, version) {
    const o = orders.get(id);
    if (!o) return;
    if (version !== undefined) {
      if (version < o.version) return;
      o.version = version;
    }
    o.status = status;
    render(id);
  }

  /** @param {string} [fresh]  the row that just changed, highlighted */
  function render(fresh) {
    const body = $('#orders-body');
    body.textContent = '';
    $('#orders-none').hidden = orders.size > 0;
    for (const o of orders.values()) {
      const tr = document.createElement('tr');
      tr.dataset.orderId = o.id;
      tr.dataset.status = o.status;
      if (o.id === fresh) tr.className = 'row-new';
      if (o.id === selectedId()) tr.setAttribute('aria-current', 'true');
      const open = document.createElement('button');
      open.type = 'button';
      open.className = 'link';
      open.textContent = shortId(o.id);
      open.setAttribute('aria-label', `${t('openOrder', { id: shortId(o.id) })}: ${t(`status.${o.status}`)}`);
      open.addEventListener('click', () => onOpen(o.id));
      const badge = document.createElement('span');
      badge.className = 'badge';
      badge.dataset.status = o.status;
      badge.textContent = t(`status.${o.status}`);
      const cells = [open, o.customer_id, dateTime(o.created_at), money(o.total, o.currency), badge];
      const labels = ['colOrder', 'colCustomer', 'colWhen', 'colTotal', 'colStatus'];
      cells.forEach((content, i) => {
        const td = document.createElement(i === 0 ? 'th' : 'td');
        if (i === 0) td.setAttribute('scope', 'row');
        td.dataset.label = t(labels[i]); // the phone layout shows each cell with its column's name
        td.append(content);
        tr.append(td);
      });
      body.append(tr);
    }
    $('#more-orders').hidden = !nextCursor;
  }

  const form = /** @type {HTMLFormElement} */ ($('#order-filters'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    filters.status = /** @type {HTMLSelectElement} */ ($('#filter-status')).value;
    filters.customer = /** @type {HTMLInputElement} */ ($('#filter-customer')).value.trim();
    void load();
  });
  $('#more-orders').addEventListener('click', () => void load({ more: true }));

  return {
    load,
    added,
    changed,
    render: () => render(),
    /** @param {string} id */
    get: (id) => orders.get(id),
  };
}
