import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parsePolicy } from './load-policy.js';
import { problems } from './policy-problems.fixture.js';

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

describe('policy: the rule kinds of the decision tree', () => {
  it('reads baseline rules, warm-up, traffic floor, on_no_data, inconclusive_is_good and on_migrations', () => {
    const p = parsePolicy(`${HEAD}    warmup: 30s
    min_requests: {signal: request_rate, at_least: 1}
    on_no_data: {after: 5, then: notify}
    inconclusive_is_good: true
    on_migrations: revert
    rules:
      - {name: ratio, signal: error_rate, above_baseline: 1.5, min_threshold: 0.01, baseline: 30m, for: 3, action: rollback}
      - {name: delta, signal: error_rate, above_baseline_by: 0.02, for: 3, action: notify}
`, 'p.yaml', {});
    const web = p.services.web;
    assert.equal(web?.warmupMs, 30_000);
    assert.deepEqual(web?.minRequests, { signal: 'request_rate', atLeast: 1 });
    assert.deepEqual(web?.onNoData, { after: 5, then: 'notify' });
    assert.equal(web?.inconclusiveIsGood, true);
    assert.equal(web?.onMigrations, 'revert');
    assert.deepEqual(web?.rules[0]?.baseline, { windowMs: 1_800_000, ratio: 1.5, minThreshold: 0.01 });
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
      'p.yaml:14: services.web.rules[0]: set exactly one of above, below, above_baseline, above_baseline_by or burn_rate',
      'p.yaml:15: services.web.rules[1].above_baseline_by: a baseline needs a prometheus signal (its history before the deploy)',
    ]);
  });
});

describe('policy: min_threshold, the floor of a baseline-relative threshold', () => {
  const rules = (lines: string): string => `${HEAD}    rules:\n${lines}`;

  it('reads min_threshold with above_baseline and with above_baseline_by', () => {
    const web = parsePolicy(rules(`      - {name: ratio, signal: error_rate, above_baseline: 1.5, min_threshold: 0.01}
      - {name: delta, signal: error_rate, above_baseline_by: 0.02, min_threshold: 0.05}
      - {name: delta-only, signal: error_rate, above_baseline_by: 0.02}
`), 'p.yaml', {}).services.web;
    assert.deepEqual(web?.rules.map((r) => r.baseline), [
      { windowMs: 1_800_000, ratio: 1.5, minThreshold: 0.01 },
      { windowMs: 1_800_000, delta: 0.02, minThreshold: 0.05 },
      { windowMs: 1_800_000, delta: 0.02 },
    ]);
  });

  it('min_threshold may come from the environment', () => {
    const web = parsePolicy(rules('      - name: ratio\n        signal: error_rate\n        above_baseline: 1.5\n        min_threshold: ${FLOOR}\n'), 'p.yaml', { FLOOR: '0.02' }).services.web;
    assert.equal(web?.rules[0]?.baseline?.minThreshold, 0.02);
  });

  const refused: [string, string, string[]][] = [
    ['above_baseline without min_threshold: a baseline of 0 would revert on the first error', '      - {name: ratio, signal: error_rate, above_baseline: 1.5}\n', [
      'p.yaml:11: services.web.rules[0].above_baseline: needs min_threshold, the lowest value that may breach: a service without errors before the deploy has a baseline of 0, and 1.5 × 0 = 0 would revert on its first error (e.g. min_threshold: 0.01 for an error ratio)',
    ]],
    ['above_baseline_by of 0 or less without min_threshold', '      - name: delta\n        signal: error_rate\n        above_baseline_by: 0\n', [
      'p.yaml:13: services.web.rules[0].above_baseline_by: needs min_threshold when 0 or less: a baseline of 0 + 0 would revert on the first error',
    ]],
    ['min_threshold without a baseline', '      - name: plain\n        signal: error_rate\n        above: 0.05\n        min_threshold: 0.01\n', [
      'p.yaml:14: services.web.rules[0].min_threshold: min_threshold goes with above_baseline or above_baseline_by (the floor of a threshold taken from the baseline)',
    ]],
    ['min_threshold that is not a number', '      - {name: ratio, signal: error_rate, above_baseline: 1.5, min_threshold: low}\n', [
      'p.yaml:11: services.web.rules[0].min_threshold: expected a number',
    ]],
  ];
  for (const [name, lines, want] of refused) {
    it(`refuses ${name}, naming file:line and key`, () => assert.deepEqual(problems(rules(lines)), want));
  }
});

describe('policy: SLO burn-rate rules', () => {
  const BURN = HEAD.replace(
    "      ready: {http:",
    "      error_ratio: {prometheus: 'sum(rate(x{service=\"{{service}}\",code=~\"5..\"}[{{range}}])) / sum(rate(x{service=\"{{service}}\"}[{{range}}]))'}\n      ready: {http:",
  );

  it('reads slo and the window pairs into milliseconds; the rule breaches above a score of 1', () => {
    const rule = parsePolicy(`${BURN}    rules:\n      - {name: budget, signal: error_ratio, burn_rate: {slo: 0.999, windows: [[5m, 1h, 14.4], [30m, 6h, 6]]}, action: rollback}\n`, 'p.yaml', {}).services.web?.rules[0];
    assert.deepEqual(rule?.burnRate, { slo: 0.999, windows: [{ shortMs: 300_000, longMs: 3_600_000, factor: 14.4 }, { shortMs: 1_800_000, longMs: 21_600_000, factor: 6 }] });
    assert.equal(rule?.above, 1);
  });

  it('needs a {{range}} query, and keeps {{range}} queries for burn-rate rules only', () => {
    assert.deepEqual(problems(`${BURN}    rules:
      - {name: budget, signal: error_rate, burn_rate: {slo: 0.999, windows: [[5m, 1h, 14.4]]}}
      - {name: plain, signal: error_ratio, above: 0.01}
      - {name: bad slo, signal: error_ratio, burn_rate: {slo: 1, windows: []}}
`), [
      'p.yaml:12: services.web.rules[0].signal: a burn_rate rule needs a prometheus signal written with {{range}}, e.g. sum(rate(errors[{{range}}])) / sum(rate(requests[{{range}}]))',
      'p.yaml:13: services.web.rules[1].signal: this signal is written with {{range}}, which only burn_rate rules fill in',
      'p.yaml:14: services.web.rules[2].burn_rate.slo: Too big: expected number to be <1',
      'p.yaml:14: services.web.rules[2].burn_rate.windows: Too small: expected array to have >=1 items',
    ]);
  });
});

describe('policy: scope rules (min_series)', () => {
  it('a scope rule counts the series beyond its per-series threshold and breaches from min_series on', () => {
    const rule = parsePolicy(`${HEAD}    rules:\n      - {name: tenants, signal: error_rate, above: 0.05, min_series: 2, action: rollback}\n`, 'p.yaml', {}).services.web?.rules[0];
    assert.deepEqual(rule?.scope, { minSeries: 2, perSeries: { above: 0.05 } });
    assert.equal(rule?.above, 1.5);
  });

  it('min_series needs a prometheus signal and a per-series threshold', () => {
    assert.deepEqual(problems(`${HEAD}    rules:
      - {name: http, signal: ready, below: 1, min_series: 2}
      - {name: nothr, signal: error_rate, above_baseline: 2, min_threshold: 0.01, min_series: 2}
`), [
      'p.yaml:11: services.web.rules[0].min_series: min_series needs a prometheus signal returning one series per tenant or route',
      'p.yaml:12: services.web.rules[1].min_series: min_series goes with above or below (the threshold each series is held to)',
    ]);
  });
});
