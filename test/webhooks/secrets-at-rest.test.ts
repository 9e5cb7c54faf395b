import { randomBytes } from 'node:crypto';
import test from 'ava';
import { Webhook } from 'standardwebhooks';
import { SecretBox } from '../../lib/secret-box.ts';
import { resealWebhookSecrets, signingSecrets } from '../../webhooks/endpoints.ts';
import { generateSecret, signWebhook } from '../../webhooks/signing.ts';
import { buildAccount, logIn } from '../helpers/accounts.ts';
import { http } from '../helpers/http.ts';
import { startPipeline, type TestPipeline } from '../helpers/pipeline.ts';

const keyA = randomBytes(32);
let p: TestPipeline;
test.before(async () => {
  p = await startPipeline({ SECRETS_KEY: keyA.toString('base64') }, { worker: false });
});
test.after.always(async () => {
  await p?.stop();
});

function call(method: string, path: string, token: string, body?: unknown) {
  return http(`${p.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** Every string value of every row, as a dump would show them. */
async function dump(table: string): Promise<string[]> {
  const rows: Record<string, unknown>[] = await p.db(table).select('*');
  return rows.flatMap((row) =>
    Object.values(row).flatMap((v) =>
      typeof v === 'string' ? [v] : v && typeof v === 'object' ? [JSON.stringify(v)] : [],
    ),
  );
}

/** Whether `candidate`, used as a Standard Webhooks secret, verifies a delivery signed with `secret`. */
function verifiesAs(candidate: string, secret: string): boolean {
  const id = 'msg_dump';
  const timestamp = Math.floor(Date.now() / 1000);
  const body = '{"type":"order.confirmed"}';
  const headers = {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signWebhook([secret], id, timestamp, body),
  };
  try {
    new Webhook(candidate).verify(body, headers);
    return true;
  } catch {
    return false;
  }
}

test('when the webhook endpoints table is dumped, then it contains no secret the API showed — none verifies a delivery', async (t) => {
  const customer = await p.token('dumped');
  const created = await call('POST', '/webhook-endpoints', customer, {
    url: 'https://example.test/hooks',
    event_types: ['order.confirmed'],
  });
  const rotated = await call('POST', `/webhook-endpoints/${created.body.id}/rotate-secret`, customer);
  const shown = [created.body.secret as string, rotated.body.secret as string];

  const values = await dump('webhook_endpoints');

  t.is(created.status, 201);
  t.is(rotated.status, 200);
  t.true(shown.every((s) => s.startsWith('whsec_')));
  t.false(
    values.some((v) => v.includes('whsec_')),
    'no secret in the clear',
  );
  for (const secret of shown) {
    t.false(
      values.some((v) => v.includes(secret.slice('whsec_'.length))),
      'not even its bytes',
    );
    t.false(
      values.some((v) => verifiesAs(v, secret) || verifiesAs(`whsec_${v}`, secret)),
      'no value signs as it',
    );
  }
  // The notifier still signs with both: the sealed values open with the key, and only with it.
  const row = await p.db('webhook_endpoints').where({ id: created.body.id }).first();
  t.deepEqual(signingSecrets(row, new SecretBox(keyA)), [shown[1], shown[0]]);
  t.throws(() => signingSecrets(row, new SecretBox(randomBytes(32))));
});

test('when the account tables are dumped, then no password, refresh token or client secret the API handed out is in them', async (t) => {
  const account = await buildAccount(p.url);
  const { refresh_token, access_token } = await logIn(p.url, account);
  const client = (
    await call('POST', '/clients', await p.token('root', 'admin'), { name: 'svc', roles: ['operations'] })
  ).body as { client_secret: string };

  const values = [
    ...(await dump('users')),
    ...(await dump('refresh_tokens')),
    ...(await dump('service_clients')),
    ...(await dump('signing_keys')),
  ];

  for (const shown of [account.password, refresh_token, client.client_secret, access_token]) {
    t.false(values.some((v) => v.includes(shown)));
  }
  t.false(
    values.some((v) => v.includes('"d":')),
    'no private key in the clear',
  );
});

test.serial(
  'when SECRETS_KEY is rotated, then the start-up reseal moves every secret (plaintext ones too) to the new key, and the old key alone opens nothing',
  async (t) => {
    const secret = generateSecret();
    const boxA = new SecretBox(keyA);
    const [sealed] = await p
      .db('webhook_endpoints')
      .insert({
        owner: 'operations',
        url: 'https://example.test/a',
        event_types: ['order.created'],
        secret: boxA.seal(secret, 'webhook_endpoints.secret'),
      })
      .returning('*');
    const [legacy] = await p
      .db('webhook_endpoints')
      .insert({
        owner: 'operations',
        url: 'https://example.test/b',
        event_types: ['order.created'],
        secret: generateSecret(),
      })
      .returning('*');

    const keyB = randomBytes(32);
    const boxB = new SecretBox(keyB, [keyA]);
    const resealed = await resealWebhookSecrets(p.db, boxB);

    t.true(resealed >= 2);
    const after = await p.db('webhook_endpoints').whereIn('id', [sealed.id, legacy.id]).orderBy('url');
    t.true(after.every((r: { secret: string }) => boxB.isCurrent(r.secret)));
    t.deepEqual(signingSecrets(after[0], new SecretBox(keyB)), [secret], 'opens with the new key alone');
    t.deepEqual(
      signingSecrets(after[1], new SecretBox(keyB)),
      [legacy.secret],
      'the plaintext one is sealed too',
    );
    t.throws(() => signingSecrets(after[0], new SecretBox(keyA)));
    await p.db('webhook_endpoints').whereIn('id', [sealed.id, legacy.id]).delete();
  },
);
