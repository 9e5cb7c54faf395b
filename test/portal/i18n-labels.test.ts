import test from 'ava';
import {
  CANCEL_REASONS,
  ORDER_STATUSES,
  ORDER_STEPS,
  REJECT_REASONS,
  TRANSITIONS,
} from '../../orders/lifecycle.ts';

type Messages = Record<'es' | 'en', Record<string, string>>;

// The portal is plain JavaScript outside the TypeScript project: load it as the browser does.
const { MESSAGES } = (await import(new URL('../../portal/i18n.js', import.meta.url).href)) as {
  MESSAGES: Messages;
};

const labelKeys = [
  ...ORDER_STATUSES.map((s) => `status.${s}`),
  ...[...REJECT_REASONS, ...CANCEL_REASONS].map((r) => `reason.${r}`),
  ...new Set([...TRANSITIONS.map((t) => t.step), ...Object.values(ORDER_STEPS).map((s) => s.step)]),
].map((k) => (k.includes('.') ? k : `step.${k}`));

for (const lang of ['es', 'en'] as const) {
  test(`when the lifecycle has a status, reason or trace step, then the portal labels it in ${lang}`, (t) => {
    const missing = labelKeys.filter((k) => !MESSAGES[lang][k]?.trim());
    t.deepEqual(missing, [], `portal/i18n.js (${lang}) has no label for these`);
  });
}

test('when a label is in one language, then it is in the other too', (t) => {
  const es = Object.keys(MESSAGES.es);
  const en = Object.keys(MESSAGES.en);
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

test('when the portal labels a status, reason or step, then the lifecycle still has it', (t) => {
  const known = new Set(labelKeys);
  const stale = Object.keys(MESSAGES.es).filter((k) => /^(status|reason|step)\./.test(k) && !known.has(k));
  t.deepEqual(stale, []);
});
