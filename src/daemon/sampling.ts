import type { Metrics } from '../api/metrics.js';
import type { ServicePolicy, Signal } from '../config/policy.js';
import { renderUrl, replicaVarsIn, type TemplateValues } from '../config/template.js';
import type { Measurement, ProbeContext } from '../signals/provider.js';
import type { DeployTarget } from '../targets/target.js';
import { measureBurnRate } from '../signals/burn-rate.js';
import { measure, type ProviderRegistry } from '../signals/registry.js';
import { breaches, valueKey } from '../policy/assess.js';
import { PrometheusProvider } from '../signals/prometheus.js';
import type { ContainerStateProvider } from '../signals/container-state.js';

/** Measures the named signals of a service concurrently, all at one evaluation time. */
export async function sampleSignals(
  providers: ProviderRegistry,
  metrics: Metrics,
  service: ServicePolicy,
  names: readonly string[],
  ctx: ProbeContext,
): Promise<Record<string, Measurement>> {
  const entries = await Promise.all(
    names.map(async (name): Promise<[string, Measurement]> => {
      const signal = service.signals[name] as Signal;
      const m = await measureSignal(providers, service, signal, ctx);
      metrics.probeDuration.observe({ kind: signal.kind }, m.latencyMs / 1000);
      return [name, m];
    }),
  );
  return withEngineOutage(providers, service, Object.fromEntries(entries));
}

/** How the daemon reads a target's replicas for the signals: their state, and their own placeholders. */
export function replicaReaders(target: Pick<DeployTarget, 'inspectReplica' | 'replicaValues'>): Pick<ProbeContext, 'inspectReplica' | 'replicaValues'> {
  return {
    inspectReplica: (id) => target.inspectReplica(id),
    replicaValues: (id) => target.replicaValues(id),
  };
}

/** An HTTP check's URL with its placeholders filled in. */
function filled(signal: Signal, template: TemplateValues): Signal {
  return signal.kind === 'http' && signal.url.includes('{{') ? { ...signal, url: renderUrl(signal.url, template) } : signal;
}

/**
 * Whether a higher value of the signal is the worse one (an HTTP check: lower is worse). The
 * rules that read it decide (`above`: higher is worse); a signal only recovery criteria read goes
 * the other way round (`below 0.01` holds only while every task is below, so higher is worse).
 */
function higherIsWorse(service: ServicePolicy, signal: Signal): boolean {
  if (signal.kind === 'http') return false;
  const rules = service.rules.filter((r) => r.signal === signal.name);
  if (rules.length) return rules.some((r) => r.above !== undefined);
  const recovery = service.recovery.filter((r) => r.signal === signal.name);
  return !recovery.length || recovery.some((r) => 'below' in r && r.below !== undefined);
}

/**
 * Measures one signal. A signal addressed per replica ({{slot}}, {{node_addr}}, {{task}},
 * {{node}}) is measured once for each replica with its own values, and the worst replica's value
 * is the sample, named in the detail; replicas without data are passed over.
 */
async function measureSignal(providers: ProviderRegistry, service: ServicePolicy, signal: Signal, ctx: ProbeContext): Promise<Measurement> {
  const text = signal.kind === 'prometheus' ? signal.query : signal.kind === 'http' ? signal.url : '';
  if (!replicaVarsIn(text).length) return measure(providers, filled(signal, ctx.template), ctx);
  const started = performance.now();
  const ids = ctx.containerIds?.length ? ctx.containerIds : [ctx.containerId];
  const all = await Promise.all(ids.map(async (id) => {
    const values = await ctx.replicaValues?.(id).catch(() => undefined);
    if (!values) return { id, label: id.slice(0, 12), m: { value: null, detail: 'replica is gone', latencyMs: 0 } as Measurement };
    const template = { ...ctx.template, ...values };
    const label = values.slot ? `slot ${values.slot}` : id.slice(0, 12);
    const own = filled(signal, template);
    if (own.kind === 'http' && !URL.canParse(own.url)) return { id, label, m: { value: null, detail: `${own.url} is no URL for this task; no data`, latencyMs: 0 } as Measurement };
    return { id, label, m: await measure(providers, own, { ...ctx, template, containerId: id, containerIds: [id] }) };
  }));
  const worse = higherIsWorse(service, signal) ? (a: number, b: number) => a > b : (a: number, b: number) => a < b;
  let worst: (typeof all)[number] | undefined;
  for (const x of all) if (x.m.value !== null && (!worst || worse(x.m.value, worst.m.value as number))) worst = x;
  const latencyMs = performance.now() - started;
  if (!worst) return { value: null, detail: `no replica has data (${all.map((x) => `${x.label}: ${x.m.detail ?? 'no data'}`).join('; ')})`, latencyMs };
  return { value: worst.m.value, detail: `${worst.label}${worst.m.detail ? `: ${worst.m.detail}` : ''}`, latencyMs };
}

/** Signal kinds whose answer depends on the Docker engine running the service's container. */
const ENGINE_BOUND: ReadonlySet<Signal['kind']> = new Set(['http', 'container']);

/**
 * While the Docker engine itself does not answer (restarting, crashed), the containers it runs are
 * stopped or unknowable: a failed HTTP check or container read then says nothing about the
 * deployment. Such samples become no data — never a breach — so an engine restart does not make a
 * revert (which could not run anyway). The engine is asked only when a sample looks failed.
 */
async function withEngineOutage(providers: ProviderRegistry, service: ServicePolicy, measured: Record<string, Measurement>): Promise<Record<string, Measurement>> {
  const engine = providers.container as Partial<Pick<ContainerStateProvider, 'engineReachable'>> | undefined;
  const bound = Object.keys(measured).filter((name) => {
    const kind = service.signals[name]?.kind;
    return kind !== undefined && ENGINE_BOUND.has(kind);
  });
  const failedLooking = bound.some((name) => !measured[name]?.value);
  if (!failedLooking || typeof engine?.engineReachable !== 'function') return measured;
  const reachable = await engine.engineReachable();
  if (reachable === true) return measured;
  const out = { ...measured };
  for (const name of bound) {
    out[name] = { value: null, detail: `Docker engine not answering (${reachable}); no data`, latencyMs: measured[name]?.latencyMs ?? 0 };
  }
  return out;
}

/** Signals the rules of a service read directly, each once (burn-rate rules measure their own windows). */
export function ruleSignals(service: ServicePolicy): string[] {
  return [...new Set(service.rules.filter((r) => !r.burnRate && !r.scope).map((r) => r.signal))];
}

/** Samples of the rules that measure for themselves (burn rate, scope), keyed by `valueKey(rule)`. */
export async function sampleBurnRates(
  providers: ProviderRegistry,
  service: ServicePolicy,
  ctx: { template: TemplateValues; containerId: string; at: Date; intervalMs?: number },
): Promise<Record<string, Measurement>> {
  const out: Record<string, Measurement> = {};
  const prometheus = providers.prometheus;
  await Promise.all(service.rules.filter((r) => r.burnRate || r.scope).map(async (rule) => {
    const signal = service.signals[rule.signal];
    if (!prometheus || signal?.kind !== 'prometheus') {
      out[valueKey(rule)] = { value: null, detail: 'no Prometheus configured', latencyMs: 0 };
    } else if (rule.burnRate) {
      out[valueKey(rule)] = await measureBurnRate(prometheus, signal, rule.burnRate, ctx);
    } else if (rule.scope && prometheus instanceof PrometheusProvider) {
      const per = rule.scope.perSeries;
      out[valueKey(rule)] = await prometheus.countBeyond(signal, ctx, (v) => breaches(per, v));
    }
  }));
  return out;
}

/** Signals the recovery criteria read, each once. */
export function recoverySignals(service: ServicePolicy): string[] {
  return [...new Set(service.recovery.map((r) => r.signal))];
}

export function valuesOf(measurements: Record<string, Measurement>): Record<string, number | null> {
  return Object.fromEntries(Object.entries(measurements).map(([k, m]) => [k, m.value]));
}
