// @ts-check
// Live feeds (Server-Sent Events) for both pages.
import { ApiError } from './api.js';

/**
 * @typedef {object} Feed
 * @property {() => void} close
 * @property {() => string | null} lastId  the id of the last event received
 */

/**
 * An EventSource that survives what EventSource alone does not: its stream token expiring, or the API refusing a
 * reconnect. The browser reconnects by itself after a drop (sending Last-Event-ID); when it gives up, this opens a
 * new one with a fresh token and `last_event_id`, so no event is missed or repeated.
 * @param {import('./api.js').ApiClient} client
 * @param {string} path
 * @param {object} handlers
 * @param {(event: any, id: string) => void} handlers.onEvent
 * @param {(state: 'live' | 'reconnecting' | 'refused') => void} [handlers.onState]
 * @param {string | null} [handlers.lastId]  resume after this event id
 * @returns {Feed}
 */
export function openFeed(client, path, { onEvent, onState = () => {}, lastId = null }) {
  /** @type {{ closed: boolean, source: EventSource | null, lastId: string | null, timer: ReturnType<typeof setTimeout> | undefined }} */
  const feed = { closed: false, source: null, lastId, timer: undefined };
  const connect = async () => {
    if (feed.closed) return;
    /** @type {string | null} */
    let streamToken = null;
    try {
      streamToken = (await client.api('/stream-tokens', { method: 'POST' })).token;
    } catch (err) {
      // No stream tokens on this API (an external issuer signs tokens): the route takes the JWT itself.
      if (err instanceof ApiError && err.status === 404) streamToken = await client.token().catch(() => null);
      if (!streamToken) {
        feed.timer = setTimeout(connect, 2000);
        return;
      }
    }
    if (feed.closed || !streamToken) return;
    const params = new URLSearchParams({ access_token: streamToken });
    if (feed.lastId) params.set('last_event_id', feed.lastId);
    const source = new EventSource(`${path}?${params}`);
    feed.source = source;
    source.onopen = () => onState('live');
    source.onmessage = (m) => {
      feed.lastId = m.lastEventId || feed.lastId;
      onEvent(JSON.parse(m.data), m.lastEventId);
    };
    source.onerror = () => {
      onState('reconnecting');
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
    lastId: () => feed.lastId,
  };
}
