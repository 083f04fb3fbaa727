import type { ServicePolicy } from '../config/policy.js';

/**
 * A ServicePolicy with the built-in defaults (10m window, 15s interval, 2 attempts…), for tests
 * of pure code: callers override what their case is about. One place to extend when the policy
 * gains a field.
 */
export function servicePolicy(overrides: Partial<ServicePolicy> = {}): ServicePolicy {
  return {
    name: 'web',
    match: { kind: 'container', name: overrides.name ?? 'web' },
    windowMs: 600_000,
    intervalMs: 15_000,
    maxAttempts: 2,
    stopTimeoutMs: 10_000,
    recoveryTimeoutMs: 120_000,
    minDataRatio: 0.8,
    warmupMs: 0,
    inconclusiveIsGood: false,
    onMigrations: 'hold',
    afterRollback: [],
    notify: {},
    signals: {},
    rules: [],
    recovery: [],
    ...overrides,
  };
}
