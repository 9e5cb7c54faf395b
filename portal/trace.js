// @ts-check
// The selected order's trace: each step as it happened, then what is still to come.
import { changesStatus, expectedNext, isProcessed, isTerminal } from './lifecycle.js';

/** @typedef {import('./lifecycle.js').TraceEvent} TraceEvent */

/**
 * What the trace needs from the page.
 * @typedef {object} TraceWords
 * @property {(key: string, params?: Record<string, unknown>) => string} t
 * @property {(iso: string) => string} clock
 * @property {(cents: number, currency?: string) => string} money
 * @property {(productId: string) => string | undefined} productName
 */

let renderedSteps = new Set(); // steps already on screen, so only new ones are highlighted

/**
 * @param {HTMLOListElement} timeline
 * @param {HTMLElement} summary
 * @param {{ id: string, status: string, currency?: string }} order
 * @param {TraceEvent[]} events  its trace so far, by id
 * @param {TraceWords} words
 */
export function renderTimeline(timeline, summary, order, events, words) {
  const { t, clock } = words;
  timeline.textContent = '';
  summary.textContent = '';
  const seen = renderedSteps;
  renderedSteps = new Set(events.map((e) => `${order.id}:${e.id}`));
  /** @type {TraceEvent | null} */
  let previous = null;
  for (const e of events) {
    const moved = changesStatus(e);
    const li = document.createElement('li');
    li.className = seen.has(`${order.id}:${e.id}`) ? 'step' : 'step step-new';
    // data-status only on steps that changed it: a declined card or a refund leaves the order where it was.
    if (moved && e.to_status) li.dataset.status = e.to_status;
    li.dataset.step = e.type;
    li.dataset.eventId = String(e.id);
    const took = previous ? Date.parse(e.created_at) - Date.parse(previous.created_at) : null;
    li.innerHTML = `
      <span class="dot" aria-hidden="true"></span>
      <div class="what"><strong></strong> <code></code></div>
      <div class="when"><time></time> <span class="took"></span></div>`;
    /** @type {HTMLElement} */ (li.querySelector('strong')).textContent =
      moved && e.to_status ? t(`status.${e.to_status}`) : t(`step.${e.type}`);
    /** @type {HTMLElement} */ (li.querySelector('code')).textContent = moved ? String(e.to_status) : e.type;
    const time = /** @type {HTMLTimeElement} */ (li.querySelector('time'));
    time.dateTime = e.created_at;
    time.textContent = clock(e.created_at);
    /** @type {HTMLElement} */ (li.querySelector('.took')).textContent =
      took === null ? '' : t('tookMs', { ms: took });
    const detail = stepDetail(e, order, words);
    if (detail) li.append(detail);
    timeline.append(li);
    previous = e;
  }

  const last = events.filter(changesStatus).at(-1);
  const current = last?.to_status ?? null;
  const next = expectedNext(current);
  // Before the worker's outcome the next status is one of several: say "confirmed or rejected", not a guess.
  const outcomeOpen = next.length > 0 && !isProcessed(current) && isProcessed(next.at(-1));
  for (const status of outcomeOpen ? next.slice(0, -1) : next) {
    timeline.append(pendingStep(t(`status.${status}`), status, t('pending')));
  }
  if (outcomeOpen) timeline.append(pendingStep(t('outcomePending'), 'CONFIRMED / REJECTED', t('pending')));
  if (last && isProcessed(current) && events.length > 1) {
    const ms = Date.parse(last.created_at) - Date.parse(events[0].created_at);
    summary.textContent = t('totalTime', { ms, status: t(`status.${current}`) });
  }
}

/**
 * Whether a trace can still grow: until the order is terminal, and after a cancellation until its refund.
 * @param {TraceEvent[]} events
 */
export function traceComplete(events) {
  const last = events.filter(changesStatus).at(-1);
  if (!last || !isTerminal(last.to_status)) return false;
  const refundDue = last.data?.refund_requested === true;
  return !refundDue || events.some((e) => e.type === 'PaymentRefunded' && e.id > last.id);
}

/**
 * @param {string} label
 * @param {string} code
 * @param {string} when
 */
function pendingStep(label, code, when) {
  const li = document.createElement('li');
  li.className = 'step pending';
  li.innerHTML = `<span class="dot" aria-hidden="true"></span><div class="what"><strong></strong> <code></code></div><div class="when"></div>`;
  /** @type {HTMLElement} */ (li.querySelector('strong')).textContent = label;
  /** @type {HTMLElement} */ (li.querySelector('code')).textContent = code;
  /** @type {HTMLElement} */ (li.querySelector('.when')).textContent = when;
  return li;
}

/**
 * What a step says beyond its name: why it was rejected or cancelled, where it was shipped, what was refunded.
 * @param {TraceEvent} e
 * @param {{ currency?: string }} order
 * @param {TraceWords} words
 * @returns {HTMLElement | null}
 */
function stepDetail(e, order, { t, money, productName }) {
  const p = document.createElement('p');
  p.className = 'reason';
  switch (e.type) {
    case 'OrderRejected':
      p.textContent = t('rejectedBecause', { reason: t(`reason.${e.reason}`) });
      if (e.reason === 'OUT_OF_STOCK' && Array.isArray(e.data?.out_of_stock)) {
        const ul = document.createElement('ul');
        for (const s of e.data.out_of_stock) {
          const li = document.createElement('li');
          const name = productName(s.product_id) ?? s.sku;
          li.textContent = t('outOfStockItem', { name, requested: s.requested, available: s.available });
          ul.append(li);
        }
        p.append(ul);
      } else if (e.reason === 'PAYMENT_DECLINED') {
        p.append(document.createElement('br'), t('paymentDeclinedDetail'));
      }
      return p;
    case 'OrderCancelled':
      p.textContent = t('cancelledBecause', { reason: t(`reason.${e.reason}`) });
      if (e.data?.note) p.append(document.createElement('br'), `«${e.data.note}»`);
      return p;
    case 'PaymentDeclined':
      p.textContent = t('declinedStillWaiting');
      return p;
    case 'PaymentRefunded':
      p.className = 'note ok';
      p.textContent = t('refundedAmount', { amount: money(Number(e.data?.amount ?? 0), order.currency) });
      return p;
    case 'OrderShipped':
      p.className = 'note';
      p.textContent = t('shippedWith', { carrier: e.data?.carrier, tracking: e.data?.tracking_number });
      return p;
    case 'OrderDelivered':
      if (!e.data?.delivery_location) return null;
      p.className = 'note';
      p.textContent = t('deliveredTo', { place: e.data.delivery_location });
      return p;
    default:
      return null;
  }
}
