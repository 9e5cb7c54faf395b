import { randomUUID } from 'node:crypto';
import type { ExecutionContext } from 'ava';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Headless Chromium as the machines have it (`CHROMIUM_PATH` to use another). */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

export interface Portal {
  page: Page;
  customer: string;
  /** Uncaught errors in the page's scripts. */
  pageErrors: string[];
  /** Every status the confirmation badge has shown, in order. */
  badgeHistory(): Promise<string[]>;
  product(sku: string): ReturnType<Page['locator']>;
}

/** Opens the portal at `baseUrl` as a customer of its own (so tests never see each other's orders) and waits for `sku`. */
export async function openPortal(
  t: ExecutionContext,
  browser: Browser,
  baseUrl: string,
  sku: string,
  options: { customer?: string; viewport?: { width: number; height: number } } = {},
): Promise<Portal> {
  const { customer = `c-${randomUUID().slice(0, 8)}` } = options;
  const context = await browser.newContext({
    viewport: options.viewport ?? { width: 1100, height: 900 },
    locale: 'es-ES',
  });
  t.teardown(() => context.close());
  // In the page (as source text: this project compiles without the DOM's types). It also records each status
  // the confirmation shows, however briefly, so "RECEIVED at once, then CONFIRMED" can be checked.
  await context.addInitScript({
    content: `
      localStorage.setItem('comanda.customer', ${JSON.stringify(customer)});
      window.badgeHistory = [];
      new MutationObserver(() => {
        const text = document.querySelector('#order-status')?.textContent ?? '';
        if (text && window.badgeHistory.at(-1) !== text) window.badgeHistory.push(text);
      }).observe(document, { subtree: true, childList: true, characterData: true });`,
  });
  const page = await context.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  await page.goto(`${baseUrl}/`);
  const product = (s: string) => page.locator(`#products [data-sku="${s}"]`);
  await product(sku).waitFor();
  return {
    page,
    customer,
    pageErrors,
    badgeHistory: () => page.evaluate<string[]>('window.badgeHistory.slice()'),
    product,
  };
}

export const createButton = (page: Page) => page.getByRole('button', { name: 'Crear Pedido' });

/** The statuses the timeline shows as reached (not the pending ones, nor steps that changed no status). */
export async function timelineStatuses(page: Page): Promise<string[]> {
  return page
    .locator('#timeline li.step[data-status]:not(.pending)')
    .evaluateAll((lis: any[]) => lis.map((li) => String(li.dataset.status)));
}

/** The trace steps the timeline shows, by type, in order. */
export async function timelineSteps(page: Page): Promise<string[]> {
  return page
    .locator('#timeline li.step[data-step]')
    .evaluateAll((lis: any[]) => lis.map((li) => String(li.dataset.step)));
}

export interface Console {
  page: Page;
  pageErrors: string[];
  /** The ids of every event the page's feeds received, in order (repeats included). */
  feedIds(): Promise<string[]>;
  /** Every status the order detail's badge has shown, in order. */
  detailHistory(): Promise<string[]>;
  /** The orders table's row of `orderId`. */
  row(orderId: string): ReturnType<Page['locator']>;
}

/**
 * Opens the operations console at `baseUrl`/admin in a browser context of its own and signs in as the demo admin
 * (unless `signIn: false`); resolves once its live feed is open.
 */
export async function openConsole(
  t: ExecutionContext,
  browser: Browser,
  baseUrl: string,
  options: {
    signIn?: boolean;
    viewport?: { width: number; height: number };
    locale?: string;
    /** The feed opens and says nothing, ever: the page goes stale. */
    deafFeed?: boolean;
  } = {},
): Promise<Console> {
  const context = await browser.newContext({
    viewport: options.viewport ?? { width: 1280, height: 900 },
    locale: options.locale ?? 'es-ES',
  });
  t.teardown(() => context.close());
  await context.addInitScript({
    content: `
      window.feedIds = [];
      const NativeEventSource = window.EventSource;
      window.EventSource = class extends NativeEventSource {
        constructor(url, init) {
          super(url, init);
          this.addEventListener('message', (e) => window.feedIds.push(e.lastEventId));
        }
      };
      window.detailHistory = [];
      new MutationObserver(() => {
        const text = document.querySelector('#detail-status')?.textContent ?? '';
        if (text && window.detailHistory.at(-1) !== text) window.detailHistory.push(text);
      }).observe(document, { subtree: true, childList: true, characterData: true });`,
  });
  if (options.deafFeed) {
    await context.route('**/admin/stream**', (route) =>
      route.fulfill({ status: 200, contentType: 'text/event-stream', body: 'retry: 600000\n\n' }),
    );
  }
  const page = await context.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  await page.goto(`${baseUrl}/admin`);
  if (options.signIn !== false) {
    await page.locator('#signin-demo').click();
    if (options.deafFeed) await page.locator('#orders-body tr').first().waitFor();
    else await page.locator('#feed-state[data-state="live"]').waitFor();
  }
  return {
    page,
    pageErrors,
    feedIds: () => page.evaluate<string[]>('window.feedIds.slice()'),
    detailHistory: () => page.evaluate<string[]>('window.detailHistory.slice()'),
    row: (orderId) => page.locator(`#orders-body tr[data-order-id="${orderId}"]`),
  };
}

/**
 * Where browser tests put their screenshots: docs/ when asked for (UPDATE_SCREENSHOTS=1), else beside the other
 * test artifacts, so a test run leaves the tree as it found it.
 */
export const SCREENSHOTS = new URL(
  process.env.UPDATE_SCREENSHOTS ? '../../docs/' : '../../test-artifacts/',
  import.meta.url,
);

/** Places an order of `quantity` through the customer's page; returns its id once the page confirms it. */
export async function placeOrder(portal: Portal, sku: string, quantity: number): Promise<string> {
  const orderId = portal.page.locator('#confirmation:not([hidden]) #order-id');
  const before = (await orderId.count()) ? await orderId.textContent() : null;
  await portal.product(sku).locator('input').fill(String(quantity));
  await createButton(portal.page).click();
  if (before) await orderId.filter({ hasNotText: before }).waitFor();
  else await orderId.waitFor();
  return (await orderId.textContent()) ?? '';
}
