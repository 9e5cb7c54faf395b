import test from 'ava';
import { STOCK_REASONS } from '../../catalog/stock.ts';
import { TRANSITIONS } from '../../orders/lifecycle.ts';

type Messages = Record<'es' | 'en', Record<string, string>>;

// The portal is plain JavaScript outside the TypeScript project: load it as the browser does.
const { CONSOLE_MESSAGES } = (await import(
  new URL('../../portal/i18n-console.js', import.meta.url).href
)) as {
  CONSOLE_MESSAGES: Messages;
};

test('when the console is shown in Spanish or English, then every one of its words exists in both', (t) => {
  const es = Object.keys(CONSOLE_MESSAGES.es).sort();
  const en = Object.keys(CONSOLE_MESSAGES.en).sort();
  t.deepEqual(
    es.filter((k) => !en.includes(k)),
    [],
    'in Spanish only',
  );
  t.deepEqual(
    en.filter((k) => !es.includes(k)),
    [],
    'in English only',
  );
});

test('when the console offers a move or shows a stock movement, then it has words for it in both languages', (t) => {
  const moves = [
    ...new Set(
      TRANSITIONS.filter((m) => m.from !== null && m.actors.some((a) => a === 'admin')).map((m) => m.to),
    ),
  ];
  const keys = [...moves.map((to) => `action.${to}`), ...STOCK_REASONS.map((r) => `movement.${r}`)];
  for (const lang of ['es', 'en'] as const) {
    t.deepEqual(
      keys.filter((k) => !CONSOLE_MESSAGES[lang][k]),
      [],
      `missing in ${lang}`,
    );
  }
});
