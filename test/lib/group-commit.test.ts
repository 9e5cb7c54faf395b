import test, { type ExecutionContext } from 'ava';
import { commitWithNext, type Tx } from '../../lib/db.ts';
import { GroupCommit } from '../../lib/group-commit.ts';
import { insertInto, query, sql } from '../../lib/sql.ts';
import { pipelinedDbWithTable } from '../helpers/scratch-db.ts';

class Refused extends Error {}

async function setup(t: ExecutionContext) {
  const { db, table } = await pipelinedDbWithTable(
    t,
    'group_commit',
    'id int primary key, tx bigint not null',
    4,
  );
  const sizes: number[] = [];
  const group = new GroupCommit(db, {
    maxBatch: 32,
    isRefusal: (err) => err instanceof Refused,
    observe: (n) => sizes.push(n),
  });
  // A work as the API's are: a read, then its one write as the transaction's last statement.
  const insert = (id: number) => async (tx: Tx) => {
    await query(tx, sql`select 1`);
    await commitWithNext(tx);
    await query(tx, insertInto(table, [{ id, tx: sql`txid_current()` }]));
    return id;
  };
  const rows = async () =>
    (await db(table).orderBy('id').select('id', 'tx')) as unknown as { id: number; tx: number }[];
  return { db, table, group, sizes, insert, rows };
}

test('when works arrive together, then they run in one transaction that commits once for all of them', async (t) => {
  const { group, sizes, insert, rows } = await setup(t);

  const results = await Promise.all([1, 2, 3, 4, 5].map((id) => group.run(insert(id))));

  t.deepEqual(results, [1, 2, 3, 4, 5]);
  const stored = await rows();
  t.deepEqual(
    stored.map((r) => r.id),
    [1, 2, 3, 4, 5],
  );
  t.is(new Set(stored.map((r) => r.tx)).size, 1);
  t.deepEqual(sizes, [5]);
});

test('when works arrive while a group commits, then they form the next group', async (t) => {
  const { group, sizes, insert, rows } = await setup(t);

  const first = group.run(insert(1));
  // Submitted after the first group started: it is on its way, so these wait for it and go together.
  await new Promise((r) => setImmediate(r));
  const later = [2, 3, 4].map((id) => group.run(insert(id)));
  await Promise.all([first, ...later]);

  t.deepEqual(sizes, [1, 3]);
  const stored = await rows();
  t.not(stored[0].tx, stored[1].tx);
  t.is(new Set(stored.slice(1).map((r) => r.tx)).size, 1);
});

test('when one work is refused, then it fails alone and the others still commit together', async (t) => {
  const { group, insert, rows } = await setup(t);

  const outcomes = await Promise.allSettled([
    group.run(insert(1)),
    group.run(async (tx) => {
      await query(tx, sql`select 1`);
      throw new Refused('not this one');
    }),
    group.run(insert(3)),
  ]);

  t.deepEqual(
    outcomes.map((o) => o.status),
    ['fulfilled', 'rejected', 'fulfilled'],
  );
  t.true((outcomes[1] as PromiseRejectedResult).reason instanceof Refused);
  const stored = await rows();
  t.deepEqual(
    stored.map((r) => r.id),
    [1, 3],
  );
  t.is(new Set(stored.map((r) => r.tx)).size, 1);
  t.is(group.splits, 0);
});

test('when a statement of one work fails, then the group rolls back and every other work commits alone, once', async (t) => {
  const { db, table, group, insert, rows } = await setup(t);
  await db(table).insert({ id: 99, tx: 0 });

  const outcomes = await Promise.allSettled([1, 99, 3].map((id) => group.run(insert(id))));

  t.deepEqual(
    outcomes.map((o) => o.status),
    ['fulfilled', 'rejected', 'fulfilled'],
  );
  t.is(((outcomes[1] as PromiseRejectedResult).reason as { code?: string }).code, '23505');
  const stored = await rows();
  t.deepEqual(
    stored.map((r) => r.id),
    [1, 3, 99],
  );
  // Each ran again in a transaction of its own.
  t.not(stored[0].tx, stored[1].tx);
  t.is(group.splits, 1);
});

test('when a statement of the group fails only after every work has settled, then the group still commits nothing of it and the works run again alone', async (t) => {
  const { group, insert, rows } = await setup(t);

  const outcomes = await Promise.all([
    group.run(insert(1)),
    // Its statement is answered 200 ms after this work resolved, with an error that aborts the transaction: the
    // group must learn of it before it counts the others as committed.
    group.run(async (tx) => {
      // Two statements, so that the others' inserts go out before this one's last (statements run in the order sent).
      await query(tx, sql`select 1`);
      await query(tx, sql`select 1`);
      void query(tx, sql`select pg_sleep(0.2), 1 / 0`).catch(() => {});
      return 2;
    }),
    group.run(insert(3)),
  ]);

  t.deepEqual(outcomes, [1, 2, 3]);
  t.deepEqual(
    (await rows()).map((r) => r.id),
    [1, 3],
  );
  t.is(group.splits, 1);
});

test('when a work fails after writing, with an error that is not a refusal, then none of its writes is committed', async (t) => {
  const { group, table, insert, rows } = await setup(t);

  const outcomes = await Promise.allSettled([
    group.run(insert(1)),
    group.run(async (tx) => {
      await query(tx, insertInto(table, [{ id: 2, tx: sql`txid_current()` }]));
      throw new Error('failed after its write');
    }),
    group.run(insert(3)),
  ]);

  t.is((outcomes[1] as PromiseRejectedResult).reason.message, 'failed after its write');
  t.deepEqual(
    (await rows()).map((r) => r.id),
    [1, 3],
  );
});

test('when two works carry the same key, then they never share a transaction: the later one runs after the first committed', async (t) => {
  const { group, insert, rows, sizes } = await setup(t);

  await Promise.all([group.run(insert(1), 'k'), group.run(insert(2), 'k'), group.run(insert(3), 'other')]);

  const stored = await rows();
  t.not(stored[0].tx, stored[1].tx);
  t.is(stored[0].tx, stored[2].tx);
  t.deepEqual(sizes, [2, 1]);
});
