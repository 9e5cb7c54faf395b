import test from 'ava';
import { WebhookSender } from '../../webhooks/sender.ts';
import { TestReceiver } from './receiver.ts';

const request = (url: string) => ({
  url,
  body: '{"type":"order.created"}',
  headers: { 'content-type': 'application/json' },
});

test('when a receiver redirects, then the redirect is not followed and the attempt counts as failed', async (t) => {
  const target = await TestReceiver.start();
  const redirecting = await TestReceiver.start(() => ({ status: 307, headers: { location: target.url } }));
  const sender = new WebhookSender({ timeoutMs: 2000, allowPrivate: true, maxSockets: 2 });
  t.teardown(async () => {
    sender.close();
    await Promise.all([target.stop(), redirecting.stop()]);
  });

  const res = await sender.send(request(redirecting.url));

  t.is(res.statusCode, 307);
  t.regex(res.error!, /redirect to .* not followed/);
  t.is(redirecting.received.length, 1);
  t.is(target.received.length, 0);
});

test('when private URLs are not allowed, then the sender refuses loopback, by address or by name, before sending anything', async (t) => {
  const receiver = await TestReceiver.start();
  const sender = new WebhookSender({ timeoutMs: 2000, allowPrivate: false, maxSockets: 2 });
  t.teardown(async () => {
    sender.close();
    await receiver.stop();
  });

  const byAddress = await sender.send(request(receiver.url));
  const byName = await sender.send(request(`http://localhost:${receiver.port}/hooks`));

  t.is(byAddress.statusCode, null);
  t.regex(byAddress.error!, /private address/);
  t.is(byName.statusCode, null);
  t.regex(byName.error!, /private address/);
  t.is(receiver.received.length, 0);
});

test('when a receiver answers with a long body, then the attempt keeps a short excerpt of it', async (t) => {
  const receiver = await TestReceiver.start(() => ({ status: 400, body: 'x'.repeat(5000) }));
  const sender = new WebhookSender({ timeoutMs: 2000, allowPrivate: true, maxSockets: 2 });
  t.teardown(async () => {
    sender.close();
    await receiver.stop();
  });

  const res = await sender.send(request(receiver.url));

  t.is(res.statusCode, 400);
  t.is(res.responseExcerpt!.length, 500);
  t.true(res.latencyMs >= 0);
});
