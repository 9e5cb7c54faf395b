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
