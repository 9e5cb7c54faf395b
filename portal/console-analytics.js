// @ts-check
// The analytics dashboard (its own page, /analytics) as one tab of the console: framed from the same origin the
// first time the tab is opened, so its charts and live figures load only for those who look at them.
import { $ } from './words.js';

export function setupAnalyticsTab() {
  let framed = false;
  const tab = $('#analytics-tab');
  const open = async () => {
    if (framed) return;
    framed = true;
    const res = await fetch('/analytics', { method: 'HEAD' }).catch(() => null);
    if (!res?.ok) {
      framed = false; // not on this API (yet): the tab says so, and tries again next time
      $('#analytics-waiting').hidden = false;
      return;
    }
    $('#analytics-waiting').hidden = true;
    const frame = document.createElement('iframe');
    frame.src = '/analytics';
    frame.className = 'analytics-frame';
    frame.title = tab.textContent?.trim() ?? 'analytics';
    $('#analytics-panel').append(frame);
  };
  tab.addEventListener('click', () => void open());
  tab.addEventListener('keyup', () => {
    if (tab.getAttribute('aria-selected') === 'true') void open();
  });
}
