import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Rule, ServicePolicy, Signal } from '../config/policy.js';
import { assess, emptyTally, type Value, type Verdict } from './assess.js';
import { servicePolicy } from './service.fixture.js';
import { withServingRule } from './serving.js';

const errorRate: Rule = { name: 'error rate above 5%', signal: 'error_rate', above: 0.05, for: 3, severity: 'P0', action: 'rollback' };
const readiness: Rule = { name: 'readiness failing', signal: 'ready', below: 1, for: 3, severity: 'P0', action: 'rollback' };
const restarting: Rule = { name: 'container restarting', signal: 'restarts', above: 2, for: 1, severity: 'P1', action: 'notify' };

const signals: Record<string, Signal> = {
  error_rate: { kind: 'prometheus', name: 'error_rate', query: 'sum(rate(http_requests_total{service="{{service}}",code=~"5.."}[1m]))' },
  ready: { kind: 'http', name: 'ready', url: 'http://127.0.0.1:8000/health/ready/', timeoutMs: 2_000, status: 200, json: {} },
  restarts: { kind: 'container', name: 'restarts', field: 'restart_count' },
};

/** The built-in rule, spelled out: the runbook's "service unavailable → roll back". */
const notServing: Rule = { name: 'replicas not serving', signal: 'rollguard:serving', below: 1, for: 3, severity: 'P0', action: 'rollback' };
const servingSignal: Signal = { kind: 'container', name: 'rollguard:serving', field: 'serving' };

function service(rules: Rule[]): ServicePolicy {
  return servicePolicy({ match: { kind: 'container', name: 'himalytix-web' }, signals, rules, recovery: [{ signal: 'error_rate', below: 0.01 }] });
}

/** The verdict of each tick, starting from an empty tally: `rollback:<rule>` or `continue`. */
function verdicts(policy: ServicePolicy, ticks: Record<string, Value>[]): string[] {
  let tally = emptyTally(policy);
  return ticks.map((values) => {
    const step = assess(policy, tally, values);
    tally = step.tally;
    const v: Verdict = step.verdict;
    return v.kind === 'rollback' ? `rollback:${v.rule.name}` : 'continue';
  });
}

describe('withServingRule', () => {
  it('appends the "replicas not serving" rollback rule after the policy\'s own rules', () => {
    const judged = withServingRule(service([errorRate, readiness, restarting]));
    assert.deepEqual(judged.rules, [errorRate, readiness, restarting, notServing]);
  });

  it('gives a policy without rules just the serving rule', () => {
    assert.deepEqual(withServingRule(service([])).rules, [notServing]);
  });

  it('adds the rollguard:serving container signal after the policy\'s own signals, which stay as they are', () => {
    const judged = withServingRule(service([errorRate]));
    assert.deepEqual(Object.keys(judged.signals), ['error_rate', 'ready', 'restarts', 'rollguard:serving']);
    assert.deepEqual(judged.signals, { ...signals, 'rollguard:serving': servingSignal });
  });

  it('leaves every other field of the policy unchanged', () => {
    const policy = service([errorRate]);
    const { signals: _s, rules: _r, ...rest } = withServingRule(policy);
    const { signals: _ps, rules: _pr, ...before } = policy;
    assert.deepEqual(rest, before);
  });

  it('does not mutate the policy it is given', () => {
    const policy = service([errorRate, readiness]);
    const snapshot = structuredClone(policy);
    const judged = withServingRule(policy);
    assert.deepEqual(policy, snapshot);
    assert.notEqual(judged.rules, policy.rules);
    assert.notEqual(judged.signals, policy.signals);
  });

  it('is idempotent: applied twice, it adds one rule', () => {
    const once = withServingRule(service([errorRate, readiness]));
    const twice = withServingRule(once);
    assert.deepEqual(twice, once);
    assert.equal(twice.rules.filter((r) => r.signal === 'rollguard:serving').length, 1);
  });

  it('rolls back after 3 samples of a container not serving, whatever the policy\'s own rules say', () => {
    const judged = withServingRule(service([errorRate]));
    const tick = { error_rate: 0, 'rollguard:serving': 0 };
    assert.deepEqual(verdicts(judged, [tick, tick, tick]), ['continue', 'continue', 'rollback:replicas not serving']);
  });

  it('never rolls back on a stopped container (no data)', () => {
    const judged = withServingRule(service([errorRate]));
    const tick = { error_rate: 0, 'rollguard:serving': null };
    assert.deepEqual(verdicts(judged, [tick, tick, tick, tick]), ['continue', 'continue', 'continue', 'continue']);
  });

  it('keeps a policy rule that happens to be named "replicas not serving" apart from the built-in one', () => {
    const ownRule: Rule = { ...readiness, name: 'replicas not serving' };
    const judged = withServingRule(service([ownRule]));
    const tick = { ready: 0, 'rollguard:serving': 1 };
    assert.deepEqual(verdicts(judged, [tick, tick, tick]), ['continue', 'continue', 'rollback:replicas not serving']);
  });
});
