// @ts-check
// "Mis pedidos": the customer's orders with a live badge each, and the selected order's webhook deliveries.
import { renderDeliveryList } from './deliveries.js';
import { $, clock, money, shortId, t } from './words.js';

/**
 * @typedef {object} ListedOrder
 * @property {string} id
 * @property {string} status
 * @property {number} total
 * @property {string} currency
 * @property {string} created_at
 * @property {number} [version]
 * @property {string | null} [tracking_number]
 * @property {string | null} [carrier]
 */

/**
 * @param {Map<string, ListedOrder>} orders  newest first
 * @param {string | null} selectedId
 * @param {(order: ListedOrder) => void} onSelect
 */
export function renderOrderList(orders, selectedId, onSelect) {
  const list = $('#order-list');
  list.textContent = '';
  $('#orders-empty').hidden = orders.size > 0;
  for (const o of orders.values()) {
    const li = document.createElement('li');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'order-row';
    button.dataset.orderId = o.id;
    if (selectedId === o.id) button.setAttribute('aria-current', 'true');
    const tracking =
      o.status === 'SHIPPED' && o.tracking_number ? ` · ${o.carrier ?? ''} ${o.tracking_number}` : '';
    button.setAttribute(
      'aria-label',
      `${t('openOrder', { id: shortId(o.id) })}: ${t(`status.${o.status}`)}${tracking}`,
    );
    button.innerHTML = `<code></code><span class="when"></span><span class="amount"></span><span class="badge"></span>`;
    $('code', button).textContent = shortId(o.id);
    $('.when', button).textContent = clock(o.created_at);
    $('.amount', button).textContent = money(o.total, o.currency);
    const badge = $('.badge', button);
    badge.textContent = t(`status.${o.status}`);
    badge.dataset.status = o.status;
    if (tracking) {
      const track = document.createElement('span');
      track.className = 'tracking';
      track.textContent = t('shippedWith', { carrier: o.carrier, tracking: o.tracking_number });
      button.append(track);
    }
    button.addEventListener('click', () => onSelect(o));
    li.append(button);
    list.append(li);
  }
}

/**
 * The selected order's webhook deliveries, followed until none is pending.
 * @param {import('./api.js').ApiClient} client
 * @param {() => string | null} selectedId
 */
export function createDeliveriesPanel(client, selectedId) {
  /** @type {import('./deliveries.js').Delivery[] | null} */
  let last = null;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;

  /** @param {import('./deliveries.js').Delivery[] | null} deliveries */
  function render(deliveries = last) {
    $('#deliveries').hidden = deliveries === null;
    if (deliveries) renderDeliveryList($('#delivery-list'), deliveries);
  }

  /**
   * @param {string} orderId
   * @param {number} [round]
   */
  async function load(orderId, round = 0) {
    clearTimeout(timer);
    try {
      const { data } = await client.api(`/orders/${orderId}/deliveries`);
      if (selectedId() !== orderId) return;
      last = data;
      render(data);
      // Deliveries go out a moment after the order is final: follow them until none is pending.
      if (last?.some((d) => d.status === 'pending') && round < 10) {
        timer = setTimeout(() => void load(orderId, round + 1), 1500);
      }
    } catch {
      // 404: this API has no webhooks, or this order is not ours any more; the panel stays hidden.
      clear();
    }
  }

  function clear() {
    clearTimeout(timer);
    last = null;
    render(null);
  }

  return { load, clear, render: () => render() };
}
