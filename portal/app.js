// The comanda demo portal: plain ES modules, no build step. It talks to the Orders API on its own origin.
import { LOCALES, MESSAGES } from './i18n.js';
import { changesStatus, isProcessed, loadLifecycle } from './lifecycle.js';
import { createOrderActions } from './order-actions.js';
import { renderTimeline, traceComplete } from './trace.js';

const MAX_QUANTITY = 1000;
const $ = (selector) => document.querySelector(selector);

const state = {
  lang: localStorage.getItem('comanda.lang') === 'en' ? 'en' : 'es',
  customer: localStorage.getItem('comanda.customer') || 'cliente-demo',
  token: null,
  tokenExpiresAt: 0,
  products: new Map(), // id → product
  orders: new Map(), // id → order, newest first
  selected: null, // the order whose trace is shown
  justCreated: false, // whether it was created on this page just now (its confirmation)
  events: [], // its trace steps, by id
  draft: null, // { key, fingerprint }: the Idempotency-Key of the order being sent, kept for every retry
  submitting: false,
  online: true,
};

// ---------------------------------------------------------------- words

function t(key, params = {}) {
  const text = MESSAGES[state.lang][key] ?? MESSAGES.es[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(params[name] ?? ''));
}

function applyLanguage() {
  document.documentElement.lang = state.lang;
  document.title = t('title');
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const button of document.querySelectorAll('[data-lang]')) {
    button.setAttribute('aria-pressed', String(button.dataset.lang === state.lang));
  }
  renderProducts();
  renderOrders();
  renderTrace();
  renderDeliveries(lastDeliveries);
}

const money = (cents, currency = 'EUR') =>
  new Intl.NumberFormat(LOCALES[state.lang], { style: 'currency', currency }).format(cents / 100);

const clock = (iso) =>
  new Intl.DateTimeFormat(LOCALES[state.lang], {
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    fractionalSecondDigits: 3,
  }).format(new Date(iso));

const timeOfDay = (iso) =>
  new Intl.DateTimeFormat(LOCALES[state.lang], { hour: '2-digit', minute: '2-digit' }).format(new Date(iso));

const shortId = (id) => id.slice(0, 8);

// ---------------------------------------------------------------- talking to the API

class ApiError extends Error {
  constructor(kind, status = 0, problem = null, retryAfter = null) {
    super(problem?.detail ?? kind);
    this.kind = kind; // 'network' | 'problem'
    this.status = status;
    this.problem = problem;
    this.retryAfter = retryAfter;
  }
  get retryable() {
    return this.kind === 'network' || [408, 409, 429, 502, 503, 504].includes(this.status);
  }
}

async function api(path, { method = 'GET', body, headers = {}, auth = true, relogin = true } = {}) {
  const h = { accept: 'application/json', ...headers };
  if (body !== undefined) h['content-type'] = 'application/json';
  if (auth) h.authorization = `Bearer ${await token()}`;
  let res;
  try {
    res = await fetch(path, {
      method,
      headers: h,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    setOnline(false);
    throw new ApiError('network');
  }
  setOnline(true);
  if (res.status === 401 && auth && relogin) {
    state.token = null; // expired or revoked: log in again once, then retry
    return api(path, { method, body, headers, auth, relogin: false });
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    // A proxy in front of a stopped API answers 502/504 with no problem body: the same as no answer.
    if ([502, 504].includes(res.status) && !data) setOnline(false);
    throw new ApiError('problem', res.status, data, Number(res.headers.get('retry-after')) || null);
  }
  return data;
}

let login = null; // the demo login in progress, shared by every request that needs a token meanwhile

async function token() {
  if (state.token && Date.now() < state.tokenExpiresAt - 60_000) return state.token;
  const customer = state.customer;
  login ??= api(`/login-demo?customer=${encodeURIComponent(customer)}`, { auth: false }).finally(() => {
    login = null;
  });
  const data = await login;
  if (customer === state.customer) {
    state.token = data.token;
    state.tokenExpiresAt = Date.now() + data.expires_in * 1000;
  }
  return data.token;
}

/** A v4 uuid; crypto.randomUUID exists only on secure origins, and the demo may be opened over plain http. */
function uuid() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------- being online

let healthTimer = null;

function setOnline(online) {
  if (state.online === online) return;
  state.online = online;
  const banner = $('#banner');
  if (!online) {
    banner.textContent = t('offline');
    banner.className = 'banner error';
    banner.hidden = false;
    // The system panel says the same as the banner at once, not only at the next health check.
    setCheck($('[data-check="api"]'), 'down');
    scheduleHealth(1500);
  } else {
    banner.textContent = t('backOnline');
    banner.className = 'banner ok';
    setTimeout(() => {
      if (state.online) banner.hidden = true;
    }, 3000);
    // Whatever changed while we could not see it.
    void loadProducts();
    void loadOrders();
    void refreshSelected();
    void loadLifecycle(fetchLifecycle).then(applyLanguage);
    scheduleHealth(0);
  }
}

function scheduleHealth(ms) {
  clearTimeout(healthTimer);
  healthTimer = setTimeout(checkHealth, ms);
}

async function checkHealth() {
  let checks = null;
  try {
    const res = await fetch('/readyz', { headers: { accept: 'application/json' } });
    checks = res.headers.get('content-type')?.includes('json') ? await res.json() : null;
    setOnline(checks !== null);
  } catch {
    setOnline(false);
  }
  const api = $('[data-check="api"]');
  setCheck(api, checks ? 'up' : 'down');
  for (const name of ['postgres', 'rabbitmq', 'redis']) {
    setCheck($(`[data-check="${name}"]`), checks ? checks[name] : 'unknown');
  }
  // Stock moves with other people's orders too, which no feed of ours carries: look again now and then.
  if (state.online) void loadProducts();
  scheduleHealth(state.online ? 5000 : 1500);
}

function setCheck(el, status) {
  el.dataset.status = status;
  el.textContent = t(status === 'up' ? 'up' : status === 'down' ? 'down' : 'unknown');
}

// ---------------------------------------------------------------- products

async function loadProducts() {
  try {
    const { data } = await api('/products', { auth: false });
    for (const p of data) state.products.set(p.id, { ...state.products.get(p.id), ...p });
    renderProducts();
  } catch {
    // shown by the banner; the next change or reconnect loads them again
  }
}

function renderProducts() {
  const list = $('#products');
  if (!state.products.size) return;
  list.removeAttribute('aria-busy');
  if (list.querySelector('.muted')) list.textContent = '';
  for (const p of state.products.values()) {
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
      item.querySelector('input').setAttribute('aria-describedby', `warn-${p.id}`);
      list.append(item);
    }
    const name = item.querySelector('.name');
    name.textContent = p.name;
    item.querySelector('input').setAttribute('aria-label', t('quantityOf', { name: p.name }));
    item.querySelector('.price').textContent = money(p.price, p.currency);
    const stock = item.querySelector('.stock');
    stock.textContent = p.stock_available > 0 ? t('stockLeft', { n: p.stock_available }) : t('noStock');
    stock.dataset.stock = String(p.stock_available);
    stock.classList.toggle('sold-out', p.stock_available <= 0);
  }
  updateTotal();
}

function chosenItems() {
  const items = [];
  for (const input of document.querySelectorAll('#products .qty')) {
    const raw = input.value.trim();
    if (raw === '' || raw === '0') continue;
    const quantity = Number(raw);
    const id = input.closest('[data-product-id]').dataset.productId;
    items.push({ product_id: id, quantity });
  }
  return items;
}

function updateTotal() {
  let total = 0;
  let currency = 'EUR';
  for (const input of document.querySelectorAll('#products .qty')) {
    const item = input.closest('[data-product-id]');
    const p = state.products.get(item.dataset.productId);
    const q = Number(input.value);
    const warn = item.querySelector('.warn');
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

// ---------------------------------------------------------------- creating an order

async function createOrder(event) {
  event.preventDefault();
  // A second click while the first is on its way changes nothing: the same order is being sent.
  if (state.submitting) return;
  const items = chosenItems();
  const message = $('#form-message');
  if (!items.length) return say(message, t('pickProduct'), 'error');
  if (items.some((i) => !Number.isInteger(i.quantity) || i.quantity < 1 || i.quantity > MAX_QUANTITY)) {
    return say(message, t('badQuantity', { max: MAX_QUANTITY }), 'error');
  }
  // A pay-later order takes its card afterwards (Pagar), where the decline option applies again.
  const payment = $('#pay-later').checked
    ? { method: 'later' }
    : $('#decline').checked
      ? { token: 'tok_decline' }
      : undefined;
  const body = { items, ...(payment ? { payment } : {}) };
  // The key belongs to this exact order: a retry (or a new click after a failure) of the same order reuses
  // it, so however often it is sent, one order is created. A changed order gets a new key.
  const fingerprint = `${state.customer}:${JSON.stringify(body)}`;
  if (state.draft?.fingerprint !== fingerprint) state.draft = { key: uuid(), fingerprint };
  const { key } = state.draft;

  setSubmitting(true);
  say(message, t('sending'), 'info');
  try {
    const deadline = Date.now() + 120_000;
    for (let attempt = 0; ; attempt++) {
      try {
        const order = await api('/orders', { method: 'POST', body, headers: { 'Idempotency-Key': key } });
        // The form keeps what was chosen, so the same order can be placed again at once; its next click
        // is a new order with a new key.
        state.draft = null;
        say(message, '', 'info');
        onOrderCreated(order);
        return;
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        if (err.retryable && Date.now() < deadline) {
          say(message, t('retrying'), 'warn');
          const wait = err.retryAfter ? err.retryAfter * 1000 : Math.min(500 * 2 ** attempt, 5000);
          await sleep(wait);
          continue;
        }
        if (err.retryable) return say(message, t('gaveUp'), 'error');
        state.draft = null; // refused for good: this key's request will never succeed
        return say(message, describeProblem(err), 'error');
      }
    }
  } finally {
    setSubmitting(false);
  }
}

function describeProblem(err) {
  switch (err.problem?.code) {
    case 'VALIDATION_FAILED':
      return t('badQuantity', { max: MAX_QUANTITY });
    case 'UNAUTHORIZED':
      return t('sessionExpired');
    default:
      return t('somethingFailed');
  }
}

function setSubmitting(on) {
  state.submitting = on;
  const button = $('#create-order');
  // aria-disabled rather than disabled: the button keeps keyboard focus while the order is on its way.
  button.setAttribute('aria-disabled', String(on));
  $('#order-form').setAttribute('aria-busy', String(on));
}

function say(el, text, kind) {
  el.textContent = text;
  el.dataset.kind = kind;
}

function onOrderCreated(order) {
  state.orders = new Map([[order.id, order], ...state.orders]);
  renderOrders();
  selectOrder({ ...order }, { justCreated: true });
}

// ---------------------------------------------------------------- live feeds (Server-Sent Events)

/**
 * An EventSource that survives what EventSource alone does not: its stream token expiring, or the API
 * refusing a reconnect. The browser reconnects by itself after a drop (sending Last-Event-ID); when it gives
 * up, this opens a new one with a fresh token and `last_event_id`, so no step is missed or repeated.
 */
function openFeed(path, { onEvent, onState }) {
  const feed = { closed: false, source: null, lastId: null, timer: null };
  const connect = async () => {
    if (feed.closed) return;
    let streamToken;
    try {
      streamToken = (await api('/stream-tokens', { method: 'POST' })).token;
    } catch (err) {
      // No stream tokens on this API (an external issuer signs tokens): the route takes the JWT itself.
      if (err instanceof ApiError && err.status === 404) streamToken = await token().catch(() => null);
      if (!streamToken) {
        feed.timer = setTimeout(connect, 2000);
        return;
      }
    }
    if (feed.closed) return;
    const params = new URLSearchParams({ access_token: streamToken });
    if (feed.lastId) params.set('last_event_id', feed.lastId);
    const source = new EventSource(`${path}?${params}`);
    feed.source = source;
    source.onopen = () => onState('live');
    source.onmessage = (m) => {
      feed.lastId = m.lastEventId || feed.lastId;
      onEvent(JSON.parse(m.data));
    };
    source.onerror = () => {
      onState('reconnecting');
      scheduleHealth(0);
      if (source.readyState === EventSource.CLOSED && !feed.closed) {
        feed.source = null;
        feed.timer = setTimeout(connect, 2000);
      }
    };
  };
  void connect();
  return {
    close() {
      feed.closed = true;
      clearTimeout(feed.timer);
      feed.source?.close();
    },
  };
}

let orderFeed = null; // the selected order's trace
let customerFeed = null; // every order of this customer, for the badges

function openCustomerFeed() {
  customerFeed?.close();
  customerFeed = openFeed('/orders/stream', {
    onState: () => {},
    onEvent: (e) => {
      const order = state.orders.get(e.order_id);
      if (!order) return void loadOrders();
      if (changesStatus(e)) order.status = e.to_status;
      renderOrders();
      if (state.selected?.id === e.order_id) addTraceEvent(e);
      // Stock moves when an order gets its outcome, is cancelled or is paid.
      if (changesStatus(e) && isProcessed(e.to_status)) void loadProducts();
    },
  });
}

function selectOrder(order, { justCreated = false } = {}) {
  orderFeed?.close();
  state.selected = order;
  state.justCreated = justCreated;
  state.events = [];
  lastDeliveries = null;
  renderDeliveries(null);
  renderTrace();
  renderOrders();
  void refreshSelected();
  setStreamState('reconnecting');
  orderFeed = openFeed(`/orders/${order.id}/stream`, {
    onState: setStreamState,
    onEvent: addTraceEvent,
  });
}

function addTraceEvent(e) {
  if (e.order_id !== state.selected?.id || state.events.some((x) => x.id === e.id)) return;
  state.events = [...state.events, e].sort((a, b) => a.id - b.id);
  if (changesStatus(e)) {
    state.selected.status = e.to_status;
    const listed = state.orders.get(e.order_id);
    if (listed) listed.status = e.to_status;
  }
  orderActions.noteStep(e);
  renderTrace();
  renderOrders();
  // The step's own facts (tracking, refund, payment due) come with the order itself.
  void refreshSelected();
  if (isProcessed(state.selected.status)) void loadDeliveries(e.order_id);
  if (traceComplete(state.events)) {
    // Nothing more can happen to this order: free the connection and refresh the stock.
    orderFeed?.close();
    setStreamState('finished');
    void loadProducts();
  }
}

let selectedFetch = 0; // so only the newest read of the selected order is shown

/** Reads the selected order again, for what the trace steps do not carry. */
async function refreshSelected() {
  const id = state.selected?.id;
  if (!id) return;
  const n = ++selectedFetch;
  try {
    const fresh = await api(`/orders/${id}`);
    if (n === selectedFetch) mergeOrder(fresh);
  } catch {
    // shown by the banner; the next step or reconnect reads it again
  }
}

/** Takes in an order as the server answered, unless what is shown is already newer. */
function mergeOrder(fresh) {
  for (const shown of [state.selected, state.orders.get(fresh.id)]) {
    if (shown?.id === fresh.id && (shown.version ?? 0) <= fresh.version) Object.assign(shown, fresh);
  }
  renderTrace();
  renderOrders();
}

const orderActions = createOrderActions({
  api,
  t,
  timeOfDay,
  money,
  declineChosen: () => $('#decline').checked,
  onChanged: mergeOrder,
});

async function fetchLifecycle() {
  return api('/lifecycle', { auth: false });
}

function setStreamState(s) {
  const el = $('#stream-state');
  el.dataset.state = s;
  el.textContent = t(s === 'live' ? 'live' : s === 'finished' ? 'finished' : 'reconnecting');
}

// ---------------------------------------------------------------- the trace

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
    productName: (id) => state.products.get(id)?.name,
  });
}

// ---------------------------------------------------------------- my orders

async function loadOrders() {
  try {
    const { data } = await api('/orders?limit=20');
    state.orders = new Map(data.map((o) => [o.id, o]));
    const fresh = state.selected && state.orders.get(state.selected.id);
    if (fresh) mergeOrder({ ...fresh });
    renderOrders();
  } catch {
    // shown by the banner
  }
}

function renderOrders() {
  const list = $('#order-list');
  list.textContent = '';
  $('#orders-empty').hidden = state.orders.size > 0;
  for (const o of state.orders.values()) {
    const li = document.createElement('li');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'order-row';
    button.dataset.orderId = o.id;
    if (state.selected?.id === o.id) button.setAttribute('aria-current', 'true');
    button.setAttribute('aria-label', `${t('openOrder', { id: shortId(o.id) })}: ${t(`status.${o.status}`)}`);
    button.innerHTML = `<code></code><span class="when"></span><span class="amount"></span><span class="badge"></span>`;
    button.querySelector('code').textContent = shortId(o.id);
    button.querySelector('.when').textContent = clock(o.created_at);
    button.querySelector('.amount').textContent = money(o.total, o.currency);
    const badge = button.querySelector('.badge');
    badge.textContent = t(`status.${o.status}`);
    badge.dataset.status = o.status;
    button.addEventListener('click', () => selectOrder({ ...o }));
    li.append(button);
    list.append(li);
  }
}

// ---------------------------------------------------------------- webhook deliveries

let lastDeliveries = null;
let deliveriesTimer = null;

async function loadDeliveries(orderId, round = 0) {
  clearTimeout(deliveriesTimer);
  try {
    const { data } = await api(`/orders/${orderId}/deliveries`);
    if (state.selected?.id !== orderId) return;
    lastDeliveries = data;
    renderDeliveries(data);
    // Deliveries go out a moment after the order is final: follow them until none is pending.
    if (data.some((d) => d.status === 'pending') && round < 10) {
      deliveriesTimer = setTimeout(() => void loadDeliveries(orderId, round + 1), 1500);
    }
  } catch {
    // 404: this API has no webhooks, or this order is not ours any more; the panel stays hidden.
    lastDeliveries = null;
    renderDeliveries(null);
  }
}

function renderDeliveries(deliveries) {
  const panel = $('#deliveries');
  panel.hidden = deliveries === null;
  if (deliveries === null) return;
  const list = $('#delivery-list');
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
    head.innerHTML = '<code></code> <span class="badge"></span> <span class="muted"></span>';
    head.querySelector('code').textContent = d.event_type;
    const badge = head.querySelector('.badge');
    badge.textContent = t(`delivery.${d.status}`);
    badge.dataset.status = d.status;
    head.querySelector('.muted').textContent = t('deliveryAttempts', { n: d.attempt_count });
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

// ---------------------------------------------------------------- start

async function switchCustomer(customer) {
  state.customer = customer;
  localStorage.setItem('comanda.customer', customer);
  state.token = null;
  orderFeed?.close();
  state.selected = null;
  state.events = [];
  state.orders = new Map();
  state.draft = null;
  renderTrace();
  renderDeliveries(null);
  renderOrders();
  openCustomerFeed();
  await loadOrders();
}

function start() {
  $('#customer').value = state.customer;
  if ($('#customer').value !== state.customer) {
    const option = new Option(state.customer, state.customer);
    $('#customer').append(option);
    $('#customer').value = state.customer;
  }
  applyLanguage();
  void loadLifecycle(fetchLifecycle).then(applyLanguage);
  $('#order-form').addEventListener('submit', createOrder);
  $('#products').addEventListener('input', updateTotal);
  $('#customer').addEventListener('change', (e) => void switchCustomer(e.target.value));
  for (const button of document.querySelectorAll('[data-lang]')) {
    button.addEventListener('click', () => {
      state.lang = button.dataset.lang;
      localStorage.setItem('comanda.lang', state.lang);
      applyLanguage();
    });
  }
  void loadProducts();
  void switchCustomer(state.customer);
  void checkHealth();
}

start();
