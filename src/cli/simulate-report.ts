import { formatDuration } from '../config/duration.js';
import { redactUrl } from '../model/redact-url.js';
import type { Policy, ServicePolicy } from '../config/policy.js';
import type { ReplayResult, ReplayVerdict } from '../policy/replay.js';
import type { Deployment } from '../store/store.js';
import { formatOffset, formatValue, renderTable } from './format.js';
import { describeTemplate, type ProbeTemplate } from './placeholders.js';

/** A baseline measured for a baseline-relative rule, as the daemon measures it at deploy time. */
export interface BaselineNote { rule: string; value: number | null; points: number; detail?: string; threshold: string }

/** One deployment replayed: what was fetched, and what the policy would have decided. */
export interface Simulation {
  service: ServicePolicy;
  startedAt: number;
  windowMs: number;
  template: ProbeTemplate;
  baselines: BaselineNote[];
  /** Columns of the sample table: what the rules and the traffic floor read. */
  keys: { key: string; kind: 'prometheus' | 'http' | 'container' | 'alertmanager' | 'burn-rate' }[];
  /** Range queries that failed as a whole: the replay saw no data for them. */
  queryErrors: { query: string; detail: string }[];
  result: ReplayResult;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** The verdict in one sentence: `would roll back at T (+45s) because "R": …`, `would pass …`, `inconclusive: …`. */
export function verdictText(sim: Simulation): string {
  const v = sim.result.verdict;
  const when = (at: number): string => `${iso(at)} (${formatOffset(at - sim.startedAt)})`;
  if (v.kind === 'rollback') {
    const why = v.reason.startsWith(`${v.rule}: `) ? v.reason.slice(v.rule.length + 2) : v.reason;
    return `would roll back at ${when(v.at)} because "${v.rule}": ${why}`;
  }
  if (v.kind === 'passed') {
    const skipped = sim.result.notReplayed.map((r) => `"${r.name}"`).join(', ');
    const judged = skipped ? ` (judged on the Prometheus rules; not replayed: ${skipped})` : '';
    if (v.early) return `would pass early at ${when(v.at)}: every rule ok for ${v.early.oks} samples in a row (pass_after)${judged}`;
    return `would pass: no rollback rule fired by the end of the window at ${when(v.at)}${judged}`;
  }
  return `inconclusive${v.at === null ? '' : ` at ${when(v.at)}`}: ${v.reason}`;
}

function verdictJson(sim: Simulation): Record<string, unknown> {
  const v: ReplayVerdict = sim.result.verdict;
  return {
    kind: v.kind,
    at: v.at === null ? null : iso(v.at),
    after_ms: v.at === null ? null : v.at - sim.startedAt,
    rule: v.kind === 'rollback' ? v.rule : null,
    reason: v.kind === 'passed' ? null : v.reason,
    early: v.kind === 'passed' && v.early ? { ok_samples: v.early.oks, after_ms: v.early.afterMs } : null,
    text: verdictText(sim),
  };
}

function firedJson(sim: Simulation): Record<string, unknown>[] {
  return sim.result.events.map((e) => ({ at: iso(e.at), after_ms: e.at - sim.startedAt, rule: e.rule, kind: e.kind, severity: e.severity, detail: e.detail }));
}

/** The JSON of `simulate --deploy-at … --json`: the same facts as the text, one key each. */
export function simulationJson(sim: Simulation, policy: Policy): Record<string, unknown> {
  const r = sim.result;
  return {
    service: sim.service.name,
    policy: policy.source,
    prometheus: policy.prometheus ? redactUrl(policy.prometheus.url) : null,
    deploy_at: iso(sim.startedAt),
    window_ends_at: iso(sim.startedAt + sim.windowMs),
    window_ms: sim.windowMs,
    interval_ms: sim.service.intervalMs,
    template: sim.template.values,
    placeholders: sim.template.placeholders,
    columns: sim.keys,
    not_replayed: r.notReplayed.map((rule) => ({ rule: rule.name, signal: rule.signal, kind: sim.service.signals[rule.signal]?.kind ?? null, reason: 'no history: read as no data, left out of the verdict' })),
    baselines: sim.baselines,
    query_errors: sim.queryErrors,
    steps: r.steps.map((s) => ({
      at: iso(s.at),
      after_ms: s.at - sim.startedAt,
      warmup: s.warmup,
      low_traffic: s.lowTraffic,
      values: s.values,
      details: Object.fromEntries(Object.entries(s.details).filter(([, d]) => d !== undefined)),
      results: s.results,
    })),
    fired: firedJson(sim),
    verdict: verdictJson(sim),
  };
}

/** The text of `simulate --deploy-at …`: header notes, the sample table, what fired, the verdict. */
export function formatSimulation(sim: Simulation, policy: Policy): string {
  const { service, result } = sim;
  const lines = [
    `simulate ${service.name} under ${policy.source}: deploy at ${iso(sim.startedAt)}, window ${formatDuration(sim.windowMs)}, interval ${formatDuration(service.intervalMs)}, history from ${policy.prometheus ? redactUrl(policy.prometheus.url) : 'nowhere'}`,
    `templates: ${describeTemplate(sim.template)}`,
  ];
  if (service.warmupMs) lines.push(`warm-up: ${formatDuration(service.warmupMs)} (samples before it do not count)`);
  if (service.minRequests) lines.push(`traffic floor: ${service.minRequests.signal} at least ${service.minRequests.atLeast} (below it Prometheus rules read no data)`);
  if (result.notReplayed.length) {
    const which = result.notReplayed.map((r) => `"${r.name}" (${r.signal}, ${service.signals[r.signal]?.kind ?? '?'})`).join(', ');
    lines.push(`not replayed: ${which} — HTTP, container and Alertmanager signals have no history; they read no data and are left out of the verdict`);
  }
  for (const b of sim.baselines) {
    lines.push(`baseline of "${b.rule}": ${formatValue(b.value)} (${b.points} points before the deploy${b.detail ? `; ${b.detail}` : ''}); threshold ${b.threshold}`);
  }
  for (const e of sim.queryErrors) lines.push(`QUERY FAILED: ${e.detail} — ${e.query.replace(/\s*\n\s*/g, ' ').trim()}`);

  const ruleNames = service.rules.map((r) => r.name);
  // The note explains missing values; a query that failed as a whole is reported once above.
  const failed = new Set(sim.queryErrors.map((e) => e.detail));
  const rows = result.steps.map((s) => {
    const fired = result.events.filter((e) => e.at === s.at).map((e) => (e.kind === 'no-data' ? `no data: "${e.rule}"` : `fires: "${e.rule}" (${e.kind})`));
    const why = [...new Set(sim.keys.filter((k) => k.kind !== 'http' && k.kind !== 'container' && k.kind !== 'alertmanager').map((k) => { const d = s.details[k.key]; return d && s.values[k.key] == null && !failed.has(d) ? `${k.key}: ${d}` : undefined; }).filter((d): d is string => !!d))];
    const floor = service.minRequests;
    const note = [
      s.warmup ? 'warm-up (not counted)' : '',
      s.lowTraffic && floor ? `below the traffic floor (${floor.signal} ${s.values[floor.signal] == null ? 'has no data' : `${formatValue(s.values[floor.signal])} < ${floor.atLeast}`})` : '',
      ...fired,
      ...why,
    ].filter(Boolean).join('; ');
    return [
      iso(s.at),
      formatOffset(s.at - sim.startedAt),
      ...sim.keys.map((k) => formatValue(s.values[k.key])),
      ...ruleNames.map((n) => cell(s.results[n], s.warmup)),
      note,
    ];
  });
  lines.push('', rows.length ? renderTable(['TIME', 'AFTER', ...sim.keys.map((k) => k.key), ...ruleNames, 'NOTE'], rows) : 'no samples: the window starts after the history ends');
  lines.push('', 'fired:');
  if (!result.events.length) lines.push('  none');
  for (const e of result.events) lines.push(`  ${iso(e.at)} (${formatOffset(e.at - sim.startedAt)})  "${e.rule}"  ${e.kind === 'no-data' ? 'on_no_data notice' : e.kind} (${e.severity})`);
  lines.push('', `verdict: ${verdictText(sim)}`);
  return lines.join('\n');
}

function cell(result: string | undefined, warmup: boolean): string {
  if (result === 'breach') return 'BREACH';
  if (result === 'not-replayed') return 'n/a';
  return result ?? (warmup ? '' : '-');
}

// ---- --since: recorded deployments under a new policy -------------------------------------------

/** How a recorded deployment ended, in the replay's terms; null when the watch reached no verdict. */
const RECORDED: Partial<Record<Deployment['state'], ReplayVerdict['kind']>> = {
  rolled_back: 'rollback', rollback_failed: 'rollback', rolling_back: 'rollback', would_roll_back: 'rollback', passed: 'passed', passed_early: 'passed', inconclusive: 'inconclusive',
};

/** One recorded deployment and its replay under the new policy. */
export interface SinceRow {
  deployment: Deployment;
  /** Why it was not replayed (its service is not in the new policy). */
  skipped?: string;
  simulation?: Simulation;
  recorded?: ReplayVerdict['kind'] | null;
  /** Whether the recorded and simulated verdicts can be compared at all. */
  comparable?: boolean;
  changed?: boolean;
  note?: string;
}

/** Compares the recorded outcome with the simulated one. A revert decided by a rule the replay cannot see is not comparable. */
export function recordedVerdict(d: Deployment, sim: Simulation): Pick<SinceRow, 'recorded' | 'comparable' | 'changed' | 'note'> {
  const recorded = RECORDED[d.state] ?? null;
  if (recorded === null) return { recorded, comparable: false, changed: false, note: `recorded ${d.state}: that watch reached no verdict` };
  const blind = sim.result.notReplayed.find((r) => (d.reason ?? '').includes(`${r.name}: `));
  if (recorded === 'rollback' && blind) {
    return { recorded, comparable: false, changed: false, note: `reverted by "${blind.name}", whose ${sim.service.signals[blind.signal]?.kind ?? ''} signal has no history` };
  }
  return { recorded, comparable: true, changed: recorded !== sim.result.verdict.kind };
}

const shortVerdict = (sim: Simulation): string => {
  const v = sim.result.verdict;
  if (v.kind === 'rollback') return `would roll back at ${formatOffset(v.at - sim.startedAt)} ("${v.rule}")`;
  if (v.kind === 'passed') return v.early ? 'would pass early' : 'would pass';
  return 'inconclusive';
};

export function formatSince(rows: SinceRow[], policy: Policy, since: string, from: number): string {
  const lines = [`replayed ${rows.filter((r) => r.simulation).length} of ${rows.length} recorded deployment(s) started since ${iso(from)} (last ${since}) under ${policy.source}`];
  if (!rows.length) return `${lines[0]}\nno deployments recorded in that time`;
  const table = rows.map((r) => {
    const d = r.deployment;
    return [
      String(d.id), d.service, d.to_ref, d.started_at.toISOString(), d.state,
      r.simulation ? shortVerdict(r.simulation) : 'skipped',
      r.skipped ?? (r.changed ? 'CHANGED' : r.comparable ? 'same' : `not comparable: ${r.note ?? ''}`),
    ];
  });
  lines.push('', renderTable(['ID', 'SERVICE', 'TO', 'STARTED', 'RECORDED', 'SIMULATED', 'CHANGE'], table));
  const errors = rows.flatMap((r) => (r.simulation?.queryErrors ?? []).map((e) => `  #${r.deployment.id}: ${e.detail} — ${e.query.replace(/\s*\n\s*/g, ' ').trim()}`));
  if (errors.length) lines.push('', 'QUERIES FAILED (their samples read no data):', ...[...new Set(errors)]);
  const changed = rows.filter((r) => r.changed);
  lines.push('', changed.length ? `${changed.length} verdict(s) would change:` : 'no verdict would change');
  for (const r of changed) {
    const d = r.deployment;
    lines.push(`  #${d.id} ${d.service} ${d.to_ref} (started ${d.started_at.toISOString()}): recorded ${d.state}${d.reason ? ` (${d.reason})` : ''} → ${verdictText(r.simulation as Simulation)}`);
  }
  return lines.join('\n');
}

export function sinceJson(rows: SinceRow[], policy: Policy, since: string, from: number): Record<string, unknown> {
  return {
    policy: policy.source,
    since,
    from: iso(from),
    deployments: rows.map((r) => ({
      id: r.deployment.id,
      service: r.deployment.service,
      to_ref: r.deployment.to_ref,
      started_at: r.deployment.started_at.toISOString(),
      recorded: { state: r.deployment.state, reason: r.deployment.reason, verdict: r.recorded ?? null },
      simulated: r.simulation ? verdictJson(r.simulation) : null,
      fired: r.simulation ? firedJson(r.simulation) : [],
      query_errors: r.simulation?.queryErrors ?? [],
      skipped: r.skipped ?? null,
      comparable: r.comparable ?? false,
      changed: r.changed ?? false,
      note: r.note ?? null,
    })),
    changed: rows.filter((r) => r.changed).length,
  };
}
