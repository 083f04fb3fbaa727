import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from './errors.js';
import { parsePolicy } from './load-policy.js';

const HEAD = `version: 1
prometheus: {url: "http://127.0.0.1:9090"}
services:
  web:
    match: {container: web}
    signals:
      error_rate: {prometheus: 'sum(rate(x{service="{{service}}",code=~"5.."}[1m]))'}
      request_rate: {prometheus: 'sum(rate(x{service="{{service}}"}[1m]))'}
      ready: {http: {url: "http://127.0.0.1:8000/ready"}}
`;

function problems(text: string): string[] {
  try {
    parsePolicy(text, 'p.yaml', {});
  } catch (err) {
    if (err instanceof ConfigError) return err.message.split('\n');
    throw err;
  }
  return [];
}

describe('policy: the rule kinds of the decision tree', () => {
  it('reads baseline rules, warm-up, traffic floor, on_no_data, inconclusive_is_good and on_migrations', () => {
    const p = parsePolicy(`${HEAD}    warmup: 30s
    min_requests: {signal: request_rate, at_least: 1}
    on_no_data: {after: 5, then: notify}
    inconclusive_is_good: true
    on_migrations: revert
    rules:
      - {name: ratio, signal: error_rate, above_baseline: 1.5, baseline: 30m, for: 3, action: rollback}
      - {name: delta, signal: error_rate, above_baseline_by: 0.02, for: 3, action: notify}
`, 'p.yaml', {});
    const web = p.services.web;
    assert.equal(web?.warmupMs, 30_000);
    assert.deepEqual(web?.minRequests, { signal: 'request_rate', atLeast: 1 });
    assert.deepEqual(web?.onNoData, { after: 5, then: 'notify' });
    assert.equal(web?.inconclusiveIsGood, true);
    assert.equal(web?.onMigrations, 'revert');
    assert.deepEqual(web?.rules[0]?.baseline, { windowMs: 1_800_000, ratio: 1.5 });
    assert.ok(Number.isNaN(web?.rules[0]?.above), 'resolved per deployment');
    assert.deepEqual(web?.rules[1]?.baseline, { windowMs: 1_800_000, delta: 0.02 });
  });

  it('defaults: no warm-up, no floor, no on_no_data, inconclusive is not good, migrations hold', () => {
    const web = parsePolicy(`${HEAD}    rules: [{name: r, signal: ready, below: 1}]\n`, 'p.yaml', {}).services.web;
    assert.equal(web?.warmupMs, 0);
    assert.equal(web?.minRequests, undefined);
    assert.equal(web?.onNoData, undefined);
    assert.equal(web?.inconclusiveIsGood, false);
    assert.equal(web?.onMigrations, 'hold');
  });

  it('reports mistakes in the new keys with their lines', () => {
    assert.deepEqual(problems(`${HEAD}    min_requests: {signal: requests, at_least: 1}
    on_no_data: {after: 0, then: revert}
    on_migrations: ignore
    rules:
      - {name: two, signal: error_rate, above: 0.05, above_baseline: 2}
      - {name: http-baseline, signal: ready, above_baseline_by: 1}
`), [
      'p.yaml:10: services.web.min_requests.signal: unknown signal "requests"; defined: error_rate, request_rate, ready',
      'p.yaml:11: services.web.on_no_data.after: Too small: expected number to be >=1',
      'p.yaml:11: services.web.on_no_data.then: expected one of "notify", "inconclusive"',
      'p.yaml:12: services.web.on_migrations: expected one of "hold", "revert"',
      'p.yaml:14: services.web.rules[0]: set exactly one of above, below, above_baseline or above_baseline_by',
      'p.yaml:15: services.web.rules[1].above_baseline_by: a baseline needs a prometheus signal (its history before the deploy)',
    ]);
  });
});
