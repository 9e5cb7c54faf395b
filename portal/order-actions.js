// @ts-check
// What the customer can see of and do with the selected order beyond its trace: pay a waiting order, cancel one
// that has not shipped, and its facts (payment due, tracking, cancellation, refund).
import { isCancellable } from './lifecycle.js';

/**
 * The order as GET /orders/:id returns it (the parts used here).
 * @typedef {object} OrderView
 * @property {string} id
 * @property {string} status
 * @property {string} currency
 * @property {number} [version]
 * @property {string | null} [cancel_reason]
 * @property {string | null} [tracking_number]
 * @property {string | null} [carrier]
 * @property {string | null} [delivered_at]
 * @property {{ method: string, status: string, due_at: string | null,
 *   refund: { amount: number, refunded_at: string } | null }} [payment]
 */

/**
 * @typedef {object} ActionDeps
 * @property {(path: string, init?: { method?: string, body?: unknown }) => Promise<any>} api
 * @property {(key: string, params?: Record<string, unknown>) => string} t
 * @property {(iso: string) => string} timeOfDay  hours and minutes
 * @property {(cents: number, currency?: string) => string} money
 * @property {() => boolean} declineChosen  whether the page's "simulate a declined payment" box is ticked
 * @property {(order: OrderView) => void} onChanged  the order as the server answered
 */

const $ = (/** @type {string} */ selector) => /** @type {HTMLElement} */ (document.querySelector(selector));

/** @param {ActionDeps} deps */
export function createOrderActions(deps) {
  const { api, t } = deps;
  /** @type {OrderView | null} */
  let order = null;
  let busy = false;
  /** @type {{ key: string, params?: Record<string, unknown>, kind: string, fromStep?: boolean } | null} */
  let message = null;

  $('#cancel-order').addEventListener('click', () => void run('cancelling', cancel));
  $('#pay-order').addEventListener('click', () => void run('paying', pay));

  async function cancel() {
    if (!order) return;
    deps.onChanged(await api(`/orders/${order.id}/cancel`, { method: 'POST', body: {} }));
    message = null;
  }

  async function pay() {
    if (!order) return;
    const token = deps.declineChosen() ? 'tok_decline' : 'tok_visa';
    deps.onChanged(await api(`/orders/${order.id}/payment`, { method: 'POST', body: { token } }));
    message = { key: 'paymentSent', kind: 'info' };
  }

  /**
   * @param {string} doing  the message while it is on its way
   * @param {() => Promise<void>} action
   */
  async function run(doing, action) {
    if (busy || !order) return;
    const id = order.id;
    busy = true;
    message = { key: doing, kind: 'info' };
    render(order);
    try {
      await action();
    } catch (err) {
      // The server says why in words (a 409 names the order's status): show that rather than a guess.
      const detail = /** @type {{ problem?: { detail?: string } }} */ (err)?.problem?.detail;
      message = detail
        ? { key: 'serverSays', params: { detail }, kind: 'error' }
        : { key: 'somethingFailed', kind: 'error' };
    } finally {
      busy = false;
      if (order?.id === id) render(order);
    }
  }

  /** @param {OrderView | null} next  the selected order, or null when none is */
  function render(next) {
    if (next?.id !== order?.id) message = null;
    order = next;
    const panel = $('#order-actions');
    panel.hidden = !order;
    if (!order) return;
    const awaiting = order.status === 'AWAITING_PAYMENT';
    if (message?.key === 'paymentSent' && !awaiting) message = null; // the answer came before the 202 did
    show('#pay-order', awaiting);
    show('#pay-hint', awaiting);
    show('#cancel-order', isCancellable(order.status));
    for (const button of panel.querySelectorAll('button')) button.setAttribute('aria-disabled', String(busy));
    renderFacts(order);
    const out = $('#action-message');
    out.textContent = message ? t(message.key, message.params) : '';
    out.dataset.kind = message?.kind ?? 'info';
  }

  /** @param {OrderView} o */
  function renderFacts(o) {
    /** @type {[string, string][]} */
    const facts = [];
    if (o.status === 'AWAITING_PAYMENT' && o.payment?.due_at) {
      facts.push(['due', t('paymentDue', { time: deps.timeOfDay(o.payment.due_at) })]);
    }
    if (o.tracking_number) {
      facts.push(['tracking', t('shippedWith', { carrier: o.carrier, tracking: o.tracking_number })]);
    }
    if (o.status === 'CANCELLED' && o.cancel_reason) {
      facts.push(['cancel', t('cancelledBecause', { reason: t(`reason.${o.cancel_reason}`) })]);
    }
    if (o.payment?.refund) {
      facts.push([
        'refund',
        t('refundedAmount', { amount: deps.money(o.payment.refund.amount, o.currency) }),
      ]);
    }
    const list = $('#order-facts');
    list.textContent = '';
    for (const [kind, text] of facts) {
      const li = document.createElement('li');
      li.dataset.fact = kind;
      li.textContent = text;
      list.append(li);
    }
  }

  /**
   * A payment attempt's outcome arrived in the trace: a declined card says so next to the button.
   * @param {{ type: string, from_status: string | null, to_status: string | null }} e
   */
  function noteStep(e) {
    if (e.type === 'PaymentDeclined')
      message = { key: 'declinedStillWaiting', kind: 'error', fromStep: true };
    // A new status makes a waiting note or an earlier decline old news; the server's answer to what the
    // customer just pressed stays until they press again (the order may move on while that answer arrives).
    else if (e.to_status !== e.from_status && (message?.kind === 'info' || message?.fromStep)) message = null;
  }

  return { render, noteStep };
}

/**
 * @param {string} selector
 * @param {boolean} visible
 */
function show(selector, visible) {
  $(selector).hidden = !visible;
}
