import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { PrometheusSignal } from '../config/policy.js';
import { RANGE_VAR } from '../config/template.js';
import { planBatch, type BatchPlan, type NoBatch } from './batch-promql.js';
import { PrometheusProvider, queryResponse, vectorMeasurement } from './prometheus.js';
import { errorText, type Measurement, type ProbeContext } from './provider.js';
import type { ProviderRegistry } from './registry.js';

/** How the watch loop batches Prometheus queries. */
export interface BatchOptions {
  /** Off: one query per service and rule, as without a batcher (the benchmark's baseline). */
  enabled: boolean;
  /**
   * Width of the evaluation slots, by watch interval. Ticks of services that share a template and
   * fall into one slot share one query evaluated at the slot's end, so a sample is never older than
   * its tick and waits at most one slot. Default: interval / 5, between 50 ms and 500 ms.
   */
  windowMs(intervalMs: number): number;
}

export const defaultBatchOptions: BatchOptions = {
  enabled: true,
  windowMs: (intervalMs) => Math.min(500, Math.max(50, Math.round(intervalMs / 5))),
};

/** ROLLGUARD_BATCH=off disables batching; ROLLGUARD_BATCH_WINDOW_MS fixes the slot width. */
export function batchOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): BatchOptions {
  const fixed = Number(env.ROLLGUARD_BATCH_WINDOW_MS);
  return {
    enabled: env.ROLLGUARD_BATCH !== 'off',
    windowMs: Number.isFinite(fixed) && fixed > 0 ? () => fixed : defaultBatchOptions.windowMs,
  };
}

interface Waiter { value: string; started: number; resolve: (m: Measurement) => void }
interface Pending { plan: BatchPlan; template: string; evalAt: number; waiters: Waiter[] }

const RANGE = new RegExp(`\\{\\{\\s*${RANGE_VAR}\\s*\\}\\}`, 'g');

/** Counters of the batcher, on rollguard's own /metrics. */
interface BatchMetrics {
  queries: Counter<'mode'>;
  fallbacks: Counter<'reason'>;
}

function batchMetrics(registry: Registry | undefined): BatchMetrics {
  const registers = registry ? [registry] : [];
  const existing = registry?.getSingleMetric('rollguard_prometheus_queries_total') as Counter<'mode'> | undefined;
  return {
    queries: existing ?? new Counter({
      name: 'rollguard_prometheus_queries_total',
      help: 'Instant queries the watch loop sent to Prometheus: batch (one for many services), single (a service alone on its template), fallback (per service: the template cannot be batched safely, or the batch failed).',
      labelNames: ['mode'],
      registers,
    }),
    fallbacks: (registry?.getSingleMetric('rollguard_prometheus_batch_fallbacks_total') as Counter<'reason'> | undefined) ?? new Counter({
      name: 'rollguard_prometheus_batch_fallbacks_total',
      help: 'Per-service queries made because a template could not be batched safely or a batched query failed, by reason.',
      labelNames: ['reason'],
      registers,
    }),
  };
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
  private readonly pending = new Map<string, Pending>();
  private readonly m: BatchMetrics;

  constructor(
    private readonly base: PrometheusProvider,
    private readonly opts: BatchOptions,
    private readonly log: Logger | undefined,
    registry: Registry | undefined,
  ) {
    super('', 0, base.client);
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
      this.m.fallbacks.inc({ reason: plan.reason });
      return this.single(signal, ctx, 'fallback');
    }
    const value = ctx.template[plan.variable];
    const at = ctx.at.getTime();
    let seen = this.members.get(template);
    if (!seen) this.members.set(template, (seen = new Map()));
    seen.set(value, at);
    let company = false;
    for (const [v, t] of seen) {
      if (at - t > 2 * intervalMs + 1_000) seen.delete(v);
      else if (v !== value) company = true;
    }
    if (!company) return this.single(signal, ctx, 'single');

    const window = this.opts.windowMs(intervalMs);
    const evalAt = (Math.floor(at / window) + 1) * window;
    const key = `${evalAt}\u0000${template}`;
    let batch = this.pending.get(key);
    if (!batch) {
      const created: Pending = { plan, template, evalAt, waiters: [] };
      this.pending.set(key, (batch = created));
      setTimeout(() => {
        this.pending.delete(key);
        void this.flush(signal, ctx, created);
      }, Math.max(0, evalAt - at));
    }
    const started = performance.now();
    return new Promise<Measurement>((resolve) => batch.waiters.push({ value, started, resolve }));
  }

  private single(signal: PrometheusSignal, ctx: ProbeContext, mode: 'single' | 'fallback'): Promise<Measurement> {
    this.m.queries.inc({ mode });
    return super.measure(signal, ctx);
  }

  /** One query for every waiter of the slot, split by the plan's label. */
  private async flush(signal: PrometheusSignal, ctx: ProbeContext, batch: Pending): Promise<void> {
    const { plan, waiters } = batch;
    const query = plan.render(waiters.map((w) => w.value));
    const finish = (w: Waiter, value: number | null, detail?: string): Measurement => ({ value, detail, latencyMs: performance.now() - w.started });
    const all = (value: number | null, detail: string): void => { for (const w of waiters) w.resolve(finish(w, value, detail)); };
    const fallBack = async (reason: string): Promise<void> => {
      this.log?.debug({ signal: signal.name, reason, services: waiters.length }, 'batched query failed; one query per service');
      await Promise.all(waiters.map(async (w) => {
        this.m.fallbacks.inc({ reason: 'batch failed' });
        const at = new Date(batch.evalAt);
        w.resolve(await this.single(signal, { ...ctx, at, template: { ...ctx.template, [plan.variable]: w.value } }, 'fallback'));
      }));
    };
    this.m.queries.inc({ mode: 'batch' });
    let body: unknown;
    try {
      // POST: a regex of a thousand names does not fit in a URL.
      const res = await this.client.post('/api/v1/query', new URLSearchParams({ query, time: String(batch.evalAt / 1000) }).toString(), {
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      body = res.data;
      if (res.status >= 500 || res.status === 429) return all(null, `Prometheus answered HTTP ${res.status}`);
    } catch (err) {
      return all(null, `Prometheus unreachable: ${errorText(err)}`);
    }
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
  }
}

/**
 * The provider registry the watch loop samples with: the configured one, with Prometheus wrapped
 * in a batcher. Reads the registry at each call, so a policy reload that replaces the Prometheus
 * provider is followed.
 */
export class BatchedProviders {
  private wrapped?: { base: PrometheusProvider; batching: BatchingPrometheusProvider };

  constructor(
    private readonly providers: ProviderRegistry,
    private readonly opts: { log?: Logger; registry?: Registry; options?: BatchOptions } = {},
  ) {}

  get(): ProviderRegistry {
    const base = this.providers.prometheus;
    if (!(base instanceof PrometheusProvider)) return this.providers;
    if (this.wrapped?.base !== base) {
      this.wrapped = { base, batching: new BatchingPrometheusProvider(base, this.opts.options ?? batchOptionsFromEnv(), this.opts.log, this.opts.registry) };
    }
    return { ...this.providers, prometheus: this.wrapped.batching };
  }
}
