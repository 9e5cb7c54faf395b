// @ts-check
// The customer's page of the comanda demo portal: plain ES modules, no build step, talking to the Orders API on
// its own origin. The panels live in their own modules; this one holds the page's state and wires them.
import { accountToken, mountAccount } from './account.js';
import { createApiClient } from './api.js';
import { createDeliveriesPanel, renderOrderList } from './customer-orders.js';
import { createOrderForm } from './customer-form.js';
import { watchHealth } from './health.js';
import { changesStatus, isProcessed, loadLifecycle } from './lifecycle.js';
import { createOrderActions } from './order-actions.js';
import { openFeed } from './stream.js';
import { renderTimeline, traceComplete } from './trace.js';
import { $, clock, money, setLanguage, t, timeOfDay, translatePage } from './words.js';

/** @typedef {import('./customer-orders.js').ListedOrder & Record<string, any>} Order */
/** @typedef {import('./lifecycle.js').TraceEvent} TraceEvent */

const state = {
  customer: localStorage.getItem('comanda.customer') || 'cliente-demo',
  /** @type {Map<string, Order>} newest first */
  orders: new Map(),
  /** @type {Order | null} the order whose trace is shown */
  selected: null,
  justCreated: false, // whether it was created on this page just now (its confirmation)
  /** @type {TraceEvent[]} its trace steps, by id */
  events: [],
};

const client = createApiClient({
  // A signed-in user's token wins over the demo login.
  ownToken: accountToken,
  login: async () => {
    const customer = state.customer;
    const data = await client.api(`/login-demo?customer=${encodeURIComponent(customer)}`, { auth: false });
    if (customer !== state.customer) throw new Error('the customer changed meanwhile');
    return data;
  },
  onOnline: (/** @type {boolean} */ online) => health.setOnline(online),
});

const health = watchHealth({
  // Whatever changed while we could not see it; stock moves with other people's orders too.
  onBack: () => {
    void form.loadProducts();
    void loadOrders();
    void refreshSelected();
    void loadLifecycle(fetchLifecycle).then(render);
  },
  onTick: () => void form.loadProducts(),
});

const form = createOrderForm({
  client,
  customer: () => state.customer,
  onOrderCreated: (order) => {
    state.orders = new Map([[order.id, order], ...state.orders]);
    renderOrders();
    selectOrder({ ...order }, { justCreated: true });
  },
});

const deliveries = createDeliveriesPanel(client, () => state.selected?.id ?? null);

const orderActions = createOrderActions({
  api: client.api,
  t,
  timeOfDay,
  money,
  declineChosen: () => /** @type {HTMLInputElement} */ ($('#decline')).checked,
  onChanged: (order) => mergeOrder(/** @type {Order} */ (order)),
});

const fetchLifecycle = () => client.api('/lifecycle', { auth: false });

function render() {
  translatePage();
  form.render();
  renderOrders();
  renderTrace();
  deliveries.render();
}

// ---------------------------------------------------------------- live feeds

/** @type {import('./stream.js').Feed | null} the selected order's trace */
let orderFeed = null;
/** @type {import('./stream.js').Feed | null} every order of this customer, for the badges */
let customerFeed = null;

function openCustomerFeed() {
  customerFeed?.close();
  customerFeed = openFeed(client, '/orders/stream', {
    onState: (s) => s === 'reconnecting' && health.checkNow(),
    onEvent: (/** @type {TraceEvent} */ e) => {
      const order = state.orders.get(e.order_id);
      if (!order) return void loadOrders();
      if (changesStatus(e) && e.to_status) order.status = e.to_status;
      // A shipment's tracking number and carrier come with the order itself.
      if (changesStatus(e)) void refreshListed(e.order_id);
      renderOrders();
      if (state.selected?.id === e.order_id) addTraceEvent(e);
      // Stock moves when an order gets its outcome, is cancelled or is paid.
      if (changesStatus(e) && isProcessed(e.to_status)) void form.loadProducts();
    },
  });
}

/**
 * @param {Order} order
 * @param {{ justCreated?: boolean }} [options]
 */
function selectOrder(order, { justCreated = false } = {}) {
  orderFeed?.close();
  state.selected = order;
  state.justCreated = justCreated;
  state.events = [];
  deliveries.clear();
  renderTrace();
  renderOrders();
  void refreshSelected();
  setStreamState('reconnecting');
  orderFeed = openFeed(client, `/orders/${order.id}/stream`, {
    onState: (s) => {
      setStreamState(s);
      if (s === 'reconnecting') health.checkNow();
    },
    onEvent: addTraceEvent,
  });
}

/** @param {TraceEvent} e */
function addTraceEvent(e) {
  const selected = state.selected;
  if (!selected || e.order_id !== selected.id || state.events.some((x) => x.id === e.id)) return;
  state.events = [...state.events, e].sort((a, b) => a.id - b.id);
  if (changesStatus(e) && e.to_status) {
    selected.status = e.to_status;
    const listed = state.orders.get(e.order_id);
    if (listed) listed.status = e.to_status;
  }
  orderActions.noteStep(e);
  renderTrace();
  renderOrders();
  // The step's own facts (tracking, refund, payment due) come with the order itself.
  void refreshSelected();
  if (isProcessed(selected.status)) void deliveries.load(e.order_id);
  if (traceComplete(state.events)) {
    // Nothing more can happen to this order: free the connection and refresh the stock.
    orderFeed?.close();
    setStreamState('finished');
    void form.loadProducts();
  }
}

let selectedFetch = 0; // so only the newest read of the selected order is shown

/** Reads the selected order again, for what the trace steps do not carry. */
async function refreshSelected() {
  const id = state.selected?.id;
  if (!id) return;
  const n = ++selectedFetch;
  try {
    const fresh = await client.api(`/orders/${id}`);
    if (n === selectedFetch) mergeOrder(fresh);
  } catch {
    // shown by the banner; the next step or reconnect reads it again
  }
}

/** @param {string} id */
async function refreshListed(id) {
  try {
    mergeOrder(await client.api(`/orders/${id}`));
  } catch {
    // shown by the banner
  }
}

/**
 * Takes in an order as the server answered, unless what is shown is already newer.
 * @param {Order} fresh
 */
function mergeOrder(fresh) {
  for (const shown of [state.selected, state.orders.get(fresh.id)]) {
    if (shown?.id === fresh.id && (shown.version ?? 0) <= (fresh.version ?? 0)) Object.assign(shown, fresh);
  }
  renderTrace();
  renderOrders();
}

/** @param {string} s */
function setStreamState(s) {
  const el = $('#stream-state');
  el.dataset.state = s;
  el.textContent = t(s === 'live' ? 'live' : s === 'finished' ? 'finished' : 'reconnecting');
}

// ---------------------------------------------------------------- the trace and my orders

function renderTrace() {
  const order = state.selected;
  $('#trace-empty').hidden = Boolean(order);
  $('#confirmation').hidden = !order;
  orderActions.render(order);
  if (!order) {
    $('#timeline').textContent = '';
    $('#trace-summary').textContent = '';
    return;
  }
  $('#confirmation-label').textContent = t(state.justCreated ? 'orderReceived' : 'orderLabel');
  $('#order-id').textContent = order.id;
  const badge = $('#order-status');
  badge.textContent = order.status;
  badge.dataset.status = order.status;
  badge.title = t(`status.${order.status}`);
  renderTimeline($('#timeline'), $('#trace-summary'), order, state.events, {
    t,
    clock,
    money,
    productName: form.productName,
  });
}

async function loadOrders() {
  try {
    const { data } = await client.api('/orders?limit=20');
    state.orders = new Map(data.map((/** @type {Order} */ o) => [o.id, o]));
    const fresh = state.selected && state.orders.get(state.selected.id);
    if (fresh) mergeOrder({ ...fresh });
    renderOrders();
  } catch {
    // shown by the banner
  }
}

function renderOrders() {
  renderOrderList(state.orders, state.selected?.id ?? null, (o) => selectOrder({ ...o }));
}

// ---------------------------------------------------------------- start

/** @param {string} customer */
async function switchCustomer(customer) {
  state.customer = customer;
  localStorage.setItem('comanda.customer', customer);
  client.forget();
  orderFeed?.close();
  state.selected = null;
  state.events = [];
  state.orders = new Map();
  form.reset();
  renderTrace();
  deliveries.clear();
  renderOrders();
  openCustomerFeed();
  await loadOrders();
}

function start() {
  const select = /** @type {HTMLSelectElement} */ ($('#customer'));
  select.value = state.customer;
  if (select.value !== state.customer) {
    select.append(new Option(state.customer, state.customer));
    select.value = state.customer;
  }
  render();
  void loadLifecycle(fetchLifecycle).then(render);
  select.addEventListener('change', () => void switchCustomer(select.value));
  mountAccount({ container: $('.controls'), onChange: () => void switchCustomer(state.customer) });
  for (const button of document.querySelectorAll('[data-lang]')) {
    button.addEventListener('click', () => {
      setLanguage(/** @type {HTMLElement} */ (button).dataset.lang === 'en' ? 'en' : 'es');
      render();
    });
  }
  void form.loadProducts();
  void switchCustomer(state.customer);
  health.checkNow();
}

start();
