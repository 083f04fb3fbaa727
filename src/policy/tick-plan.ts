import type { Rule, ServicePolicy } from '../config/policy.js';
import { assess, earlyPass, valueKey, type EarlyPass, type SampleResult, type Value, type WatchTally } from './assess.js';

/** What one tick of a watch measured, and where the watch stands. */
export interface TickInput {
  service: ServicePolicy;
  tally: WatchTally;
  /** The measured values by signal (and burn-rate/scope key); empty while warming up. */
  values: Record<string, Value>;
  /** Before container start + warmup: samples do not count. */
  warmingUp: boolean;
  /** The watch window has ended by this tick. */
  windowEnded: boolean;
  /** Since the deployment started, for `pass_after`; absent: no early pass. */
  elapsedMs?: number;
  /**
   * A hold or migration freeze is in force, or a revert of the service runs: the watch may still
   * revert or conclude at the window's end as before, but never passes early.
   */
  held?: boolean;
}

/**
 * One step of a tick's plan, carried out in order by the watch loop. A `revert` or a `no-data`
 * that ends the watch stops the plan; `conclude` happens only when nothing stopped it first
 * (and no hold is in force, which the loop checks). `pass-early` (`pass_after`) ends the watch as
 * passed before the window's end, by the same path as `conclude`.
 */
export type TickStep =
  | { kind: 'record'; results: Record<string, SampleResult>; note?: string }
  | { kind: 'notify'; rule: Rule }
  | { kind: 'revert'; rule: Rule; value: Value }
  | { kind: 'no-data'; rules: Rule[] }
  | { kind: 'conclude' }
  | ({ kind: 'pass-early' } & EarlyPass);

/** Below the traffic floor (`min_requests`, or its signal without data): Prometheus rules get no data. */
export function belowTrafficFloor(service: Pick<ServicePolicy, 'minRequests'>, values: Record<string, Value>): { low: boolean; traffic: Value } {
  const floor = service.minRequests;
  if (!floor) return { low: false, traffic: null };
  const traffic = values[floor.signal] ?? null;
  return { low: traffic === null || traffic < floor.atLeast, traffic };
}

/** Decides a tick: folds its values into the tally and returns the steps to carry out. */
export function planTick(input: TickInput): { tally: WatchTally; steps: TickStep[] } {
  const { service } = input;
  const steps: TickStep[] = [];
  let tally = input.tally;
  if (!input.warmingUp) {
    const floor = belowTrafficFloor(service, input.values);
    const judged = assess(service, tally, input.values, { lowTraffic: floor.low });
    tally = judged.tally;
    const note = floor.low ? `traffic ${floor.traffic ?? 'unknown'} below the floor of ${service.minRequests?.atLeast}` : undefined;
    steps.push({ kind: 'record', results: judged.results, note });
    for (const rule of judged.verdict.notify) steps.push({ kind: 'notify', rule });
    if (judged.verdict.kind === 'rollback') {
      const rule = judged.verdict.rule;
      steps.push({ kind: 'revert', rule, value: input.values[valueKey(rule)] ?? null });
      return { tally, steps };
    }
    if (judged.verdict.noData.length) steps.push({ kind: 'no-data', rules: judged.verdict.noData });
    const early = input.windowEnded || input.held ? undefined : earlyPass(service, tally, input.elapsedMs);
    if (early) steps.push({ kind: 'pass-early', ...early });
  }
  if (input.windowEnded) steps.push({ kind: 'conclude' });
  return { tally, steps };
}

/**
 * Replays recorded watch samples (a watch resumed after a restart or a takeover) into the tally
 * they add up to, tick by tick in time order, with the traffic floor applied as it was live.
 */
export function tallyFromSamples(service: ServicePolicy, start: WatchTally, samples: readonly { at: number; signal: string; value: Value }[]): WatchTally {
  const ticks = new Map<number, Record<string, Value>>();
  for (const x of samples) {
    const values = ticks.get(x.at) ?? {};
    values[x.signal] = x.value;
    ticks.set(x.at, values);
  }
  let tally = start;
  for (const t of [...ticks.keys()].sort((a, b) => a - b)) {
    const values = ticks.get(t) ?? {};
    tally = assess(service, tally, values, { lowTraffic: belowTrafficFloor(service, values).low }).tally;
  }
  return tally;
}

