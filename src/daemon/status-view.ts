import type { Rule } from '../config/policy.js';
import { jsonNumber } from '../model/json-number.js';
import type { RuleInfo, RuleState } from '../model/rule-view.js';
import { classify, describeThreshold, valueKey } from '../policy/assess.js';
import type { Watch } from './context.js';

/** A rule as the status page shows it: its threshold in words and as the number a chart draws. */
export function ruleInfo(rule: Rule): RuleInfo {
  const limit = rule.above ?? rule.below;
  return {
    name: rule.name, signal: rule.signal, key: valueKey(rule), action: rule.action, severity: rule.severity, for: rule.for,
    threshold: describeThreshold(rule), limit: Number.isFinite(limit) ? limit : null, direction: rule.above !== undefined ? 'above' : 'below',
  };
}

/** Each rule of an active watch with its latest sample and how that compares to the threshold. */
export function ruleStates(watch: Watch): RuleState[] {
  return watch.service.rules.map((rule) => {
    const last = watch.history.get(valueKey(rule))?.at(-1);
    return {
      ...ruleInfo(rule),
      streak: watch.tally.rules[rule.name]?.streak ?? 0,
      last: last ? { at: new Date(last.t).toISOString(), value: last.v === null || Number.isNaN(last.v) ? null : jsonNumber(last.v) } : null,
      result: last ? classify(rule, last.v) : null,
    };
  });
}

/** A revert running now, as the status shows it while its watch has ended. */
export interface RevertView { deployment: number; to_ref: string; from_ref: string | null; phase: string; attempts: number }

/**
 * The revert of the service's deployment while one runs here (its watch ended when the revert was
 * decided); undefined otherwise — also after a revert handed to another instance, whose watch
 * keeps the state it had.
 */
export function revertView(watch: Watch | undefined, reverting: boolean): RevertView | undefined {
  const d = watch?.deployment;
  if (!reverting || !d || d.state !== 'rolling_back') return undefined;
  return { deployment: d.id, to_ref: d.to_ref, from_ref: d.from_ref, phase: d.phase ?? 'decided', attempts: d.attempts };
}
