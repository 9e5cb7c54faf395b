/**
 * `npm run bench:startup`: start-up time and memory of the api as development runs it (TypeScript through tsx)
 * and as production runs it (the compiled dist/ on plain node), and what tracing adds when it is on. Each
 * variant starts several times against a scratch database; the figures are medians. Needs `npm run build` first.
 *
 *   start-up: from spawn to the "api listening" log line (config, connections, topology, HTTP listen)
 *   RSS:      the process's resident memory once listening, and after a burst of requests
 */
import { execFile, spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { cleanupRun, isolatedEnv } from '../test/helpers/pipeline.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const RUNS = Number(process.env.RUNS ?? 5);
const BURST = 500;

interface Variant {
  name: string;
  argv: string[];
  tracing: boolean;
}

const VARIANTS: Variant[] = [
  {
    name: 'tsx (npm run start:api)',
    argv: ['--import', 'tsx', '--import', './lib/telemetry-register.ts', 'api/main.ts'],
    tracing: false,
  },
  {
    name: 'compiled (npm run start:prod:api)',
    argv: ['--import', './dist/lib/telemetry-register.js', 'dist/api/main.js'],
    tracing: false,
  },
  {
    name: 'compiled, tracing on',
    argv: ['--import', './dist/lib/telemetry-register.js', 'dist/api/main.js'],
    tracing: true,
  },
];

async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

async function once(variant: Variant, env: Record<string, string>, otlp: string) {
  const started = performance.now();
  const child = spawn(process.execPath, variant.argv, {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      ...env,
      LOG_LEVEL: 'info',
      ...(variant.tracing ? { OTEL_EXPORTER_OTLP_ENDPOINT: otlp } : {}),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${variant.name} exited with ${code}`)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line.includes('api listening')) resolve((JSON.parse(line) as { url: string }).url);
    });
  });
  const startupMs = performance.now() - started;
  const idle = await rssMb(child.pid!);
  // A burst of traced requests: the catalogue (PostgreSQL) and readiness (PostgreSQL, RabbitMQ, Redis).
  for (let i = 0; i < BURST; i += 10) {
    await Promise.all(
      Array.from({ length: 10 }, (_, j) =>
        fetch(`${url}${j % 2 ? '/products' : '/readyz'}`).then((r) => r.arrayBuffer()),
      ),
    );
  }
  const busy = await rssMb(child.pid!);
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  return { startupMs, idle, busy };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const sink = createServer((req, res) => req.resume().on('end', () => res.writeHead(200).end()));
await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
const otlp = `http://127.0.0.1:${(sink.address() as AddressInfo).port}`;
const env = isolatedEnv();
await promisify(execFile)(process.execPath, ['dist/scripts/migrate.js'], {
  cwd: ROOT,
  env: { PATH: process.env.PATH, ...env },
});
try {
  console.log(`| variant | start-up (median of ${RUNS}) | RSS listening | RSS after ${BURST} requests |`);
  console.log('| --- | --- | --- | --- |');
  for (const variant of VARIANTS) {
    const runs = [];
    for (let i = 0; i < RUNS; i++) runs.push(await once(variant, env, otlp));
    console.log(
      `| ${variant.name} | ${median(runs.map((r) => r.startupMs)).toFixed(0)} ms | ${median(runs.map((r) => r.idle)).toFixed(0)} MB | ${median(runs.map((r) => r.busy)).toFixed(0)} MB |`,
    );
  }
} finally {
  sink.close();
  await cleanupRun(env);
}
