import type { Signal } from '../config/policy.js';
import type { Measurement, ProbeContext, SignalProvider } from './provider.js';

/** Signal kinds and their providers. A policy can only name kinds present here. */
export type ProviderRegistry = { [K in Signal['kind']]?: SignalProvider<Extract<Signal, { kind: K }>> };

/** Measures any signal with its provider; a missing provider is a measurement without data, never a throw. */
export async function measure(registry: ProviderRegistry, signal: Signal, ctx: ProbeContext): Promise<Measurement> {
  const provider = registry[signal.kind] as SignalProvider | undefined;
  if (!provider) return { value: null, detail: `no ${signal.kind} provider configured`, latencyMs: 0 };
  try {
    return await provider.measure(signal, ctx);
  } catch (err) {
    return { value: null, detail: `probe failed: ${String(err)}`, latencyMs: 0 };
  }
}
