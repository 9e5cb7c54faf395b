// @ts-check
// An order's webhook deliveries and their attempts, for the customer's trace and the console's order detail.
import { clock, t } from './words.js';

/**
 * @typedef {object} Delivery
 * @property {string} event_type
 * @property {string} status
 * @property {number} attempt_count
 * @property {{ started_at: string, status_code: number | null, error: string | null, latency_ms: number | null }[]} [attempts]
 */

/**
 * Fills `list` with the deliveries.
 * @param {HTMLElement} list
 * @param {Delivery[]} deliveries
 */
export function renderDeliveryList(list, deliveries) {
  list.textContent = '';
  if (!deliveries.length) {
    const li = document.createElement('li');
    li.className = 'muted';
    li.textContent = t('noDeliveries');
    list.append(li);
  }
  for (const d of deliveries) {
    const li = document.createElement('li');
    li.className = 'delivery';
    li.dataset.status = d.status;
    const head = document.createElement('p');
    const code = document.createElement('code');
    code.textContent = d.event_type;
    const badge = document.createElement('span');
    badge.className = 'badge';
    badge.textContent = t(`delivery.${d.status}`);
    badge.dataset.status = d.status;
    const count = document.createElement('span');
    count.className = 'muted';
    count.textContent = t('deliveryAttempts', { n: d.attempt_count });
    head.append(code, ' ', badge, ' ', count);
    li.append(head);
    if (d.attempts?.length) {
      const attempts = document.createElement('ol');
      attempts.className = 'attempts';
      for (const a of d.attempts) {
        const item = document.createElement('li');
        const outcome = a.status_code ? `HTTP ${a.status_code}` : (a.error ?? '—');
        item.textContent = `${clock(a.started_at)} · ${outcome}${a.latency_ms === null ? '' : ` · ${a.latency_ms} ms`}`;
        attempts.append(item);
      }
      li.append(attempts);
    }
    list.append(li);
  }
}
