import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import ts from 'typescript';
import { readRepoFile, root, scriptArgv } from './deploy-files.ts';

const rootDir = fileURLToPath(root);
const pkg = JSON.parse(await readRepoFile('package.json')) as {
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
};

/** The scripts the image can run: every one that starts a TypeScript file, except the benchmark. */
const entryScripts = Object.entries(pkg.scripts)
  .filter(([, command]) => command.startsWith('node --import tsx ') && !command.includes(' bench/'))
  .map(([name]) => name);

/** The specifiers a file imports at run time; `import type` and `export type` vanish before node sees them. */
function runtimeImports(file: string, source: string): string[] {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && !node.importClause?.isTypeOnly) {
      found.push((node.moduleSpecifier as ts.StringLiteral).text);
    } else if (ts.isExportDeclaration(node) && !node.isTypeOnly && node.moduleSpecifier) {
      found.push((node.moduleSpecifier as ts.StringLiteral).text);
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] &&
      ts.isStringLiteral(node.arguments[0])
    ) {
      found.push(node.arguments[0].text);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

/**
 * Every repository file the processes load, following relative imports from the entry files (and the
 * migrations, which are imported by directory), and every package they import.
 */
async function runtimeGraph(): Promise<{ files: Set<string>; packages: Set<string>; missing: string[] }> {
  const entries: string[] = [];
  const missing: string[] = [];
  for (const name of entryScripts) {
    // The entry file, and the modules preloaded with --import (lib/telemetry-register.ts).
    for (const arg of (await scriptArgv(name)).filter((a) => a.endsWith('.ts'))) {
      const entry = path.posix.normalize(arg);
      if (existsSync(path.join(rootDir, entry))) entries.push(entry);
      else missing.push(`${name}: ${entry}`);
    }
  }
  const migrations = (await readdir(path.join(rootDir, 'db/migrations'))).filter((f) => f.endsWith('.ts'));
  const queue = [...entries, ...migrations.map((f) => `db/migrations/${f}`)];
  const files = new Set<string>();
  const packages = new Set<string>();
  while (queue.length) {
    const file = queue.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    if (!file.endsWith('.ts')) continue;
    for (const spec of runtimeImports(file, await readFile(path.join(rootDir, file), 'utf8'))) {
      if (spec.startsWith('.')) {
        queue.push(path.posix.normalize(path.posix.join(path.posix.dirname(file), spec)));
      } else if (!spec.startsWith('node:') && !builtinModules.includes(spec)) {
        const parts = spec.split('/');
        packages.add(spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]);
      }
    }
  }
  return { files, packages, missing };
}

/** A matcher for the patterns this repository's .dockerignore uses (names, `*`, `**`, trailing `/`). */
async function dockerIgnored(): Promise<(file: string) => boolean> {
  const patterns = (await readRepoFile('.dockerignore'))
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  if (patterns.some((p) => p.startsWith('!'))) throw new Error('teach this matcher about ! exceptions');
  const regexes = patterns.map((p) => {
    const body = p
      .replace(/^\/+|\/+$/g, '')
      .split(/(\*\*|\*|\?)/)
      .map((part) =>
        part === '**'
          ? '.*'
          : part === '*'
            ? '[^/]*'
            : part === '?'
              ? '[^/]'
              : part.replace(/[.+^${}()|[\]\\]/g, '\\$&'),
      )
      .join('');
    return new RegExp(`^${body}(/.*)?$`);
  });
  return (file) => regexes.some((r) => r.test(file));
}

const graph = await runtimeGraph();

test('when the processes start, then every file they load is in the image (not in .dockerignore)', async (t) => {
  if (graph.missing.length) t.log(`entry files not written yet: ${graph.missing.join(', ')}`);
  t.true(entryScripts.includes('start:api') && entryScripts.includes('migrate'));
  t.true(graph.files.size > 10, `found ${graph.files.size} files`);
  const ignored = await dockerIgnored();
  const must = [...graph.files, 'package.json', 'package-lock.json', 'portal/index.html'];
  t.deepEqual(
    must.filter((f) => ignored(f)),
    [],
  );
});

test('when the image installs only production dependencies, then every package the processes import is one', (t) => {
  const prod = new Set(Object.keys(pkg.dependencies));
  t.deepEqual([...graph.packages].filter((name) => !prod.has(name)).sort(), []);
});

test('when the image runs the compiled code, then no production script needs a loader or a dev dependency', (t) => {
  const prodScripts = Object.entries(pkg.scripts).filter(([name]) => /^(start:prod|migrate:prod)/.test(name));
  t.true(prodScripts.length >= 5);
  for (const [name, command] of prodScripts) {
    t.notRegex(command, /\btsx\b|\.ts\b/, name);
    t.regex(command, /^node (--import \.\/dist\/\S+\.js )?dist\/\S+\.js$/, name);
  }
  t.false('tsx' in pkg.dependencies, 'tsx is for development and tests only');
});

test('when the image is built, then nothing of the host leaks in: node_modules, .git, .env', async (t) => {
  const ignored = await dockerIgnored();
  for (const file of ['node_modules/pg/package.json', '.git/HEAD', '.env', 'test/helpers/pipeline.ts']) {
    t.true(ignored(file), file);
  }
});
