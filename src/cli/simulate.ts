import { UsageError } from './usage-error.js';
import { parseDuration } from '../config/duration.js';
import { loadPolicy } from '../config/load-policy.js';
import type { Policy, ServicePolicy } from '../config/policy.js';
import { renderTemplate, type TemplateValues } from '../config/template.js';
import { versionOf } from '../model/image-ref.js';
import { describeThreshold, valueKey, withBaseline, type Value } from '../policy/assess.js';
import { hasHistory, replay, replayTimes, type ReplayInputTick, type ReplayResult } from '../policy/replay.js';
import { measureBurnRate } from '../signals/burn-rate.js';
import { PrometheusHistory } from '../signals/prometheus-history.js';
import { PrometheusProvider, rangeAverage } from '../signals/prometheus.js';
import { prometheusProvider } from '../signals/prometheus-client.js';
import type { Deployment } from '../store/store.js';
import { probeTemplate, type ProbeTemplate } from './placeholders.js';
import { formatSince, formatSimulation, recordedVerdict, sinceJson, simulationJson, type BaselineNote, type SinceRow, type Simulation } from './simulate-report.js';
import { parseSinceArg, parseTimeArg } from './time-arg.js';
import { readHistory } from './views.js';

/**
 * Replays one deployment of `service` from `startedAt`: baselines from the history before it
 * (`rangeAverage` + `withBaseline`, as the daemon does), one range query per Prometheus query at
 * the service's interval over the window, then `replay()`. History stops at `cut` (a recorded
 * revert) and at `now`.
 */
export async function simulateDeployment(
  prometheus: PrometheusProvider,
  service: ServicePolicy,
  opts: { startedAt: number; windowMs: number; template: ProbeTemplate; now: number; cut?: { at: number; reason: string } },
): Promise<Simulation> {
  const { startedAt, windowMs, template } = opts;
  const { rules, baselines } = await resolveBaselines(prometheus, service, template.values, startedAt);
  const resolved: ServicePolicy = { ...service, rules, windowMs };
  const windowEndsAt = startedAt + windowMs;
  const all = replayTimes(startedAt, windowMs, service.intervalMs);
  let cut = opts.cut;
  if ((all.at(-1) as number) > opts.now && (!cut || cut.at > opts.now)) cut = { at: opts.now, reason: `now (the window is still open until ${new Date(windowEndsAt).toISOString()})` };
  const times = all.filter((t) => !cut || t <= cut.at);
  const keys = columnsOf(resolved);
  const ticks: ReplayInputTick[] = [];
  let history: PrometheusHistory | undefined;
  if (times.length) {
    history = new PrometheusHistory(prometheus, { startMs: times[0] as number, endMs: times.at(-1) as number, stepMs: service.intervalMs });
    for (const at of times) ticks.push(await sampleAt(history, resolved, keys, template.values, at));
  }
  const result = replay({ service: resolved, startedAt, windowEndsAt, ticks, cut });
  return { service: resolved, startedAt, windowMs, template, baselines, keys, queryErrors: history ? await history.failures() : [], result };
}

async function resolveBaselines(prometheus: PrometheusProvider, service: ServicePolicy, template: TemplateValues, startedAt: number): Promise<{ rules: ServicePolicy['rules']; baselines: BaselineNote[] }> {
  const baselines: BaselineNote[] = [];
  const rules = await Promise.all(service.rules.map(async (rule) => {
    if (!rule.baseline) return rule;
    const signal = service.signals[rule.signal];
    const measured = signal?.kind === 'prometheus'
      ? await rangeAverage(prometheus, renderTemplate(signal.query, template), new Date(startedAt), rule.baseline.windowMs, service.intervalMs)
      : { value: null, points: 0, detail: `a ${signal?.kind ?? 'missing'} signal has no history` };
    const resolved = withBaseline(rule, measured.value);
    baselines.push({ rule: rule.name, value: measured.value, points: measured.points, detail: measured.detail, threshold: describeThreshold(resolved) });
    return resolved;
  }));
  return { rules, baselines };
}

/** What the rules and the traffic floor read, each once: signals by name, burn-rate rules by `burn:<rule>`. */
function columnsOf(service: ServicePolicy): Simulation['keys'] {
  const keys = new Map<string, Simulation['keys'][number]['kind']>();
  const names = [...service.rules.map((r) => (r.burnRate ? undefined : r.signal)), service.minRequests?.signal].filter((n): n is string => n !== undefined);
  for (const name of names) keys.set(name, service.signals[name]?.kind ?? 'prometheus');
  for (const rule of service.rules) if (rule.burnRate) keys.set(valueKey(rule), hasHistory(service, rule) ? 'burn-rate' : service.signals[rule.signal]?.kind ?? 'prometheus');
  return [...keys].map(([key, kind]) => ({ key, kind }));
}

async function sampleAt(history: PrometheusHistory, service: ServicePolicy, keys: Simulation['keys'], template: TemplateValues, at: number): Promise<ReplayInputTick> {
  const values: Record<string, Value> = {};
  const details: Record<string, string | undefined> = {};
  const ctx = { template, containerId: '', at: new Date(at) };
  for (const { key, kind } of keys) {
    if (kind === 'prometheus') {
      const signal = service.signals[key];
      if (signal?.kind !== 'prometheus') continue;
      const m = await history.measure(signal, ctx);
      values[key] = m.value;
      details[key] = m.detail;
    } else if (kind === 'burn-rate') {
      const rule = service.rules.find((r) => valueKey(r) === key);
      const signal = rule && service.signals[rule.signal];
      if (!rule?.burnRate || signal?.kind !== 'prometheus') continue;
      const m = await measureBurnRate(history, signal, rule.burnRate, ctx);
      values[key] = m.value;
      details[key] = m.detail;
    } else {
      values[key] = null;
      details[key] = `no history (${kind} signal)`;
    }
  }
  return { at, values, details };
}

export interface SimulateOptions {
  policy: string;
  service?: string;
  deployAt?: string;
  window?: string;
  since?: string;
  image?: string;
  container?: string;
  json: boolean;
  stateDir: string;
}

/** `rollguard simulate`: one deploy (`--service`, `--deploy-at`) or the recorded deployments (`--since`). Returns the exit code. */
export async function runSimulate(opts: SimulateOptions, write: (text: string) => void = (t) => process.stdout.write(t)): Promise<number> {
  if ((opts.deployAt === undefined) === (opts.since === undefined)) throw new UsageError('give either --deploy-at TIME (with --service) or --since DURATION');
  const windowMs = opts.window === undefined ? undefined : parseDuration(opts.window);
  if (windowMs === undefined && opts.window !== undefined) throw new UsageError(`--window: expected a duration like 10m, got "${opts.window}"`);
  if (windowMs !== undefined && windowMs <= 0) throw new UsageError('--window must be positive');
  const policy = await loadPolicy(opts.policy);
  if (!policy.prometheus) throw new UsageError(`${opts.policy} has no prometheus: url; there is no history to replay`);
  const prometheus = prometheusProvider(policy.prometheus);
  const now = Date.now();

  if (opts.deployAt !== undefined) {
    const startedAt = parseTimeArg(opts.deployAt);
    if (startedAt === undefined) throw new UsageError(`--deploy-at: expected RFC 3339 (2026-11-26T14:05:00Z) or Unix seconds, got "${opts.deployAt}"`);
    if (startedAt > now) throw new UsageError(`--deploy-at ${new Date(startedAt).toISOString()} is in the future`);
    const service = serviceOf(policy, opts.service);
    const sim = await simulateDeployment(prometheus, service, {
      startedAt, windowMs: windowMs ?? service.windowMs, now, template: probeTemplate(service, { image: opts.image, container: opts.container }),
    });
    write(opts.json ? `${JSON.stringify(simulationJson(sim, policy), null, 2)}\n` : `${formatSimulation(sim, policy)}\n`);
    return sim.queryErrors.length ? 1 : 0;
  }

  const sinceMs = parseSinceArg(opts.since ?? '');
  if (sinceMs === undefined) throw new UsageError(`--since: expected a duration like 7d, 12h or 30m, got "${opts.since}"`);
  const from = now - sinceMs;
  const recorded = (await readHistory(opts.stateDir, { service: opts.service, limit: 10_000 }))
    .map((d) => ({ ...d, started_at: new Date(d.started_at), decided_at: d.decided_at === null ? null : new Date(d.decided_at) }))
    .filter((d) => d.started_at.getTime() >= from)
    .sort((a, b) => a.started_at.getTime() - b.started_at.getTime() || a.id - b.id);
  const rows: SinceRow[] = [];
  for (const d of recorded) rows.push(await replayRecorded(prometheus, policy, d, { windowMs, now }));
  write(opts.json ? `${JSON.stringify(sinceJson(rows, policy, opts.since ?? '', from), null, 2)}\n` : `${formatSince(rows, policy, opts.since ?? '', from)}\n`);
  return rows.some((r) => r.simulation?.queryErrors.length) ? 1 : 0;
}

function serviceOf(policy: Policy, name: string | undefined): ServicePolicy {
  const names = Object.keys(policy.services).join(', ') || '(none)';
  if (name === undefined) throw new UsageError(`--deploy-at needs --service; the policy's services: ${names}`);
  const service = policy.services[name];
  if (!service) throw new UsageError(`unknown service "${name}"; the policy's services: ${names}`);
  return service;
}

/** States after which the history no longer shows the deployed version: rollguard (or the next deploy) replaced it. */
const REPLACED: Partial<Record<Deployment['state'], string>> = {
  rolled_back: 'the recorded revert', rollback_failed: 'the recorded revert', rolling_back: 'the recorded revert', superseded: 'the next deployment',
};

async function replayRecorded(prometheus: PrometheusProvider, policy: Policy, d: Deployment, opts: { windowMs?: number; now: number }): Promise<SinceRow> {
  const service = policy.services[d.service];
  if (!service) return { deployment: d, skipped: `service "${d.service}" is not in the policy` };
  const template: ProbeTemplate = { values: { service: service.name, container: d.container_name, image: d.to_ref, version: versionOf(d.to_ref) }, placeholders: [] };
  const replaced = REPLACED[d.state];
  const cut = replaced && d.decided_at ? { at: d.decided_at.getTime(), reason: `${replaced} at ${d.decided_at.toISOString()} (after it the history shows another version)` } : undefined;
  const simulation = await simulateDeployment(prometheus, service, { startedAt: d.started_at.getTime(), windowMs: opts.windowMs ?? service.windowMs, template, now: opts.now, cut });
  return { deployment: d, simulation, ...recordedVerdict(d, simulation) };
}

export { UsageError };
