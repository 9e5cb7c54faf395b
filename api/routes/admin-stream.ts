import Router from '@koa/router';
import type { Next } from 'koa';
import { ValidationError } from '../../lib/errors.ts';
import {
  adminEventsAfter,
  latestAdminCursor,
  parseAdminEventId,
  type AdminCursor,
  type AdminFeedEvent,
} from '../../operations/admin-feed.ts';
import { requireRole, type ApiContext, type ApiDeps, type ApiState } from '../context.ts';
import { SseFeed } from '../sse.ts';
import type { FeedSubscriber } from '../status-listener.ts';
import { givenLastEventId, streamPrincipal, type StreamDeps, type StreamTokens } from './stream.ts';

const BATCH = 500;

/**
 * `GET /admin/stream`: the operations console's live feed (admins and operations only) — new orders, every status
 * change and cancellation, payment steps, stock and product events, dead-lettered messages and disabled webhook
 * endpoints. Event ids are positions in `admin_events` (`<tx>-<row>`); `Last-Event-ID` (or `last_event_id`)
 * resumes after one, without a gap or a repeat. Without one the feed starts from now. See ADR 0012.
 */
export function adminStreamRouter(deps: ApiDeps & StreamDeps, streamTokens: StreamTokens): Router<ApiState> {
  const router = new Router<ApiState>();

  const streamAuth = async (ctx: ApiContext, next: Next) => {
    await streamPrincipal(ctx, deps.auth, streamTokens);
    await next();
  };

  router.get('/admin/stream', streamAuth, requireRole('admin', 'operations'), async (ctx: ApiContext) => {
    const cursor = resumeCursor(ctx) ?? (await latestAdminCursor(deps.db));
    const log = ctx.state.log.child({ stream: 'admin' });
    const feed = new SseFeed<AdminFeedEvent, AdminCursor>({
      read: async (after) => {
        const { events, pending } = await adminEventsAfter(deps.db, after, BATCH);
        return { events, pending, more: events.length === BATCH };
      },
      cursorOf: (event) => parseAdminEventId(event.id)!,
      cursor,
      log,
    });
    const subscriber: FeedSubscriber = {
      operations: true,
      notify: () => feed.notify(),
      close: () => feed.close(),
    };
    feed.onClose(deps.statusListener.subscribe(subscriber));
    feed.open(ctx);
    log.info({ last_event_id: `${cursor.tx}-${cursor.id}` }, 'admin stream opened');
  });

  return router;
}

function resumeCursor(ctx: ApiContext): AdminCursor | undefined {
  const given = givenLastEventId(ctx);
  if (!given) return undefined;
  const cursor = parseAdminEventId(given.value);
  if (!cursor) {
    throw new ValidationError('Last-Event-ID must be the id of an event this stream sent', [
      { field: given.field, message: 'must look like <digits>-<digits>' },
    ]);
  }
  return cursor;
}
