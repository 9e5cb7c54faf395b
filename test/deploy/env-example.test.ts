import test from 'ava';
import { CONFIG_KEYS, loadConfig } from '../../lib/config.ts';
import { readEnvExample } from './deploy-files.ts';

const entries = await readEnvExample();

test('when .env.example is read, then it sets every setting comanda knows, each once, and nothing else', (t) => {
  const keys = entries.map((e) => e.key);
  t.deepEqual(
    keys.filter((key, i) => keys.indexOf(key) !== i),
    [],
    'no key twice',
  );
  t.deepEqual([...keys].sort(), [...CONFIG_KEYS].sort());
});

test('when .env.example is read, then a comment line right above each key says what it does', (t) => {
  const bare = entries
    .filter((e) => !e.comment || e.comment.replace(/^#\s*/, '').length < 10)
    .map((e) => e.key);
  t.deepEqual(bare, []);
});

test('when comanda starts with .env.example as it is, then it accepts it and gets its defaults', (t) => {
  const env = Object.fromEntries(entries.map((e) => [e.key, e.value]));
  t.deepEqual(loadConfig(env), loadConfig({}));
});
