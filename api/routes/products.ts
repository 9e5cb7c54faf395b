import Router from '@koa/router';
import { z } from 'zod';
import { checkAvailability } from '../../catalog/availability.ts';
import { importProducts } from '../../catalog/import.ts';
import { adjustStock, listMovements } from '../../catalog/ledger.ts';
import {
  availabilitySchema,
  newProductSchema,
  productPatchSchema,
  stockAdjustmentSchema,
} from '../../catalog/product-input.ts';
import {
  createProduct,
  findProduct,
  listProducts,
  toProductView,
  updateProduct,
} from '../../catalog/products.ts';
import type { StockChangeContext } from '../../catalog/stock.ts';
import {
  ForbiddenError,
  NotFoundError,
  PayloadTooLargeError,
  UnsupportedMediaTypeError,
} from '../../lib/errors.ts';
import type { Principal } from '../auth.ts';
import { requireAuth, requireRole, type ApiContext, type ApiDeps, type ApiState } from '../context.ts';
import { parseInput } from '../validation.ts';

const listQuery = z.strictObject({
  include_inactive: z.enum(['true', 'false'], { message: 'must be true or false' }).optional(),
});
const movementsQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.coerce.number().int().min(1).optional(),
});

function jsonBody(ctx: ApiContext): unknown {
  if (!ctx.is('application/json')) throw new UnsupportedMediaTypeError('Send the body as application/json');
  return (ctx.request as { body?: unknown }).body;
}

const idOf = (ctx: ApiContext) => (ctx.params as { id: string }).id;

/** Who changes the catalogue, for its ledger rows and messages. */
function changeContext(ctx: ApiContext): StockChangeContext {
  return {
    actor: ctx.state.principal.sub,
    correlationId: ctx.state.requestId,
    traceparent: ctx.get('traceparent') || undefined,
  };
}

/** Reads a text body of at most `limit` bytes; a longer one is a 413 as soon as it passes the limit. */
async function readText(ctx: ApiContext, limit: number): Promise<string> {
  const declared = Number(ctx.get('Content-Length') || 0);
  if (declared > limit) throw new PayloadTooLargeError(`The file is larger than ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new PayloadTooLargeError(`The file is larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The catalogue: anyone lists the products that can be ordered and checks availability; admins create, change,
 * restock and import products, list inactive ones and read each product's stock ledger.
 */
export function productsRouter(deps: ApiDeps): Router<ApiState> {
  const router = new Router<ApiState>();
  const authed = requireAuth(deps.auth);
  const admin = [authed, requireRole('admin')] as const;

  /** The caller when a token is sent: the list is public, but an admin may ask for more. */
  const optionalPrincipal = async (ctx: ApiContext): Promise<Principal | undefined> => {
    if (!ctx.get('Authorization')) return undefined;
    await requireAuth(deps.auth)(ctx, () => Promise.resolve());
    return ctx.state.principal;
  };

  router.get('/products', async (ctx: ApiContext) => {
    const q = parseInput(listQuery, ctx.query, 'query string');
    const principal = await optionalPrincipal(ctx);
    const includeInactive = q.include_inactive === 'true';
    if (includeInactive && !principal?.admin) {
      throw new ForbiddenError('Only admins list inactive products');
    }
    const rows = await listProducts(deps.db, { includeInactive });
    ctx.body = { data: rows.map((r) => toProductView(r, principal?.admin ?? false)) };
  });

  router.post('/products/check-availability', async (ctx: ApiContext) => {
    const input = parseInput(availabilitySchema, jsonBody(ctx));
    ctx.body = await checkAvailability(deps.db, input.items);
  });

  router.post('/products/import', ...admin, async (ctx: ApiContext) => {
    if (!ctx.is('text/csv')) throw new UnsupportedMediaTypeError('Send the file as text/csv');
    const text = await readText(ctx, deps.config.IMPORT_MAX_BYTES);
    ctx.body = await importProducts(deps.db, text, {
      lowStockThreshold: deps.config.LOW_STOCK_THRESHOLD,
      who: changeContext(ctx),
    });
    deps.onOutboxWritten();
  });

  router.post('/products', ...admin, async (ctx: ApiContext) => {
    const input = parseInput(newProductSchema, jsonBody(ctx));
    const product = await createProduct(
      deps.db,
      input,
      { lowStockThreshold: deps.config.LOW_STOCK_THRESHOLD },
      changeContext(ctx),
    );
    deps.onOutboxWritten();
    ctx.status = 201;
    ctx.set('Location', `/products/${product.id}`);
    ctx.body = toProductView(product, true);
  });

  router.get('/products/:id', async (ctx: ApiContext) => {
    const principal = await optionalPrincipal(ctx);
    const product = await findProduct(deps.db, idOf(ctx));
    if (!product || (!product.active && !principal?.admin)) {
      throw new NotFoundError(`Product ${idOf(ctx)} not found`);
    }
    ctx.body = toProductView(product, principal?.admin ?? false);
  });

  router.patch('/products/:id', ...admin, async (ctx: ApiContext) => {
    const patch = parseInput(productPatchSchema, jsonBody(ctx));
    const product = await updateProduct(deps.db, idOf(ctx), patch, changeContext(ctx));
    deps.onOutboxWritten();
    ctx.body = toProductView(product, true);
  });

  router.post('/products/:id/stock-adjustments', ...admin, async (ctx: ApiContext) => {
    const input = parseInput(stockAdjustmentSchema, jsonBody(ctx));
    const { product, movement } = await adjustStock(deps.db, idOf(ctx), input, changeContext(ctx));
    deps.onOutboxWritten();
    ctx.status = 201;
    ctx.body = { product: toProductView(product, true), movement };
  });

  router.get('/products/:id/stock-movements', ...admin, async (ctx: ApiContext) => {
    const query = parseInput(movementsQuery, ctx.query, 'query string');
    const product = await findProduct(deps.db, idOf(ctx));
    if (!product) throw new NotFoundError(`Product ${idOf(ctx)} not found`);
    ctx.body = await listMovements(deps.db, product.id, query);
  });

  return router;
}
