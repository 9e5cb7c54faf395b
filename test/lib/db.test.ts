import type { Writable } from 'node:stream';
import test, { type ExecutionContext } from 'ava';
import { commitWithNext, createDb, together } from '../../lib/db.ts';
import { baseUrls } from '../helpers/pipeline.ts';
import { pipelinedDbWithTable } from '../helpers/scratch-db.ts';

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

/** A one-connection pool with pipelining, a table of its own, and a count of the writes to PostgreSQL's socket. */
async function pipelinedDb(t: ExecutionContext) {
  const { db, table } = await pipelinedDbWithTable(
    t,
    'pipelined',
    'id int primary key, code int unique deferrable initially deferred, note text',
  );
  const client = (await db.client.acquireConnection()) as { connection: { stream: Writable } };
  db.client.releaseConnection(client);
  const stream = client.connection.stream;
  let writes = 0;
  // Every flush to the socket: a corked batch goes out in one _writev, a lone message in one _write.
  for (const method of ['_write', '_writev'] as const) {
    const original = stream[method]!.bind(stream) as (...args: unknown[]) => void;
    (stream as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
      writes++;
      original(...args);
    };
  }
  const rows = async () =>
    (await db(table).orderBy('id').select('id', 'note')).map((r: { id: number; note: string }) => [
      r.id,
      r.note,
    ]);
  return { db, table, rows, writes: () => writes };
}

test('with pipelining, a transaction sends BEGIN with its first statement and COMMIT with the statement marked last: three statements, three writes, all committed', async (t) => {
  const { db, table, rows, writes } = await pipelinedDb(t);
  const before = writes();
  const result = await db.transaction(async (tx) => {
    await tx(table).insert({ id: 1, note: 'first' });
    await tx(table).insert({ id: 2, note: 'second' });
    await commitWithNext(tx);
    return tx(table).insert({ id: 3, note: 'third' }).returning('id');
  });
  t.deepEqual(result, [{ id: 3 }]);
  t.is(writes() - before, 3, 'one write per statement: BEGIN and COMMIT ride along');
  t.deepEqual(await rows(), [
    [1, 'first'],
    [2, 'second'],
    [3, 'third'],
  ]);
});

test('with pipelining, when the statement sent with the COMMIT fails, then the whole transaction is rolled back and its error is the one reported', async (t) => {
  const { db, table, rows } = await pipelinedDb(t);
  await db(table).insert({ id: 1, note: 'kept' });
  const err = await t.throwsAsync(
    db.transaction(async (tx) => {
      await tx(table).insert({ id: 2, note: 'rolled back' });
      await commitWithNext(tx);
      await tx(table).insert({ id: 1, note: 'duplicate' });
    }),
  );
  t.is((err as { code?: string }).code, '23505');
  t.deepEqual(await rows(), [[1, 'kept']]);
  // The connection is clean for the next transaction.
  await db.transaction((tx) => tx(table).insert({ id: 3, note: 'next' }));
  t.deepEqual(await rows(), [
    [1, 'kept'],
    [3, 'next'],
  ]);
});

test('with pipelining, when the COMMIT itself fails (a deferred constraint), then the statement sent with it rejects with that error and nothing is kept', async (t) => {
  const { db, table, rows } = await pipelinedDb(t);
  const err = await t.throwsAsync(
    db.transaction(async (tx) => {
      await tx(table).insert({ id: 1, code: 7, note: 'a' });
      await commitWithNext(tx);
      // The unique check on code is deferred to COMMIT: the insert itself succeeds.
      await tx(table).insert({ id: 2, code: 7, note: 'b' });
    }),
  );
  t.is((err as { code?: string }).code, '23505');
  t.deepEqual(await rows(), []);
});

test('with pipelining, a statement after the one that committed is refused, and a transaction that fails before any statement sends nothing', async (t) => {
  const { db, table, rows, writes } = await pipelinedDb(t);
  await t.throwsAsync(
    db.transaction(async (tx) => {
      await commitWithNext(tx);
      await tx(table).insert({ id: 1, note: 'committed' });
      await tx(table).insert({ id: 2, note: 'too late' });
    }),
    { message: /after the transaction committed/ },
  );
  t.deepEqual(await rows(), [[1, 'committed']]);

  const before = writes();
  await t.throwsAsync(
    db.transaction(() => {
      throw new Error('refused before any statement');
    }),
  );
  t.is(writes() - before, 0, 'neither BEGIN nor ROLLBACK was sent');
});

for (const pipeline of [true, false]) {
  test(`with pipelining ${pipeline ? 'on' : 'off'}, statements run together come back in order, and node-postgres warns of nothing`, async (t) => {
    const db = createDb({
      url: baseUrls().postgres,
      poolMax: 1,
      statementTimeoutMs: 0,
      prepare: true,
      pipeline,
    });
    t.teardown(() => db.destroy());
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    t.teardown(() => process.off('warning', onWarning));

    const [slow, fast, many] = await db.transaction((tx) =>
      together(
        tx,
        async () => (await tx.raw('select pg_sleep(0.05), ?::int as n', [1])).rows[0].n as number,
        async () => (await tx.raw('select ?::int as n', [2])).rows[0].n as number,
        async () => (await tx.raw('select generate_series(1, ?::int) as n', [3])).rows.length as number,
      ),
    );

    t.deepEqual([slow, fast, many], [1, 2, 3]);
    await new Promise((r) => setImmediate(r));
    t.deepEqual(warnings, []);
  });
}
