import { z } from 'zod';
import type { Config } from '../lib/config.ts';
import {
  availabilitySchema,
  newProductSchema,
  productPatchSchema,
  stockAdjustmentSchema,
} from '../catalog/product-input.ts';
import { ORDER_STATUSES, TRANSITIONS } from '../orders/lifecycle.ts';
import { WEBHOOK_EVENT_TYPES } from '../webhooks/event-types.ts';
import { cancelBodySchema, paymentBodySchema, statusBodySchema } from './routes/order-actions.ts';
import { orderBodySchema } from './routes/orders.ts';
import { summaryQuery, timeseriesQuery, topProductsQuery } from './routes/analytics.ts';
import { createEndpointBody } from './routes/webhooks.ts';
import { newClientBody, registerBody } from './routes/accounts.ts';

const problem = {
  description: 'An RFC 9457 problem',
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
};
const oauthError = {
  description: 'An RFC 6749 §5.2 error',
  content: { 'application/json': { schema: { $ref: '#/components/schemas/OAuthError' } } },
};
const ok = (description: string) => ({ description, content: { 'application/json': {} } });
const authed = { security: [{ bearer: [] }, { oauth2: [] }] };
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };
const ifMatch = {
  name: 'If-Match',
  in: 'header',
  required: false,
  description: 'The ETag of GET /orders/{id} (its version): 412 if the order changed since',
  schema: { type: 'string' },
};
/** Query parameters, one per property of the schema that validates them. */
function queryParams(schema: z.ZodObject) {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as {
    properties?: Record<string, unknown>;
    required?: string[];
  };
  return Object.entries(json.properties ?? {}).map(([name, s]) => ({
    name,
    in: 'query',
    required: json.required?.includes(name) ?? false,
    schema: s,
  }));
}
const analyticsReader = {
  ...{ security: [{ bearer: [] }] },
  tags: ['analytics'],
};
const analyticsErrors = { 400: problem, 401: problem, 403: problem };

const jsonBody = (schema: string, required: boolean) => ({
  required,
  content: { 'application/json': { schema: { $ref: `#/components/schemas/${schema}` } } },
});

/** The OpenAPI 3.1 description of the API; request bodies come from the same schemas that validate them. */
export function openApiDocument(config: Config) {
  return {
    openapi: '3.1.0',
    info: {
      title: 'comanda Orders API',
      version: '1',
      description:
        'Idempotent order intake (Idempotency-Key scoped to the token subject), order traces, live streams and webhooks.',
    },
    components: {
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description:
            'An access token from POST /auth/token (ES256 or EdDSA, `kid` in the header; public keys at /.well-known/jwks.json), a demo token, or a token of the external issuer of JWT_JWKS_URL. Roles in the `roles` claim: customer, admin, operations.',
        },
        oauth2: {
          type: 'oauth2',
          description: 'RFC 6749 token endpoint; errors as RFC 6749 §5.2 JSON.',
          flows: {
            password: { tokenUrl: '/auth/token', refreshUrl: '/auth/token', scopes: {} },
            clientCredentials: { tokenUrl: '/auth/token', refreshUrl: '/auth/token', scopes: {} },
          },
        },
      },
      schemas: {
        Problem: {
          type: 'object',
          required: ['type', 'title', 'status', 'detail'],
          properties: {
            type: { type: 'string' },
            title: { type: 'string' },
            status: { type: 'integer' },
            detail: { type: 'string' },
            code: { type: 'string' },
            errors: {
              type: 'array',
              items: {
                type: 'object',
                properties: { field: { type: 'string' }, message: { type: 'string' } },
              },
            },
          },
        },
        NewOrder: z.toJSONSchema(orderBodySchema(config.ORDER_MAX_ITEMS, config.ORDER_MAX_QUANTITY)),
        NewWebhookEndpoint: z.toJSONSchema(createEndpointBody),
        Registration: z.toJSONSchema(registerBody),
        NewServiceClient: z.toJSONSchema(newClientBody),
        TokenRequest: {
          type: 'object',
          required: ['grant_type'],
          properties: {
            grant_type: { enum: ['password', 'refresh_token', 'client_credentials'] },
            username: { type: 'string', description: 'password grant: the email' },
            password: { type: 'string' },
            refresh_token: { type: 'string' },
            client_id: { type: 'string', description: 'or HTTP Basic' },
            client_secret: { type: 'string' },
          },
        },
        OAuthError: {
          type: 'object',
          required: ['error'],
          properties: { error: { type: 'string' }, error_description: { type: 'string' } },
        },
        OrderStatus: { type: 'string', enum: [...ORDER_STATUSES] },
        WebhookEventType: { type: 'string', enum: [...WEBHOOK_EVENT_TYPES] },
        NewProduct: z.toJSONSchema(newProductSchema, { io: 'input' }),
        ProductPatch: z.toJSONSchema(productPatchSchema, { io: 'input' }),
        StockAdjustment: z.toJSONSchema(stockAdjustmentSchema, { io: 'input' }),
        AvailabilityCheck: z.toJSONSchema(availabilitySchema, { io: 'input' }),
        Cancellation: z.toJSONSchema(cancelBodySchema),
        Payment: z.toJSONSchema(paymentBodySchema),
        StatusChange: z.toJSONSchema(statusBodySchema, { io: 'input', unrepresentable: 'any' }),
        Lifecycle: {
          description:
            'The allowed moves: from, to, who may make them, the trace step, message and webhook event',
          'x-transitions': TRANSITIONS,
        },
      },
    },
    paths: {
      '/login-demo': {
        get: { summary: 'A demo token', responses: { 200: ok('token and expires_in'), 404: problem } },
      },
      '/auth/register': {
        post: {
          summary: 'Create a customer account',
          requestBody: {
            required: true,
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Registration' } } },
          },
          responses: { 201: ok('{id, email, name}'), 409: problem, 422: problem },
        },
      },
      '/auth/token': {
        post: {
          summary: 'OAuth 2.0 token endpoint: password, refresh_token, client_credentials',
          requestBody: {
            required: true,
            content: {
              'application/x-www-form-urlencoded': { schema: { $ref: '#/components/schemas/TokenRequest' } },
              'application/json': { schema: { $ref: '#/components/schemas/TokenRequest' } },
            },
          },
          responses: {
            200: ok('{access_token, token_type: "Bearer", expires_in, refresh_token?}'),
            400: oauthError,
            401: oauthError,
            429: oauthError,
          },
        },
      },
      '/.well-known/jwks.json': {
        get: {
          summary: 'The public keys that verify access tokens',
          responses: { 200: ok('{keys: [JWK]}') },
        },
      },
      '/me': {
        get: { ...authed, summary: 'Who the token is', responses: { 200: ok('{sub, roles, kind, …}') } },
      },
      '/clients': {
        post: {
          ...authed,
          summary: '(admin) A service client; its client_secret is shown once',
          requestBody: {
            required: true,
            content: { 'application/json': { schema: { $ref: '#/components/schemas/NewServiceClient' } } },
          },
          responses: { 201: ok('{id, client_id, client_secret, …}'), 403: problem, 422: problem },
        },
        get: {
          ...authed,
          summary: '(admin) Service clients',
          responses: { 200: ok('{data}'), 403: problem },
        },
      },
      '/clients/{id}': {
        delete: {
          ...authed,
          parameters: [idParam],
          summary: '(admin) Revoke',
          responses: { 200: ok('the client') },
        },
      },
      '/products': {
        get: {
          summary:
            'The products that can be ordered; with an admin token and ?include_inactive=true, all of them with stock_reserved and low_stock',
          parameters: [
            { name: 'include_inactive', in: 'query', required: false, schema: { type: 'boolean' } },
          ],
          responses: { 200: ok('{data: [product]}'), 403: problem },
        },
        post: {
          ...authed,
          summary: 'Create a product (admin); its stock is the opening ledger movement',
          requestBody: jsonBody('NewProduct', true),
          responses: { 201: ok('The product; Location header'), 403: problem, 409: problem, 422: problem },
        },
      },
      '/products/{id}': {
        get: { parameters: [idParam], responses: { 200: ok('The product'), 404: problem } },
        patch: {
          ...authed,
          parameters: [idParam],
          summary: 'Change name, price, low_stock_threshold or active (admin)',
          requestBody: jsonBody('ProductPatch', true),
          responses: { 200: ok('The product'), 403: problem, 404: problem, 422: problem },
        },
      },
      '/products/{id}/stock-adjustments': {
        post: {
          ...authed,
          parameters: [idParam],
          summary: 'Restock or adjust the available stock (admin); 409 if it would go below zero',
          requestBody: jsonBody('StockAdjustment', true),
          responses: {
            201: ok('{product, movement}'),
            403: problem,
            404: problem,
            409: problem,
            422: problem,
          },
        },
      },
      '/products/{id}/stock-movements': {
        get: {
          ...authed,
          parameters: [idParam],
          summary: 'The stock ledger of a product, newest first (admin); ?limit= and ?cursor=',
          responses: { 200: ok('{data: [movement], next_cursor}'), 403: problem, 404: problem },
        },
      },
      '/products/check-availability': {
        post: {
          summary: 'Whether each line can be ordered now',
          requestBody: jsonBody('AvailabilityCheck', true),
          responses: {
            200: ok('{all_available, items: [{product_id, sku, requested, available, is_available}]}'),
            422: problem,
          },
        },
      },
      '/products/import': {
        post: {
          ...authed,
          summary:
            'Upsert products from CSV (admin): sku,name,price,currency,stock[,low_stock_threshold]; stock sets the available level',
          requestBody: { required: true, content: { 'text/csv': { schema: { type: 'string' } } } },
          responses: {
            200: ok('{rows, created, updated, unchanged, rejected: [{line, sku, errors}]}'),
            403: problem,
            413: problem,
            415: problem,
            422: problem,
          },
        },
      },
      '/lifecycle': {
        get: {
          summary: 'The order lifecycle: statuses, transitions with their actors, trace steps and reasons',
          responses: { 200: ok('{statuses, terminal, cancellable, processed, transitions, steps, reasons}') },
        },
      },
      '/orders': {
        post: {
          ...authed,
          summary: 'Place an order (idempotent)',
          parameters: [
            {
              name: 'Idempotency-Key',
              in: 'header',
              required: false,
              description: 'Required unless the body carries an order id; at most 255 characters',
              schema: { type: 'string', maxLength: 255 },
            },
          ],
          requestBody: {
            required: true,
            content: { 'application/json': { schema: { $ref: '#/components/schemas/NewOrder' } } },
          },
          responses: {
            201: ok('The order, RECEIVED; Location header. Replays carry Idempotent-Replayed: true'),
            400: problem,
            401: problem,
            409: {
              description:
                'INSUFFICIENT_STOCK (with `items` as /products/check-availability gives them), or an idempotency conflict',
              content: problem.content,
            },
            413: problem,
            415: problem,
            422: problem,
            503: problem,
          },
        },
        get: {
          ...authed,
          summary: "The caller's orders (every order for an admin), newest first",
          parameters: [
            {
              name: 'limit',
              in: 'query',
              schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 },
            },
            {
              name: 'cursor',
              in: 'query',
              description: 'next_cursor of the previous page',
              schema: { type: 'string' },
            },
            { name: 'status', in: 'query', schema: { type: 'string', enum: [...ORDER_STATUSES] } },
            {
              name: 'customer',
              in: 'query',
              description: "Admins: only this customer's orders",
              schema: { type: 'string' },
            },
          ],
          responses: { 200: ok('{data, next_cursor}'), 422: problem },
        },
      },
      '/orders/{id}': {
        get: { ...authed, parameters: [idParam], responses: { 200: ok('The order'), 404: problem } },
      },
      '/orders/{id}/cancel': {
        post: {
          ...authed,
          parameters: [idParam, ifMatch],
          summary: 'Cancel (the order’s customer or an admin); stock back, a captured payment refunded',
          requestBody: jsonBody('Cancellation', false),
          responses: { 200: ok('The order, CANCELLED'), 404: problem, 409: problem, 412: problem },
        },
      },
      '/orders/{id}/payment': {
        post: {
          ...authed,
          parameters: [idParam],
          summary: 'Pay an order that is AWAITING_PAYMENT; the worker charges the card',
          requestBody: jsonBody('Payment', true),
          responses: {
            202: ok('The order, still AWAITING_PAYMENT'),
            404: problem,
            409: problem,
            422: problem,
          },
        },
      },
      '/orders/{id}/status': {
        patch: {
          ...authed,
          parameters: [idParam, ifMatch],
          summary:
            'Fulfilment (admin, operations): PROCESSING, SHIPPED (tracking_number, carrier), DELIVERED',
          requestBody: jsonBody('StatusChange', true),
          responses: {
            200: ok('The order; ETag is its version'),
            403: problem,
            404: problem,
            409: problem,
            412: problem,
            422: problem,
          },
        },
      },
      '/orders/{id}/events': {
        get: { ...authed, parameters: [idParam], responses: { 200: ok('{data: [step]}'), 404: problem } },
      },
      '/orders/{id}/stream': {
        get: {
          ...authed,
          parameters: [idParam],
          summary: 'Server-Sent Events of the trace',
          responses: { 200: { description: 'text/event-stream' }, 404: problem },
        },
      },
      '/admin/stream': {
        get: {
          ...authed,
          summary:
            'Server-Sent Events of the operations feed (admin, operations): orders, status changes, stock, products, dead letters, disabled webhook endpoints',
          description:
            'Event ids are `<tx>-<row>` positions; Last-Event-ID (or last_event_id) resumes after one without a gap or a repeat. Also takes access_token (a stream token or the JWT).',
          parameters: [
            { name: 'Last-Event-ID', in: 'header', required: false, schema: { type: 'string' } },
            { name: 'last_event_id', in: 'query', required: false, schema: { type: 'string' } },
            { name: 'access_token', in: 'query', required: false, schema: { type: 'string' } },
          ],
          responses: { 200: { description: 'text/event-stream' }, 401: problem, 403: problem, 422: problem },
        },
      },
      '/webhook-endpoints': {
        post: {
          ...authed,
          requestBody: {
            required: true,
            content: { 'application/json': { schema: { $ref: '#/components/schemas/NewWebhookEndpoint' } } },
          },
          responses: { 201: ok('The endpoint with its secret (shown once)'), 422: problem },
        },
        get: { ...authed, responses: { 200: ok('{data: [endpoint]}') } },
      },
      '/analytics/summary': {
        get: {
          ...analyticsReader,
          summary:
            'Every figure for [from, to) per currency (admin, operations); from/to default to the last 24 h, in whole minutes',
          parameters: queryParams(summaryQuery),
          responses: { 200: ok('{from, to, as_of, data: [figures per currency]}'), ...analyticsErrors },
        },
      },
      '/analytics/timeseries': {
        get: {
          ...analyticsReader,
          summary: 'One figure per minute, hour or day bucket (at most 10,000 buckets), per currency',
          parameters: queryParams(timeseriesQuery),
          responses: {
            200: ok('{metric, granularity, from, to, series: [{currency, points}]}'),
            ...analyticsErrors,
          },
        },
      },
      '/analytics/top-products': {
        get: {
          ...analyticsReader,
          summary: 'The best-selling products of the orders confirmed in [from, to), by units or revenue',
          parameters: queryParams(topProductsQuery),
          responses: {
            200: ok('{by, from, to, data: [{product_id, sku, name, currency, units, revenue}]}'),
            ...analyticsErrors,
          },
        },
      },
      '/analytics/stream': {
        get: {
          ...analyticsReader,
          summary:
            'Server-Sent Events: an `analytics` event (with as_of, the newest event counted) each time the figures change; takes access_token like the order streams',
          responses: { 200: { description: 'text/event-stream' }, 401: problem, 403: problem },
        },
      },
      '/healthz': { get: { responses: { 200: ok('alive') } } },
      '/readyz': { get: { responses: { 200: ok('every dependency up'), 503: ok('which one is down') } } },
      '/metrics': { get: { responses: { 200: { description: 'Prometheus text format' } } } },
    },
  };
}
