// @ts-check
// The console's order detail: items, payment and refund, the trace, webhook deliveries, and the moves the lifecycle
// allows now. A move shows at once (optimistically) and is put back, with the server's words, on a 409 or 412.
import { ApiError } from './api.js';
import { renderDeliveryList } from './deliveries.js';
import { allowedMoves } from './lifecycle.js';
import { $, clock, money, say, shortId, t } from './words.js';

/**
 * @typedef {import('./console-orders.js').ConsoleOrder & {
 *   items: { product_id: string, sku: string, name: string, quantity: number, unit_price: number }[],
 *   payment: { method: string, status: string, refund: { amount: number } | null } | null,
 *   tracking_number?: string | null, carrier?: string | null, cancel_reason?: string | null
 * }} DetailOrder
 */

/**
 * @param {object} deps
 * @param {import('./api.js').ApiClient} deps.client
 * @param {() => string} deps.actor  admin | operations
 * @param {(id: string, status: string, version?: number) => void} deps.onStatus  shown status changed (table)
 */
export function createOrderDetail({ client, actor, onStatus }) {
  /** @type {DetailOrder | null} */
  let order = null;
  /** @type {string | null} a move on its way: its target status */
  let applying = null;
  let reads = 0;

  /** @param {string | null} id */
  async function show(id) {
    const n = ++reads;
    if (!id) {
      order = null;
      return render();
    }
    const [fresh, events, deliveries] = await Promise.all([
      client.api(`/orders/${id}`),
      client.api(`/orders/${id}/events`),
      client.api(`/orders/${id}/deliveries`).catch(() => ({ data: [] })),
    ]);
    // A read that a move (or a newer read) overtook would show an older order than the one on screen.
    if (n !== reads || applying || (order?.id === id && fresh.version < order.version)) return;
    if (order?.id !== id) say($('#detail-message'), '', 'info');
    order = fresh;
    render();
    renderTrace(events.data ?? events);
    renderDeliveryList($('#detail-deliveries'), deliveries.data);
  }

  function render() {
    $('#detail-empty').hidden = Boolean(order);
    $('#detail-body').hidden = !order;
    if (!order) return;
    $('#detail-id').textContent = order.id;
    $('#detail-customer').textContent = order.customer_id;
    const badge = $('#detail-status');
    badge.textContent = t(`status.${order.status}`);
    badge.dataset.status = order.status;
    const items = $('#detail-items');
    items.textContent = '';
    for (const i of order.items) {
      const li = document.createElement('li');
      li.textContent = `${i.quantity} × ${i.name} (${i.sku}) · ${money(i.unit_price * i.quantity, order.currency)}`;
      items.append(li);
    }
    const facts = [`${t('total')}: ${money(order.total, order.currency)}`];
    if (order.payment)
      facts.push(t('paymentLine', { method: order.payment.method, status: order.payment.status }));
    if (order.payment?.refund)
      facts.push(t('refundLine', { amount: money(order.payment.refund.amount, order.currency) }));
    if (order.tracking_number)
      facts.push(t('shippedWith', { carrier: order.carrier, tracking: order.tracking_number }));
    if (order.cancel_reason)
      facts.push(t('cancelledBecause', { reason: t(`reason.${order.cancel_reason}`) }));
    $('#detail-payment').textContent = facts.join(' · ');
    renderActions();
  }

  function renderActions() {
    const box = $('#detail-actions');
    box.textContent = '';
    if (!order) return;
    const moves = allowedMoves(order.status, actor());
    $('#no-actions').hidden = moves.length > 0;
    for (const to of moves) {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = `action move-${to.toLowerCase()}`;
      button.dataset.to = to;
      button.textContent = t(`action.${to}`);
      button.setAttribute('aria-disabled', String(applying !== null));
      button.addEventListener('click', () => (to === 'SHIPPED' ? openShipForm() : void move(to)));
      box.append(button);
    }
    if (!moves.includes('SHIPPED')) $('#ship-form').hidden = true;
  }

  function openShipForm() {
    const form = $('#ship-form');
    form.hidden = false;
    $('#ship-tracking').focus();
  }

  /**
   * @param {string} to
   * @param {Record<string, string>} [extra]  the shipment's tracking number and carrier
   */
  async function move(to, extra = {}) {
    if (!order || applying) return;
    const before = { status: order.status, version: order.version, id: order.id };
    applying = to;
    reads++; // whatever read is on its way started before this move
    // Optimistic: the new status is shown at once, here and in the table.
    order.status = to;
    onStatus(before.id, to);
    render();
    say($('#detail-message'), t('applying'), 'info');
    try {
      const fresh = await client.api(`/orders/${before.id}/status`, {
        method: 'PATCH',
        body: { status: to, ...extra },
        headers: { 'If-Match': `"${before.version}"` },
      });
      if (order?.id === before.id) order = fresh;
      onStatus(before.id, fresh.status, fresh.version);
      $('#ship-form').hidden = true;
      say($('#detail-message'), t('applied', { status: t(`status.${fresh.status}`) }), 'ok');
    } catch (err) {
      // Put back what was shown before, and say why in the server's words (a 409 names the status it is in).
      if (order?.id === before.id) order.status = before.status;
      onStatus(before.id, before.status);
      const detail = err instanceof ApiError ? (err.problem?.detail ?? err.message) : String(err);
      say($('#detail-message'), t('rolledBack', { detail }), 'error');
    } finally {
      applying = null;
      render();
    }
  }

  /** @param {{ id: number, type: string, to_status: string | null, created_at: string }[]} events */
  function renderTrace(events) {
    const list = $('#detail-trace');
    list.textContent = '';
    for (const e of events) {
      const li = document.createElement('li');
      li.dataset.step = e.type;
      const step = t(`step.${e.type}`);
      const status = e.to_status ? t(`status.${e.to_status}`) : '';
      li.textContent = `${clock(e.created_at)} · ${step}${status && status !== step ? ` → ${status}` : ''}`;
      list.append(li);
    }
  }

  $('#ship-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const tracking = /** @type {HTMLInputElement} */ ($('#ship-tracking')).value.trim();
    const carrier = /** @type {HTMLInputElement} */ ($('#ship-carrier')).value.trim();
    if (!tracking || !carrier) return say($('#detail-message'), t('needTracking'), 'error');
    void move('SHIPPED', { tracking_number: tracking, carrier });
  });

  return {
    show,
    render,
    selectedId: () => order?.id ?? null,
    /**
     * The feed says this order changed: read it again, unless a move of ours is on its way (its answer will).
     * @param {string} id
     */
    changed(id) {
      if (order?.id === id && !applying) void show(id).catch(() => {});
    },
    /** @param {string} id */
    label: (id) => shortId(id),
  };
}
