import { randomBytes } from 'node:crypto';
import type { ExecutionContext } from 'ava';
import { createDb } from '../../lib/db.ts';
import { baseUrls } from './pipeline.ts';

/**
 * A pool as the order pipeline runs it (prepared statements, pipelining; one connection unless `poolMax` says) and a
 * table of the test's own, `create table <name> (<columns>)`; both gone when the test ends.
 */
export async function pipelinedDbWithTable(
  t: ExecutionContext,
  prefix: string,
  columns: string,
  poolMax = 1,
) {
  const db = createDb({
    url: baseUrls().postgres,
    poolMax,
    statementTimeoutMs: 0,
    prepare: true,
    pipeline: true,
  });
  t.teardown(() => db.destroy());
  const table = `${prefix}_${randomBytes(4).toString('hex')}`;
  await db.raw(`create table ${table} (${columns})`);
  t.teardown(() => db.raw(`drop table if exists ${table}`));
  return { db, table };
}
