import type { EventEmitter } from 'node:events';
import { clientOf, type Knex, type Tx } from './db.ts';

/**
 * A piece of SQL and its values, kept apart: `parts` are the text between the values, so `parts.length` is
 * `values.length + 1`. Written with the `sql` tag and composed by nesting; sent with `$1…$n` placeholders.
 *
 * The order pipeline's hot statements (a POST's order, the worker's steps) are built this way rather than with
 * knex's query builder: composing text costs a concatenation, where knex compiled each builder (identifiers
 * wrapped, bindings renumbered by regular expression) on every call, a fifth of the worker's busy time. Knex stays
 * for everything else; `fromKnex` lets a statement built here take a piece built there.
 */
export class Sql {
  constructor(
    readonly parts: readonly string[],
    readonly values: readonly unknown[],
  ) {}

  /** The statement's text with `$1…$n` placeholders, and its values. */
  render(): { text: string; values: unknown[] } {
    let text = this.parts[0];
    for (let i = 0; i < this.values.length; i++) text += `$${i + 1}${this.parts[i + 1]}`;
    return { text, values: [...this.values] };
  }
}

type Fragment = Sql | Knex.Raw | Knex.QueryBuilder;

/**
 * `sql\`… ${value} …\``: each interpolated value becomes a parameter, except a Sql (or a knex builder), which is
 * inlined with its own parameters.
 */
export function sql(strings: TemplateStringsArray, ...values: unknown[]): Sql {
  const parts: string[] = [strings[0]];
  const out: unknown[] = [];
  values.forEach((value, i) => {
    append(parts, out, value);
    parts[parts.length - 1] += strings[i + 1];
  });
  return new Sql(parts, out);
}

/** Adds a value (a parameter, or a fragment inlined) at the end of `parts`/`values`. */
function append(parts: string[], values: unknown[], value: unknown): void {
  const inner = asSql(value);
  if (!inner) {
    values.push(value);
    parts.push('');
    return;
  }
  parts[parts.length - 1] += inner.parts[0];
  for (let k = 0; k < inner.values.length; k++) {
    values.push(inner.values[k]);
    parts.push(inner.parts[k + 1]);
  }
}

/** Trusted text inlined as it is: identifiers and SQL written in this codebase, never input. */
sql.raw = (text: string): Sql => new Sql([text], []);

/** The pieces (values or fragments) one after another, `separator` between them. */
sql.join = (pieces: readonly unknown[], separator = ', '): Sql => {
  const parts = [''];
  const values: unknown[] = [];
  pieces.forEach((piece, i) => {
    if (i > 0) parts[parts.length - 1] += separator;
    append(parts, values, piece);
  });
  return new Sql(parts, values);
};

/** A quoted identifier (a table or column name written in this codebase). */
sql.id = (name: string): Sql => sql.raw(`"${name.replace(/"/g, '""')}"`);

function isKnexFragment(value: unknown): value is Knex.Raw | Knex.QueryBuilder {
  return typeof value === 'object' && value !== null && typeof (value as Knex.Raw).toSQL === 'function';
}

function asSql(value: unknown): Sql | undefined {
  if (value instanceof Sql) return value;
  if (isKnexFragment(value)) return fromKnex(value);
  return undefined;
}

// A `$n` placeholder outside a quoted literal or identifier.
const PLACEHOLDER = /'(?:[^']|'')*'|"(?:[^"]|"")*"|\$(\d+)/g;

/** A knex builder or raw as a Sql (compiled once, here). */
export function fromKnex(q: Fragment): Sql {
  if (q instanceof Sql) return q;
  const { sql: text, bindings } = q.toSQL().toNative();
  const parts: string[] = [];
  const values: unknown[] = [];
  let from = 0;
  for (const m of text.matchAll(PLACEHOLDER)) {
    if (m[1] === undefined) continue;
    parts.push(text.slice(from, m.index));
    values.push(bindings[Number(m[1]) - 1]);
    from = m.index + m[0].length;
  }
  parts.push(text.slice(from));
  return new Sql(parts, values);
}

/** A Sql as a knex raw, for statements still built with knex (`?` in its text escaped, its values as bindings). */
export function toKnex(tx: Knex | Tx, s: Fragment): Knex.Raw | Knex.QueryBuilder {
  if (!(s instanceof Sql)) return s;
  return tx.raw(s.parts.map((p) => p.replace(/\?/g, '\\?')).join('?'), s.values as Knex.RawBinding[]);
}

/** `with a as (…), b as (…) <final>`: data-modifying CTEs of one statement (later ones may read earlier ones). */
export function statementWith(ctes: readonly (readonly [string, Fragment])[], final: Sql): Sql {
  if (!ctes.length) return final;
  return sql`with ${sql.join(ctes.map(([name, cte]) => sql`${sql.id(name)} as (${cte})`))} ${final}`;
}

/**
 * A row's values as an `insert into table (columns) values (…), (…)` statement; a column a row lacks gets its
 * DEFAULT. A value may be a Sql or a knex raw (`now()`), inlined.
 */
export function insertInto(table: string, rows: readonly Record<string, unknown>[]): Sql {
  const columns: string[] = [];
  const seen = new Set<string>();
  for (const row of rows)
    for (const [k, v] of Object.entries(row))
      if (v !== undefined && !seen.has(k)) {
        seen.add(k);
        columns.push(k);
      }
  const tuples = rows.map(
    (row) => sql`(${sql.join(columns.map((c) => (row[c] === undefined ? sql.raw('default') : row[c])))})`,
  );
  return sql`insert into ${sql.id(table)} (${sql.join(columns.map(sql.id))}) values ${sql.join(tuples)}`;
}

/** `col = value, …` of an update; a value may be a Sql or a knex raw (`attempts + 1`), inlined. */
export function assignments(set: Record<string, unknown>): Sql {
  return sql.join(
    Object.entries(set)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => sql`${sql.id(k)} = ${v}`),
  );
}

interface QueryResult<T> {
  rows: T[];
  rowCount: number | null;
}

/**
 * Runs a statement in a transaction, on the transaction's own connection (so it is pipelined and prepared like
 * knex's statements), and counts it in knex's `query` event as they are.
 */
export async function query<T = Record<string, unknown>>(tx: Tx, statement: Sql): Promise<QueryResult<T>> {
  const client = (await clientOf(tx)) as {
    query(config: unknown, callback: (err: Error | null, result: QueryResult<T>) => void): void;
  };
  const { text, values } = statement.render();
  (tx.client as unknown as EventEmitter).emit('query', { sql: text, bindings: values });
  return new Promise((resolve, reject) => {
    client.query({ text, values }, (err, result) => (err ? reject(err) : resolve(result)));
  });
}
