import type { Db } from './db.ts';

/** A table is analyzed once it holds this many rows, if nobody analyzed it before. */
export const FIRST_ANALYZE_ROWS = 1000;

/**
 * Analyzes each table of the current schema that was never analyzed (by autovacuum or anyone) and now holds at
 * least `minRows` rows, and says which. The pipeline's statements are prepared with generic plans, made at their
 * first run on each connection from the table sizes of that moment: on a new database every table is empty then, and
 * a lookup by key is planned as a scan of the whole table. The plan is only made again when the table's statistics
 * change, which on a server without autovacuum (or before its first round, a minute in) never happens, so each such
 * lookup reads every row, a little slower with every order. One ANALYZE once the table has filled up a little
 * invalidates those plans; the next ones are index lookups, and stay so as it grows (the planner scales the
 * statistics to the table's size). Several processes may call this at once: one of them does the work.
 */
export async function analyzeFilledTables(db: Db, minRows = FIRST_ANALYZE_ROWS): Promise<string[]> {
  return db.transaction(async (tx) => {
    const { rows: lock } = await tx.raw<{ rows: { ok: boolean }[] }>(
      `select pg_try_advisory_xact_lock(hashtextextended('comanda.analyze_filled_tables', 0)) as ok`,
    );
    if (!lock[0]?.ok) return [];
    const { rows } = await tx.raw<{ rows: { relname: string }[] }>(
      `select relname from pg_stat_user_tables
        where schemaname = current_schema() and last_analyze is null and last_autoanalyze is null
          and n_live_tup >= ?
        order by relname`,
      [minRows],
    );
    for (const { relname } of rows) await tx.raw('analyze ??', [relname]);
    return rows.map((r) => r.relname);
  });
}
