import test, { type ExecutionContext } from 'ava';
import { commitWithNext, createDb } from '../../lib/db.ts';
import { assignments, fromKnex, insertInto, query, sql, statementWith } from '../../lib/sql.ts';
import { baseUrls } from '../helpers/pipeline.ts';
import { pipelinedDbWithTable } from '../helpers/scratch-db.ts';

function dbWithTable(t: ExecutionContext) {
  return pipelinedDbWithTable(
    t,
    'sql',
    'id int primary key, note text, tags jsonb, made_at timestamptz default now()',
  );
}

test('when fragments are nested, then their values are numbered in order and stay values, whatever they contain', (t) => {
  const inner = sql`note = ${"it's $1; drop table x"}`;
  const statement = sql`select ${1} where ${inner} and id = any(${[2, 3]})`;
  t.deepEqual(statement.render(), {
    text: 'select $1 where note = $2 and id = any($3)',
    values: [1, "it's $1; drop table x", [2, 3]],
  });
  t.deepEqual(sql.join([sql`a = ${1}`, sql.raw('b'), 'c']).render(), {
    text: 'a = $1, b, $2',
    values: [1, 'c'],
  });
});

test('when a knex fragment is taken in, then its placeholders become values and a "$1" inside a literal stays text', (t) => {
  const db = createDb({ url: baseUrls().postgres, poolMax: 1, statementTimeoutMs: 0 });
  t.teardown(() => db.destroy());
  const piece = fromKnex(db.raw(`select '$1' as literal, ?::int as n, "a$2" from t where x = ?`, [7, 'y']));
  t.deepEqual(sql`with p as (${piece}) select ${true}`.render(), {
    text: `with p as (select '$1' as literal, $1::int as n, "a$2" from t where x = $2) select $3`,
    values: [7, 'y', true],
  });
});

test('when rows are inserted and updated through statements built here, then PostgreSQL stores exactly the values given', async (t) => {
  const { db, table } = await dbWithTable(t);
  const rows = await db.transaction(async (tx) => {
    await query(
      tx,
      insertInto(table, [
        { id: 1, note: "o'brien", tags: { a: [1, 2] } },
        { id: 2, tags: JSON.stringify(['x']) },
      ]),
    );
    const moved = await query<{ id: number; note: string }>(
      tx,
      statementWith(
        [
          [
            'changed',
            sql`update ${sql.id(table)} set ${assignments({ note: 'two', made_at: sql.raw('now()') })} where id = ${2} returning *`,
          ],
        ],
        sql`select id, note from changed`,
      ),
    );
    t.deepEqual(moved.rows, [{ id: 2, note: 'two' }]);
    return (
      await query<{ id: number; note: string | null; tags: unknown; made: boolean }>(
        tx,
        sql`select id, note, tags, made_at is not null as made from ${sql.id(table)} order by id`,
      )
    ).rows;
  });
  t.deepEqual(rows, [
    { id: 1, note: "o'brien", tags: { a: [1, 2] }, made: true },
    { id: 2, note: 'two', tags: ['x'], made: true },
  ]);
});

test('when a statement built here is a transaction’s last, then it commits with it, or rolls everything back when it fails', async (t) => {
  const { db, table } = await dbWithTable(t);
  const queries: string[] = [];
  db.on('query', (q: { sql: string }) => queries.push(q.sql));

  await db.transaction(async (tx) => {
    await query(tx, insertInto(table, [{ id: 1 }]));
    await commitWithNext(tx);
    await query(tx, insertInto(table, [{ id: 2 }]));
  });
  await t.throwsAsync(
    db.transaction(async (tx) => {
      await query(tx, insertInto(table, [{ id: 3 }]));
      await commitWithNext(tx);
      await query(tx, insertInto(table, [{ id: 1 }]));
    }),
    { message: /duplicate key/ },
  );

  const ids = (await db(table).orderBy('id').pluck('id')) as number[];
  t.deepEqual(ids, [1, 2]);
  // Counted as knex counts its own statements (the benchmark's statements per order).
  t.is(queries.filter((q) => q.startsWith(`insert into "${table}"`)).length, 4);
});
