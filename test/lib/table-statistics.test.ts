import { randomUUID } from 'node:crypto';
import test from 'ava';
import { analyzeFilledTables } from '../../lib/table-statistics.ts';
import { pipelinedDbWithTable } from '../helpers/scratch-db.ts';

test('when a table fills up without ever being analyzed, then it is analyzed once and a lookup planned on it empty becomes an index lookup', async (t) => {
  // The order pipeline's connections: statements prepared once, generic plans (force_generic_plan).
  // As wide as an order row, so that, empty, it is estimated at a few rows a page.
  const wide = Array.from({ length: 14 }, (_, i) => `c${i} text`).join(', ');
  const { db, table } = await pipelinedDbWithTable(
    t,
    'filled',
    `id uuid primary key, n int not null, ${wide}`,
  );
  await db.raw(`alter table ${table} set (autovacuum_enabled = false)`);
  const small = `${table}_small`;
  await db.raw(`create table ${small} (id int primary key) with (autovacuum_enabled = false)`);
  t.teardown(() => db.raw(`drop table if exists ${small}`));
  await db.raw(`insert into ${small} select generate_series(1, 10)`);

  // Planned while the table is empty, as on a new database: the cached plan reads the whole table.
  await db.raw(`prepare lookup (uuid[]) as select * from ${table} where id = any($1)`);
  t.teardown(() => db.raw('deallocate lookup').catch(() => {}));
  // Statements without parameters are sent as they are (not prepared again by the pool).
  const plan = async () =>
    (await db.raw<{ rows: { 'QUERY PLAN': string }[] }>(`explain execute lookup('{${randomUUID()}}')`)).rows
      .map((r) => r['QUERY PLAN'])
      .join('\n');
  await db.raw(`execute lookup('{${randomUUID()}}')`);
  await db.raw(`insert into ${table} select gen_random_uuid(), g from generate_series(1, 5000) g`);
  t.regex(await plan(), /Seq Scan/);

  await db.raw('select pg_stat_force_next_flush()');
  const analyzed = await analyzeFilledTables(db, 1000);

  t.true(analyzed.includes(table), `analyzed: ${analyzed.join(', ')}`);
  t.false(analyzed.includes(small));
  t.regex(await plan(), /Index (Only )?Scan/);
  // Once is enough: its statistics now scale with its size.
  t.false((await analyzeFilledTables(db, 1000)).includes(table));
});
