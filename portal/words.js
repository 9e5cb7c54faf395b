// @ts-check
// Words and formats in the page's language, for both pages: the customer's MESSAGES and the console's own.
import { CONSOLE_MESSAGES } from './i18n-console.js';
import { LOCALES, MESSAGES } from './i18n.js';

/** @typedef {'es' | 'en'} Lang */

/** @type {{ lang: Lang }} */
export const language = {
  lang: localStorage.getItem('comanda.lang') === 'en' ? 'en' : 'es',
};

/** @param {Lang} lang */
export function setLanguage(lang) {
  language.lang = lang;
  localStorage.setItem('comanda.lang', lang);
}

/**
 * @param {string} key
 * @param {Record<string, unknown>} [params]
 */
export function t(key, params = {}) {
  /** @type {Record<string, Record<string, string>>} */
  const m = /** @type {any} */ (MESSAGES);
  /** @type {Record<string, Record<string, string>>} */
  const c = CONSOLE_MESSAGES;
  const text = m[language.lang][key] ?? c[language.lang][key] ?? m.es[key] ?? c.es[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(params[name] ?? ''));
}

/** Puts the words of every `[data-i18n]` element and the language buttons in the page's language. */
export function translatePage(titleKey = 'title') {
  document.documentElement.lang = language.lang;
  document.title = t(titleKey);
  for (const el of document.querySelectorAll('[data-i18n]')) {
    el.textContent = t(/** @type {HTMLElement} */ (el).dataset.i18n ?? '');
  }
  for (const el of document.querySelectorAll('[data-i18n-label]')) {
    el.setAttribute('aria-label', t(/** @type {HTMLElement} */ (el).dataset.i18nLabel ?? ''));
  }
  for (const button of document.querySelectorAll('[data-lang]')) {
    button.setAttribute(
      'aria-pressed',
      String(/** @type {HTMLElement} */ (button).dataset.lang === language.lang),
    );
  }
}

/**
 * @param {number} cents
 * @param {string} [currency]
 */
export const money = (cents, currency = 'EUR') =>
  new Intl.NumberFormat(LOCALES[language.lang], { style: 'currency', currency }).format(cents / 100);

/** @param {string} iso  the time with seconds and milliseconds */
export const clock = (iso) =>
  new Intl.DateTimeFormat(LOCALES[language.lang], {
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    fractionalSecondDigits: 3,
  }).format(new Date(iso));

/** @param {string} iso  hours and minutes */
export const timeOfDay = (iso) =>
  new Intl.DateTimeFormat(LOCALES[language.lang], { hour: '2-digit', minute: '2-digit' }).format(
    new Date(iso),
  );

/** @param {string} iso  day and time */
export const dateTime = (iso) =>
  new Intl.DateTimeFormat(LOCALES[language.lang], { dateStyle: 'short', timeStyle: 'medium' }).format(
    new Date(iso),
  );

/** @param {string} id */
export const shortId = (id) => id.slice(0, 8);

/**
 * The element `selector` finds; the page is ours, so a missing one is a bug worth an error.
 * @template {HTMLElement} [E=HTMLElement]
 * @param {string} selector
 * @param {ParentNode} [root]
 * @returns {E}
 */
export function $(selector, root = document) {
  const el = root.querySelector(selector);
  if (!el) throw new Error(`no ${selector} on the page`);
  return /** @type {E} */ (el);
}

/**
 * @param {HTMLElement} el
 * @param {string} text
 * @param {string} kind  info | warn | error | ok
 */
export function say(el, text, kind) {
  el.textContent = text;
  el.dataset.kind = kind;
}
