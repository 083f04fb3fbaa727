import type { ServicePolicy } from '../config/policy.js';
import { valueKey, type SampleResult } from '../policy/assess.js';
import type { EventKind } from '../notify/event.js';
import type { SampleRecord } from '../store/store.js';
import { buildEvent, type EvidenceInput } from './evidence.js';
import { MAX_HISTORY, WatchContext, type Watch } from './context.js';

type SampleMeasurement = { value: number | null; detail?: string; latencyMs: number };

/**
 * The row a watch records for one signal's sample: the result of each rule that reads the
 * signal, and the signal's own (a breach if one rule breached, else ok if one was ok). A signal
 * no rule reads (the traffic floor) is ok whenever it has a value.
 */
export function watchSampleRow(service: ServicePolicy, deploymentId: number, at: Date, signal: string, m: SampleMeasurement, results: Record<string, SampleResult>, note?: string): SampleRecord {
  const rules: Record<string, string> = {};
  for (const r of service.rules) if (valueKey(r) === signal) rules[r.name] = results[r.name] ?? 'no-data';
  const outcomes = Object.values(rules);
  const result: SampleResult = !outcomes.length ? (m.value === null ? 'no-data' : 'ok') : outcomes.includes('breach') ? 'breach' : outcomes.includes('ok') ? 'ok' : 'no-data';
  const detail = [m.detail, result === 'no-data' ? note : undefined].filter(Boolean).join('; ') || null;
  return { deployment_id: deploymentId, stage: 'watch', signal, taken_at: at, value: m.value, result, rules, detail, latency_ms: m.latencyMs };
}

export async function recordSamples(ctx: WatchContext, watch: Watch, at: Date, measurements: Record<string, SampleMeasurement>, results: Record<string, SampleResult>, note?: string): Promise<void> {
  const { service, deployment } = watch;
  const rows = Object.entries(measurements).map(([signal, m]) => {
    const row = watchSampleRow(service, deployment.id, at, signal, m, results, note);
    ctx.deps.metrics.samples.inc({ service: service.name, result: row.result });
    const seen = watch.history.get(signal) ?? [];
    seen.push({ t: at.getTime(), v: m.value, result: row.result });
    if (seen.length > MAX_HISTORY) seen.splice(0, seen.length - MAX_HISTORY);
    watch.history.set(signal, seen);
    return row;
  });
  await ctx.deps.writes.insertSamples(rows);
}

/**
 * Records a decision (when given) and queues its notifications in one transaction. Without an
 * announcer (tests, tools) the decision alone is recorded.
 */
export async function announce(ctx: WatchContext,
  watch: Watch,
  kind: EventKind,
  severity: ServicePolicy['rules'][number]['severity'],
  extra: Partial<EvidenceInput>,
  decision?: { kind: string; rule?: string | null; severity?: string | null; detail: string },
  dedupSuffix?: string,
): Promise<void> {
  const d = watch.deployment;
  const record = decision ? { deployment_id: d.id, decided_at: ctx.now(), kind: decision.kind, rule: decision.rule ?? null, severity: decision.severity ?? null, detail: decision.detail } : undefined;
  const announcer = ctx.deps.announcer;
  if (!announcer) {
    if (record) await ctx.deps.writes.insertDecision(record);
    return;
  }
  const rule = extra.rule;
  const event = buildEvent({
    kind, severity, policy: ctx.policy, service: watch.service, deployment: d, template: watch.template,
    history: rule ? watch.history.get(valueKey(rule)) : undefined, at: ctx.now(), ...extra,
  });
  await announcer.announce(event, { deploymentId: d.id, decision: record, dedupSuffix });
}

/** Records that a deployment carries DB migrations, so a revert resumed after a restart still knows it. */
export async function recordMigrations(ctx: WatchContext, watch: Watch, how: string): Promise<void> {
  await ctx.deps.writes.insertDecision({ deployment_id: watch.deployment.id, decided_at: ctx.now(), kind: 'migrations', detail: `the deployment carries DB migrations (${how})` });
}
