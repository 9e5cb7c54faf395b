// @ts-check
// The order lifecycle as the API serves it (GET /lifecycle, built from orders/lifecycle.ts). The portal asks the
// server which statuses are terminal or cancellable instead of keeping a copy of the rules that could drift.

/**
 * @typedef {object} LifecycleDocument
 * @property {string[]} statuses
 * @property {string[]} terminal
 * @property {string[]} cancellable
 * @property {string[]} processed
 * @property {{ from: string | null, to: string, actors: string[], step: string }[]} transitions
 * @property {string[]} steps
 */

/**
 * One step of an order's trace as the live feeds send it.
 * @typedef {object} TraceEvent
 * @property {number} id
 * @property {string} order_id
 * @property {string} type
 * @property {string | null} from_status
 * @property {string | null} to_status
 * @property {string | null} reason
 * @property {Record<string, any>} data
 * @property {string} created_at
 */

/** @type {LifecycleDocument | null} */
let lifecycle = null;
/** @type {Promise<LifecycleDocument | null> | null} */
let loading = null;

/**
 * Loads the lifecycle once; on failure (the API is away) the next call tries again. Until it is known, no status
 * counts as terminal (feeds keep listening) and none as cancellable (no button offers what may be refused).
 * @param {() => Promise<LifecycleDocument>} fetchLifecycle
 */
export function loadLifecycle(fetchLifecycle) {
  if (lifecycle) return Promise.resolve(lifecycle);
  loading ??= fetchLifecycle()
    .then((doc) => (lifecycle = doc))
    .catch(() => null)
    .finally(() => {
      loading = null;
    });
  return loading;
}

/** @param {string | null | undefined} status  No way out of it: the order can no longer change. */
export const isTerminal = (status) => Boolean(status && lifecycle?.terminal.includes(status));

/** @param {string | null | undefined} status  Its customer may still cancel it. */
export const isCancellable = (status) => Boolean(status && lifecycle?.cancellable.includes(status));

/** @param {string | null | undefined} status  The worker has given the order its first outcome. */
export const isProcessed = (status) => Boolean(status && lifecycle?.processed.includes(status));

/**
 * A step that moved the order to another status (PaymentDeclined and PaymentRefunded keep the status they found).
 * @param {TraceEvent} e
 */
export const changesStatus = (e) => Boolean(e.to_status) && e.to_status !== e.from_status;

/**
 * The statuses the order is expected to pass through next, up to its first outcome (the worker's part), or the
 * one next step after that. The table lists each status's way forward first, its failures and cancellation after.
 * @param {string | null} status  null before the order is known to exist
 * @returns {string[]}
 */
export function expectedNext(status) {
  if (!lifecycle) return [];
  const next = [];
  let from = status;
  for (let i = 0; i < lifecycle.statuses.length; i++) {
    const move = lifecycle.transitions.find((t) => t.from === from);
    if (!move) break;
    next.push(move.to);
    if (from !== null && isProcessed(from)) break; // after the outcome: only the one next step
    if (isProcessed(move.to)) break;
    from = move.to;
  }
  return next;
}
