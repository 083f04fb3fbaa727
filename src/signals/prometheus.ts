import axios, { type AxiosInstance } from 'axios';
import { z } from 'zod';
import type { PrometheusSignal } from '../config/policy.js';
import { renderTemplate } from '../config/template.js';
import { errorText, type Measurement, type ProbeContext, type SignalProvider } from './provider.js';

const sampleValue = z.tuple([z.number(), z.string()]);
const queryResponse = z.discriminatedUnion('status', [
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

  async measure(signal: PrometheusSignal, ctx: ProbeContext): Promise<Measurement> {
    const started = performance.now();
    const done = (value: number | null, detail?: string): Measurement => ({ value, detail, latencyMs: performance.now() - started });
    const query = renderTemplate(signal.query, ctx.template);
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
    if (data.result.length === 0) return done(null, 'query returned no series');
    if (data.result.length > 1) return done(null, `query returned ${data.result.length} series; aggregate it to one (e.g. sum(...))`);
    return toValue(done, (data.result[0] as { value: [number, string] }).value[1]);
  }
}

function toValue(done: (v: number | null, d?: string) => Measurement, text: string): Measurement {
  const value = Number(text);
  if (Number.isNaN(value)) return done(null, 'query returned NaN (no traffic?)');
  return done(value);
}
