import { formatDuration } from '../config/duration.js';
import { promqlLookbackMs } from './recovery.js';
import type { RecoveryCheck, Rule, ServicePolicy, Threshold } from '../config/policy.js';

/** How one sample of a signal compares to one rule. */
export type SampleResult = 'ok' | 'breach' | 'no-data';

/** A measured value; `null` means the probe produced no data (outage, empty result, NaN). */
export type Value = number | null;

/** Running counts for one rule over a watch window. */
export interface RuleTally {
  /** Consecutive breaching samples ending with the latest one. */
  streak: number;
  breaches: number;
  withData: number;
  samples: number;
  /** Whether a notify rule has already fired during the current streak. */
  notified: boolean;
  /** Consecutive no-data samples ending with the latest one. */
  noDataStreak: number;
}

/** Everything `assess` needs to remember between ticks of one watch. */
export interface WatchTally {
  ticks: number;
  rules: Record<string, RuleTally>;
  /** Consecutive ticks, ending with the latest, in which every rule was ok (no breach, no sample without data). */
  okStreak: number;
}

/** What one tick decided. */
export type Verdict =
  | { kind: 'continue'; notify: Rule[]; noData: Rule[] }
  | { kind: 'rollback'; rule: Rule; notify: Rule[]; noData: Rule[] };

/** Why a tick's samples cannot count for some rules. */
export interface TickContext {
  /** Traffic is below the service's `min_requests` floor: Prometheus-based rules get no data. */
  lowTraffic?: boolean;
}

/**
 * How a finished window ended when no rollback rule fired: passed (the rules held), inconclusive
 * (too little data to tell), or unproven (a rollback rule kept breaching, just never `for` times
 * in a row, or was breaching when the window closed). An unproven version never becomes known-good.
 */
export type WindowOutcome = { kind: 'passed' } | { kind: 'inconclusive'; reason: string } | { kind: 'unproven'; reason: string };

/**
 * A rollback rule that breached more than once, in more than this share of its samples with data,
 * has not held, whatever its streaks. A single breach is a transient (the previous version's
 * errors still inside a rate's range, say), never enough alone.
 */
export const MAX_BREACH_SHARE = 0.1;

export function breaches(threshold: Threshold, value: number): boolean {
  return threshold.above !== undefined ? value > threshold.above : value < (threshold.below as number);
}

export function classify(threshold: Threshold, value: Value): SampleResult {
  if (value === null || Number.isNaN(value)) return 'no-data';
  // An unresolved threshold (a baseline that could not be measured) cannot judge anything.
  if (Number.isNaN(threshold.above ?? threshold.below)) return 'no-data';
  return breaches(threshold, value) ? 'breach' : 'ok';
}

/** Where a rule's sample value is found: the signal's value, or the burn rate measured for that rule. */
export function valueKey(rule: { name: string; signal: string; burnRate?: unknown; scope?: unknown }): string {
  if (rule.burnRate) return `burn:${rule.name}`;
  return rule.scope ? `scope:${rule.name}` : rule.signal;
}

/** A rule's baseline settings as `describeThreshold` and `withBaseline` read them. */
type BaselineSettings = { ratio?: number; delta?: number; minThreshold?: number; value?: number };

/** A computed threshold without float noise: 1.5 × 0.1 reads 0.15, not 0.15000000000000002. */
const round = (n: number): number => +n.toPrecision(6);

/** What a baseline rule compares with, and why: the floor is named when it decides the threshold. */
function describeBaseline(above: number, base: BaselineSettings): string {
  const how = base.ratio !== undefined ? `${base.ratio}× baseline` : `baseline + ${base.delta}`;
  const floor = base.minThreshold;
  if (Number.isNaN(above)) return `above ${how}${floor !== undefined ? `, at least ${floor}` : ''} (no baseline)`;
  const computed = base.value === undefined ? undefined : baselineThreshold(base, base.value);
  if (floor !== undefined && computed !== undefined && computed < floor) {
    const formula = base.ratio !== undefined ? `${base.ratio}× baseline ${round(base.value as number)}` : `baseline ${round(base.value as number)} + ${base.delta}`;
    return `above ${round(above)} (min_threshold, as ${formula} would be ${round(computed)})`;
  }
  return `above ${round(above)} (${how}${floor !== undefined ? `; min_threshold ${floor}` : ''})`;
}

export function describeThreshold(threshold: Threshold & { baseline?: BaselineSettings; burnRate?: { slo: number; windows: { shortMs: number; longMs: number; factor: number }[] }; scope?: { minSeries: number; perSeries: Threshold } }): string {
  if (threshold.scope) return `${describeThreshold(threshold.scope.perSeries)} in at least ${threshold.scope.minSeries} series`;
  if (threshold.burnRate) {
    const budget = +(1 - threshold.burnRate.slo).toPrecision(6);
    const pairs = threshold.burnRate.windows.map((w) => `${w.factor}× in ${formatDuration(w.shortMs)} and ${formatDuration(w.longMs)}`).join(' or ');
    return `burning the ${budget} error budget faster than ${pairs}`;
  }
  if (threshold.baseline && threshold.above !== undefined) return describeBaseline(threshold.above, threshold.baseline);
  return threshold.above !== undefined ? `above ${threshold.above}` : `below ${threshold.below}`;
}

/** baseline × ratio or baseline + delta, before the floor. */
function baselineThreshold(b: BaselineSettings, baseline: number): number {
  return b.ratio !== undefined ? baseline * b.ratio : baseline + (b.delta ?? 0);
}

/**
 * A rule with its baseline applied: `above` becomes baseline × ratio or baseline + delta, raised
 * to `minThreshold` when below it (a baseline of 0 must not make every error a breach); NaN when
 * the baseline is unknown. The measured baseline is kept in `baseline.value` for the description.
 */
export function withBaseline<R extends { baseline?: BaselineSettings }>(rule: R, baseline: number | null): R {
  if (!rule.baseline) return rule;
  const b = rule.baseline;
  if (baseline === null || !Number.isFinite(baseline)) return { ...rule, above: Number.NaN, below: undefined };
  const computed = baselineThreshold(b, baseline);
  const above = b.minThreshold !== undefined ? Math.max(computed, b.minThreshold) : computed;
  return { ...rule, above, below: undefined, baseline: { ...b, value: baseline } };
}

export function emptyTally(service: ServicePolicy): WatchTally {
  const rules: Record<string, RuleTally> = {};
  for (const rule of service.rules) rules[rule.name] = { streak: 0, breaches: 0, withData: 0, samples: 0, notified: false, noDataStreak: 0 };
  return { ticks: 0, rules, okStreak: 0 };
}

/**
 * Folds one tick's values into the tally and decides. A rule fires after `for` consecutive
 * breaches; a no-data sample ends a streak (no data is never evidence of a breach). A notify
 * rule fires once per streak. The first rollback rule to fire, in policy order, wins. Below the
 * traffic floor, rules over Prometheus queries get no data. A rollback rule whose no-data streak
 * reaches `on_no_data.after` is reported in `noData` (once per streak) — never a revert.
 */
export function assess(
  service: ServicePolicy,
  tally: WatchTally,
  values: Record<string, Value>,
  ctx: TickContext = {},
): { tally: WatchTally; results: Record<string, SampleResult>; verdict: Verdict } {
  const results: Record<string, SampleResult> = {};
  const rules: Record<string, RuleTally> = {};
  const notify: Rule[] = [];
  const noData: Rule[] = [];
  let rollback: Rule | undefined;
  for (const rule of service.rules) {
    const before = tally.rules[rule.name] ?? { streak: 0, breaches: 0, withData: 0, samples: 0, notified: false, noDataStreak: 0 };
    const floored = ctx.lowTraffic && service.signals[rule.signal]?.kind === 'prometheus';
    const result = floored ? 'no-data' : classify(rule, values[valueKey(rule)] ?? null);
    results[rule.name] = result;
    const streak = result === 'breach' ? before.streak + 1 : 0;
    const fires = streak >= rule.for;
    const after: RuleTally = {
      streak,
      breaches: before.breaches + (result === 'breach' ? 1 : 0),
      withData: before.withData + (result === 'no-data' ? 0 : 1),
      samples: before.samples + 1,
      notified: fires && (before.notified || rule.action === 'notify'),
      noDataStreak: result === 'no-data' ? before.noDataStreak + 1 : 0,
    };
    if (rule.action === 'rollback' && service.onNoData && after.noDataStreak === service.onNoData.after) noData.push(rule);
    if (fires && rule.action === 'notify' && !before.notified) notify.push(rule);
    if (fires && rule.action === 'rollback' && !rollback) rollback = rule;
    rules[rule.name] = after;
  }
  // Every rule, notify rules included: a rule breaching or without data is not evidence of a good version.
  const allOk = service.rules.every((rule) => results[rule.name] === 'ok');
  const next = { ticks: tally.ticks + 1, rules, okStreak: allOk ? tally.okStreak + 1 : 0 };
  return { tally: next, results, verdict: rollback ? { kind: 'rollback', rule: rollback, notify, noData } : { kind: 'continue', notify, noData } };
}

/**
 * Judges a window that ran to its end without a rollback. It passes only when every rollback
 * rule held — it was not breaching at the end, and breached once at most or in at most MAX_BREACH_SHARE of its
 * samples with data — and had data in at least `minDataRatio` of its samples. A rule that did
 * not hold makes the window unproven; too little data makes it inconclusive.
 */
export function concludeWindow(service: ServicePolicy, tally: WatchTally): WindowOutcome {
  if (tally.ticks === 0) return { kind: 'inconclusive', reason: 'no samples were taken during the window' };
  const short: string[] = [];
  for (const rule of service.rules) {
    if (rule.action !== 'rollback') continue;
    const t = tally.rules[rule.name];
    const ratio = t && t.samples > 0 ? t.withData / t.samples : 0;
    if (ratio < service.minDataRatio) {
      short.push(`"${rule.name}" had data in ${t?.withData ?? 0} of ${t?.samples ?? 0} samples`);
    }
  }
  const breached: string[] = [];
  for (const rule of service.rules) {
    const t = tally.rules[rule.name];
    if (rule.action !== 'rollback' || !t) continue;
    if (t.streak > 0) breached.push(`"${rule.name}" was breaching when the window closed (${t.streak} in a row; ${rule.for} in a row revert)`);
    else if (t.breaches > 1 && t.breaches / t.withData > MAX_BREACH_SHARE) {
      breached.push(`"${rule.name}" breached in ${t.breaches} of ${t.withData} samples with data (more than ${MAX_BREACH_SHARE * 100}%), though never ${rule.for} in a row`);
    }
  }
  if (breached.length) return { kind: 'unproven', reason: `the rules did not hold: ${breached.join('; ')}; not known-good` };
  if (short.length) {
    return { kind: 'inconclusive', reason: `too little data (need ${Math.round(service.minDataRatio * 100)}%): ${short.join('; ')}` };
  }
  return { kind: 'passed' };
}

/** Why a watch may end as passed before its window ends (`pass_after`). */
export interface EarlyPass {
  /** Consecutive ticks in which every rule was ok. */
  oks: number;
  /** Since the deployment started. */
  afterMs: number;
}

/**
 * `pass_after`: whether the watch may pass now, before its window ends. Every rule — notify rules
 * too — must have been ok for `ok` ticks in a row (a rule in its `for` streak, or without data,
 * resets the count), at least `min` must have passed since the deployment started, and the window
 * so far must pass as `concludeWindow` judges a finished one: no rollback rule breaching too often,
 * enough data (`min_data_ratio`). An inconclusive window never passes early, inconclusive_is_good
 * or not. `elapsedMs` unknown: no early pass.
 */
export function earlyPass(service: ServicePolicy, tally: WatchTally, elapsedMs: number | undefined): EarlyPass | undefined {
  const rule = service.passAfter;
  if (!rule || elapsedMs === undefined) return undefined;
  if (tally.okStreak < rule.ok || elapsedMs < Math.max(rule.minMs, settledAfterMs(service))) return undefined;
  if (concludeWindow(service, tally).kind !== 'passed') return undefined;
  return { oks: tally.okStreak, afterMs: elapsedMs };
}

/**
 * How long after the deployment every rule's samples describe the new version alone: a query over
 * `rate(…[5m])` still mixes in the version before for five minutes, a burn-rate rule for its
 * longest window; warm-up samples do not count. No early pass before that, whatever `min` says.
 */
export function settledAfterMs(service: ServicePolicy): number {
  const lookback = service.rules.map((r) => {
    if (r.burnRate) return Math.max(0, ...r.burnRate.windows.map((w) => w.longMs));
    const signal = service.signals[r.signal];
    return signal?.kind === 'prometheus' ? promqlLookbackMs(signal.query) : 0;
  });
  return service.warmupMs + Math.max(0, ...lookback);
}

/** Runbook success criteria after a revert: all must hold; a check without data does not hold. */
export function recoveryStatus(
  checks: readonly RecoveryCheck[],
  values: Record<string, Value>,
): { met: boolean; unmet: { check: RecoveryCheck; value: Value }[] } {
  const unmet: { check: RecoveryCheck; value: Value }[] = [];
  for (const check of checks) {
    const value = values[check.signal] ?? null;
    const holds = value !== null && !Number.isNaN(value) && (check.above !== undefined ? value > check.above : value < (check.below as number));
    if (!holds) unmet.push({ check, value });
  }
  return { met: unmet.length === 0, unmet };
}
