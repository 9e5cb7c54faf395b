import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';

/** The repository root, for reading the deployment files the way docker and compose see them. */
export const root = new URL('../../', import.meta.url);

export const readRepoFile = (path: string): Promise<string> => readFile(new URL(path, root), 'utf8');

export type EnvMap = Record<string, string>;

export interface ComposeService {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: (string | number | { target: number; published?: string | number })[];
  expose?: (string | number)[];
  healthcheck?: { test?: string | string[]; disable?: boolean };
  depends_on?: string[] | Record<string, { condition?: string }>;
  restart?: string;
  init?: boolean;
  profiles?: string[];
  volumes?: string[];
}

export interface ComposeFile {
  services: Record<string, ComposeService>;
}

/**
 * Compose's `${NAME}`, `${NAME:-default}`, `${NAME-default}` and `${NAME:?message}` substitution, with `vars`
 * standing in for the shell and the .env file. A required variable that is missing throws, as compose does.
 */
export function interpolate(text: string, vars: EnvMap): string {
  return text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}/g, (match, ...groups) => {
    if (match === '$$') return '$';
    const [name, colon, kind, arg] = groups as [string, string | undefined, string | undefined, string];
    const value = vars[name];
    const missing = value === undefined || (colon === ':' && value === '');
    if (kind === '?' && missing) throw new Error(`compose needs ${name}: ${arg}`);
    if (kind === '-' && missing) return arg;
    return value ?? '';
  });
}

/** docker-compose.yml as compose reads it: anchors and merge keys resolved, `${…}` substituted from `vars`. */
export async function loadCompose(vars: EnvMap = {}): Promise<ComposeFile> {
  const source = interpolate(await readRepoFile('docker-compose.yml'), vars);
  return parse(source, { merge: true }) as ComposeFile;
}

/** A service's environment as strings, from either the map or the `KEY=value` list form. */
export function serviceEnv(service: ComposeService): EnvMap {
  const env = service.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((line) => {
        const i = line.indexOf('=');
        return i < 0 ? [line, ''] : [line.slice(0, i), line.slice(i + 1)];
      }),
    );
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? '' : String(v)]));
}

/** `.env.example` as ordered entries, each with the comment line right above it (if any). */
export async function readEnvExample(): Promise<
  { key: string; value: string; comment: string | undefined }[]
> {
  const lines = (await readRepoFile('.env.example')).split('\n');
  const entries: { key: string; value: string; comment: string | undefined }[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '' || line.startsWith('#')) return;
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (!m) throw new Error(`.env.example line ${i + 1} is not KEY=value: ${line}`);
    const above = lines[i - 1];
    entries.push({ key: m[1], value: m[2], comment: above?.startsWith('#') ? above : undefined });
  });
  return entries;
}

/** The argv of a package script that runs a TypeScript entry point (`node --import tsx file.ts …`). */
export async function scriptArgv(name: string): Promise<string[]> {
  const pkg = JSON.parse(await readRepoFile('package.json')) as { scripts: Record<string, string> };
  const script = pkg.scripts[name];
  if (!script) throw new Error(`package.json has no script ${name}`);
  return script.split(/\s+/);
}
