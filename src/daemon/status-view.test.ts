import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Rule } from '../config/policy.js';
import type { Deployment } from '../store/store.js';
import type { Watch } from './context.js';
import { revertView, ruleStates } from './status-view.js';

const rule: Rule = { name: 'errors', signal: 'error_rate', above: 0.05, for: 2, severity: 'P0', action: 'rollback' };

function watch(v: number | null, deployment: Partial<Deployment> = {}): Watch {
  return {
    service: { rules: [rule] }, history: new Map([['error_rate', [{ t: Date.parse('2024-05-01T12:00:00Z'), v }]]]), tally: { rules: { errors: { streak: 1 } } },
    deployment: { id: 7, to_ref: 'app:v2', from_ref: 'app:v1', state: 'rolling_back', phase: 'parked', attempts: 1, ...deployment },
    done: true,
  } as unknown as Watch;
}

describe('status view', () => {
  it('a rule last sampled at ±Infinity reports "+Inf"/"-Inf" (JSON would make Infinity null, read as no data); NaN is no data', () => {
    assert.equal(ruleStates(watch(Number.POSITIVE_INFINITY))[0]?.last?.value, '+Inf');
    assert.equal(ruleStates(watch(Number.NEGATIVE_INFINITY))[0]?.last?.value, '-Inf');
    assert.equal(ruleStates(watch(Number.NaN))[0]?.last?.value, null);
    assert.equal(JSON.parse(JSON.stringify(ruleStates(watch(Number.POSITIVE_INFINITY))))[0].last.value, '+Inf');
    assert.equal(ruleStates(watch(Number.POSITIVE_INFINITY))[0]?.result, 'breach');
  });

  it('a revert is reported only while it runs here and its deployment is rolling back', () => {
    assert.deepEqual(revertView(watch(1), true), { deployment: 7, to_ref: 'app:v2', from_ref: 'app:v1', phase: 'parked', attempts: 1 });
    assert.equal(revertView(watch(1), false), undefined, 'handed to another instance: not running here');
    assert.equal(revertView(watch(1, { state: 'rolled_back' }), true), undefined);
    assert.equal(revertView(undefined, true), undefined);
    assert.equal(revertView(watch(1, { phase: null }), true)?.phase, 'decided');
  });
});
