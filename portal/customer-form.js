// @ts-check
// The customer's new-order form: the catalogue with stock, quantities, the total, and "Crear Pedido" with one
// Idempotency-Key per distinct order, kept for every retry of it.
import { ApiError, sleep, uuid } from './api.js';
import { $, money, say, t } from './words.js';

const MAX_QUANTITY = 1000;

/**
 * @typedef {object} Product
 * @property {string} id
 * @property {string} sku
 * @property {string} name
 * @property {number} price
 * @property {string} currency
 * @property {number} stock_available
 */

/**
 * @param {object} deps
 * @param {import('./api.js').ApiClient} deps.client
 * @param {() => string} deps.customer  who is ordering (the key is scoped to them)
 * @param {(order: any) => void} deps.onOrderCreated
 */
export function createOrderForm({ client, customer, onOrderCreated }) {
  /** @type {Map<string, Product>} */
  const products = new Map();
  /** @type {{ key: string, fingerprint: string } | null} the key of the order being sent, kept for every retry */
  let draft = null;
  let submitting = false;

  async function loadProducts() {
    try {
      const { data } = await client.api('/products', { auth: false });
      const listed = new Set();
      for (const p of /** @type {Product[]} */ (data)) {
        products.set(p.id, { ...products.get(p.id), ...p });
        listed.add(p.id);
      }
      // A product taken off sale (deactivated) leaves the catalogue.
      for (const id of products.keys()) if (!listed.has(id)) products.delete(id);
      render();
    } catch {
      // shown by the banner; the next change or reconnect loads them again
    }
  }

  function render() {
    const list = $('#products');
    // Products taken off sale leave the list, the last one too.
    for (const item of list.querySelectorAll('[data-product-id]')) {
      if (!products.has(/** @type {HTMLElement} */ (item).dataset.productId ?? '')) item.remove();
    }
    if (!products.size) return;
    list.removeAttribute('aria-busy');
    if (list.querySelector('.muted')) list.textContent = '';
    for (const p of products.values()) {
      /** @type {HTMLElement | null} */
      let item = list.querySelector(`[data-product-id="${p.id}"]`);
      if (!item) {
        item = document.createElement('li');
        item.className = 'product';
        item.dataset.productId = p.id;
        item.dataset.sku = p.sku;
        item.innerHTML = `
          <label class="name" for="qty-${p.id}"></label>
          <span class="price"></span>
          <span class="stock"></span>
          <input id="qty-${p.id}" class="qty" type="number" inputmode="numeric" min="0" max="${MAX_QUANTITY}" step="1" value="0" />
          <span class="warn" id="warn-${p.id}" hidden></span>`;
        $('input', item).setAttribute('aria-describedby', `warn-${p.id}`);
        list.append(item);
      }
      $('.name', item).textContent = p.name;
      $('input', item).setAttribute('aria-label', t('quantityOf', { name: p.name }));
      $('.price', item).textContent = money(p.price, p.currency);
      const stock = $('.stock', item);
      stock.textContent = p.stock_available > 0 ? t('stockLeft', { n: p.stock_available }) : t('noStock');
      stock.dataset.stock = String(p.stock_available);
      stock.classList.toggle('sold-out', p.stock_available <= 0);
    }
    updateTotal();
  }

  /** @returns {HTMLInputElement[]} */
  const quantityInputs = () =>
    [...document.querySelectorAll('#products .qty')].map((i) => /** @type {any} */ (i));

  function chosenItems() {
    const items = [];
    for (const input of quantityInputs()) {
      const raw = input.value.trim();
      if (raw === '' || raw === '0') continue;
      const id = /** @type {HTMLElement} */ (input.closest('[data-product-id]')).dataset.productId;
      items.push({ product_id: id, quantity: Number(raw) });
    }
    return items;
  }

  function updateTotal() {
    let total = 0;
    let currency = 'EUR';
    for (const input of quantityInputs()) {
      const item = /** @type {HTMLElement} */ (input.closest('[data-product-id]'));
      const p = products.get(item.dataset.productId ?? '');
      if (!p) continue;
      const q = Number(input.value);
      const warn = $('.warn', item);
      const tooMany = Number.isInteger(q) && q > p.stock_available;
      warn.hidden = !tooMany;
      warn.textContent = tooMany ? t('moreThanStock') : '';
      if (Number.isInteger(q) && q > 0) {
        total += q * p.price;
        currency = p.currency;
      }
    }
    $('#total').textContent = money(total, currency);
  }

  /** @param {SubmitEvent} event */
  async function createOrder(event) {
    event.preventDefault();
    // A second click while the first is on its way changes nothing: the same order is being sent.
    if (submitting) return;
    const items = chosenItems();
    const message = $('#form-message');
    if (!items.length) return say(message, t('pickProduct'), 'error');
    if (items.some((i) => !Number.isInteger(i.quantity) || i.quantity < 1 || i.quantity > MAX_QUANTITY)) {
      return say(message, t('badQuantity', { max: MAX_QUANTITY }), 'error');
    }
    // A pay-later order takes its card afterwards (Pagar), where the decline option applies again.
    const payment = checked('#pay-later')
      ? { method: 'later' }
      : checked('#decline')
        ? { token: 'tok_decline' }
        : undefined;
    const body = { items, ...(payment ? { payment } : {}) };
    // The key belongs to this exact order: a retry (or a new click after a failure) of the same order reuses it,
    // so however often it is sent, one order is created. A changed order gets a new key.
    const fingerprint = `${customer()}:${JSON.stringify(body)}`;
    if (draft?.fingerprint !== fingerprint) draft = { key: uuid(), fingerprint };
    const { key } = draft;

    setSubmitting(true);
    say(message, t('sending'), 'info');
    try {
      const deadline = Date.now() + 120_000;
      for (let attempt = 0; ; attempt++) {
        try {
          const order = await client.api('/orders', {
            method: 'POST',
            body,
            headers: { 'Idempotency-Key': key },
          });
          // The form keeps what was chosen, so the same order can be placed again at once; its next click is a
          // new order with a new key.
          draft = null;
          say(message, '', 'info');
          onOrderCreated(order);
          return;
        } catch (err) {
          if (!(err instanceof ApiError)) throw err;
          if (err.retryable && Date.now() < deadline) {
            say(message, t('retrying'), 'warn');
            await sleep(err.retryAfter ? err.retryAfter * 1000 : Math.min(500 * 2 ** attempt, 5000));
            continue;
          }
          if (err.retryable) return say(message, t('gaveUp'), 'error');
          draft = null; // refused for good: this key's request will never succeed
          return say(message, describeProblem(err), 'error');
        }
      }
    } finally {
      setSubmitting(false);
    }
  }

  /** @param {ApiError} err */
  function describeProblem(err) {
    switch (err.problem?.code) {
      case 'VALIDATION_FAILED':
        return t('badQuantity', { max: MAX_QUANTITY });
      case 'UNAUTHORIZED':
        return t('sessionExpired');
      case 'INSUFFICIENT_STOCK':
        return t('serverSays', { detail: err.problem.detail });
      default:
        return t('somethingFailed');
    }
  }

  /** @param {boolean} on */
  function setSubmitting(on) {
    submitting = on;
    // aria-disabled rather than disabled: the button keeps keyboard focus while the order is on its way.
    $('#create-order').setAttribute('aria-disabled', String(on));
    $('#order-form').setAttribute('aria-busy', String(on));
  }

  $('#order-form').addEventListener('submit', (e) => void createOrder(/** @type {SubmitEvent} */ (e)));
  $('#products').addEventListener('input', updateTotal);

  return {
    loadProducts,
    render,
    /** @param {string} id */
    productName: (id) => products.get(id)?.name,
    /** A new customer starts with a new key. */
    reset() {
      draft = null;
    },
  };
}

/** @param {string} selector */
const checked = (selector) =>
  $(/** @type {string} */ (selector)) instanceof HTMLInputElement &&
  /** @type {HTMLInputElement} */ ($(selector)).checked;
