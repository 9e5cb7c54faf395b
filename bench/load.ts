import type { IncomingHttpHeaders } from 'node:http';
import { Pool } from 'undici';
import { Samples, summarize, type LatencySummary } from './stats.ts';

/** One request the load generator sends. */
export interface RequestSpec {
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

export interface Response {
  status: number;
  headers: IncomingHttpHeaders;
}

export interface LoadOptions {
  url: string;
  durationS: number;
  /** Sockets kept open to the target: the most requests on the wire at once. */
  concurrency: number;
  /** Builds the i-th request. */
  make: (i: number) => RequestSpec;
  /** Sees each answer (or failure) of the i-th request; `latencyMs` as reported in the summary. */
  onResponse?: (i: number, res: Response | undefined, latencyMs: number) => void;
  /** Called about every 250 ms with what is done so far. */
  onProgress?: (p: Progress) => void;
  /** Status codes that count as success (default: any 2xx). */
  ok?: (status: number) => boolean;
}

export interface Progress {
  elapsedS: number;
  durationS: number;
  sent: number;
  ok: number;
  errors: number;
  inFlight: number;
}

export interface LoadResult {
  mode: 'open' | 'closed';
  /** Offered load (requests/s) in open-loop mode; null in closed-loop mode. */
  offeredRate: number | null;
  concurrency: number;
  durationS: number;
  sent: number;
  ok: number;
  errors: Record<string, number>;
  /** Successful answers per second, over the time from the first send to the last answer. */
  throughput: number;
  latency: LatencySummary;
  /** Requests the generator could not even start because too many were already waiting (open loop only). */
  shed: number;
  /**
   * The successful answers' latencies by the second they were due in (0: the first second): whether a high
   * percentile comes from a few bad seconds or from all of them.
   */
  latencyBySecond?: SecondSummary[];
}

export interface SecondSummary {
  t: number;
  count: number;
  p50: number;
  p99: number;
}

const REQUEST_TIMEOUT_MS = 30_000;
const DRAIN_TIMEOUT_MS = 60_000;

/**
 * Open-loop load: request i is due at start + i/rate whatever happened to the earlier ones, and its latency is
 * counted from that due time, not from when it left. A target that falls behind therefore shows its queueing in
 * the latencies instead of silently slowing the generator down (no coordinated omission).
 */
export async function openLoop(options: LoadOptions & { rate: number }): Promise<LoadResult> {
  const run = new Run(options);
  const interval = 1000 / options.rate;
  const total = Math.round(options.rate * options.durationS);
  const maxWaiting = Math.max(1000, options.concurrency * 20);
  let next = 0;
  let shed = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const due = Math.min(total, Math.floor((performance.now() - run.start) / interval) + 1);
      while (next < due) {
        const i = next++;
        if (run.inFlight >= maxWaiting) {
          shed++;
          run.fail(i, 'shed (generator backlog)', undefined);
          continue;
        }
        void run.send(i, run.start + i * interval);
      }
      if (next >= total) resolve();
      else setTimeout(tick, Math.max(0, Math.min(5, run.start + next * interval - performance.now())));
    };
    tick();
  });
  const result = await run.finish('open', options.rate);
  return { ...result, shed };
}

/** Closed-loop load: `concurrency` clients each send their next request as soon as the last one answered. */
export async function closedLoop(options: LoadOptions): Promise<LoadResult> {
  const run = new Run(options);
  const end = run.start + options.durationS * 1000;
  let next = 0;
  const client = async () => {
    while (performance.now() < end) {
      const i = next++;
      await run.send(i, performance.now());
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, client));
  return run.finish('closed', null);
}

class Run {
  readonly start = performance.now();
  /**
   * undici's pool rather than node:http's agent: the generator shares the cores with what it measures, and undici
   * spends about half the CPU per request (docs/performance.md).
   */
  readonly pool: Pool;
  readonly latencies = new Samples();
  private readonly bySecond: Samples[] = [];
  readonly errors: Record<string, number> = {};
  private readonly pending = new Set<Promise<void>>();
  private readonly ticker: NodeJS.Timeout | undefined;
  sent = 0;
  ok = 0;
  failed = 0;
  lastAnswer = this.start;

  constructor(private readonly options: LoadOptions) {
    this.pool = new Pool(options.url, {
      connections: options.concurrency,
      headersTimeout: REQUEST_TIMEOUT_MS,
      bodyTimeout: REQUEST_TIMEOUT_MS,
    });
    if (options.onProgress) {
      this.ticker = setInterval(() => options.onProgress!(this.progress()), 250);
    }
  }

  get inFlight(): number {
    return this.pending.size;
  }

  progress(): Progress {
    return {
      elapsedS: (performance.now() - this.start) / 1000,
      durationS: this.options.durationS,
      sent: this.sent,
      ok: this.ok,
      errors: this.failed,
      inFlight: this.pending.size,
    };
  }

  send(i: number, dueAt: number): Promise<void> {
    this.sent++;
    const spec = this.options.make(i);
    const p = this.answer(i, dueAt, spec);
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
    return p;
  }

  private async answer(i: number, dueAt: number, spec: RequestSpec): Promise<void> {
    let answer: Response;
    try {
      const res = await this.pool.request({
        path: spec.path,
        method: spec.method,
        headers: spec.headers,
        body: spec.body,
      });
      await res.body.dump();
      answer = { status: res.statusCode, headers: res.headers };
    } catch (err) {
      const e = err as Error & { code?: string };
      this.fail(i, e.code ?? e.message, undefined, performance.now() - dueAt);
      return;
    }
    const latencyMs = performance.now() - dueAt;
    this.lastAnswer = performance.now();
    if ((this.options.ok ?? isSuccess)(answer.status)) {
      this.ok++;
      this.latencies.push(latencyMs);
      const second = Math.max(0, Math.floor((dueAt - this.start) / 1000));
      (this.bySecond[second] ??= new Samples()).push(latencyMs);
      this.options.onResponse?.(i, answer, latencyMs);
    } else {
      this.fail(i, `HTTP ${answer.status}`, answer, latencyMs);
    }
  }

  fail(i: number, reason: string, res: Response | undefined, latencyMs = 0): void {
    this.failed++;
    this.errors[reason] = (this.errors[reason] ?? 0) + 1;
    this.options.onResponse?.(i, res, latencyMs);
  }

  async finish(mode: 'open' | 'closed', offeredRate: number | null): Promise<LoadResult> {
    const drained = Promise.all([...this.pending]);
    await Promise.race([drained, new Promise((r) => setTimeout(r, DRAIN_TIMEOUT_MS).unref())]);
    if (this.ticker) clearInterval(this.ticker);
    this.options.onProgress?.(this.progress());
    await this.pool.destroy();
    const seconds = Math.max(0.001, (this.lastAnswer - this.start) / 1000);
    return {
      mode,
      offeredRate,
      concurrency: this.options.concurrency,
      durationS: this.options.durationS,
      sent: this.sent,
      ok: this.ok,
      errors: this.errors,
      throughput: this.ok / seconds,
      latency: summarize(this.latencies.values()),
      shed: 0,
      latencyBySecond: Array.from(this.bySecond, (samples, t) => {
        const { count, p50, p99 } = summarize(samples?.values() ?? []);
        return { t, count, p50, p99 };
      }),
    };
  }
}

function isSuccess(status: number): boolean {
  return status >= 200 && status < 300;
}
