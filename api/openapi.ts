import { z } from 'zod';
import type { Config } from '../lib/config.ts';
import { ORDER_STATUSES, ORDER_WEBHOOK_EVENTS, TRANSITIONS } from '../orders/lifecycle.ts';
import { cancelBodySchema, paymentBodySchema, statusBodySchema } from './routes/order-actions.ts';
import { orderBodySchema } from './routes/orders.ts';
import { summaryQuery, timeseriesQuery, topProductsQuery } from './routes/analytics.ts';
import { createEndpointBody } from './routes/webhooks.ts';

const problem = {
  description: 'An RFC 9457 problem',
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
};
const ok = (description: string) => ({ description, content: { 'application/json': {} } });
const authed = { security: [{ bearer: [] }] };
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
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
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
        OrderStatus: { type: 'string', enum: [...ORDER_STATUSES] },
        WebhookEventType: { type: 'string', enum: [...ORDER_WEBHOOK_EVENTS] },
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
      '/products': { get: { summary: 'The catalogue', responses: { 200: ok('{data: [product]}') } } },
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
            409: problem,
            413: problem,
            415: problem,
            422: problem,
            503: problem,
          },
        },
        get: {
          ...authed,
          summary: "The caller's orders, newest first",
          responses: { 200: ok('{data, next_cursor}') },
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
