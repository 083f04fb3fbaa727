import { z } from 'zod';
import type { PrometheusSignal } from '../config/policy.js';
import { renderTemplate } from '../config/template.js';
import { httpStatusDetail, isRefused, sampleNumber, type PrometheusProvider } from './prometheus.js';
import type { Measurement, ProbeContext, SignalProvider } from './provider.js';

/** The evaluation times a replay samples at: `startMs`, `startMs + stepMs`, … up to `endMs`. */
export interface RangeGrid { startMs: number; endMs: number; stepMs: number }

/** One evaluation time's answer: a value, or no data with the reason. */
export interface PointAnswer { value: number | null; detail?: string }

/** A range query's answer per evaluation time, or the reason the whole query failed. */
export type RangeAnswer = { ok: true; points: Map<number, PointAnswer> } | { ok: false; detail: string };

const rangeResponse = z.discriminatedUnion('status', [
  z.object({
    status: z.literal('success'),
    data: z.object({
      resultType: z.literal('matrix'),
      result: z.array(z.object({ metric: z.record(z.string(), z.string()), values: z.array(z.tuple([z.number(), z.string()])) })),
    }),
  }),
  z.object({ status: z.literal('error'), errorType: z.string().optional(), error: z.string().optional() }),
]);

/** Prometheus returns at most 11,000 points per series; larger grids are fetched in chunks. */
const MAX_POINTS = 10_000;

/**
 * Runs `query` as range queries over the grid and reads each evaluation time the way an instant
 * query is read: one series is a value, none is "no series", several is "N series", NaN is no data,
 * ±Inf is a value. The grid is in host time; it is queried at the same moments on Prometheus's
 * clock (with the offset measured now) and the answer keyed back by host time.
 */
export async function queryRange(prometheus: PrometheusProvider, query: string, grid: RangeGrid): Promise<RangeAnswer> {
  let started = performance.now();
  const offset = await prometheus.clock.offsetMs(prometheus.timeoutMs);
  const perTime = new Map<number, string[]>();
  for (let chunk = grid.startMs; chunk <= grid.endMs; chunk += MAX_POINTS * grid.stepMs) {
    const end = Math.min(grid.endMs, chunk + (MAX_POINTS - 1) * grid.stepMs);
    const res = await prometheus.call('GET', '/api/v1/query_range', { query, start: (chunk + offset) / 1000, end: (end + offset) / 1000, step: grid.stepMs / 1000 }, started);
    started = performance.now();
    if (!res.ok) return { ok: false, detail: res.detail };
    if (res.status >= 500 || res.status === 429 || isRefused(res.status)) return { ok: false, detail: httpStatusDetail(res.status) };
    const parsed = rangeResponse.safeParse(res.body);
    if (!parsed.success) return { ok: false, detail: 'Prometheus answered with an unexpected body' };
    const answer = parsed.data;
    if (answer.status === 'error') return { ok: false, detail: `query failed: ${answer.errorType ?? 'error'}: ${answer.error ?? ''}`.trim() };
    for (const series of answer.data.result) {
      for (const [t, v] of series.values) {
        const at = Math.round(t * 1000) - offset;
        const seen = perTime.get(at) ?? [];
        seen.push(v);
        perTime.set(at, seen);
      }
    }
  }
  const points = new Map<number, PointAnswer>();
  for (let at = grid.startMs; at <= grid.endMs; at += grid.stepMs) points.set(at, readPoint(perTime.get(at) ?? []));
  return { ok: true, points };
}

function readPoint(values: string[]): PointAnswer {
  if (values.length === 0) return { value: null, detail: 'query returned no series' };
  if (values.length > 1) return { value: null, detail: `query returned ${values.length} series; aggregate it to one (e.g. sum(...))` };
  const value = sampleNumber(values[0] as string);
  return Number.isNaN(value) ? { value: null, detail: 'query returned NaN (no traffic?)' } : { value };
}

/**
 * A Prometheus provider that answers from history: each distinct rendered query is fetched once
 * as a range query over the grid, then every `measure` at a grid time reads its point. Plugged
 * into the same sampling code as the live provider, so a replay measures what the daemon would.
 */
export class PrometheusHistory implements SignalProvider<PrometheusSignal> {
  readonly kind = 'prometheus';
  private readonly answers = new Map<string, Promise<RangeAnswer>>();

  constructor(private readonly prometheus: PrometheusProvider, readonly grid: RangeGrid) {}

  async measure(signal: PrometheusSignal, ctx: ProbeContext): Promise<Measurement> {
    const answer = await this.fetch(renderTemplate(signal.query, ctx.template, ctx.range));
    if (!answer.ok) return { value: null, detail: answer.detail, latencyMs: 0 };
    const point = answer.points.get(ctx.at.getTime());
    return point ? { ...point, latencyMs: 0 } : { value: null, detail: 'not on the replay grid', latencyMs: 0 };
  }

  /** Queries whose range query failed as a whole (unreachable, HTTP error, PromQL error). */
  async failures(): Promise<{ query: string; detail: string }[]> {
    const out: { query: string; detail: string }[] = [];
    for (const [query, pending] of this.answers) {
      const answer = await pending;
      if (!answer.ok) out.push({ query, detail: answer.detail });
    }
    return out;
  }

  private fetch(query: string): Promise<RangeAnswer> {
    let pending = this.answers.get(query);
    if (!pending) this.answers.set(query, (pending = queryRange(this.prometheus, query, this.grid)));
    return pending;
  }
}
