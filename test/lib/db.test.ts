import test from 'ava';
import { createDb } from '../../lib/db.ts';
import { baseUrls } from '../helpers/pipeline.ts';

test('with prepared statements on, a statement run inside a transaction is prepared once per connection and keeps its generic plan', async (t) => {
  const db = createDb({ url: baseUrls().postgres, poolMax: 1, statementTimeoutMs: 0, prepare: true });
  t.teardown(() => db.destroy());
  const sql = 'select ?::int + 1 as next';

  for (let i = 0; i < 3; i++) {
    await db.transaction(async (tx) => {
      t.is((await tx.raw(sql, [i])).rows[0].next, i + 1);
    });
  }

  const prepared = await db.raw('select statement from pg_prepared_statements');
  t.deepEqual(
    prepared.rows.map((r: { statement: string }) => r.statement),
    ['select $1::int + 1 as next'],
  );
  t.is((await db.raw('show plan_cache_mode')).rows[0].plan_cache_mode, 'force_generic_plan');
});

test('with prepared statements off, nothing is prepared', async (t) => {
  const db = createDb({ url: baseUrls().postgres, poolMax: 1, statementTimeoutMs: 0, prepare: false });
  t.teardown(() => db.destroy());

  await db.transaction((tx) => tx.raw('select ?::int as one', [1]));

  t.is((await db.raw('select count(*)::int as n from pg_prepared_statements')).rows[0].n, 0);
});
