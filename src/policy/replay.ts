import type { Rule, ServicePolicy } from '../config/policy.js';
import { assess, concludeWindow, describeThreshold, earlyPass, emptyTally, valueKey, type EarlyPass, type SampleResult, type Value, type WatchTally } from './assess.js';

/** One tick's measured values, keyed like `assess` reads them (signal names, `burn:<rule>`). */
export interface ReplayInputTick {
  at: number;
  values: Record<string, Value>;
  /** Why a value is missing (no series, N series, query failed…), by the same keys. */
  details?: Record<string, string | undefined>;
}

/** What a replay of one deployment is given; baseline-relative rules already carry their resolved threshold. */
export interface ReplayInput {
  service: ServicePolicy;
  /** When the deployed container started: warm-up counts from here. */
  startedAt: number;
  /** The tick at or after this time ends the window. */
  windowEndsAt: number;
  ticks: readonly ReplayInputTick[];
  /** History ends early (a recorded revert, or now): ticks after `at` are not replayed. */
  cut?: { at: number; reason: string };
}

/** How one rule read at one tick: a sample result, or a rule whose signal has no history. */
export type ReplayResultCell = SampleResult | 'not-replayed';

export interface ReplayStep {
  at: number;
  values: Record<string, Value>;
  details: Record<string, string | undefined>;
  /** Before start + warm-up: the daemon takes no sample, nothing counts. */
  warmup: boolean;
  /** Below the `min_requests` floor: Prometheus-based rules read no data. */
  lowTraffic: boolean;
  results: Record<string, ReplayResultCell>;
}

/** A rule firing (or an `on_no_data` notice) at a tick. */
export interface ReplayEvent {
  at: number;
  rule: string;
  kind: 'rollback' | 'notify' | 'no-data';
  severity: Rule['severity'];
  detail: string;
}

export type ReplayVerdict =
  | { kind: 'rollback'; at: number; rule: string; reason: string }
  /** `early`: passed before the window's end (`pass_after`), judged on the replayed rules. */
  | { kind: 'passed'; at: number; early?: EarlyPass }
  | { kind: 'inconclusive'; at: number | null; reason: string };

export interface ReplayResult {
  steps: ReplayStep[];
  events: ReplayEvent[];
  verdict: ReplayVerdict;
  /** Rules over signals without history (http, container): shown as no data, left out of the verdict. */
  notReplayed: Rule[];
}

/**
 * The daemon's tick times for a deployment: the first one interval after the deploy, then every
 * interval, the last at or after the end of the window.
 */
export function replayTimes(startedAt: number, windowMs: number, intervalMs: number): number[] {
  const count = Math.max(1, Math.ceil(windowMs / intervalMs));
  return Array.from({ length: count }, (_, i) => startedAt + (i + 1) * intervalMs);
}

/** Whether a rule's samples can be rebuilt from Prometheus history. */
export function hasHistory(service: ServicePolicy, rule: Pick<Rule, 'signal'>): boolean {
  return service.signals[rule.signal]?.kind === 'prometheus';
}

/** The service as the replay judges it: only rules whose signal has Prometheus history. */
export function replayableService(service: ServicePolicy): { judged: ServicePolicy; notReplayed: Rule[] } {
  return {
    judged: { ...service, rules: service.rules.filter((r) => hasHistory(service, r)) },
    notReplayed: service.rules.filter((r) => !hasHistory(service, r)),
  };
}

/**
 * Replays a watch over recorded values the way the daemon's ticks decide: warm-up samples do not
 * count, below the traffic floor Prometheus rules read no data, the first rollback rule to fire
 * ends the watch, `on_no_data: inconclusive` ends it early, and the tick at or after the end of
 * the window concludes it with `concludeWindow` — or `pass_after` passes it before, once the replayed
 * rules were all ok long enough. Holds and migration freezes are not replayed.
 * Pure: values in, verdict out.
 */
export function replay(input: ReplayInput): ReplayResult {
  const { service, startedAt, windowEndsAt, cut } = input;
  const { judged, notReplayed } = replayableService(service);
  const floor = service.minRequests;
  const steps: ReplayStep[] = [];
  const events: ReplayEvent[] = [];
  let tally: WatchTally = emptyTally(judged);
  const finish = (verdict: ReplayVerdict): ReplayResult => ({ steps, events, verdict, notReplayed });

  for (const tick of input.ticks) {
    if (cut && tick.at > cut.at) break;
    const warmup = tick.at < startedAt + service.warmupMs;
    const traffic = floor ? tick.values[floor.signal] ?? null : null;
    const lowTraffic = !warmup && floor !== undefined && (traffic === null || traffic < floor.atLeast);
    const step: ReplayStep = { at: tick.at, values: tick.values, details: tick.details ?? {}, warmup, lowTraffic, results: {} };
    for (const rule of notReplayed) step.results[rule.name] = 'not-replayed';
    steps.push(step);
    if (!warmup) {
      const assessed = assess(judged, tally, tick.values, { lowTraffic });
      tally = assessed.tally;
      Object.assign(step.results, assessed.results);
      const verdict = assessed.verdict;
      for (const rule of verdict.notify) {
        events.push({ at: tick.at, rule: rule.name, kind: 'notify', severity: rule.severity, detail: `${rule.signal} ${describeThreshold(rule)} for ${rule.for} samples` });
      }
      if (verdict.kind === 'rollback') {
        const rule = verdict.rule;
        const reason = `${rule.name}: ${rule.signal} ${describeThreshold(rule)} for ${rule.for} consecutive samples (last ${tick.values[valueKey(rule)] ?? null})`;
        events.push({ at: tick.at, rule: rule.name, kind: 'rollback', severity: rule.severity, detail: reason });
        return finish({ kind: 'rollback', at: tick.at, rule: rule.name, reason });
      }
      if (verdict.noData.length && service.onNoData) {
        const names = verdict.noData.map((r) => `"${r.name}"`).join(', ');
        const reason = `no data for ${service.onNoData.after} consecutive samples of ${names}`;
        for (const rule of verdict.noData) events.push({ at: tick.at, rule: rule.name, kind: 'no-data', severity: rule.severity, detail: reason });
        if (service.onNoData.then === 'inconclusive') return finish({ kind: 'inconclusive', at: tick.at, reason: `${reason}; the watch ended (on_no_data: inconclusive)` });
      }
      const early = tick.at < windowEndsAt && judged.rules.some((r) => r.action === 'rollback') ? earlyPass(judged, tally, tick.at - startedAt) : undefined;
      if (early) return finish({ kind: 'passed', at: tick.at, early });
    }
    if (tick.at >= windowEndsAt) return finish(conclude(judged, tally, tick.at));
  }
  const last = steps.at(-1)?.at ?? null;
  if (cut) return finish({ kind: 'inconclusive', at: last, reason: `no rollback rule fired before ${cut.reason}` });
  return finish({ kind: 'inconclusive', at: last, reason: 'the history ends before the window does' });
}

function conclude(judged: ServicePolicy, tally: WatchTally, at: number): ReplayVerdict {
  if (!judged.rules.some((r) => r.action === 'rollback')) {
    return { kind: 'inconclusive', at, reason: 'no rollback rule reads a Prometheus signal; nothing could be replayed' };
  }
  const outcome = concludeWindow(judged, tally);
  if (outcome.kind === 'passed') return { kind: 'passed', at };
  const good = outcome.kind === 'inconclusive' && judged.inconclusiveIsGood ? '; now known-good (inconclusive_is_good)' : '';
  return { kind: 'inconclusive', at, reason: `${outcome.reason}${good}` };
}
