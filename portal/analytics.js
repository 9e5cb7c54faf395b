// @ts-check
// The analytics dashboard (admins): figures and charts from /analytics, re-read each time the API's stream says
// the figures changed (Server-Sent Events), never on a timer. Chart.js is loaded by the page as the global Chart.
import { LOCALES, MESSAGES } from './i18n.js';

/** @typedef {'es' | 'en'} Lang */
/** @type {any} */
const Chart = /** @type {any} */ (globalThis).Chart;

const RANGES = /** @type {const} */ ({
  '60m': { ms: 3_600_000, granularity: 'minute' },
  '24h': { ms: 86_400_000, granularity: 'hour' },
  '7d': { ms: 7 * 86_400_000, granularity: 'hour' },
  '30d': { ms: 30 * 86_400_000, granularity: 'day' },
});

const COLOURS = {
  received: '#0b5cad',
  confirmed: '#106b34',
  rejected: '#a4161a',
  cancelled: '#7a4a00',
  net: '#5b2a86',
  p95: '#a4161a',
};

const state = {
  /** @type {Lang} */
  lang: localStorage.getItem('comanda.lang') === 'en' ? 'en' : 'es',
  /** @type {keyof typeof RANGES} */
  range: '60m',
  /** @type {string | null} */
  token: null,
  tokenExpiresAt: 0,
  /** @type {string | null} the time of the newest event counted */
  asOf: null,
  /** @type {number} when the figures were last read */
  readAt: 0,
  currency: 'EUR',
  /** @type {any} */
  last: null,
};

/** @type {Record<string, any>} */
const charts = {};

/** @param {string} sel */
const $ = (sel) => /** @type {HTMLElement} */ (document.querySelector(sel));

/**
 * @param {string} key
 * @param {Record<string, string | number>} [params]
 */
function t(key, params = {}) {
  /** @type {Record<string, string>} */
  const words = MESSAGES[state.lang];
  /** @type {Record<string, string>} */
  const fallback = MESSAGES.es;
  const text = words[key] ?? fallback[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(params[name] ?? ''));
}

const locale = () => LOCALES[state.lang];
/** @param {number | null | undefined} cents */
const money = (cents) =>
  cents === null || cents === undefined
    ? '—'
    : new Intl.NumberFormat(locale(), { style: 'currency', currency: state.currency }).format(cents / 100);
/** @param {number | null | undefined} n */
const count = (n) => (n === null || n === undefined ? '—' : new Intl.NumberFormat(locale()).format(n));

// ---------------------------------------------------------------- talking to the API

async function token() {
  if (state.token && Date.now() < state.tokenExpiresAt - 60_000) return state.token;
  const res = await fetch('/login-demo?customer=analytics&role=admin');
  if (!res.ok) throw new Error(`login failed: ${res.status}`);
  const data = await res.json();
  state.token = data.token;
  state.tokenExpiresAt = Date.now() + data.expires_in * 1000;
  return data.token;
}

/** @param {string} path @param {RequestInit} [init] */
async function api(path, init = {}) {
  const res = await fetch(path, {
    ...init,
    headers: { accept: 'application/json', authorization: `Bearer ${await token()}` },
  });
  if (res.status === 403) throw Object.assign(new Error('forbidden'), { forbidden: true });
  if (!res.ok) throw new Error(`${path}: ${res.status}`);
  return res.json();
}

// ---------------------------------------------------------------- reading the figures

function rangeQuery() {
  const { ms } = RANGES[state.range];
  const to = new Date(Math.ceil(Date.now() / 60_000) * 60_000);
  const from = new Date(to.getTime() - ms);
  return `from=${from.toISOString()}&to=${to.toISOString()}`;
}

/** @param {string} metric */
function series(metric) {
  const { granularity } = RANGES[state.range];
  return api(`/analytics/timeseries?metric=${metric}&granularity=${granularity}&${rangeQuery()}`);
}

let reading = false;
let again = false;

/** Reads every figure the page shows; calls that arrive meanwhile fold into one more read. */
async function refresh() {
  if (reading) {
    again = true;
    return;
  }
  reading = true;
  try {
    do {
      again = false;
      const q = rangeQuery();
      const [summary, top, ...lines] = await Promise.all([
        api(`/analytics/summary?${q}`),
        api(`/analytics/top-products?by=units&limit=8&${q}`),
        ...['received', 'confirmed', 'rejected', 'cancelled', 'gross_revenue', 'net_revenue'].map(series),
        series('outcome_p50_ms'),
        series('outcome_p95_ms'),
      ]);
      state.last = { summary, top, lines };
      state.asOf = summary.as_of;
      state.readAt = Date.now();
      render();
      showBanner(null);
    } while (again);
  } catch (err) {
    showBanner(/** @type {any} */ (err).forbidden ? t('a.forbidden') : t('a.failed'));
    if (!(/** @type {any} */ (err).forbidden)) setTimeout(() => void refresh(), 3000);
  } finally {
    reading = false;
  }
}

// ---------------------------------------------------------------- rendering

/** @param {string | null} text */
function showBanner(text) {
  const banner = $('#banner');
  banner.hidden = !text;
  banner.textContent = text ?? '';
  banner.className = text ? 'banner error' : 'banner';
}

/** @param {any} res @returns {{t: string, v: number | null}[]} */
function pointsOf(res) {
  const s = res.series.find((/** @type {any} */ x) => x.currency === state.currency) ?? res.series[0];
  if (s) return s.points;
  // No figure yet in this currency: zeros over the range, so the axes still show the period.
  const { granularity } = RANGES[state.range];
  const size = { minute: 60_000, hour: 3_600_000, day: 86_400_000 }[granularity];
  const points = [];
  for (let at = Math.floor(Date.parse(res.from) / size) * size; at < Date.parse(res.to); at += size) {
    points.push({ t: new Date(at).toISOString(), v: 0 });
  }
  return points;
}

/** @param {string} iso */
function label(iso) {
  const { granularity } = RANGES[state.range];
  const options =
    granularity === 'day'
      ? { day: '2-digit', month: 'short' }
      : granularity === 'hour' && state.range !== '24h'
        ? { day: '2-digit', hour: '2-digit', minute: '2-digit' }
        : { hour: '2-digit', minute: '2-digit' };
  return new Intl.DateTimeFormat(locale(), /** @type {Intl.DateTimeFormatOptions} */ (options)).format(
    new Date(iso),
  );
}

/**
 * Creates a chart once, then only swaps its data (no flicker, no leak).
 * @param {string} id @param {string} type @param {any} data @param {any} [options]
 */
function draw(id, type, data, options = {}) {
  if (charts[id]) {
    // Options stay as created (they are the same on every read); only the data changes.
    charts[id].data = data;
    charts[id].update('none');
    return;
  }
  const canvas = /** @type {HTMLCanvasElement} */ (document.getElementById(id));
  charts[id] = new Chart(canvas, {
    type,
    data,
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      interaction: { mode: 'index', intersect: false },
      plugins: { legend: { position: 'bottom', labels: { boxWidth: 12 } } },
      ...options,
    },
  });
}

function render() {
  if (!state.last) return;
  const { summary, top, lines } = state.last;
  const figures =
    summary.data.find((/** @type {any} */ d) => d.currency === state.currency) ?? summary.data[0] ?? null;
  if (figures) state.currency = figures.currency;
  $('#kpi-received').textContent = count(figures?.received ?? 0);
  $('#kpi-confirmed').textContent = count(figures?.confirmed ?? 0);
  $('#kpi-conversion').textContent =
    figures?.conversion === null || figures?.conversion === undefined
      ? '—'
      : new Intl.NumberFormat(locale(), { style: 'percent', maximumFractionDigits: 1 }).format(
          figures.conversion,
        );
  $('#kpi-gross').textContent = money(figures?.gross_revenue ?? 0);
  $('#kpi-refunds').textContent = money(figures?.refunds ?? 0);
  $('#kpi-net').textContent = money(figures?.net_revenue ?? 0);
  $('#kpi-aov').textContent = money(figures?.average_order_value);
  const times = figures?.received_to_outcome;
  $('#kpi-times').textContent =
    times && times.count
      ? `${times.p50_ms === null ? '—' : t('a.upTo', { ms: count(times.p50_ms) })} / ${
          times.p95_ms === null ? '—' : t('a.upTo', { ms: count(times.p95_ms) })
        }`
      : '—';

  const [received, confirmed, rejected, cancelled, gross, net, p50, p95] = lines.map(pointsOf);
  const labels = received.map((/** @type {any} */ p) => label(p.t));
  /** @param {string} key @param {any[]} points @param {string} colour */
  const line = (key, points, colour) => ({
    label: t(key),
    data: points.map((p) => p.v),
    borderColor: colour,
    backgroundColor: colour,
    pointRadius: 0,
    borderWidth: 2,
    tension: 0.2,
  });
  draw('chart-orders', 'line', {
    labels,
    datasets: [
      line('a.received', received, COLOURS.received),
      line('a.confirmed', confirmed, COLOURS.confirmed),
      line('a.rejected', rejected, COLOURS.rejected),
      line('a.cancelled', cancelled, COLOURS.cancelled),
    ],
  });
  draw(
    'chart-revenue',
    'bar',
    {
      labels,
      datasets: [
        {
          ...line('a.gross', gross, COLOURS.received),
          data: gross.map((/** @type {any} */ p) => (p.v ?? 0) / 100),
        },
        { ...line('a.net', net, COLOURS.net), data: net.map((/** @type {any} */ p) => (p.v ?? 0) / 100) },
      ],
    },
    { scales: { y: { ticks: { callback: (/** @type {number} */ v) => money(v * 100) } } } },
  );

  const reasons = [
    ...Object.entries(figures?.rejected.by_reason ?? {}).map(([r, n]) => [
      t('a.rejectedBy', { reason: t(`a.reason.${r}`) }),
      n,
    ]),
    ...Object.entries(figures?.cancelled.by_reason ?? {}).map(([r, n]) => [
      t('a.cancelledBy', { reason: t(`a.reason.${r}`) }),
      n,
    ]),
  ];
  draw(
    'chart-reasons',
    'bar',
    {
      labels: reasons.map(([l]) => l),
      datasets: [
        { label: t('a.received'), data: reasons.map(([, n]) => n), backgroundColor: COLOURS.rejected },
      ],
    },
    { indexAxis: 'y', plugins: { legend: { display: false } } },
  );

  draw(
    'chart-products',
    'bar',
    {
      labels: top.data.map((/** @type {any} */ p) => p.name ?? p.sku ?? p.product_id.slice(0, 8)),
      datasets: [
        {
          label: t('a.units'),
          data: top.data.map((/** @type {any} */ p) => p.units),
          backgroundColor: COLOURS.confirmed,
        },
      ],
    },
    { indexAxis: 'y', plugins: { legend: { display: false } } },
  );

  draw('chart-times', 'line', {
    labels,
    datasets: [
      { ...line('a.p50', p50, COLOURS.received), spanGaps: true },
      { ...line('a.p95', p95, COLOURS.p95), spanGaps: true },
    ],
  });
  renderFreshness();
}

function renderFreshness() {
  const el = $('#freshness');
  if (!state.readAt) return;
  const ago = Math.max(0, Math.round((Date.now() - state.readAt) / 1000));
  el.textContent = state.asOf
    ? t('a.fresh', {
        time: new Intl.DateTimeFormat(locale(), { dateStyle: 'short', timeStyle: 'medium' }).format(
          new Date(state.asOf),
        ),
        ago,
      })
    : t('a.empty');
}

function applyLanguage() {
  document.documentElement.lang = state.lang;
  document.title = t('a.title');
  for (const el of /** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll('[data-i18n]'))) {
    el.textContent = t(el.dataset.i18n ?? '');
  }
  for (const el of /** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll('[data-i18n-label]'))) {
    el.setAttribute('aria-label', t(el.dataset.i18nLabel ?? ''));
  }
  for (const button of /** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll('[data-lang]'))) {
    button.setAttribute('aria-pressed', String(button.dataset.lang === state.lang));
  }
  for (const id of Object.keys(charts)) {
    charts[id].destroy();
    delete charts[id];
  }
  render();
}

// ---------------------------------------------------------------- live updates

/**
 * Opens the dashboard stream. Its first event on each connection says "here are the figures now", every later
 * one "the figures changed": each is one read. Without a stream the figures are read once, and again when it opens.
 */
async function openStream() {
  let streamToken;
  try {
    streamToken = (await api('/stream-tokens', { method: 'POST' })).token;
  } catch {
    if (!state.last) void refresh();
    setTimeout(() => void openStream(), 3000);
    return;
  }
  const source = new EventSource(`/analytics/stream?access_token=${encodeURIComponent(streamToken)}`);
  source.addEventListener('analytics', () => void refresh());
  source.addEventListener('error', () => {
    $('#freshness').textContent = t('a.reconnecting');
    // The stream token lives a minute: reconnect with a fresh one instead of letting EventSource retry with it.
    source.close();
    setTimeout(() => void openStream(), 2000);
  });
}

function start() {
  for (const button of /** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll('[data-lang]'))) {
    button.addEventListener('click', () => {
      state.lang = button.dataset.lang === 'en' ? 'en' : 'es';
      localStorage.setItem('comanda.lang', state.lang);
      applyLanguage();
    });
  }
  const range = /** @type {HTMLSelectElement} */ ($('#range'));
  range.addEventListener('change', () => {
    state.range = /** @type {keyof typeof RANGES} */ (range.value);
    for (const id of Object.keys(charts)) {
      charts[id].destroy();
      delete charts[id];
    }
    void refresh();
  });
  applyLanguage();
  // The "updated n s ago" text ticks locally; the figures themselves change only when the stream says so.
  setInterval(renderFreshness, 1000);
  // The stream's first event brings the first read: reading here as well would read everything twice. A stream
  // held up on the way (a buffering proxy) must not leave the page empty, though.
  void openStream();
  setTimeout(() => {
    if (!state.last && !reading) void refresh();
  }, 1500);
}

start();
