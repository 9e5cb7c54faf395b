import { DeadLetters } from '../lib/amqp/dead-letters.ts';
import { loadConfig } from '../lib/config.ts';
import { createLogger } from '../lib/logger.ts';
import { AmqpClient } from '../lib/amqp/connection.ts';
import { topologyFor, unreachable } from '../lib/services.ts';

const USAGE = `usage: npm run dlq -- <command>
  list             the dead letters: id, queue, reason, attempts, age
  show <id>        one dead letter with its body
  replay <id>...   put these back on their original queue
  replay --all     put every dead letter back
  purge            delete every dead letter`;

/** `npm run dlq`: the operator's view of dead-lettered messages. */
async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  if (!command || !['list', 'show', 'replay', 'purge'].includes(command)) {
    console.error(USAGE);
    return 64;
  }
  const config = loadConfig();
  const amqp = new AmqpClient({ url: config.AMQP_URL, logger: createLogger({ level: 'silent' }) });
  try {
    await amqp.connect();
  } catch (err) {
    console.error(unreachable('RabbitMQ', config.AMQP_URL, err).message);
    return 1;
  }
  const dlq = new DeadLetters(amqp, topologyFor(config));
  try {
    switch (command) {
      case 'list': {
        const letters = await dlq.list();
        if (letters.length === 0) console.log('no dead letters');
        for (const d of letters) {
          console.log(
            `${d.id}  ${d.queue}  attempts=${d.attempts}  age=${d.age_seconds ?? '?'}s  ${d.reason}`,
          );
        }
        return 0;
      }
      case 'show': {
        const found = rest[0] ? await dlq.show(rest[0]) : undefined;
        if (!found) {
          console.error(`no dead letter with id ${rest[0] ?? '(none given)'}`);
          return 1;
        }
        console.log(JSON.stringify(found, null, 2));
        return 0;
      }
      case 'replay': {
        if (rest.length === 0) {
          console.error('say which: replay <id>... or replay --all');
          return 64;
        }
        const n = await dlq.replay(rest.includes('--all') ? undefined : rest);
        console.log(`replayed ${n}`);
        return n === 0 && !rest.includes('--all') ? 1 : 0;
      }
      default: {
        console.log(`purged ${await dlq.purge()}`);
        return 0;
      }
    }
  } finally {
    await amqp.close();
  }
}

process.exitCode = await main(process.argv.slice(2));
