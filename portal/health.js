// @ts-check
// Whether the API answers: the banner when it does not (and when it is back), and the system panel's checks of
// PostgreSQL, RabbitMQ and Redis from /readyz, looked at every few seconds (more often while it is away).
import { t } from './words.js';

/**
 * @param {object} hooks
 * @param {() => void} hooks.onBack  the API answers again: load again whatever may have changed meanwhile
 * @param {() => void} [hooks.onTick]  every healthy check (things that no feed carries can be read again)
 */
export function watchHealth({ onBack, onTick = () => {} }) {
  let online = true;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;

  /** @param {boolean} now */
  function setOnline(now) {
    if (online === now) return;
    online = now;
    const banner = /** @type {HTMLElement} */ (document.querySelector('#banner'));
    if (!now) {
      banner.textContent = t('offline');
      banner.className = 'banner error';
      banner.hidden = false;
      // The system panel says the same as the banner at once, not only at the next health check.
      setCheck('api', 'down');
      schedule(1500);
    } else {
      banner.textContent = t('backOnline');
      banner.className = 'banner ok';
      setTimeout(() => {
        if (online) banner.hidden = true;
      }, 3000);
      onBack();
      schedule(0);
    }
  }

  /** @param {number} ms */
  function schedule(ms) {
    clearTimeout(timer);
    timer = setTimeout(() => void check(), ms);
  }

  async function check() {
    /** @type {Record<string, string> | null} */
    let checks = null;
    try {
      const res = await fetch('/readyz', { headers: { accept: 'application/json' } });
      checks = res.headers.get('content-type')?.includes('json') ? await res.json() : null;
      setOnline(checks !== null);
    } catch {
      setOnline(false);
    }
    setCheck('api', checks ? 'up' : 'down');
    for (const name of ['postgres', 'rabbitmq', 'redis']) setCheck(name, checks ? checks[name] : 'unknown');
    if (online) onTick();
    schedule(online ? 5000 : 1500);
  }

  return { setOnline, checkNow: () => schedule(0) };
}

/**
 * @param {string} name
 * @param {string} status
 */
function setCheck(name, status) {
  const el = /** @type {HTMLElement | null} */ (document.querySelector(`[data-check="${name}"]`));
  if (!el) return; // the console has no system panel
  el.dataset.status = status;
  el.textContent = t(status === 'up' ? 'up' : status === 'down' ? 'down' : 'unknown');
}
