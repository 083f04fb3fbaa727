import axios, { type AxiosInstance } from 'axios';
import { z } from 'zod';
import type { PrometheusSignal } from '../config/policy.js';
import { renderTemplate } from '../config/template.js';
import { errorText, type Measurement, type ProbeContext, type SignalProvider } from './provider.js';

const sampleValue = z.tuple([z.number(), z.string()]);
export const queryResponse = z.discriminatedUnion('status', [
  z.object({
    status: z.literal('success'),
    data: z.discriminatedUnion('resultType', [
      z.object({ resultType: z.literal('vector'), result: z.array(z.object({ metric: z.record(z.string(), z.string()), value: sampleValue })) }),
      z.object({ resultType: z.literal('scalar'), result: sampleValue }),
      z.object({ resultType: z.literal('matrix'), result: z.array(z.unknown()) }),
      z.object({ resultType: z.literal('string'), result: sampleValue }),
    ]),
  }),
  z.object({ status: z.literal('error'), errorType: z.string().optional(), error: z.string().optional() }),
]);

/** Instant queries against the Prometheus HTTP API. An outage or empty result is no data. */
export class PrometheusProvider implements SignalProvider<PrometheusSignal> {
  readonly kind = 'prometheus';
  private readonly http: AxiosInstance;

  constructor(baseUrl: string, timeoutMs: number, http?: AxiosInstance) {
    this.http = http ?? axios.create({ baseURL: baseUrl, timeout: timeoutMs, validateStatus: () => true, maxRedirects: 0 });
  }

  /** The configured client, for range queries. */
  get client(): AxiosInstance {
    return this.http;
  }

  /**
   * For scope rules: how many of the query's series cross `perSeries` (a query that returns one
   * series per tenant or route). No series at all is no data.
   */
  async countBeyond(signal: PrometheusSignal, ctx: ProbeContext, beyond: (v: number) => boolean): Promise<Measurement> {
    const started = performance.now();
    const query = renderTemplate(signal.query, ctx.template, ctx.range);
    let body: unknown;
    try {
      const res = await this.http.get('/api/v1/query', { params: { query, time: ctx.at.getTime() / 1000 } });
      if (res.status !== 200) return { value: null, detail: `Prometheus answered HTTP ${res.status}`, latencyMs: performance.now() - started };
      body = res.data;
    } catch (err) {
      return { value: null, detail: `Prometheus unreachable: ${errorText(err)}`, latencyMs: performance.now() - started };
    }
    const parsed = queryResponse.safeParse(body);
    if (!parsed.success || parsed.data.status !== 'success' || parsed.data.data.resultType !== 'vector') {
      return { value: null, detail: 'expected an instant vector with one series per tenant or route', latencyMs: performance.now() - started };
    }
    const series = parsed.data.data.result;
    const values = series.map((r) => Number(r.value[1])).filter((v) => !Number.isNaN(v));
    if (!values.length) return { value: null, detail: 'query returned no series', latencyMs: performance.now() - started };
    const over = series.filter((r) => beyond(Number(r.value[1])));
    const labels = over.slice(0, 5).map((r) => Object.entries(r.metric).map(([k, v]) => `${k}=${v}`).join(',') || '{}');
    return { value: over.length, detail: `${over.length} of ${values.length} series: ${labels.join(' ')}${over.length > 5 ? ' …' : ''}`, latencyMs: performance.now() - started };
  }

  async measure(signal: PrometheusSignal, ctx: ProbeContext): Promise<Measurement> {
    const started = performance.now();
    const done = (value: number | null, detail?: string): Measurement => ({ value, detail, latencyMs: performance.now() - started });
    const query = renderTemplate(signal.query, ctx.template, ctx.range);
    let body: unknown;
    try {
      const res = await this.http.get('/api/v1/query', { params: { query, time: ctx.at.getTime() / 1000 } });
      body = res.data;
      if (res.status >= 500 || res.status === 429) return done(null, `Prometheus answered HTTP ${res.status}`);
    } catch (err) {
      return done(null, `Prometheus unreachable: ${errorText(err)}`);
    }
    const parsed = queryResponse.safeParse(body);
    if (!parsed.success) return done(null, 'Prometheus answered with an unexpected body');
    const answer = parsed.data;
    if (answer.status === 'error') return done(null, `query failed: ${answer.errorType ?? 'error'}: ${answer.error ?? ''}`.trim());
    const data = answer.data;
    if (data.resultType === 'scalar') return toValue(done, data.result[1]);
    if (data.resultType !== 'vector') return done(null, `query returned a ${data.resultType}; expected an instant vector or scalar`);
    return vectorMeasurement(data.result, done);
  }
}

const rangeResponse = z.object({
  status: z.literal('success'),
  data: z.object({ resultType: z.literal('matrix'), result: z.array(z.object({ metric: z.record(z.string(), z.string()), values: z.array(sampleValue) })) }),
});

/**
 * The average of a query over [end - rangeMs, end] from a range query at `stepMs` resolution:
 * the baseline a deployment is compared with. NaN points (no traffic) are skipped.
 */
export async function rangeAverage(
  provider: PrometheusProvider,
  query: string,
  end: Date,
  rangeMs: number,
  stepMs: number,
): Promise<{ value: number | null; points: number; detail?: string }> {
  const step = Math.max(stepMs, Math.ceil(rangeMs / 10_000)) / 1000; // Prometheus allows at most 11,000 points
  let body: unknown;
  try {
    const res = await provider.client.get('/api/v1/query_range', { params: { query, start: (end.getTime() - rangeMs) / 1000, end: end.getTime() / 1000, step } });
    body = res.data;
    if (res.status !== 200) return { value: null, points: 0, detail: `Prometheus answered HTTP ${res.status}` };
  } catch (err) {
    return { value: null, points: 0, detail: `Prometheus unreachable: ${errorText(err)}` };
  }
  const parsed = rangeResponse.safeParse(body);
  if (!parsed.success) return { value: null, points: 0, detail: 'Prometheus answered with an unexpected body' };
  const series = parsed.data.data.result;
  if (series.length !== 1) return { value: null, points: 0, detail: series.length ? `baseline query returned ${series.length} series; aggregate it to one` : 'no history before the deploy' };
  const values = (series[0] as { values: [number, string][] }).values.map(([, v]) => Number(v)).filter((v) => Number.isFinite(v));
  if (!values.length) return { value: null, points: 0, detail: 'no usable history before the deploy' };
  return { value: values.reduce((a, b) => a + b, 0) / values.length, points: values.length };
}

/**
 * The measurement of a service from the series its query returned: exactly one series is the
 * value; none, several or NaN are no data. Shared by the per-service and the batched queries.
 */
export function vectorMeasurement(series: readonly { value: [number, string] }[], done: (v: number | null, d?: string) => Measurement): Measurement {
  if (series.length === 0) return done(null, 'query returned no series');
  if (series.length > 1) return done(null, `query returned ${series.length} series; aggregate it to one (e.g. sum(...))`);
  return toValue(done, (series[0] as { value: [number, string] }).value[1]);
}

function toValue(done: (v: number | null, d?: string) => Measurement, text: string): Measurement {
  const value = Number(text);
  if (Number.isNaN(value)) return done(null, 'query returned NaN (no traffic?)');
  return done(value);
}
