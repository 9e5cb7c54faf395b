import { isRole } from '../accounts/roles.ts';
import { retireStoredKey, rotateStoredKey } from '../accounts/signing-keys.ts';
import { grantRole } from '../accounts/users.ts';
import { loadConfig } from '../lib/config.ts';
import { createDb } from '../lib/db.ts';
import { loadSecretBox } from '../lib/secret-box.ts';
import { resealStoredKeys } from '../accounts/signing-keys.ts';
import { resealWebhookSecrets } from '../webhooks/endpoints.ts';

const USAGE = `usage: npm run accounts -- <command>
  grant <email> <role>   give an account a role (customer, admin, operations)
  rotate-key             a new signing key; the old one verifies until the longest token it signed has expired
  retire-key <kid>       stop a previous key verifying at once (a leaked key)
  reseal                 seal every stored secret with the current SECRETS_KEY (the API also does it at start)`;

/** `npm run accounts`: what an operator does to accounts and keys without an HTTP route. */
async function main([command, ...args]: string[]): Promise<number> {
  const config = loadConfig();
  const db = createDb({ url: config.DATABASE_URL, poolMax: 1, statementTimeoutMs: 0 });
  try {
    switch (command) {
      case 'grant': {
        const [email, role] = args;
        if (!email || !isRole(role)) break;
        const user = await grantRole(db, email, role);
        console.log(user ? `${user.email}: ${user.roles.join(', ')}` : `no account ${email}`);
        return user ? 0 : 1;
      }
      case 'rotate-key': {
        if (config.JWT_SIGNING_KEYS) {
          console.error('the keys come from JWT_SIGNING_KEYS: put the new key first there instead');
          return 1;
        }
        const box = await loadSecretBox(config, db);
        const longest =
          Math.max(config.ACCESS_TOKEN_TTL_S, config.DEMO_TOKEN_TTL_S) + config.JWT_CLOCK_TOLERANCE_S;
        console.log(`new signing key ${await rotateStoredKey(db, box, config.JWT_SIGNING_ALG, longest)}`);
        return 0;
      }
      case 'retire-key': {
        const [kid] = args;
        if (!kid) break;
        const retired = await retireStoredKey(db, kid);
        console.log(
          retired ? `retired ${kid}` : `no previous key ${kid} (the current key cannot be retired)`,
        );
        return retired ? 0 : 1;
      }
      case 'reseal': {
        const box = await loadSecretBox(config, db);
        console.log(
          `resealed ${(await resealWebhookSecrets(db, box)) + (await resealStoredKeys(db, box))} secrets`,
        );
        return 0;
      }
    }
    console.error(USAGE);
    return 64;
  } finally {
    await db.destroy();
  }
}

process.exitCode = await main(process.argv.slice(2));
