import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startOwnPipeline, useRunningPipeline, type Target } from './pipeline.ts';
import { startSupervisedPipeline } from './start-target.ts';
import { ROOT } from './processes.ts';
import { summarizeCpuProfile } from './profile.ts';
import { say } from './progress.ts';
import { latencyChart, markdownReport, terminalSummary, timelineChart, type BenchResults } from './report.ts';
import { Scenarios, type Settings } from './scenarios.ts';

const USAGE = `npm run bench -- [options]

Measures comanda on this machine: how fast it takes orders, how fast they become final, how fast replays are
answered, and what the bare PostgreSQL transaction and a bare Koa handler manage in the same run. By default it
starts a pipeline of its own (fresh database, AMQP prefix and Redis prefix, removed afterwards; dev data is never
touched): the api as one process and the workers as others.

  --scenario LIST     accept, e2e, replay, limit or all (default all); comma-separated for several
  --rate LIST         offered loads of the accept scenario, orders/s (default 100,200,400,800)
  --e2e-rate LIST     sustained rates of the end-to-end scenario, orders/s (default 300)
  --duration S        seconds per step (default 10)
  --concurrency N     connections to the api, and clients of the closed-loop steps and limits (default 64)
  --workers LIST      worker processes for the end-to-end scenario, e.g. 1,2 to compare (default 1)
  --env KEY=VALUE     a setting for the api and workers (repeatable), e.g. --env DATABASE_POOL_MAX=20
  --profile           run the api (with --start: every process, which inherit the supervisor's node options)
                      under node --cpu-prof and report where the busiest one's time goes
  --start             benchmark \`npm start\` itself (the supervisor with its child processes, WORKERS as
                      configured) on a scratch database, instead of an api and workers started one by one
  --url URL           benchmark a pipeline already running there instead (it gets real orders)
  --token JWT         bearer token for --url (default: tokens from its /login-demo)
  --database-url URL  that pipeline's database, for exact end-to-end figures (else: its /metrics histogram)
  --warmup S          seconds of unmeasured orders before the first step (default 5; 0: none)
  --drain-timeout S   longest wait for the pipeline to finish its work between steps (default 120)
  --note TEXT         a line to put at the top of the report
  --out DIR           where the results go (default bench/results)
  --render FILE.json  only draw the Markdown report and charts of an earlier run again
`;

function parse(): {
  settings: Settings;
  scenarios: Set<string>;
  options: Record<string, unknown>;
  overrides: Record<string, string>;
} {
  const { values } = parseArgs({
    options: {
      scenario: { type: 'string', default: 'all' },
      rate: { type: 'string', default: '100,200,400,800' },
      'e2e-rate': { type: 'string', default: '300' },
      duration: { type: 'string', default: '10' },
      concurrency: { type: 'string', default: '64' },
      workers: { type: 'string', default: '1' },
      env: { type: 'string', multiple: true, default: [] },
      profile: { type: 'boolean', default: false },
      url: { type: 'string' },
      start: { type: 'boolean', default: false },
      token: { type: 'string' },
      'database-url': { type: 'string' },
      'drain-timeout': { type: 'string', default: '120' },
      warmup: { type: 'string', default: '5' },
      note: { type: 'string' },
      render: { type: 'string' },
      out: { type: 'string', default: path.join(ROOT, 'bench', 'results') },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const list = (flag: string, text: string) => {
    const items = text.split(',').map((s) => Number(s.trim()));
    if (items.length === 0 || items.some((n) => !Number.isFinite(n) || n <= 0))
      fail(`--${flag} must be positive numbers, comma-separated`);
    return items;
  };
  const scenarios = new Set(values.scenario.split(',').map((s) => s.trim()));
  for (const s of scenarios)
    if (!['accept', 'e2e', 'replay', 'limit', 'all'].includes(s)) fail(`unknown scenario ${s}`);
  if (scenarios.has('all')) for (const s of ['accept', 'e2e', 'replay', 'limit']) scenarios.add(s);
  const overrides: Record<string, string> = {};
  for (const kv of values.env) {
    const eq = kv.indexOf('=');
    if (eq < 1) fail(`--env takes KEY=VALUE, not ${kv}`);
    overrides[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  const settings: Settings = {
    rates: list('rate', values.rate),
    e2eRates: list('e2e-rate', values['e2e-rate']),
    durationS: list('duration', values.duration)[0],
    concurrency: Math.round(list('concurrency', values.concurrency)[0]),
    workers: list('workers', values.workers).map(Math.round),
    drainTimeoutS: list('drain-timeout', values['drain-timeout'])[0],
    warmupS: Number(values.warmup) >= 0 ? Number(values.warmup) : fail('--warmup must be 0 or more seconds'),
  };
  return { settings, scenarios, options: values, overrides };
}

function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n\n${USAGE}`);
  process.exit(64);
}

function gitCommit(): string {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT }).toString().trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT })
      .toString()
      .trim();
    return dirty ? `${sha}+changes` : sha;
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<void> {
  const { settings, scenarios, options, overrides } = parse();
  if (options.render) {
    // Draws the report of an earlier run again (after a change to the report), from its JSON.
    const file = options.render as string;
    const results = JSON.parse(readFileSync(file, 'utf8')) as BenchResults;
    writeResults(results, path.dirname(file), path.basename(file, '.json'));
    return;
  }
  const startedAt = new Date();
  const loadBefore = loadavg();
  const cores = cpus().length;
  const url = options.url as string | undefined;
  const profileDir =
    options.profile && !url ? mkdtempSync(path.join(tmpdir(), 'comanda-bench-profile-')) : undefined;
  if (options.profile && url)
    say('--profile needs the pipeline the benchmark starts itself; ignored with --url');
  if (url) say(`benchmarking the pipeline at ${url}: it receives real orders`);

  say(url ? 'connecting…' : `starting an isolated pipeline (api + ${settings.workers[0]} worker(s))…`);
  const started: { target?: Target } = {};
  const interrupt = () => {
    say('\ninterrupted: stopping the pipeline and removing its data…');
    void (started.target?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);

  const target = url
    ? await useRunningPipeline({
        url,
        token: options.token as string | undefined,
        databaseUrl: options['database-url'] as string | undefined,
      })
    : options.start
      ? await startSupervisedPipeline({
          overrides,
          nodeArgs: profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : undefined,
        })
      : await startOwnPipeline({
          workers: settings.workers[0],
          overrides,
          apiNodeArgs: profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : undefined,
        });
  started.target = target;
  if (target.logDir) say(`process logs: ${target.logDir}`);

  const command = `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim();
  const results: BenchResults = {
    meta: {
      startedAt: startedAt.toISOString(),
      finishedAt: '',
      command,
      commit: gitCommit(),
      node: process.versions.node,
      cpus: cores,
      cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
      memoryGb: totalmem() / 2 ** 30,
      loadAverageBefore: loadBefore,
      busyMachine: loadBefore[0] > 0.5,
      note: options.note as string | undefined,
      target: url
        ? `running pipeline at ${url}`
        : options.start
          ? `npm start (supervisor, ${target.workerCount()} worker processes) on a scratch database`
          : 'own isolated pipeline',
      settings,
      overrides,
    },
  };

  const run = new Scenarios(target, settings);
  try {
    if (['accept', 'replay', 'e2e'].some((s) => scenarios.has(s))) await run.warmUp();
    if (scenarios.has('accept')) results.accept = await run.accept();
    if (scenarios.has('replay')) results.replay = await run.replay();
    if (scenarios.has('e2e')) results.e2e = await run.endToEnd();
    if (scenarios.has('limit')) results.limits = await run.limits();
  } finally {
    say('stopping the pipeline and removing its data…');
    await target.stop();
  }
  if (profileDir) results.profile = summarizeCpuProfile(profileDir);
  results.meta.finishedAt = new Date().toISOString();

  writeResults(results, options.out as string);
}

/** Writes the JSON, the Markdown report and its charts into `out`, and the summary to the terminal. */
function writeResults(
  results: BenchResults,
  out: string,
  base = `bench-${results.meta.startedAt.slice(0, 19).replace(/:/g, '-')}`,
): void {
  mkdirSync(out, { recursive: true });
  const files = { latencySvg: `${base}-latency.svg`, timelineSvg: `${base}-timeline.svg` };
  writeFileSync(path.join(out, `${base}.json`), JSON.stringify(results, null, 2) + '\n');
  writeFileSync(path.join(out, files.latencySvg), latencyChart(results));
  if (results.e2e?.length) writeFileSync(path.join(out, files.timelineSvg), timelineChart(results));
  writeFileSync(path.join(out, `${base}.md`), markdownReport(results, files));
  process.stdout.write(terminalSummary(results) + '\n');
  say(`\nresults: ${path.join(out, base)}.{json,md} and its charts`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
