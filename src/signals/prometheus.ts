import axios, { type AxiosInstance } from 'axios';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { PrometheusSignal } from '../config/policy.js';
import { renderTemplate } from '../config/template.js';
import { boundedRequest, type ExchangeFailure } from './bounded-request.js';
import { PrometheusClock, type ClockReading } from './prometheus-clock.js';
import type { Measurement, ProbeContext, SignalProvider } from './provider.js';

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

/**
 * The largest Prometheus answer read: a batched query over a thousand services is a few hundred
 * KiB, a replay chunk of 10,000 points about 350 KiB per series. Past this the answer is no data.
 */
export const PROMETHEUS_MAX_BODY_BYTES = 10 * 1024 * 1024;

/**
 * A sample value as Prometheus writes it: a decimal, `+Inf`, `-Inf` or `NaN`. ±Inf is a value
 * (a ratio over zero, a quantile past the top bucket) that breaches `above` or `below`; only NaN
 * is no data. `Number('+Inf')` would be NaN, and the worst case would never breach.
 */
export function sampleNumber(text: string): number {
  switch (text.trim()) {
    case '+Inf':
    case 'Inf':
      return Number.POSITIVE_INFINITY;
    case '-Inf':
      return Number.NEGATIVE_INFINITY;
    case '':
      return Number.NaN;
    default:
      return Number(text);
  }
}

/** A Prometheus answer read, or why there is none (unreachable, too slow, too large, HTTP error). */
export type PrometheusAnswer = { ok: true; status: number; body: unknown } | { ok: false; kind: ExchangeFailure['kind']; detail: string };

export interface PrometheusOptions {
  /** The HTTP client (default: axios for the base URL); tests pass a fake. */
  http?: AxiosInstance;
  /** Where a clock difference with Prometheus is warned about. */
  log?: Logger;
  /** The host's clock, ms since the epoch (default `Date.now`). */
  now?: () => number;
  /** Another provider's clock, so that two providers of one Prometheus measure the offset once. */
  clock?: PrometheusClock;
  /** The largest answer read (default PROMETHEUS_MAX_BODY_BYTES). */
  maxBodyBytes?: number;
}

/**
 * Instant and range queries against the Prometheus HTTP API. An outage, a slow or oversized
 * answer, or an empty result is no data. Callers pass host times; queries are evaluated at the
 * same moment on Prometheus's clock (see PrometheusClock). `timeoutMs` bounds each request as
 * a whole, body included.
 */
export class PrometheusProvider implements SignalProvider<PrometheusSignal> {
  readonly kind = 'prometheus';
  readonly clock: PrometheusClock;
  private readonly http: AxiosInstance;
  private readonly maxBodyBytes: number;

  constructor(readonly baseUrl: string, readonly timeoutMs: number, opts: PrometheusOptions = {}) {
    this.http = opts.http ?? axios.create({ baseURL: baseUrl, validateStatus: () => true, maxRedirects: 0 });
    this.maxBodyBytes = opts.maxBodyBytes ?? PROMETHEUS_MAX_BODY_BYTES;
    this.clock = opts.clock ?? new PrometheusClock({ read: () => this.readClock(), now: opts.now, log: opts.log });
  }

  /** The configured client. */
  get client(): AxiosInstance {
    return this.http;
  }

  /**
   * One request to the API, bounded as a whole by the body limit and by the timeout counted from
   * `startedAt` (`performance.now()`; default: now), so that waiting for the first clock
   * measurement comes out of the same budget. Never rejects.
   */
  async call(method: 'GET' | 'POST', path: string, params: Record<string, string | number>, startedAt = performance.now()): Promise<PrometheusAnswer> {
    const timeout: ExchangeFailure = { kind: 'timeout', detail: `no complete response within ${this.timeoutMs} ms` };
    const leftMs = this.timeoutMs - (performance.now() - startedAt);
    if (leftMs < 1) return { ok: false, kind: timeout.kind, detail: failureDetail(timeout) };
    // POST for long queries: a regex of a thousand names does not fit in a URL.
    const config = method === 'GET'
      ? { method, url: path, params }
      : { method, url: path, data: new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)])).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } };
    const exchange = await boundedRequest(this.http, config, { timeoutMs: leftMs, maxBytes: this.maxBodyBytes });
    if (!exchange.ok) return { ok: false, kind: exchange.failure.kind, detail: failureDetail(exchange.failure.kind === 'timeout' ? timeout : exchange.failure) };
    return { ok: true, status: exchange.res.status, body: exchange.res.data };
  }

  /** A host time as the same moment on Prometheus's clock, waiting for the first measurement within the timeout. */
  async prometheusTime(hostMs: number): Promise<number> {
    return this.clock.toPrometheus(hostMs, this.timeoutMs);
  }

  /** An instant query at a host time, evaluated at that moment on Prometheus's clock; the timeout bounds both. */
  async instantQuery(query: string, at: Date): Promise<PrometheusAnswer> {
    const started = performance.now();
    const time = await this.prometheusTime(at.getTime());
    return this.call('GET', '/api/v1/query', { query, time: time / 1000 }, started);
  }

  /**
   * For scope rules: how many of the query's series cross `perSeries` (a query that returns one
   * series per tenant or route). A +Inf or -Inf series counts like any value; no series at all,
   * or only NaN, is no data.
   */
  async countBeyond(signal: PrometheusSignal, ctx: ProbeContext, beyond: (v: number) => boolean): Promise<Measurement> {
    const started = performance.now();
    const done = (value: number | null, detail?: string): Measurement => ({ value, detail, latencyMs: performance.now() - started });
    const answer = await this.instantQuery(renderTemplate(signal.query, ctx.template, ctx.range), ctx.at);
    if (!answer.ok) return done(null, answer.detail);
    if (answer.status !== 200) return done(null, httpStatusDetail(answer.status));
    const parsed = queryResponse.safeParse(answer.body);
    if (!parsed.success || parsed.data.status !== 'success' || parsed.data.data.resultType !== 'vector') {
      return done(null, 'expected an instant vector with one series per tenant or route');
    }
    const series = parsed.data.data.result.map((r) => ({ metric: r.metric, value: sampleNumber(r.value[1]) })).filter((r) => !Number.isNaN(r.value));
    if (!series.length) return done(null, 'query returned no series');
    const over = series.filter((r) => beyond(r.value));
    const labels = over.slice(0, 5).map((r) => Object.entries(r.metric).map(([k, v]) => `${k}=${v}`).join(',') || '{}');
    return done(over.length, `${over.length} of ${series.length} series: ${labels.join(' ')}${over.length > 5 ? ' …' : ''}`);
  }

  async measure(signal: PrometheusSignal, ctx: ProbeContext): Promise<Measurement> {
    const started = performance.now();
    const done = (value: number | null, detail?: string): Measurement => ({ value, detail, latencyMs: performance.now() - started });
    const answer = await this.instantQuery(renderTemplate(signal.query, ctx.template, ctx.range), ctx.at);
    if (!answer.ok) return done(null, answer.detail);
    if (answer.status >= 500 || answer.status === 429 || isRefused(answer.status)) return done(null, httpStatusDetail(answer.status));
    const parsed = queryResponse.safeParse(answer.body);
    if (!parsed.success) return done(null, 'Prometheus answered with an unexpected body');
    const body = parsed.data;
    if (body.status === 'error') return done(null, `query failed: ${body.errorType ?? 'error'}: ${body.error ?? ''}`.trim());
    const data = body.data;
    if (data.resultType === 'scalar') return toValue(done, data.result[1]);
    if (data.resultType !== 'vector') return done(null, `query returned a ${data.resultType}; expected an instant vector or scalar`);
    return vectorMeasurement(data.result, done);
  }

  /** Prometheus's own "now": the evaluation time of `time()` asked without a time. */
  private async readClock(): Promise<ClockReading> {
    const answer = await this.call('GET', '/api/v1/query', { query: 'time()' });
    if (!answer.ok) return { ok: false, detail: answer.detail };
    if (answer.status !== 200) return { ok: false, detail: httpStatusDetail(answer.status) };
    const parsed = queryResponse.safeParse(answer.body);
    if (!parsed.success || parsed.data.status !== 'success' || parsed.data.data.resultType !== 'scalar') {
      return { ok: false, detail: 'Prometheus answered time() with an unexpected body' };
    }
    return { ok: true, prometheusMs: parsed.data.data.result[0] * 1000 };
  }
}

function failureDetail(failure: ExchangeFailure): string {
  switch (failure.kind) {
    case 'timeout': return `Prometheus: ${failure.detail}`;
    case 'too-large': return `Prometheus: ${failure.detail}; aggregate the query to fewer series`;
    default: return `Prometheus unreachable: ${opensslReason(failure.detail)}${tlsHint(failure.detail)}`;
  }
}

/**
 * OpenSSL's own error lines (`807C…:error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert
 * certificate required:…/rec_layer_s3.c:1601:SSL alert number 116`) shortened to their reason.
 */
function opensslReason(detail: string): string {
  return detail.replace(/[0-9A-F]{8,}:error:[0-9A-F]+:[^:\n]*:[^:\n]*:([^:\n]+):[^\n]*\n?/g, '$1').trim();
}

/** 401 and 403: Prometheus (or the proxy before it) refused the request for who sent it, not for the query. */
export function isRefused(status: number): boolean {
  return status === 401 || status === 403;
}

/** What an HTTP status that is not an answer means, with the setting to look at when the request was refused. */
export function httpStatusDetail(status: number): string {
  if (status === 401) return 'Prometheus answered HTTP 401 Unauthorized: credentials missing or wrong (prometheus.basic_auth or prometheus.authorization)';
  if (status === 403) return 'Prometheus answered HTTP 403 Forbidden: the credentials or tenant (prometheus.headers) are not allowed';
  return `Prometheus answered HTTP ${status}`;
}

/** The setting to look at when a TLS handshake failed, by the error Node gave. */
function tlsHint(detail: string): string {
  if (/ERR_TLS_CERT_ALTNAME_INVALID/.test(detail)) return ' (its certificate does not name this host: set prometheus.tls_config.server_name to a name it carries)';
  if (/SELF_SIGNED|UNABLE_TO_VERIFY_LEAF|UNABLE_TO_GET_ISSUER|CERT_UNTRUSTED/.test(detail)) return ' (its certificate is not signed by a trusted CA: set prometheus.tls_config.ca_file)';
  if (/CERTIFICATE_REQUIRED|alert (bad|unknown) certificate|ALERT_BAD_CERTIFICATE/i.test(detail)) return ' (it asks for a client certificate: set prometheus.tls_config.cert_file and key_file)';
  return '';
}

const rangeResponse = z.object({
  status: z.literal('success'),
  data: z.object({ resultType: z.literal('matrix'), result: z.array(z.object({ metric: z.record(z.string(), z.string()), values: z.array(sampleValue) })) }),
});

/**
 * The average of a query over [end - rangeMs, end] (host time) from a range query at `stepMs`
 * resolution: the baseline a deployment is compared with. NaN points (no traffic) are skipped;
 * ±Inf points are values, so one +Inf point makes the average +Inf (a baseline no threshold can
 * be derived from) and the detail says how many there were.
 */
export async function rangeAverage(
  provider: PrometheusProvider,
  query: string,
  end: Date,
  rangeMs: number,
  stepMs: number,
): Promise<{ value: number | null; points: number; detail?: string }> {
  const step = Math.max(stepMs, Math.ceil(rangeMs / 10_000)) / 1000; // Prometheus allows at most 11,000 points
  const started = performance.now();
  const endMs = await provider.prometheusTime(end.getTime());
  const answer = await provider.call('GET', '/api/v1/query_range', { query, start: (endMs - rangeMs) / 1000, end: endMs / 1000, step }, started);
  if (!answer.ok) return { value: null, points: 0, detail: answer.detail };
  if (answer.status !== 200) return { value: null, points: 0, detail: httpStatusDetail(answer.status) };
  const parsed = rangeResponse.safeParse(answer.body);
  if (!parsed.success) return { value: null, points: 0, detail: 'Prometheus answered with an unexpected body' };
  const series = parsed.data.data.result;
  if (series.length !== 1) return { value: null, points: 0, detail: series.length ? `baseline query returned ${series.length} series; aggregate it to one` : 'no history before the deploy' };
  const values = (series[0] as { values: [number, string][] }).values.map(([, v]) => sampleNumber(v)).filter((v) => !Number.isNaN(v));
  if (!values.length) return { value: null, points: 0, detail: 'no usable history before the deploy' };
  const value = values.reduce((a, b) => a + b, 0) / values.length;
  const infinite = values.filter((v) => !Number.isFinite(v)).length;
  const detail = infinite ? `${infinite} of ${values.length} points were ${infiniteSigns(values)}` : undefined;
  if (Number.isNaN(value)) return { value: null, points: values.length, detail: `${detail}; they have no average` };
  return detail ? { value, points: values.length, detail } : { value, points: values.length };
}

function infiniteSigns(values: readonly number[]): string {
  const plus = values.includes(Number.POSITIVE_INFINITY);
  const minus = values.includes(Number.NEGATIVE_INFINITY);
  return plus && minus ? '+Inf or -Inf' : plus ? '+Inf' : '-Inf';
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
  const value = sampleNumber(text);
  if (Number.isNaN(value)) return done(null, 'query returned NaN (no traffic?)');
  return done(value);
}
