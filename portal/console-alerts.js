// @ts-check
// The console's alerts: each new one is a toast (announced through a live region) and stays in a list until it is
// dismissed. The list lives in localStorage, so its count survives a reload; an alert already in the list (the same
// product low on stock again) is not toasted twice.
import { $, dateTime, t } from './words.js';

const STORE = 'comanda.console.alerts';
const MAX_KEPT = 200;
const TOAST_MS = 8000;

/**
 * @typedef {object} Alert
 * @property {string} id  the feed event's id
 * @property {'low_stock' | 'back_in_stock' | 'dead_letter' | 'endpoint_disabled'} kind
 * @property {string} subject  what it is about (a product, a message, an endpoint): one open alert per kind and subject
 * @property {Record<string, string | number>} params  for its words
 * @property {string} at
 */

/** @returns {Alert[]} */
function stored() {
  try {
    const list = JSON.parse(localStorage.getItem(STORE) ?? '[]');
    return Array.isArray(list) ? list : [];
  } catch {
    return [];
  }
}

export function createAlerts() {
  /** @type {Alert[]} newest first */
  let alerts = stored();

  const save = () => localStorage.setItem(STORE, JSON.stringify(alerts.slice(0, MAX_KEPT)));

  /** @param {Alert} alert */
  const words = (alert) => t(`alert.${alert.kind}`, alert.params);

  /** @param {Alert} alert  a new alert: toasted and listed, unless the same one is open already */
  function add(alert) {
    if (alerts.some((a) => a.id === alert.id)) return; // a replayed event
    const open = alerts.find((a) => a.kind === alert.kind && a.subject === alert.subject);
    // Stock back makes a low-stock alert old news, and the other way round.
    const opposite = { low_stock: 'back_in_stock', back_in_stock: 'low_stock' }[
      /** @type {'low_stock' | 'back_in_stock'} */ (alert.kind)
    ];
    if (opposite) alerts = alerts.filter((a) => !(a.kind === opposite && a.subject === alert.subject));
    if (open) {
      Object.assign(open, { params: alert.params, at: alert.at });
    } else {
      alerts = [alert, ...alerts];
      toast(alert);
    }
    save();
    render();
  }

  /** @param {string} id */
  function dismiss(id) {
    alerts = alerts.filter((a) => a.id !== id);
    save();
    render();
  }

  /** @param {Alert} alert */
  function toast(alert) {
    const box = $('#toasts');
    const item = document.createElement('div');
    item.className = 'toast';
    item.dataset.kind = alert.kind;
    item.dataset.alertId = alert.id;
    item.textContent = words(alert);
    const close = document.createElement('button');
    close.type = 'button';
    close.className = 'toast-close';
    close.textContent = '×';
    close.setAttribute('aria-label', t('dismiss'));
    close.addEventListener('click', () => item.remove());
    item.append(close);
    box.append(item);
    setTimeout(() => item.remove(), TOAST_MS);
  }

  function render() {
    const count = $('#alerts-count');
    count.textContent = String(alerts.length);
    count.dataset.count = String(alerts.length);
    $('#alerts-tab').setAttribute('aria-label', t('alertsCount', { n: alerts.length }));
    const list = $('#alert-list');
    list.textContent = '';
    $('#alerts-empty').hidden = alerts.length > 0;
    $('#dismiss-all').hidden = alerts.length === 0;
    for (const a of alerts) {
      const li = document.createElement('li');
      li.className = 'alert';
      li.dataset.kind = a.kind;
      li.dataset.alertId = a.id;
      const text = document.createElement('span');
      text.textContent = words(a);
      const when = document.createElement('time');
      when.dateTime = a.at;
      when.className = 'muted';
      when.textContent = dateTime(a.at);
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'dismiss';
      button.textContent = t('dismiss');
      button.setAttribute('aria-label', `${t('dismiss')}: ${words(a)}`);
      button.addEventListener('click', () => dismiss(a.id));
      li.append(text, ' ', when, ' ', button);
      list.append(li);
    }
  }

  $('#dismiss-all').addEventListener('click', () => {
    alerts = [];
    save();
    render();
  });
  // Another tab of the console dismissed or added one.
  window.addEventListener('storage', (e) => {
    if (e.key !== STORE) return;
    alerts = stored();
    render();
  });

  return { add, render, count: () => alerts.length };
}
