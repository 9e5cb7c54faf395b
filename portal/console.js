// @ts-check
// The operations console (/admin): sign-in, tabs, and the live feed (GET /admin/stream) that drives the panels.
// Admins and operations only: without such a session the page shows the sign-in and reads no data.
import { accountToken, mountAccount } from './account.js';
import { createApiClient } from './api.js';
import { createAlerts } from './console-alerts.js';
import { setupAnalyticsTab } from './console-analytics.js';
import { createOrderDetail } from './console-detail.js';
import { createInventory } from './console-inventory.js';
import { createOrdersTable } from './console-orders.js';
import { createProductForms } from './console-products.js';
import { setupTabs } from './console-tabs.js';
import { watchHealth } from './health.js';
import { loadLifecycle } from './lifecycle.js';
import { openFeed } from './stream.js';
import { $, say, setLanguage, t, translatePage } from './words.js';

const SESSION = 'comanda.console.session';
const LAST_EVENT = 'comanda.console.last-event-id';
const STAFF = ['admin', 'operations'];

/** @typedef {{ name: string }} Session  a demo admin's name; a signed-in account is kept by account.js instead */

/** @returns {Session | null} */
function storedSession() {
  try {
    const s = JSON.parse(localStorage.getItem(SESSION) ?? 'null');
    return s && typeof s.name === 'string' ? s : null;
  } catch {
    return null;
  }
}

let session = storedSession();
let roles = /** @type {string[]} */ ([]);

const client = createApiClient({
  ownToken: accountToken,
  login: async () => {
    if (!session) throw new Error('not signed in');
    const q = new URLSearchParams({ customer: session.name, role: 'admin' });
    return client.api(`/login-demo?${q}`, { auth: false });
  },
  onOnline: (/** @type {boolean} */ online) => health.setOnline(online),
});

const health = watchHealth({
  onBack: () => {
    void orders.load().catch(() => {});
    void inventory.load().catch(() => {});
  },
});
const alerts = createAlerts();
const orders = createOrdersTable({
  client,
  onOpen: (id) => void openOrder(id),
  selectedId: () => detail.selectedId(),
});
const detail = createOrderDetail({
  client,
  actor: () => (roles.includes('admin') ? 'admin' : 'operations'),
  onStatus: (id, status, version) => orders.changed(id, status, version),
});

const products = createProductForms({ client, onSaved: () => void inventory.load().catch(() => {}) });
const inventory = createInventory({ client, onEdit: (product) => products.edit(product) });

/** @param {string} token */
function rolesOf(token) {
  try {
    const payload = JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
    return Array.isArray(payload.roles) ? payload.roles.map(String) : [];
  } catch {
    return [];
  }
}

/** @param {string} id */
async function openOrder(id) {
  await detail.show(id).catch(() => {});
  orders.render();
  $('#detail-title').focus();
}

/** @type {import('./stream.js').Feed | null} */
let feed = null;

function openConsoleFeed() {
  feed?.close();
  feed = openFeed(client, '/admin/stream', {
    lastId: localStorage.getItem(LAST_EVENT),
    onState: (s) => {
      const el = $('#feed-state');
      el.dataset.state = s;
      el.textContent = t(s === 'live' ? 'feedLive' : 'feedReconnecting');
      if (s === 'reconnecting') health.checkNow();
    },
    onEvent: (e, id) => {
      if (id) localStorage.setItem(LAST_EVENT, id);
      onFeedEvent(e);
    },
  });
}

/** @param {{ id: string, type: string, aggregate_type: string, aggregate_id: string, data: any, created_at: string }} e */
function onFeedEvent(e) {
  const at = e.created_at;
  if (e.type === 'OrderCreated') {
    void orders.added(e.aggregate_id).catch(() => {});
  } else if (e.aggregate_type === 'order') {
    const status = e.data?.data?.status;
    if (typeof status === 'string') orders.changed(e.aggregate_id, status, e.data.version);
    detail.changed(e.aggregate_id);
  } else if (e.aggregate_type === 'product') {
    inventory.onEvent(e);
    const d = e.data?.data ?? {};
    const kind = { 'inventory.low_stock': 'low_stock', 'inventory.back_in_stock': 'back_in_stock' }[e.type];
    if (kind === 'low_stock' || kind === 'back_in_stock') {
      const params = { name: inventory.nameOf(e.aggregate_id) ?? d.sku ?? e.aggregate_id, n: d.stock ?? '' };
      alerts.add({ id: e.id, kind, subject: e.aggregate_id, params, at });
    }
  } else if (e.type === 'MessageDeadLettered') {
    const params = { queue: e.data.queue, reason: e.data.reason };
    alerts.add({ id: e.id, kind: 'dead_letter', subject: e.id, params, at });
  } else if (e.type === 'WebhookEndpointDisabled') {
    const params = { url: e.data.url, reason: e.data.reason ?? '' };
    alerts.add({ id: e.id, kind: 'endpoint_disabled', subject: e.aggregate_id, params, at });
  }
}

function render() {
  translatePage('consoleTitle');
  orders.render();
  detail.render();
  alerts.render();
  inventory.render();
  products.render();
}

/** Shows the sign-in (no data), or the console for a staff session. */
async function enter() {
  const signedIn = session !== null || accountToken() !== null;
  $('#signin').hidden = signedIn;
  $('#console').hidden = true;
  $('#sign-out').hidden = !signedIn || accountToken() !== null; // an account signs out from its own form
  if (!signedIn) return;
  try {
    roles = rolesOf(await client.token());
  } catch {
    return signOut('signInFailed');
  }
  if (!roles.some((r) => STAFF.includes(r))) return signOut('notAdmin');
  $('#whoami').textContent = session ? t('signedInAs', { name: session.name }) : '';
  if (accountToken()) $('#signin').hidden = false; // its form shows who is signed in, and signs out
  $('#console').hidden = false;
  await loadLifecycle(() => client.api('/lifecycle', { auth: false }));
  openConsoleFeed();
  await Promise.all([orders.load().catch(() => {}), inventory.load().catch(() => {})]);
  render();
  health.checkNow();
}

/** @param {string} [why]  the words to show on the sign-in */
function signOut(why) {
  feed?.close();
  session = null;
  roles = [];
  localStorage.removeItem(SESSION);
  client.forget();
  $('#signin').hidden = false;
  $('#console').hidden = true;
  $('#sign-out').hidden = true;
  $('#whoami').textContent = '';
  say($('#signin-message'), why ? t(why) : '', why ? 'error' : 'info');
}

function start() {
  render();
  setupTabs();
  setupAnalyticsTab();
  for (const button of document.querySelectorAll('[data-lang]')) {
    button.addEventListener('click', () => {
      setLanguage(/** @type {HTMLElement} */ (button).dataset.lang === 'en' ? 'en' : 'es');
      render();
    });
  }
  $('#signin-demo').addEventListener('click', () => {
    session = { name: 'admin-demo' };
    localStorage.setItem(SESSION, JSON.stringify(session));
    void enter();
  });
  $('#sign-out').addEventListener('click', () => signOut());
  // Accounts (portal/account.js): an admin or operations user signs in with email and password.
  mountAccount({
    container: $('#signin-forms'),
    onChange: () => void (accountToken() ? enter() : signOut()),
  });
  void enter();
}

start();
