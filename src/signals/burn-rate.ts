import type { PrometheusSignal, Rule } from '../config/policy.js';
import type { TemplateValues } from '../config/template.js';
import { formatDuration } from '../config/duration.js';
import type { Measurement, ProbeContext, SignalProvider } from './provider.js';

/**
 * One burn-rate sample: for each [short, long, factor] pair the error ratio over both ranges is
 * divided by the error budget (1 - slo); the pair's score is min(burn_short, burn_long) / factor,
 * and the sample is the highest score (> 1 means some pair burns too fast in both windows). A
 * pair with a window lacking data does not count; with no pair measurable there is no data.
 */
export async function measureBurnRate(
  provider: SignalProvider<PrometheusSignal>,
  signal: PrometheusSignal,
  burn: NonNullable<Rule['burnRate']>,
  ctx: { template: TemplateValues; containerId: string; at: Date; intervalMs?: number },
): Promise<Measurement> {
  const started = performance.now();
  const budget = 1 - burn.slo;
  const ranges = [...new Set(burn.windows.flatMap((w) => [w.shortMs, w.longMs]))];
  const ratios = new Map<number, Measurement>();
  await Promise.all(ranges.map(async (ms) => {
    const probe: ProbeContext & { range: string } = { ...ctx, range: formatDuration(ms) };
    ratios.set(ms, await provider.measure(signal, probe));
  }));
  let best: number | null = null;
  const parts: string[] = [];
  for (const w of burn.windows) {
    const s = ratios.get(w.shortMs)?.value ?? null;
    const l = ratios.get(w.longMs)?.value ?? null;
    if (s === null || l === null) {
      parts.push(`${formatDuration(w.shortMs)}/${formatDuration(w.longMs)}: no data`);
      continue;
    }
    const score = Math.min(s / budget, l / budget) / w.factor;
    parts.push(`${formatDuration(w.shortMs)}/${formatDuration(w.longMs)}: burn ${(s / budget).toFixed(2)}/${(l / budget).toFixed(2)} vs ${w.factor}`);
    best = best === null ? score : Math.max(best, score);
  }
  return { value: best, detail: parts.join('; '), latencyMs: performance.now() - started };
}
