import test from 'ava';
import { Webhook } from 'standardwebhooks';
import { generateSecret, signWebhook } from '../../webhooks/signing.ts';

const body = JSON.stringify({
  type: 'order.confirmed',
  timestamp: '2026-11-23T10:00:00.000Z',
  data: { n: 1 },
});

function headers(signature: string, id: string, timestamp: number) {
  return { 'webhook-id': id, 'webhook-timestamp': String(timestamp), 'webhook-signature': signature };
}

test('when a body is signed with a generated secret, then the standardwebhooks library verifies it unchanged', (t) => {
  const secret = generateSecret();
  const now = Math.floor(Date.now() / 1000);

  const signature = signWebhook([secret], 'delivery-1', now, body);

  t.regex(secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
  t.regex(signature, /^v1,[A-Za-z0-9+/]{43}=$/);
  t.deepEqual(new Webhook(secret).verify(body, headers(signature, 'delivery-1', now)), JSON.parse(body));
});

test('when a secret is being rotated, then a receiver holding either the new or the old secret verifies', (t) => {
  const [current, previous] = [generateSecret(), generateSecret()];
  const now = Math.floor(Date.now() / 1000);

  const signature = signWebhook([current, previous], 'delivery-2', now, body);

  t.is(signature.split(' ').length, 2);
  t.notThrows(() => new Webhook(current).verify(body, headers(signature, 'delivery-2', now)));
  t.notThrows(() => new Webhook(previous).verify(body, headers(signature, 'delivery-2', now)));
  t.throws(() => new Webhook(generateSecret()).verify(body, headers(signature, 'delivery-2', now)));
});

test('when the body, id or timestamp differ from what was signed, then verification fails', (t) => {
  const secret = generateSecret();
  const now = Math.floor(Date.now() / 1000);
  const signature = signWebhook([secret], 'delivery-3', now, body);
  const wh = new Webhook(secret);

  t.throws(() => wh.verify(body.replace('"n":1', '"n":2'), headers(signature, 'delivery-3', now)));
  t.throws(() => wh.verify(body, headers(signature, 'delivery-4', now)));
  t.throws(() => wh.verify(body, headers(signature, 'delivery-3', now + 1)));
});
