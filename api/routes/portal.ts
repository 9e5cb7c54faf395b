import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Router from '@koa/router';
import { NotFoundError } from '../../lib/errors.ts';
import type { ApiContext, ApiState } from '../context.ts';

const PORTAL_DIR = fileURLToPath(new URL('../../portal/', import.meta.url));
/** Libraries the pages load, served from node_modules as installed (kept up to date with the lockfile). */
const VENDOR: Record<string, string> = {
  'chart.umd.min.js': path.join(
    path.dirname(fileURLToPath(import.meta.resolve('chart.js'))),
    'chart.umd.min.js',
  ),
};
// The operations console's page holds no data, so it is served to anyone; it signs in before it reads.
const PAGES: Record<string, string> = {
  '/': 'index.html',
  '/analytics': 'analytics.html',
  '/admin': 'admin.html',
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

// The page talks only to this API and runs only its own files.
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  // Framed only by the portal's own pages (the console shows the analytics dashboard as one of its tabs).
  "frame-ancestors 'self'",
].join('; ');

/**
 * The demo portal: `/` is its page, `/analytics` the admins' dashboard, `/admin` the operations console,
 * `/portal/<file>` their scripts and styles, plain files with no build step, and `/portal/vendor/<file>` the
 * libraries they load from node_modules.
 * Only files present in portal/ at start are served (no path from the request ever reaches the file system);
 * they are read on each request, so an edit shows on reload, and revalidated with an ETag.
 */
export function portalRouter(): Router<ApiState> {
  const router = new Router<ApiState>();
  const files = new Set(readdirSync(PORTAL_DIR).filter((f) => TYPES[path.extname(f)] !== undefined));

  const send = async (ctx: ApiContext, file: string, fullPath = path.join(PORTAL_DIR, file)) => {
    const body = await readFile(fullPath);
    ctx.set('Content-Security-Policy', CSP);
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Referrer-Policy', 'no-referrer');
    ctx.set('Cache-Control', 'no-cache');
    ctx.type = TYPES[path.extname(file)];
    ctx.etag = createHash('sha1').update(body).digest('base64url');
    ctx.status = 200;
    if (ctx.fresh) {
      ctx.status = 304;
      return;
    }
    ctx.body = body;
  };

  for (const [route, page] of Object.entries(PAGES)) router.get(route, (ctx: ApiContext) => send(ctx, page));
  router.get('/portal/:file', async (ctx: ApiContext) => {
    const file = (ctx.params as { file?: string }).file ?? '';
    if (!files.has(file) || Object.values(PAGES).includes(file))
      throw new NotFoundError(`No portal file ${file}`);
    await send(ctx, file);
  });
  router.get('/portal/vendor/:file', async (ctx: ApiContext) => {
    const file = (ctx.params as { file?: string }).file ?? '';
    const found = VENDOR[file];
    if (!found) throw new NotFoundError(`No portal file vendor/${file}`);
    await send(ctx, file, found);
  });
  return router;
}
