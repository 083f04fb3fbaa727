import type { Metrics } from '../api/metrics.js';
import type { ServicePolicy, Signal } from '../config/policy.js';
import type { TemplateValues } from '../config/template.js';
import type { Measurement } from '../signals/provider.js';
import { measure, type ProviderRegistry } from '../signals/registry.js';

/** Measures the named signals of a service concurrently, all at one evaluation time. */
export async function sampleSignals(
  providers: ProviderRegistry,
  metrics: Metrics,
  service: ServicePolicy,
  names: readonly string[],
  ctx: { template: TemplateValues; containerId: string; at: Date },
): Promise<Record<string, Measurement>> {
  const entries = await Promise.all(
    names.map(async (name): Promise<[string, Measurement]> => {
      const signal = service.signals[name] as Signal;
      const m = await measure(providers, signal, ctx);
      metrics.probeDuration.observe({ kind: signal.kind }, m.latencyMs / 1000);
      return [name, m];
    }),
  );
  return Object.fromEntries(entries);
}

/** Signals the rules of a service read, each once. */
export function ruleSignals(service: ServicePolicy): string[] {
  return [...new Set(service.rules.map((r) => r.signal))];
}

/** Signals the recovery criteria read, each once. */
export function recoverySignals(service: ServicePolicy): string[] {
  return [...new Set(service.recovery.map((r) => r.signal))];
}

export function valuesOf(measurements: Record<string, Measurement>): Record<string, number | null> {
  return Object.fromEntries(Object.entries(measurements).map(([k, m]) => [k, m.value]));
}
