import { IDEMPOTENT_PHASES, type IdempotentPhase } from '../api/idempotency.ts';
import type { LoadResult } from './load.ts';
import type { ProfileSummary } from './profile.ts';
import type { AcceptStep, E2eResult, LimitsResult, ReplayResult, Settings, StepUsage } from './scenarios.ts';
import type { LatencySummary } from './stats.ts';
import { lineChart, type Series } from './svg.ts';

export interface BenchResults {
  meta: {
    startedAt: string;
    finishedAt: string;
    command: string;
    commit: string;
    node: string;
    cpus: number;
    cpuModel: string;
    memoryGb: number;
    loadAverageBefore: number[];
    /** The machine was busy before the benchmark started (other work running): figures are noisy. */
    busyMachine: boolean;
    note: string | undefined;
    target: string;
    settings: Settings;
    overrides: Record<string, string>;
  };
  accept?: { steps: AcceptStep[]; max: AcceptStep };
  e2e?: E2eResult[];
  replay?: ReplayResult;
  limits?: LimitsResult;
  profile?: ProfileSummary;
}

export interface TargetCheck {
  what: string;
  target: string;
  measured: string;
  met: boolean | undefined;
}

const ms = (v: number | undefined) =>
  v === undefined || !Number.isFinite(v) ? '–' : v < 10 ? v.toFixed(2) : v.toFixed(1);
const num = (v: number | undefined, digits = 0) =>
  v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits);
const pct = (v: number | undefined) =>
  v === undefined || !Number.isFinite(v) ? '–' : `${(v * 100).toFixed(0)} %`;

/** The targets of the issues that asked for this benchmark, checked against what this run measured. */
export function checkTargets(r: BenchResults): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const at = (rate: number) => r.accept?.steps.find((s) => s.offeredRate === rate);
  const s200 = at(200);
  const s400 = at(400);
  checks.push({
    what: 'accept: POST /orders p99 at 200 orders/s',
    target: '< 50 ms',
    measured: s200 ? `${ms(s200.latency.p99)} ms` : 'not run',
    met: s200 ? s200.latency.p99 < 50 && errorsOf(s200) === 0 : undefined,
  });
  checks.push({
    what: 'accept: POST /orders p99 at 400 orders/s',
    target: '< 25 ms',
    measured: s400 ? `${ms(s400.latency.p99)} ms` : 'not run',
    met: s400 ? s400.latency.p99 < 25 && errorsOf(s400) === 0 : undefined,
  });
  const ratio =
    r.accept && r.limits?.postgres.throughput
      ? r.accept.max.throughput / r.limits.postgres.throughput
      : undefined;
  checks.push({
    what: 'accept at saturation vs bare PostgreSQL order transaction',
    target: '≥ 30 %',
    measured:
      ratio === undefined
        ? 'not run'
        : `${pct(ratio)} (${num(r.accept!.max.throughput)} vs ${num(r.limits!.postgres.throughput)}/s)`,
    met: ratio === undefined ? undefined : ratio >= 0.3,
  });
  const api = r.accept ? peakOf(r.accept.max.usage, 'api') : undefined;
  checks.push({
    what: 'memory: api peak RSS under the accept scenario',
    target: '< 200 MB',
    measured:
      api === undefined
        ? 'not run'
        : `${num(api)} MB${r.profile ? ' (under --cpu-prof: not comparable)' : ''}`,
    met: api === undefined || r.profile ? undefined : api < 200,
  });
  const e2e1 = r.e2e?.filter((e) => e.workers <= 1) ?? [];
  const at200 = e2e1.find((e) => e.offeredRate === 200);
  checks.push({
    what: 'end-to-end at 200 orders/s: every order final within 1 s of its POST',
    target: '100 %',
    measured: at200 ? pct(at200.withinOneSecond) : 'not run',
    met: at200 ? at200.withinOneSecond === 1 : undefined,
  });
  const sustained = [...(r.e2e ?? [])]
    .filter((e) => e.offeredRate >= 300)
    .sort((a, b) => a.workers - b.workers)[0];
  checks.push({
    what: 'end-to-end: ≥ 300 orders/s sustained to a final status, p99 RECEIVED → final',
    target: '≥ 300/s, p99 < 500 ms',
    measured: sustained
      ? `${num(sustained.finalThroughput)}/s, p99 ${ms(sustained.receivedToFinal.p99)} ms (${sustained.workers || '?'} worker(s), ${sustained.notFinal} not final)`
      : 'not run (needs an e2e rate ≥ 300)',
    met: sustained
      ? sustained.finalThroughput >= 300 * 0.97 &&
        sustained.receivedToFinal.p99 < 500 &&
        sustained.notFinal === 0
      : undefined,
  });
  const one = r.e2e?.find((e) => e.workers === 1);
  const two = r.e2e?.find((e) => e.workers === 2 && e.offeredRate === one?.offeredRate);
  checks.push({
    what: 'end-to-end: 2 workers not slower than 1 (same rate)',
    target: 'throughput ≥, p99 ≤ (±10 %)',
    measured:
      one && two
        ? `1w ${num(one.finalThroughput)}/s p99 ${ms(one.receivedToFinal.p99)} ms; 2w ${num(two.finalThroughput)}/s p99 ${ms(two.receivedToFinal.p99)} ms`
        : 'not run (use --workers 1,2)',
    met:
      one && two
        ? two.finalThroughput >= one.finalThroughput * 0.9 &&
          two.receivedToFinal.p99 <= one.receivedToFinal.p99 * 1.1
        : undefined,
  });
  checks.push(...throughputChecks(r));
  const replayRatio = r.replay && r.accept ? r.replay.throughput / r.accept.max.throughput : undefined;
  checks.push({
    what: 'replay vs accept throughput',
    target: '≥ 5×',
    measured:
      replayRatio === undefined
        ? 'not run (needs accept and replay)'
        : `${num(replayRatio, 1)}× (${num(r.replay!.throughput)} vs ${num(r.accept!.max.throughput)}/s)`,
    met: replayRatio === undefined ? undefined : replayRatio >= 5,
  });
  return checks;
}

/** The throughput issue's targets for `npm start` (run with --start): 300/s, 400/s, saturation, memory, CPU. */
function throughputChecks(r: BenchResults): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const at = (rate: number) => r.e2e?.find((e) => e.offeredRate === rate);
  const e300 = at(300);
  checks.push({
    what: 'end-to-end at 300/s: POST p99 while every order becomes final',
    target: '< 50 ms, no error',
    measured: e300
      ? `${ms(e300.post.latency.p99)} ms, ${errorText(e300.post)} errors`
      : 'not run (--e2e-rate 300)',
    met: e300 ? e300.post.latency.p99 < 50 && errorsOf(e300.post) === 0 : undefined,
  });
  const e400 = at(400);
  checks.push({
    what: 'end-to-end at 400/s offered: POST p99, every order final after',
    target: '< 100 ms, all final',
    measured: e400
      ? `${ms(e400.post.latency.p99)} ms, ${e400.notFinal} not final, ${errorText(e400.post)} errors`
      : 'not run (--e2e-rate 400)',
    met: e400 ? e400.post.latency.p99 < 100 && e400.notFinal === 0 && errorsOf(e400.post) === 0 : undefined,
  });
  const best = [...(r.e2e ?? [])].sort((a, b) => b.finalThroughput - a.finalThroughput)[0];
  const bare = r.limits?.postgres.throughput;
  checks.push({
    what: 'end-to-end at its best vs bare PostgreSQL order transaction',
    target: '≥ 25 %',
    measured:
      best && bare
        ? `${pct(best.finalThroughput / bare)} (${num(best.finalThroughput)} vs ${num(bare)}/s)`
        : 'not run',
    met: best && bare ? best.finalThroughput / bare >= 0.25 : undefined,
  });
  const peaks = (r.e2e ?? []).flatMap((e) =>
    e.usage.processes.filter((p) => !p.service && !p.name.startsWith('bench')),
  );
  const worst = peaks.sort((a, b) => b.peakRssMb - a.peakRssMb)[0];
  checks.push({
    what: 'peak RSS of each comanda process during end-to-end',
    target: '< 150 MB',
    measured: worst ? `largest: ${worst.name} ${num(worst.peakRssMb)} MB` : 'not run',
    met: worst ? worst.peakRssMb < 150 : undefined,
  });
  checks.push({
    what: 'CPU per order at 300/s, every process but the load generator',
    target: '≤ 5 ms',
    measured: e300?.cost ? `${num(e300.cost.totalCpuMsPerOrder, 2)} ms` : 'not run',
    met: e300?.cost ? e300.cost.totalCpuMsPerOrder <= 5 : undefined,
  });
  return checks;
}

function errorsOf(r: LoadResult): number {
  return Object.values(r.errors).reduce((a, b) => a + b, 0);
}

function peakOf(u: StepUsage, name: string): number | undefined {
  return u.processes.find((p) => p.name === name)?.peakRssMb;
}

function errorText(r: LoadResult): string {
  const entries = Object.entries(r.errors);
  return entries.length ? entries.map(([k, v]) => `${v}× ${k}`).join(', ') : '0';
}

function latencyCells(l: LatencySummary): string {
  return `${ms(l.p50)} | ${ms(l.p95)} | ${ms(l.p99)} | ${ms(l.max)}`;
}

/** The latency chart: POST /orders percentiles against offered load, and end-to-end percentiles beside them. */
export function latencyChart(r: BenchResults): string {
  const steps = r.accept?.steps ?? [];
  const series: Series[] = [
    {
      name: 'POST p50',
      color: '#2563eb',
      points: steps.map((s) => ({ x: s.offeredRate!, y: s.latency.p50 })),
    },
    {
      name: 'POST p95',
      color: '#7c3aed',
      points: steps.map((s) => ({ x: s.offeredRate!, y: s.latency.p95 })),
    },
    {
      name: 'POST p99',
      color: '#db2777',
      points: steps.map((s) => ({ x: s.offeredRate!, y: s.latency.p99 })),
    },
  ];
  if (r.accept) {
    series.push({
      name: `POST p99, max (c=${r.accept.max.concurrency})`,
      color: '#db2777',
      markersOnly: true,
      points: [{ x: r.accept.max.throughput, y: r.accept.max.latency.p99 }],
    });
  }
  const workers = [...new Set((r.e2e ?? []).map((e) => e.workers))];
  const palette = ['#059669', '#d97706', '#0891b2', '#65a30d'];
  workers.forEach((w, i) => {
    const runs = (r.e2e ?? []).filter((e) => e.workers === w);
    const suffix = w ? ` ${w}w` : '';
    series.push(
      {
        name: `e2e p50${suffix}`,
        color: palette[i % palette.length],
        dashed: true,
        points: runs.map((e) => ({ x: e.offeredRate, y: e.receivedToFinal.p50 })),
      },
      {
        name: `e2e p99${suffix}`,
        color: palette[i % palette.length],
        points: runs.map((e) => ({ x: e.offeredRate, y: e.receivedToFinal.p99 })),
        markersOnly: runs.length < 2,
      },
    );
  });
  return lineChart({
    title: `comanda: latency against offered load${r.meta.busyMachine ? ' (busy machine)' : ''}`,
    xLabel: 'offered load (orders/s); the square: achieved throughput at max concurrency',
    yLabel: 'latency (ms, log scale)',
    logY: true,
    series,
    references: [
      { y: 25, label: 'POST p99 target at 400/s' },
      { y: 500, label: 'e2e p99 target' },
    ],
  });
}

/** Queue depth and outbox backlog over each end-to-end run. */
/** How many seconds of a step had a POST p99 over 100 ms, and its worst three. */
function secondsText(post: LoadResult): string {
  const seconds = (post.latencyBySecond ?? []).filter((s) => s.count > 0);
  if (!seconds.length) return 'not recorded';
  const slow = seconds.filter((s) => s.p99 > 100).length;
  const worst = [...seconds]
    .sort((a, b) => b.p99 - a.p99)
    .slice(0, 3)
    .map((s) => `${s.t} s (p99 ${ms(s.p99)} ms, p50 ${ms(s.p50)} ms)`);
  return `p99 over 100 ms in ${slow} of ${seconds.length} seconds; worst: ${worst.join(', ')}`;
}

export function timelineChart(r: BenchResults): string {
  const palette = ['#2563eb', '#dc2626', '#059669', '#d97706'];
  const series: Series[] = (r.e2e ?? []).flatMap((e, i) => {
    const name = `${e.offeredRate}/s${e.workers ? ` ${e.workers}w` : ''}`;
    return [
      {
        name: `queue ${name}`,
        color: palette[i % palette.length],
        points: e.timeline.map((p) => ({ x: p.t, y: p.queued })),
      },
      {
        name: `outbox ${name}`,
        color: palette[i % palette.length],
        dashed: true,
        points: e.timeline.map((p) => ({ x: p.t, y: p.outboxPending })),
      },
    ];
  });
  return lineChart({
    title: 'end to end: messages waiting in the worker queue and the outbox',
    xLabel: 'time since the run started (s)',
    yLabel: 'messages',
    series,
  });
}

export function markdownReport(r: BenchResults, files: { latencySvg: string; timelineSvg: string }): string {
  const m = r.meta;
  const out: string[] = [];
  out.push(`# comanda benchmark — ${m.startedAt.slice(0, 16).replace('T', ' ')} UTC`, '');
  if (m.busyMachine || m.note) {
    out.push(
      `> **${m.busyMachine ? 'Measured on a busy machine' : 'Note'}.** ${m.note ?? ''} ${
        m.busyMachine
          ? `Load average before the run: ${m.loadAverageBefore.map((l) => l.toFixed(2)).join(', ')} on ${m.cpus} cores; other work shared the CPUs, so these figures are noisy and pessimistic.`
          : ''
      }`.trim(),
      '',
    );
  }
  out.push(
    `\`${m.command}\` · commit \`${m.commit}\` · Node ${m.node} · ${m.cpus} × ${m.cpuModel} · ${m.memoryGb.toFixed(0)} GB · target: ${m.target}`,
    '',
    `Settings: ${m.settings.durationS} s per step, ${m.settings.concurrency} connections, accept rates ${m.settings.rates.join(', ')}/s, end-to-end rates ${m.settings.e2eRates.join(', ')}/s with ${m.settings.workers.join(', ')} worker(s)` +
      (Object.keys(m.overrides).length
        ? `, env ${Object.entries(m.overrides)
            .map(([k, v]) => `${k}=${v}`)
            .join(' ')}`
        : '') +
      '. Everything (PostgreSQL, RabbitMQ, Redis, api, workers and the load generator) on this one machine.',
    '',
  );

  out.push('## Targets', '', '| | target | measured | |', '|---|---|---|---|');
  for (const c of checkTargets(r)) {
    out.push(
      `| ${c.what} | ${c.target} | ${c.measured} | ${c.met === undefined ? '–' : c.met ? 'met' : '**missed**'} |`,
    );
  }
  out.push('', `![latency against offered load](${files.latencySvg})`, '');

  if (r.accept) {
    out.push(
      '## Accept: POST /orders with fresh keys',
      '',
      'Open loop: each request is due at a fixed time and its latency counts from then, so a backlog shows.',
      '',
      '| offered | accepted/s | p50 ms | p95 ms | p99 ms | max ms | errors | api CPU s | machine busy |',
      '|---|---|---|---|---|---|---|---|---|',
    );
    for (const s of [...r.accept.steps, r.accept.max]) {
      out.push(
        `| ${s.offeredRate ? `${s.offeredRate}/s` : `max (c=${s.concurrency})`} | ${num(s.throughput)} | ${latencyCells(s.latency)} | ${errorText(s)} | ${num(cpuOf(s.usage, 'api'), 1)} | ${pct(s.usage.machineBusy)} |`,
      );
    }
    out.push('');
  }

  if (r.e2e?.length) {
    out.push(
      '## End to end: RECEIVED → CONFIRMED/REJECTED',
      '',
      "A sustained rate for the whole step, then the wait until every order is final. Times come from the orders' own timestamps (PostgreSQL's clock; the final one is the start of the final transaction).",
      '',
      '| workers | offered | accepted/s | POST p99 ms | POST errors | final/s | p50 ms | p95 ms | p99 ms | max ms | POST→final p99 ms | final ≤ 1 s | not final | source |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    );
    for (const e of r.e2e) {
      out.push(
        `| ${e.workers || '?'} | ${e.offeredRate}/s | ${num(e.post.throughput)} | ${ms(e.post.latency.p99)} | ${errorText(e.post)} | ${num(e.finalThroughput)} | ${latencyCells(e.receivedToFinal)} | ${ms(e.postToFinal?.p99)} | ${pct(e.withinOneSecond)} | ${e.notFinal} | ${e.source} |`,
      );
    }
    out.push('', `![queue and outbox over time](${files.timelineSvg})`, '');
    out.push('Peak backlog per run:', '');
    for (const e of r.e2e) {
      const maxQueue = Math.max(0, ...e.timeline.map((p) => p.queued));
      const maxOutbox = Math.max(0, ...e.timeline.map((p) => p.outboxPending));
      const maxAge = Math.max(0, ...e.timeline.map((p) => p.outboxOldestS));
      out.push(
        `- ${e.offeredRate}/s, ${e.workers || '?'} worker(s): queue ≤ ${maxQueue}, outbox ≤ ${maxOutbox} rows, oldest outbox row ≤ ${maxAge.toFixed(2)} s; CPU s: ${cpuList(e.usage)}; machine busy ${pct(e.usage.machineBusy)}`,
      );
    }
    out.push('', 'POST latency by second (the second each request was due in):', '');
    for (const e of r.e2e)
      out.push(`- ${e.offeredRate}/s, ${e.workers || '?'} worker(s): ${secondsText(e.post)}`);
    out.push('');
    out.push(...costModelSection(r.e2e));
    out.push(...acceptPhasesSection(r.e2e));
  }

  if (r.replay) {
    const rp = r.replay;
    out.push(
      '## Replay: the same keys again',
      '',
      `${rp.keys} stored keys sent again by ${rp.concurrency} clients in a closed loop: ${num(rp.throughput)} answers/s, ${rp.replayed} of ${rp.ok} marked \`Idempotent-Replayed: true\`; latency p50 ${ms(rp.latency.p50)} / p95 ${ms(rp.latency.p95)} / p99 ${ms(rp.latency.p99)} / max ${ms(rp.latency.max)} ms; errors ${errorText(rp)}. CPU s: ${cpuList(rp.usage)}.`,
      '',
    );
  }

  if (r.limits) {
    const { postgres: pg, koa } = r.limits;
    out.push(
      '## Limits of this machine, measured in the same run',
      '',
      '| | throughput/s | p50 ms | p95 ms | p99 ms | max ms | comanda (accept at max) as a share |',
      '|---|---|---|---|---|---|---|',
      `| bare PostgreSQL order transaction (the inserts of POST /orders on \`pg\`, ${pg.connections} connections, ${pg.concurrency} clients) | ${num(pg.throughput)} | ${latencyCells(pg.latency)} | ${r.accept ? pct(r.accept.max.throughput / pg.throughput) : '–'} |`,
      `| bare Koa handler (same body parser and router, no I/O, ${koa.concurrency} clients) | ${num(koa.throughput)} | ${latencyCells(koa.latency)} | ${r.accept ? pct(r.accept.max.throughput / koa.throughput) : '–'} |`,
      '',
    );
    if (pg.firstError)
      out.push(`The bare transaction failed ${pg.errors} times, first with: ${pg.firstError}`, '');
  }

  out.push('## Memory: peak RSS per process', '', '| process | peak RSS MB |', '|---|---|');
  const last = [r.e2e?.at(-1)?.usage, r.replay?.usage, r.accept?.max.usage].find(Boolean);
  const peaks = new Map<string, number>();
  for (const u of [r.accept?.max.usage, ...(r.e2e ?? []).map((e) => e.usage), r.replay?.usage, last]) {
    for (const p of (u?.processes ?? []).filter((x) => !x.service)) {
      peaks.set(p.name, Math.max(peaks.get(p.name) ?? 0, p.peakRssMb));
    }
  }
  if (r.accept)
    out.push(`| api, during accept (up to the max step) | ${num(peakOf(r.accept.max.usage, 'api'))} |`);
  if (r.profile) out.push('| (the api ran under `--cpu-prof`, whose samples add to its RSS) | |');
  for (const [name, mb] of peaks) out.push(`| ${name}, whole run | ${num(mb)} |`);
  if (r.limits?.koa.peakRssMb !== undefined) out.push(`| bare Koa | ${num(r.limits.koa.peakRssMb)} |`);
  out.push('');

  if (r.profile) {
    out.push(
      "## Where the api's time goes (`node --cpu-prof`, whole run)",
      '',
      '| area | self time | share |',
      '|---|---|---|',
      ...r.profile.byArea
        .slice(0, 12)
        .map((e) => `| ${e.where} | ${num(e.selfMs / 1000, 1)} s | ${pct(e.share)} |`),
      '',
      '| function | self time | share |',
      '|---|---|---|',
      ...r.profile.topFunctions.map(
        (e) => `| \`${e.where}\` | ${num(e.selfMs / 1000, 2)} s | ${pct(e.share)} |`,
      ),
      '',
    );
  }

  out.push(
    '## Reading these figures',
    '',
    '- Absolute figures drift between runs on a shared machine; the ratios to the limits measured in the same run drift less.',
    '- The load generator runs on the same cores as everything it measures; its CPU time is listed with the others.',
    '- `synchronous_commit` is whatever the server runs with (on by default); messages are persistent and confirmed; idempotency is exact.',
    '',
  );
  return out.join('\n');
}

function cpuOf(u: StepUsage, name: string): number | undefined {
  return u.processes.find((p) => p.name === name)?.cpuS;
}

function cpuList(u: StepUsage): string {
  return u.processes.map((p) => `${p.name} ${num(p.cpuS, 1)}`).join(', ');
}

/** A compact plain-text summary for the terminal. */
export function terminalSummary(r: BenchResults): string {
  const lines: string[] = [''];
  const row = (cells: string[], widths: number[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
  if (r.accept) {
    const w = [14, 11, 8, 8, 8, 8, 20];
    lines.push(row(['accept', 'accepted/s', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'errors'], w));
    for (const s of [...r.accept.steps, r.accept.max]) {
      lines.push(
        row(
          [
            s.offeredRate ? `${s.offeredRate}/s` : `max c=${s.concurrency}`,
            num(s.throughput),
            ms(s.latency.p50),
            ms(s.latency.p95),
            ms(s.latency.p99),
            ms(s.latency.max),
            errorText(s),
          ],
          w,
        ),
      );
    }
    lines.push('');
  }
  if (r.e2e?.length) {
    const w = [14, 9, 8, 8, 8, 8, 10];
    lines.push(row(['e2e', 'final/s', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'not final'], w));
    for (const e of r.e2e) {
      const l = e.receivedToFinal;
      lines.push(
        row(
          [
            `${e.offeredRate}/s ${e.workers || '?'}w`,
            num(e.finalThroughput),
            ms(l.p50),
            ms(l.p95),
            ms(l.p99),
            ms(l.max),
            String(e.notFinal),
          ],
          w,
        ),
      );
    }
    lines.push('');
  }
  if (r.replay)
    lines.push(
      `replay: ${num(r.replay.throughput)}/s, p99 ${ms(r.replay.latency.p99)} ms, ${r.replay.replayed} replayed`,
      '',
    );
  if (r.limits) {
    lines.push(
      `limits: bare PostgreSQL ${num(r.limits.postgres.throughput)} tx/s (p99 ${ms(r.limits.postgres.latency.p99)} ms), bare Koa ${num(r.limits.koa.throughput)} req/s (p99 ${ms(r.limits.koa.latency.p99)} ms)`,
      '',
    );
  }
  for (const c of checkTargets(r)) {
    lines.push(
      `${c.met === undefined ? '  -  ' : c.met ? ' met ' : 'MISSED'} ${c.what}: ${c.measured} (target ${c.target})`,
    );
  }
  return lines.join('\n');
}

/** The head of a table with a column per end-to-end step. */
function stepColumns(steps: NonNullable<BenchResults['e2e']>): string[] {
  return [
    `| | ${steps.map((e) => `${e.offeredRate}/s, ${e.workers || '?'}w`).join(' | ')} |`,
    `|---|${steps.map(() => '---').join('|')}|`,
  ];
}

/** Where each step's POSTs spent their time inside the api: the replay cache, the wait for a transaction, the transaction. */
function acceptPhasesSection(steps: NonNullable<BenchResults['e2e']>): string[] {
  const withPhases = steps.filter((e) => e.acceptPhases);
  if (withPhases.length === 0) return [];
  const labels: Record<IdempotentPhase, string> = {
    cache_lookup: 'Redis replay-cache lookup',
    group_wait: 'wait for the next shared transaction',
    transaction: 'the transaction, commit included',
  };
  const out = [
    '### POST /orders inside the api: mean · p50 · p99 ms by phase',
    '',
    'From the api’s `comanda_order_accept_phase_seconds` over the step; the quantiles are interpolated within its buckets, so approximate. What the load generator measures besides these is the HTTP exchange and the time each process waited for a core.',
    '',
    ...stepColumns(withPhases),
  ];
  for (const phase of IDEMPOTENT_PHASES) {
    const label = labels[phase];
    const cells = withPhases.map((e) => {
      const p = e.acceptPhases!.find((x) => x.phase === phase);
      return p ? `${num(p.meanMs, 1)} · ${num(p.p50Ms, 1)} · ${num(p.p99Ms, 1)}` : '–';
    });
    out.push(`| ${label} | ${cells.join(' | ')} |`);
  }
  out.push('');
  return out;
}

/** The cost model of each end-to-end step: CPU ms per order by process, statements, commits and messages. */
function costModelSection(steps: NonNullable<BenchResults['e2e']>): string[] {
  const withCost = steps.filter((e) => e.cost);
  if (withCost.length === 0) return [];
  const names = [...new Set(withCost.flatMap((e) => e.cost!.cpuMsPerOrder.map((p) => p.name)))];
  const out = [
    '### Cost model: what one order costs',
    '',
    'CPU milliseconds per order of each process over the step (from /proc; the shared services count every process of theirs, whoever it served), statements sent to PostgreSQL (comanda_db_queries_total, BEGIN and COMMIT included), transactions committed in the pipeline’s database (pg_stat_database), and messages published by the relay and handled by consumers.',
    '',
    ...stepColumns(withCost),
  ];
  const row = (label: string, cell: (c: NonNullable<(typeof withCost)[number]['cost']>) => string) =>
    out.push(`| ${label} | ${withCost.map((e) => cell(e.cost!)).join(' | ')} |`);
  for (const name of names) {
    row(`CPU ms/order: ${name}`, (c) => num(c.cpuMsPerOrder.find((p) => p.name === name)?.ms, 2));
  }
  row('**CPU ms/order, all but the load generator**', (c) => `**${num(c.totalCpuMsPerOrder, 2)}**`);
  row('PostgreSQL statements/order', (c) => num(c.statementsPerOrder, 1));
  row('PostgreSQL commits/order', (c) => num(c.commitsPerOrder, 2));
  row('orders per POST transaction (group commit)', (c) => num(c.ordersPerPostTransaction, 1));
  row('messages published/order', (c) => num(c.publishedPerOrder, 2));
  row('deliveries consumed/order', (c) => num(c.consumedPerOrder, 2));
  out.push('');
  return out;
}
