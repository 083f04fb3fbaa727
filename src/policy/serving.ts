import type { Rule, ServicePolicy } from '../config/policy.js';

/** The built-in signal every watch samples; the colon keeps it apart from any signal a policy names. */
export const SERVING_SIGNAL = 'rollguard:serving';

/** The runbook's "service unavailable → roll back", whatever else the policy measures. */
export const SERVING_RULE: Rule = { name: 'replicas not serving', signal: SERVING_SIGNAL, below: 1, for: 3, severity: 'P0', action: 'rollback' };

/**
 * The service as a watch judges it: its own rules, then a rollback rule over the built-in
 * `serving` signal, so a version whose container crashes, is OOM-killed or keeps restarting
 * during its window is reverted and never becomes known-good — even when the policy names only
 * Prometheus rules. A container stopped or removed on purpose is no data, never a breach.
 */
export function withServingRule(service: ServicePolicy): ServicePolicy {
  if (service.rules.some((r) => r.signal === SERVING_SIGNAL)) return service;
  // A git work tree has no container whose state could be read: its policy's own checks judge it.
  if (service.match.kind === 'git') return service;
  // Tallies are kept by rule name: a policy rule of the same name keeps its own.
  const rule = service.rules.some((r) => r.name === SERVING_RULE.name) ? { ...SERVING_RULE, name: `${SERVING_RULE.name} (built-in)` } : SERVING_RULE;
  return {
    ...service,
    signals: { ...service.signals, [SERVING_SIGNAL]: { kind: 'container', name: SERVING_SIGNAL, field: 'serving' } },
    rules: [...service.rules, rule],
  };
}
