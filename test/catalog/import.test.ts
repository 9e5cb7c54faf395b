import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { buildProduct } from '../helpers/factories.ts';
import { http } from '../helpers/http.ts';
import { startPipeline, type TestPipeline } from '../helpers/pipeline.ts';

const run = promisify(execFile);
let p: TestPipeline;
let admin: string;

test.before(async () => {
  p = await startPipeline({ IMPORT_MAX_BYTES: '1000000' }, { worker: false });
  admin = await p.token('ops', 'admin');
});
test.after.always(async () => {
  await p?.stop();
});

function importCsv(body: string, options: { token?: string; type?: string } = {}) {
  return http(`${p.url}/products/import`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${options.token ?? admin}`,
      'content-type': options.type ?? 'text/csv',
    },
    body,
  });
}

const tag = () => Math.random().toString(36).slice(2, 8).toUpperCase();

test.serial(
  'when a file has good, bad and duplicate rows, then the good ones are upserted and the report lists each bad row by line; the same file again changes nothing',
  async (t) => {
    const k = tag();
    const existing = await buildProduct(p.db, {
      sku: `IMP-${k}-OLD`,
      name: 'Old name',
      price: 500,
      stock_available: 3,
    });
    const same = await buildProduct(p.db, {
      sku: `IMP-${k}-SAME`,
      name: 'Same',
      price: 100,
      stock_available: 7,
    });
    const file = [
      'stock,sku,name,price,currency,low_stock_threshold', // columns in any order
      `12,IMP-${k}-A,Filtro permanente,1500,EUR,`, // line 2: created
      `5,${existing.sku},New name,650,EUR,2`, // line 3: updated (name, price, stock, threshold)
      `7,${same.sku},Same,100,EUR,10`, // line 4: unchanged
      `1,IMP-${k}-B,Bad price,-3,EUR,`, // line 5: rejected
      `1,IMP-${k}-C,Bad currency,300,ZZZ,`, // line 6: rejected
      `2,IMP-${k}-A,Duplicate,1500,EUR,`, // line 7: rejected (duplicate of line 2)
      `x,,${'n'.repeat(201)},1,EUR,`, // line 8: rejected (stock, sku, name)
      `0,IMP-${k}-D,"Taza, grande",990,usd,4`, // line 9: created (quoted comma, lower-case currency)
    ].join('\n');
    const stockRowsBefore = await p.db('stock_movements').count<{ n: string }[]>({ n: '*' });

    const first = await importCsv(file);

    t.is(first.status, 200);
    t.like(first.body, { rows: 8, created: 2, updated: 1, unchanged: 1 });
    t.deepEqual(
      first.body.rejected.map((r: { line: number; sku: string | null; errors: { field: string }[] }) => [
        r.line,
        r.sku,
        r.errors.map((e) => e.field),
      ]),
      [
        [5, `IMP-${k}-B`, ['price']],
        [6, `IMP-${k}-C`, ['currency']],
        [7, `IMP-${k}-A`, ['sku']],
        [8, null, ['sku', 'name', 'stock']],
      ],
    );
    t.regex(first.body.rejected[2].errors[0].message, /first at line 2/);
    const old = await p.db('products').where({ sku: existing.sku }).first();
    t.like(old, { name: 'New name', price: 650, stock_available: 5, low_stock_threshold: 2 });
    const movement = await p
      .db('stock_movements')
      .where({ product_id: old.id })
      .orderBy('id', 'desc')
      .first();
    t.like(movement, { delta: 2, reason: 'import', stock_after: 5 });
    const mug = await p
      .db('products')
      .where({ sku: `IMP-${k}-D` })
      .first();
    t.like(mug, { name: 'Taza, grande', currency: 'USD', stock_available: 0, low_stock_threshold: 4 });

    const [rowsAfterFirst] = await p.db('stock_movements').count<{ n: string }[]>({ n: '*' });
    const outboxAfterFirst = await p.db('outbox').count<{ n: string }[]>({ n: '*' });
    const second = await importCsv(file);

    t.is(second.status, 200);
    t.like(second.body, { rows: 8, created: 0, updated: 0, unchanged: 4 });
    t.is(second.body.rejected.length, 4);
    t.deepEqual(await p.db('stock_movements').count<{ n: string }[]>({ n: '*' }), [rowsAfterFirst]);
    t.deepEqual(await p.db('outbox').count<{ n: string }[]>({ n: '*' }), outboxAfterFirst);
    t.true(Number(rowsAfterFirst.n) > Number(stockRowsBefore[0].n));
  },
);

test.serial(
  'when a 10,000-row file is imported, then every row is created, and importing it again changes none',
  async (t) => {
    const k = tag();
    const lines = ['sku,name,price,currency,stock'];
    for (let i = 0; i < 10_000; i++) lines.push(`BULK-${k}-${i},Producto ${i},${100 + i},EUR,${i % 50}`);
    const file = lines.join('\n');

    const started = Date.now();
    const res = await importCsv(file);
    t.log(`10,000 rows imported in ${Date.now() - started} ms`);

    t.is(res.status, 200);
    t.like(res.body, { rows: 10_000, created: 10_000, updated: 0, unchanged: 0, rejected: [] });
    const [count] = await p
      .db('products')
      .where('sku', 'like', `BULK-${k}-%`)
      .count<{ n: string }[]>({ n: '*' });
    t.is(Number(count.n), 10_000);
    const again = await importCsv(file);
    t.like(again.body, { created: 0, updated: 0, unchanged: 10_000 });
  },
);

test('when the body is not CSV, too large, headerless or sent by a customer, then it is a 4xx and nothing is imported', async (t) => {
  const before = await p.db('products').count<{ n: string }[]>({ n: '*' });
  const json = await importCsv(JSON.stringify({ sku: 'X' }), { type: 'application/json' });
  t.is(json.status, 415);
  const jsonAsCsv = await importCsv('{"sku": "X", "name": "y"}');
  t.is(jsonAsCsv.status, 422);
  const notCsv = await importCsv('hello, world\nthis is not, a catalogue\n');
  t.is(notCsv.status, 422);
  t.deepEqual(
    notCsv.body.errors
      .filter((e: { message: string }) => e.message === 'missing column')
      .map((e: { field: string }) => e.field),
    ['sku', 'name', 'price', 'currency', 'stock'],
  );
  const headerless = await importCsv('NOHEAD-1,Thing,100,EUR,5\n');
  t.is(headerless.status, 422);
  const unterminated = await importCsv('sku,name,price,currency,stock\n"OPEN,Thing,100,EUR,5\n');
  t.is(unterminated.status, 422);
  const big = await importCsv(`sku,name,price,currency,stock\n${'X'.repeat(1_100_000)}`);
  t.is(big.status, 413);
  const customer = await importCsv('sku,name,price,currency,stock\nCUST-1,Thing,100,EUR,5\n', {
    token: await p.token(),
  });
  t.is(customer.status, 403);
  t.deepEqual(await p.db('products').count<{ n: string }[]>({ n: '*' }), before);
});

test.serial(
  'when an operator runs npm run import:products on a file, then it prints progress and the report',
  async (t) => {
    const k = tag();
    const dir = await mkdtemp(path.join(tmpdir(), 'comanda-import-'));
    const file = path.join(dir, 'catalogue.csv');
    await writeFile(
      file,
      `sku,name,price,currency,stock\nCLI-${k}-1,Uno,100,EUR,5\nCLI-${k}-2,Dos,-1,EUR,5\n`,
    );

    const res = await run(process.execPath, ['--import', 'tsx', 'scripts/import-products.ts', file], {
      env: { PATH: process.env.PATH, ...p.env },
    }).catch((err: { code: number; stdout: string; stderr: string }) => err);

    t.is((res as { code?: number }).code, 1, 'a rejected row makes the exit code 1');
    t.regex(res.stderr, /importing .*catalogue\.csv: 1\/1 rows/);
    t.regex(res.stdout, /2 rows in [\d.]+ s: 1 created, 0 updated, 0 unchanged, 1 rejected/);
    t.regex(res.stdout, new RegExp(`line 3 \\(CLI-${k}-2\\): price: must be at least 1`));
    t.truthy(
      await p
        .db('products')
        .where({ sku: `CLI-${k}-1` })
        .first(),
    );
  },
);

test.serial(
  'when a file is larger than the slices it is read in, then every row is imported whole, a character outside the BMP at a slice edge included',
  async (t) => {
    const k = tag();
    const line = (i: number) =>
      `IMP-${k}-${String(i).padStart(5, '0')},Café de origen número ${i},${100 + i},EUR,${i % 50}\n`;
    let file = 'sku,name,price,currency,stock\n';
    let n = 0;
    while (file.length + line(n).length + 100 < 65_535) file += line(n++);
    // The file is read in slices of 64 Ki UTF-16 units: this name's emoji starts on the first slice's last unit.
    const prefix = `IMP-${k}-EMOJI,`;
    const name = `${'x'.repeat(65_535 - file.length - prefix.length)}🍫 negro`;
    file += `${prefix}${name},450,EUR,3\n`;
    t.is(file.indexOf('🍫'), 65_535);
    while (file.length < 150_000) file += line(n++);

    const res = await importCsv(file);

    t.is(res.status, 200, JSON.stringify(res.body));
    t.is(res.body.created, n + 1);
    t.deepEqual(res.body.rejected, []);
    t.is(
      (
        await p
          .db('products')
          .where({ sku: `IMP-${k}-EMOJI` })
          .first()
      ).name,
      name,
    );
    const last = await p
      .db('products')
      .where({ sku: `IMP-${k}-${String(n - 1).padStart(5, '0')}` })
      .first();
    t.is(last.price, 100 + n - 1);
  },
);
