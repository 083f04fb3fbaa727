import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { PrometheusSignal } from '../config/policy.js';
import { RANGE_VAR } from '../config/template.js';
import { planBatch, type BatchPlan, type NoBatch } from './batch-promql.js';
import { httpStatusDetail, isRefused, PrometheusProvider, queryResponse, vectorMeasurement } from './prometheus.js';
import type { Measurement, ProbeContext } from './provider.js';
import type { ProviderRegistry } from './registry.js';

/** How the watch loop batches Prometheus queries. */
export interface BatchOptions {
  /** Off: one query per service and rule, as without a batcher (the benchmark's baseline). */
  enabled: boolean;
  /**
   * How long a batch stays open for ticks arriving just after the first one, by watch interval.
   * A batch is evaluated at its first member's tick time, so a later member's sample is at most
   * this much older than its tick. Default: interval / 50, between 10 ms and 100 ms.
   */
  lingerMs(intervalMs: number): number;
  /**
   * A tick arriving this long after its template's last batch closed (a tick that ran late) is
   * answered from that batch, which asked for every service seen on the template, instead of
   * waiting for the next one: its sample is at most this much older than its tick. Default:
   * interval / 10, between the linger and 500 ms.
   */
  recentMs(intervalMs: number): number;
}

export const defaultBatchOptions: BatchOptions = {
  enabled: true,
  lingerMs: defaultLinger,
  recentMs: (intervalMs) => Math.min(500, Math.max(defaultLinger(intervalMs), Math.round(intervalMs / 10))),
};

function defaultLinger(intervalMs: number): number {
  return Math.min(100, Math.max(10, Math.round(intervalMs / 50)));
}

/**
 * ROLLGUARD_BATCH=off disables batching (`on` or unset: batched); ROLLGUARD_BATCH_LINGER_MS fixes
 * how long a batch stays open. Any other value is an error naming the variable, not a silent default.
 */
export function batchOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): BatchOptions {
  const mode = env.ROLLGUARD_BATCH?.trim();
  if (mode && mode !== 'on' && mode !== 'off') throw new Error(`ROLLGUARD_BATCH: expected on or off, got "${mode}"`);
  const linger = env.ROLLGUARD_BATCH_LINGER_MS?.trim();
  const fixed = Number(linger);
  if (linger && !(Number.isFinite(fixed) && fixed > 0)) throw new Error(`ROLLGUARD_BATCH_LINGER_MS: expected a number of milliseconds above 0, got "${linger}"`);
  return {
    enabled: mode !== 'off',
    lingerMs: linger ? () => fixed : defaultBatchOptions.lingerMs,
    recentMs: defaultBatchOptions.recentMs,
  };
}

interface Waiter { value: string; started: number; resolve: (m: Measurement) => void }
interface Pending { id: number; plan: BatchPlan; evalAt: number; waiters: Waiter[] }
type Series = { value: [number, string] }[];
/** The last batch of a template: which services it asked for, and its answer split by service (undefined when it failed). */
interface Recent { id: number; evalAt: number; values: ReadonlySet<string>; answer: Promise<Map<string, Series> | undefined> }
/** The template's main rhythm: the last batch that most of its services were in. */
interface Anchor { id: number; evalAt: number; size: number; periodMs: number }

const RANGE = new RegExp(`\\{\\{\\s*${RANGE_VAR}\\s*\\}\\}`, 'g');

/** Counters of the batcher, on rollguard's own /metrics. */
interface BatchMetrics {
  queries: Counter<'mode'>;
  fallbacks: Counter<'reason'>;
}

function batchMetrics(registry: Registry | undefined): BatchMetrics {
  const registers = registry ? [registry] : [];
  const existing = registry?.getSingleMetric('rollguard_prometheus_queries_total') as Counter<'mode'> | undefined;
  const m: BatchMetrics = {
    queries: existing ?? new Counter({
      name: 'rollguard_prometheus_queries_total',
      help: 'Instant queries the watch loop sent to Prometheus: batch (one for many services), single (a service alone on its template), fallback (per service: the template cannot be batched safely, or the batch failed).',
      labelNames: ['mode'],
      registers,
    }),
    fallbacks: (registry?.getSingleMetric('rollguard_prometheus_batch_fallbacks_total') as Counter<'reason'> | undefined) ?? new Counter({
      name: 'rollguard_prometheus_batch_fallbacks_total',
      help: 'Per-service queries made because a template could not be batched safely (unbatchable; the debug log says why) or a batched query failed (batch_failed).',
      labelNames: ['reason'],
      registers,
    }),
  };
  // Every series at 0 from the start; the labels take these values only.
  for (const mode of ['batch', 'single', 'fallback']) m.queries.inc({ mode }, 0);
  for (const reason of ['unbatchable', 'batch_failed']) m.fallbacks.inc({ reason }, 0);
  return m;
}

/**
 * A Prometheus provider for the watch loop that answers the samples of services sharing a query
 * template from one query per slot: `service="{{service}}"` becomes `service=~"a|b|c"`, every
 * aggregation keeps `by (service)`, and the result is split by that label (see batch-promql.ts).
 * A service alone on its template is queried exactly as without batching, at its tick's time.
 */
export class BatchingPrometheusProvider extends PrometheusProvider {
  private readonly plans = new Map<string, BatchPlan | NoBatch>();
  /** Template → value → when it was last asked for: who shares the template now. */
  private readonly members = new Map<string, Map<string, number>>();
  /** Open batches by template. */
  private readonly open = new Map<string, Pending[]>();
  private readonly anchors = new Map<string, Anchor>();
  /** Template → value → the batch the service was last answered from. */
  private readonly lastBatch = new Map<string, Map<string, number>>();
  private readonly recent = new Map<string, Recent>();
  private readonly pruned = new Map<string, number>();
  private nextId = 1;
  private readonly m: BatchMetrics;

  constructor(
    private readonly base: PrometheusProvider,
    private readonly opts: BatchOptions,
    private readonly log: Logger | undefined,
    registry: Registry | undefined,
  ) {
    super(base.baseUrl, base.timeoutMs, { http: base.client, clock: base.clock });
    this.m = batchMetrics(registry);
  }

  override async measure(signal: PrometheusSignal, ctx: ProbeContext): Promise<Measurement> {
    const intervalMs = ctx.intervalMs;
    if (!this.opts.enabled || intervalMs === undefined) return this.single(signal, ctx, 'single');
    const template = ctx.range === undefined ? signal.query : signal.query.replace(RANGE, ctx.range);
    let plan = this.plans.get(template);
    if (!plan) {
      plan = planBatch(template);
      this.plans.set(template, plan);
      if (plan.kind === 'single') this.log?.debug({ signal: signal.name, reason: plan.reason, query: template }, 'query template not batched; one query per service');
    }
    if (plan.kind === 'single') {
      this.m.fallbacks.inc({ reason: 'unbatchable' });
      return this.single(signal, ctx, 'fallback');
    }
    const value = ctx.template[plan.variable];
    const at = ctx.at.getTime();
    let seen = this.members.get(template);
    if (!seen) this.members.set(template, (seen = new Map()));
    seen.set(value, at);
    if (at - (this.pruned.get(template) ?? 0) > intervalMs) {
      this.pruned.set(template, at);
      for (const [v, t] of seen) if (at - t > 2 * intervalMs + 1_000) seen.delete(v);
    }
    if (seen.size < 2) return this.single(signal, ctx, 'single');

    // Ticks of the services in one batch end together, so they come back together one interval
    // later and share a batch again without waiting. A service outside that rhythm (a new watch)
    // waits once, at most one interval, for the rhythm's next batch, and stays in it from then on.
    const linger = this.opts.lingerMs(intervalMs);
    const anchor = this.anchors.get(template);
    const inRhythm = anchor !== undefined && this.lastBatch.get(template)?.get(value) === anchor.id;
    const maxWait = inRhythm ? linger : intervalMs;
    const open = this.open.get(template) ?? [];
    // A tick that ran late only because thousands were due at once is judged by its due time.
    const due = ctx.dueAt !== undefined && ctx.dueAt <= at && at - ctx.dueAt <= intervalMs ? ctx.dueAt : at;
    let batch = open.find((b) => b.evalAt >= due - linger && b.evalAt <= at + maxWait);
    const last = this.recent.get(template);
    // Never the same answer twice to one service: that would count one evaluation as two samples.
    const answeredBefore = this.lastBatch.get(template)?.get(value) === last?.id;
    if (!batch && last && !answeredBefore && last.values.has(value) && at >= last.evalAt && due - last.evalAt <= this.opts.recentMs(intervalMs)) {
      const started = performance.now();
      const answer = await last.answer;
      if (answer) {
        this.lastBatch.get(template)?.set(value, last.id);
        return vectorMeasurement(answer.get(value) ?? [], (v, detail) => ({ value: v, detail, latencyMs: performance.now() - started, takenAt: last.evalAt }));
      }
      return this.single(signal, ctx, 'fallback');
    }
    if (!batch) {
      let evalAt = at;
      if (anchor && !inRhythm && anchor.evalAt >= at - 2 * intervalMs - anchor.periodMs) {
        let next = anchor.evalAt + anchor.periodMs;
        while (next < at - linger) next += anchor.periodMs;
        if (next <= at + intervalMs) evalAt = Math.max(at, next);
      }
      batch = this.openBatch(signal, ctx, template, plan, evalAt, Math.max(0, evalAt - at) + linger, intervalMs);
    }
    const joined = batch;
    const started = performance.now();
    return new Promise<Measurement>((resolve) => joined.waiters.push({ value, started, resolve }));
  }

  private openBatch(signal: PrometheusSignal, ctx: ProbeContext, template: string, plan: BatchPlan, evalAt: number, flushInMs: number, intervalMs: number): Pending {
    const batch: Pending = { id: this.nextId++, plan, evalAt, waiters: [] };
    const open = this.open.get(template) ?? [];
    open.push(batch);
    this.open.set(template, open);
    setTimeout(() => {
      const still = (this.open.get(template) ?? []).filter((b) => b !== batch);
      if (still.length) this.open.set(template, still);
      else this.open.delete(template);
      const members = this.lastBatch.get(template) ?? new Map<string, number>();
      this.lastBatch.set(template, members);
      for (const w of batch.waiters) members.set(w.value, batch.id);
      const anchor = this.anchors.get(template);
      if (!anchor || batch.waiters.length * 2 >= anchor.size || evalAtStale(anchor, batch.evalAt, intervalMs)) {
        const gap = anchor ? batch.evalAt - anchor.evalAt : 0;
        const periodMs = gap >= intervalMs && gap < 2 * intervalMs ? gap : anchor?.periodMs ?? intervalMs;
        this.anchors.set(template, { id: batch.id, evalAt: batch.evalAt, size: batch.waiters.length, periodMs });
      }
      const values = new Set(batch.waiters.map((w) => w.value));
      for (const [v, t] of this.members.get(template) ?? []) if (batch.evalAt - t <= 2 * intervalMs) values.add(v);
      const answer = this.flush(signal, ctx, batch, [...values]);
      this.recent.set(template, { id: batch.id, evalAt: batch.evalAt, values, answer });
    }, flushInMs);
    return batch;
  }

  private single(signal: PrometheusSignal, ctx: ProbeContext, mode: 'single' | 'fallback'): Promise<Measurement> {
    this.m.queries.inc({ mode });
    return super.measure(signal, ctx);
  }

  /** One query for every waiter of the slot, split by the plan's label. */
  private async flush(signal: PrometheusSignal, ctx: ProbeContext, batch: Pending, values: string[]): Promise<Map<string, Series> | undefined> {
    const { plan, waiters } = batch;
    const query = plan.render(values);
    const finish = (w: Waiter, value: number | null, detail?: string): Measurement => ({ value, detail, latencyMs: performance.now() - w.started, takenAt: batch.evalAt });
    const all = (value: number | null, detail: string): undefined => {
      for (const w of waiters) w.resolve(finish(w, value, detail));
      return undefined;
    };
    const fallBack = async (reason: string): Promise<undefined> => {
      this.log?.debug({ signal: signal.name, reason, services: waiters.length }, 'batched query failed; one query per service');
      await Promise.all(waiters.map(async (w) => {
        this.m.fallbacks.inc({ reason: 'batch_failed' });
        const at = new Date(batch.evalAt);
        w.resolve({ ...(await this.single(signal, { ...ctx, at, template: { ...ctx.template, [plan.variable]: w.value } }, 'fallback')), takenAt: batch.evalAt });
      }));
      return undefined;
    };
    this.m.queries.inc({ mode: 'batch' });
    const started = performance.now();
    const time = await this.prometheusTime(batch.evalAt);
    const res = await this.call('POST', '/api/v1/query', { query, time: time / 1000 }, started);
    // Answers split per service are smaller: a batch past the size limit is asked for per service.
    if (!res.ok) return res.kind === 'too-large' ? fallBack('answer too large') : all(null, res.detail);
    if (res.status >= 500 || res.status === 429 || isRefused(res.status)) return all(null, httpStatusDetail(res.status));
    const body = res.body;
    const parsed = queryResponse.safeParse(body);
    if (!parsed.success) return fallBack('unexpected body');
    const answer = parsed.data;
    if (answer.status === 'error') return fallBack(`${answer.errorType ?? 'error'}: ${answer.error ?? ''}`);
    if (answer.data.resultType !== 'vector') return fallBack(`a ${answer.data.resultType} result`);
    const bySeries = new Map<string, { value: [number, string] }[]>();
    for (const series of answer.data.result) {
      const v = series.metric[plan.label] ?? '';
      const list = bySeries.get(v);
      if (list) list.push(series);
      else bySeries.set(v, [series]);
    }
    for (const w of waiters) w.resolve(vectorMeasurement(bySeries.get(w.value) ?? [], (value, detail) => finish(w, value, detail)));
    return bySeries;
  }
}

function evalAtStale(anchor: Anchor, evalAt: number, intervalMs: number): boolean {
  return evalAt - anchor.evalAt > 2 * intervalMs + anchor.periodMs;
}

/**
 * The provider registry the watch loop samples with: the configured one, with Prometheus wrapped
 * in a batcher. Reads the registry at each call, so a policy reload that replaces the Prometheus
 * provider is followed.
 */
export class BatchedProviders {
  private wrapped?: { base: PrometheusProvider; batching: BatchingPrometheusProvider };
  private readonly options: BatchOptions;

  /** Reads the environment here, at start, so a bad value stops rollguard starting instead of failing ticks. */
  constructor(
    private readonly providers: ProviderRegistry,
    private readonly opts: { log?: Logger; registry?: Registry; options?: BatchOptions } = {},
  ) {
    this.options = opts.options ?? batchOptionsFromEnv();
  }

  get(): ProviderRegistry {
    const base = this.providers.prometheus;
    if (!(base instanceof PrometheusProvider)) return this.providers;
    if (this.wrapped?.base !== base) {
      this.wrapped = { base, batching: new BatchingPrometheusProvider(base, this.options, this.opts.log, this.opts.registry) };
    }
    return { ...this.providers, prometheus: this.wrapped.batching };
  }
}
