import { randomUUID } from 'node:crypto';
import { closedLoop, openLoop, type LoadResult, type RequestSpec } from './load.ts';
import { measureBarePostgres, type LimitResult } from './limits.ts';
import type { Target } from './pipeline.ts';
import {
  freePort,
  machineCpu,
  ownUsage,
  processUsage,
  serviceCpu,
  serviceCpuSince,
  startNode,
  stopProcess,
} from './processes.ts';
import { bucketsBetween, scrape, valueOf, type Sample } from './prometheus.ts';
import { IDEMPOTENT_PHASES, type IdempotentPhase } from '../api/idempotency.ts';
import { endProgress, say, showProgress } from './progress.ts';
import { histogramQuantile, summarize, type LatencySummary } from './stats.ts';

export interface Settings {
  rates: number[];
  e2eRates: number[];
  durationS: number;
  concurrency: number;
  workers: number[];
  drainTimeoutS: number;
  warmupS: number;
}

/** Memory and CPU of each process during one step, and how busy the whole machine was. */
export interface StepUsage {
  /** comanda's processes, the load generator, and the shared services (`service: true`). */
  processes: { name: string; peakRssMb: number; cpuS: number; service?: boolean }[];
  machineBusy: number;
}

export interface AcceptStep extends LoadResult {
  usage: StepUsage;
}

export interface E2eSample {
  t: number;
  queued: number;
  outboxPending: number;
  outboxOldestS: number;
  final: number;
}

export interface E2eResult {
  workers: number;
  offeredRate: number;
  post: LoadResult;
  orders: number;
  final: number;
  notFinal: number;
  rejected: number;
  /** Orders reaching a final status per second, from the first RECEIVED to the last final step. */
  finalThroughput: number;
  /** RECEIVED → final status, from the orders' own timestamps (PostgreSQL's clock). */
  receivedToFinal: LatencySummary;
  /** The POST leaving the benchmark → the final status; on one machine both clocks are the same. */
  postToFinal: LatencySummary | undefined;
  withinOneSecond: number;
  source: 'database' | 'metrics';
  timeline: E2eSample[];
  usage: StepUsage;
  cost?: CostModel;
  /** Where the api spent each POST's time, by phase (its histograms; absent when the api has none). */
  acceptPhases?: AcceptPhase[];
}

/** One phase of POST /orders inside the api, over a step: milliseconds, bucket-interpolated from its histogram. */
export interface AcceptPhase {
  phase: IdempotentPhase;
  count: number;
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
}

/** What one order costs, over one end-to-end step: CPU per process, database and broker work. */
export interface CostModel {
  orders: number;
  /** CPU milliseconds per order, by process (and service), and in total without the load generator. */
  cpuMsPerOrder: { name: string; ms: number }[];
  totalCpuMsPerOrder: number;
  /** Statements comanda's processes sent to PostgreSQL (BEGIN and COMMIT included), per order. */
  statementsPerOrder: number | undefined;
  /** Transactions committed in the pipeline's database, per order. */
  commitsPerOrder: number | undefined;
  /** New orders per transaction of the API (group commit); undefined when no order was created in the step. */
  ordersPerPostTransaction: number | undefined;
  /** Messages the relay published, and deliveries consumers handled, per order. */
  publishedPerOrder: number;
  consumedPerOrder: number;
}

export interface ReplayResult extends LoadResult {
  replayed: number;
  keys: number;
  usage: StepUsage;
}

export interface LimitsResult {
  postgres: LimitResult;
  koa: LoadResult & { peakRssMb: number | undefined };
}

/** What a POST /orders the benchmark sent: enough to send it again (replay) and to find the order (e2e). */
interface SentOrder {
  token: string;
  key: string;
  body: Buffer;
  orderId: string;
  sentAt: number;
}

const REPLAY_POOL_MAX = 50_000;

export class Scenarios {
  /** Orders already accepted, whose keys the replay scenario sends again. */
  private readonly accepted: SentOrder[] = [];

  constructor(
    private readonly target: Target,
    private readonly settings: Settings,
  ) {}

  /**
   * Orders taken as fast as they come for a few seconds, not measured: the api and workers compile their hot
   * paths and fill their connection pools before the first step counts.
   */
  async warmUp(): Promise<void> {
    if (this.settings.warmupS <= 0) return;
    await this.postOrders({ durationS: this.settings.warmupS, label: 'warm-up (not measured)' });
    await this.drain();
  }

  /** POST /orders with fresh keys: at each fixed rate (open loop), then as fast as `concurrency` clients go. */
  async accept(): Promise<{ steps: AcceptStep[]; max: AcceptStep }> {
    const steps: AcceptStep[] = [];
    for (const rate of this.settings.rates) {
      await this.drain();
      steps.push(await this.step(() => this.postOrders({ rate })));
    }
    await this.drain();
    const max = await this.step(() => this.postOrders({}));
    return { steps, max };
  }

  /** A sustained rate for the duration, per worker count: how many orders become final, and how fast. */
  async endToEnd(): Promise<E2eResult[]> {
    const results: E2eResult[] = [];
    const workerCounts = this.target.kind === 'own' ? this.settings.workers : [0];
    for (const workers of workerCounts) {
      if (this.target.kind === 'own') {
        say(`starting ${workers} worker process(es)…`);
        await this.target.setWorkers(workers);
      }
      for (const rate of this.settings.e2eRates) {
        await this.drain();
        results.push(await this.e2eStep(workers, rate));
      }
    }
    return results;
  }

  /** The same keys again: every answer should be the stored one, from the idempotency fast path. */
  async replay(): Promise<ReplayResult> {
    if (this.accepted.length === 0) {
      say('replay: taking orders first, to have keys to replay…');
      await this.postOrders({ durationS: Math.min(5, this.settings.durationS), quiet: true });
    }
    await this.drain();
    const pool = this.accepted.slice(0, REPLAY_POOL_MAX);
    let replayed = 0;
    const usageBefore = this.usageMark();
    const result = await closedLoop({
      url: this.target.url,
      durationS: this.settings.durationS,
      concurrency: this.settings.concurrency,
      make: (i) => orderSpec(pool[i % pool.length]),
      onResponse: (_, res) => {
        if (res?.headers['idempotent-replayed'] === 'true') replayed++;
      },
      onProgress: (p) => showProgress(`replay c=${this.settings.concurrency}`, p),
    });
    endProgress();
    return { ...result, replayed, keys: pool.length, usage: this.usageSince(usageBefore) };
  }

  /** The ceilings on this machine, now: the bare PostgreSQL order transaction and a bare Koa handler. */
  async limits(): Promise<LimitsResult> {
    const postgres = await measureBarePostgres({
      concurrency: this.settings.concurrency,
      connections: this.target.apiPoolMax,
      durationS: this.settings.durationS,
      onProgress: (done, elapsedS) =>
        showProgress(`bare PostgreSQL c=${this.settings.concurrency}`, {
          elapsedS,
          durationS: this.settings.durationS,
          sent: done,
          ok: done,
          errors: 0,
          inFlight: this.settings.concurrency,
        }),
    });
    endProgress();

    const port = await freePort();
    const koa = startNode(
      'bare-koa',
      'bench/bare-koa.ts',
      { PORT: String(port), NODE_ENV: 'production' },
      {
        logDir: this.target.logDir || process.cwd(),
      },
    );
    const url = `http://127.0.0.1:${port}`;
    try {
      const deadline = Date.now() + 30_000;
      while ((await fetch(`${url}/healthz`).catch(() => undefined))?.status !== 200) {
        if (Date.now() > deadline) throw new Error(`the bare Koa server did not start; see ${koa.logFile}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const sample = this.newOrder(0);
      const result = await closedLoop({
        url,
        durationS: this.settings.durationS,
        concurrency: this.settings.concurrency,
        make: () => orderSpec(sample),
        onProgress: (p) => showProgress(`bare Koa c=${this.settings.concurrency}`, p),
      });
      endProgress();
      return { postgres, koa: { ...result, peakRssMb: processUsage(koa.pid)?.peakRssMb } };
    } finally {
      await stopProcess(koa);
    }
  }

  private async e2eStep(workers: number, rate: number): Promise<E2eResult> {
    const label = `e2e ${rate}/s` + (this.target.kind === 'own' ? ` ${workers}w` : '');
    const sent: SentOrder[] = [];
    const before = await scrape(`${this.target.url}/metrics`).catch(() => [] as Sample[]);
    const finalBefore = await this.finalCount();
    const timeline: E2eSample[] = [];
    const started = performance.now();
    const sampler = setInterval(() => {
      const t = (performance.now() - started) / 1000;
      void Promise.all([scrape(`${this.target.url}/metrics`), this.finalCount()]).then(
        ([s, final]) =>
          timeline.push({
            t,
            queued: valueOf(s, 'comanda_queue_messages', { queue: 'worker.order-created' }),
            outboxPending: valueOf(s, 'comanda_outbox_pending_messages'),
            outboxOldestS: valueOf(s, 'comanda_outbox_oldest_pending_age_seconds'),
            final: final - finalBefore,
          }),
        () => {},
      );
    }, 1000); // each sample renders every process's metrics: CPU charged to the orders being measured
    const usageBefore = this.usageMark();
    const countersBefore = await this.counters();
    let post: LoadResult;
    let drained: boolean;
    try {
      post = await this.postOrders({ rate, label, record: sent });
      say(`${label}: waiting for every order to be final…`);
      drained = await this.target.drain(this.settings.drainTimeoutS * 1000);
    } finally {
      clearInterval(sampler);
    }
    const usage = this.usageSince(usageBefore);
    // Without the database the final figures come from these metrics, so they must be had; with it, only the phases.
    const after = await scrape(`${this.target.url}/metrics`).catch((err: unknown) => {
      if (!this.target.db) throw err;
      return [] as Sample[];
    });
    if (!drained) say(`${label}: not every order was final after ${this.settings.drainTimeoutS} s`);
    const cost = costModel(sent.length, usage, countersBefore, await this.counters());

    const acceptPhases = acceptPhasesBetween(before, after);
    const base = { workers, offeredRate: rate, post, timeline, usage, cost, acceptPhases };
    if (this.target.db) return { ...base, ...(await finalFiguresFromDatabase(this.target, sent)) };
    return {
      ...base,
      ...finalFiguresFromMetrics(before, after, sent.length, (performance.now() - started) / 1000),
    };
  }

  /** Counters summed over every process the pipeline has, and the database's commits. */
  private async counters(): Promise<Counters> {
    const samples = await Promise.all(
      this.target.metricsUrls().map((url) => scrape(url).catch(() => [] as Sample[])),
    );
    const sum = (name: string) => samples.reduce((n, s) => n + valueOf(s, name), 0);
    let commits: number | undefined;
    if (this.target.db) {
      // PostgreSQL flushes a backend's counters when it goes idle, at most once a second: let them land.
      await new Promise((r) => setTimeout(r, 1200));
      const { rows } = await this.target.db.raw<{ rows: { n: number }[] }>(
        'select xact_commit::float8 as n from pg_stat_database where datname = current_database()',
      );
      commits = rows[0]?.n;
    }
    return {
      statements: sum('comanda_db_queries_total'),
      published: sum('comanda_outbox_published_total'),
      consumed: sum('comanda_messages_consumed_total'),
      orderTransactions: sum('comanda_order_commit_group_size_count'),
      commits,
    };
  }

  /** Orders final so far, as counted by every process that finishes orders (the workers, or the api). */
  private async finalCount(): Promise<number> {
    const counts = await Promise.all(
      this.target.metricsUrls().map(async (url) => valueOf(await scrape(url), 'comanda_orders_final_total')),
    );
    return counts.reduce((a, b) => a + b, 0);
  }

  private async step(run: () => Promise<LoadResult>): Promise<AcceptStep> {
    const before = this.usageMark();
    const result = await run();
    return { ...result, usage: this.usageSince(before) };
  }

  /** Posts new orders, open loop at `rate` or closed loop when no rate is given. */
  private async postOrders(options: {
    rate?: number;
    durationS?: number;
    label?: string;
    quiet?: boolean;
    record?: SentOrder[];
  }): Promise<LoadResult> {
    const orders = new Map<number, SentOrder>();
    const label =
      options.label ??
      (options.rate ? `accept ${options.rate}/s` : `accept max c=${this.settings.concurrency}`);
    const common = {
      url: this.target.url,
      durationS: options.durationS ?? this.settings.durationS,
      concurrency: this.settings.concurrency,
      ok: (status: number) => status === 201,
      make: (i: number) => {
        const order = this.newOrder(i);
        orders.set(i, order);
        return orderSpec(order);
      },
      onResponse: (i: number, res: { status: number } | undefined) => {
        const order = orders.get(i);
        orders.delete(i);
        if (!order || res?.status !== 201) return;
        if (this.accepted.length < REPLAY_POOL_MAX) this.accepted.push(order);
        options.record?.push(order);
      },
      onProgress: options.quiet
        ? undefined
        : (p: Parameters<typeof showProgress>[1]) => showProgress(label, p),
    };
    const result = options.rate
      ? await openLoop({ ...common, rate: options.rate })
      : await closedLoop(common);
    if (!options.quiet) endProgress();
    return result;
  }

  private newOrder(i: number): SentOrder {
    const products = this.target.productIds;
    const lines = 1 + (i % 3);
    const first = Math.floor(Math.random() * products.length);
    const items = Array.from({ length: Math.min(lines, products.length) }, (_, k) => ({
      product_id: products[(first + k * 17) % products.length],
      quantity: 1 + ((i + k) % 3),
    }));
    const orderId = randomUUID();
    return {
      token: this.target.tokens[i % this.target.tokens.length],
      key: randomUUID(),
      body: Buffer.from(JSON.stringify({ id: orderId, items })),
      orderId,
      sentAt: Date.now(),
    };
  }

  private async drain(): Promise<void> {
    if (!(await this.target.drain(this.settings.drainTimeoutS * 1000))) {
      say(`warning: the pipeline still had work in hand after ${this.settings.drainTimeoutS} s; going on`);
    }
  }

  private usageMark() {
    const processes = new Map(this.target.processes().map((p) => [p.pid, processUsage(p.pid)]));
    return { processes, own: ownUsage(), machine: machineCpu(), services: serviceCpu() };
  }

  private usageSince(mark: ReturnType<Scenarios['usageMark']>): StepUsage {
    const machine = machineCpu();
    const own = ownUsage();
    const processes: StepUsage['processes'] = this.target.processes().map((p) => {
      const now = processUsage(p.pid);
      const then = mark.processes.get(p.pid);
      return {
        name: p.name,
        peakRssMb: now?.peakRssMb ?? Number.NaN,
        cpuS: (now?.cpuS ?? 0) - (then?.cpuS ?? 0),
      };
    });
    processes.push({
      name: 'bench (load generator)',
      peakRssMb: own.peakRssMb,
      cpuS: own.cpuS - mark.own.cpuS,
    });
    for (const service of serviceCpuSince(mark.services, serviceCpu())) {
      processes.push({ ...service, peakRssMb: Number.NaN, service: true });
    }
    const total = machine.total - mark.machine.total;
    return { processes, machineBusy: total > 0 ? (machine.busy - mark.machine.busy) / total : Number.NaN };
  }
}

function orderSpec(order: SentOrder): RequestSpec {
  return {
    method: 'POST',
    path: '/orders',
    headers: {
      'content-type': 'application/json',
      authorization: `Bearer ${order.token}`,
      'idempotency-key': order.key,
    },
    body: order.body,
  };
}

async function finalFiguresFromDatabase(target: Target, sent: SentOrder[]) {
  const rows: { id: string; status: string; created_ms: number; final_ms: number }[] = [];
  for (let i = 0; i < sent.length; i += 5000) {
    const ids = sent.slice(i, i + 5000).map((o) => o.orderId);
    const { rows: chunk } = await target.db!.raw<{ rows: typeof rows }>(
      `select id, status,
              extract(epoch from created_at)::float8 * 1000 as created_ms,
              extract(epoch from updated_at)::float8 * 1000 as final_ms
         from orders where id = any(?::uuid[])`,
      [ids],
    );
    rows.push(...chunk);
  }
  const sentAt = new Map(sent.map((o) => [o.orderId, o.sentAt]));
  const final = rows.filter((r) => r.status === 'CONFIRMED' || r.status === 'REJECTED');
  const receivedToFinal = final.map((r) => r.final_ms - r.created_ms);
  const postToFinal = final.map((r) => r.final_ms - (sentAt.get(r.id) ?? r.created_ms));
  const first = Math.min(...final.map((r) => r.created_ms));
  const last = Math.max(...final.map((r) => r.final_ms));
  return {
    orders: sent.length,
    final: final.length,
    notFinal: sent.length - final.length,
    rejected: final.filter((r) => r.status === 'REJECTED').length,
    finalThroughput: final.length && last > first ? final.length / ((last - first) / 1000) : 0,
    receivedToFinal: summarize(receivedToFinal),
    postToFinal: summarize(postToFinal),
    withinOneSecond: final.length ? postToFinal.filter((ms) => ms <= 1000).length / sent.length : 0,
    source: 'database' as const,
  };
}

/** The api's POST /orders phases between two scrapes of its /metrics; undefined when it has no such histogram. */
function acceptPhasesBetween(before: Sample[], after: Sample[]): AcceptPhase[] | undefined {
  const name = 'comanda_order_accept_phase_seconds';
  const result = IDEMPOTENT_PHASES.map((phase) => {
    const buckets = bucketsBetween(before, after, name, { phase });
    const delta = (metric: string) => valueOf(after, metric, { phase }) - valueOf(before, metric, { phase });
    const count = delta(`${name}_count`);
    return {
      phase,
      count,
      meanMs: count ? (delta(`${name}_sum`) / count) * 1000 : Number.NaN,
      p50Ms: histogramQuantile(0.5, buckets) * 1000,
      p99Ms: histogramQuantile(0.99, buckets) * 1000,
    };
  });
  return result.some((p) => p.count > 0) ? result : undefined;
}

/** Without the database, the figures come from the api's histogram: bucket-interpolated, so approximate. */
function finalFiguresFromMetrics(before: Sample[], after: Sample[], orders: number, seconds: number) {
  const name = 'comanda_order_received_to_final_seconds';
  const buckets = bucketsBetween(before, after, name);
  const final = valueOf(after, 'comanda_orders_final_total') - valueOf(before, 'comanda_orders_final_total');
  const q = (x: number) => histogramQuantile(x, buckets) * 1000;
  const within = buckets.find((x) => x.le === 1)?.count ?? 0;
  return {
    orders,
    final,
    notFinal: Math.max(0, orders - final),
    rejected:
      valueOf(after, 'comanda_orders_final_total', { status: 'REJECTED' }) -
      valueOf(before, 'comanda_orders_final_total', { status: 'REJECTED' }),
    finalThroughput: final / seconds,
    receivedToFinal: {
      count: final,
      mean: Number.NaN,
      p50: q(0.5),
      p95: q(0.95),
      p99: q(0.99),
      max: Number.NaN,
    },
    postToFinal: undefined,
    withinOneSecond: orders ? within / orders : 0,
    source: 'metrics' as const,
  };
}

interface Counters {
  statements: number;
  published: number;
  consumed: number;
  orderTransactions: number;
  commits: number | undefined;
}

function costModel(
  orders: number,
  usage: StepUsage,
  before: Counters,
  after: Counters,
): CostModel | undefined {
  if (orders === 0) return undefined;
  const per = (n: number) => n / orders;
  const cpuMsPerOrder = usage.processes.map((p) => ({ name: p.name, ms: per(p.cpuS * 1000) }));
  return {
    orders,
    cpuMsPerOrder,
    totalCpuMsPerOrder: cpuMsPerOrder
      .filter((p) => !p.name.startsWith('bench'))
      .reduce((sum, p) => sum + p.ms, 0),
    statementsPerOrder: after.statements ? per(after.statements - before.statements) : undefined,
    commitsPerOrder:
      after.commits !== undefined && before.commits !== undefined
        ? per(after.commits - before.commits)
        : undefined,
    ordersPerPostTransaction:
      after.orderTransactions > before.orderTransactions
        ? orders / (after.orderTransactions - before.orderTransactions)
        : undefined,
    publishedPerOrder: per(after.published - before.published),
    consumedPerOrder: per(after.consumed - before.consumed),
  };
}
