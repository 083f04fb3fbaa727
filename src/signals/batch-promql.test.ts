import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planBatch, regexEscape, type BatchPlan } from './batch-promql.js';

function batched(template: string, values: string[]): string {
  const plan = planBatch(template);
  assert.equal(plan.kind, 'batch', plan.kind === 'single' ? plan.reason : '');
  return (plan as BatchPlan).render(values);
}

describe('planBatch: templates that are batched', () => {
  const cases: [string, string, string][] = [
    ['an error ratio gets by (service) on both sums and a regex matcher',
      'sum(rate(http_requests_total{service="{{service}}",code=~"5.."}[3s])) / sum(rate(http_requests_total{service="{{service}}"}[3s]))',
      'sum by (service)(rate(http_requests_total{service=~"api|web",code=~"5.."}[3s])) / sum by (service)(rate(http_requests_total{service=~"api|web"}[3s]))'],
    ['an existing by () list gains the label',
      'histogram_quantile(0.99, sum by (le) (rate(latency_bucket{service="{{service}}"}[5m])))',
      'histogram_quantile(0.99, sum by (le, service) (rate(latency_bucket{service=~"api|web"}[5m])))'],
    ['a trailing by () list gains the label',
      'sum(rate(x{job="{{service}}"}[1m])) by (instance)',
      'sum(rate(x{job=~"api|web"}[1m])) by (instance, job)'],
    ['without () keeps the label and is left alone',
      'max without (instance) (up{service="{{service}}"})',
      'max without (instance) (up{service=~"api|web"})'],
    ['on () gains the label',
      'sum(a{service="{{service}}"}) / on() sum(b{service="{{service}}"})',
      'sum by (service)(a{service=~"api|web"}) / on(service) sum by (service)(b{service=~"api|web"})'],
    ['a selector without a metric name, and the container placeholder',
      'max_over_time({__name__="restarts",container="{{container}}"}[5m])',
      'max_over_time({__name__="restarts",container=~"api|web"}[5m])'],
    ['a subquery, offset and a comparison',
      'max_over_time(sum(rate(x{service="{{service}}"}[1m]))[5m:30s]) > bool 0.5 offset 1m',
      'max_over_time(sum by (service)(rate(x{service=~"api|web"}[1m]))[5m:30s]) > bool 0.5 offset 1m'],
    ['quantile keeps its parameter',
      'quantile(0.9, x{service="{{service}}"})',
      'quantile by (service)(0.9, x{service=~"api|web"})'],
  ];
  for (const [name, template, want] of cases) it(name, () => assert.equal(batched(template, ['web', 'api', 'web']), want));

  it('escapes regex metacharacters, then the PromQL string', () => {
    assert.equal(regexEscape('a.b|c'), 'a\\.b\\|c');
    assert.equal(batched('sum(x{service="{{service}}"})', ['a.b', 'c"d']), 'sum by (service)(x{service=~"a\\\\.b|c\\"d"})');
  });

  it('accepts spaces inside the placeholder', () => {
    assert.equal(batched('sum(x{service="{{ service }}"})', ['web']), 'sum by (service)(x{service=~"web"})');
  });
});

describe('planBatch: templates that fall back to one query per service', () => {
  const cases: [string, string, RegExp][] = [
    ['a selector without the placeholder (a global total)', 'sum(rate(err{service="{{service}}"}[1m])) / sum(rate(total[1m]))', /without the placeholder/],
    ['a selector with braces but no placeholder', 'sum(rate(err{service="{{service}}"}[1m])) / sum(rate(total{job="x"}[1m]))', /without the placeholder/],
    ['vector()', 'sum(rate(err{service="{{service}}"}[1m])) or vector(0)', /vector\(\) is not batched/],
    ['scalar()', 'scalar(sum(err{service="{{service}}"}))', /scalar\(\) is not batched/],
    ['label_replace', 'label_replace(err{service="{{service}}"}, "service", "x", "", "")', /label_replace|string argument/],
    ['topk', 'topk(1, err{service="{{service}}"})', /topk/],
    ['group_left', 'a{service="{{service}}"} * on(instance) group_left b{service="{{service}}"}', /group_left/],
    ['ignoring the label', 'a{service="{{service}}"} / ignoring(service) b{service="{{service}}"}', /ignoring\(service\)/],
    ['without the label', 'sum without (service) (a{service="{{service}}"})', /without \(service\)/],
    ['a placeholder inside a longer value', 'sum(x{job="{{service}}-api"})', /whole/],
    ['a regex placeholder matcher', 'sum(x{service=~"{{service}}"})', /whole/],
    ['two variables', 'sum(x{service="{{service}}",container="{{container}}"})', /more than one/],
    ['no placeholder at all', 'sum(up)', /placeholder|without/],
    ['the @ modifier', 'sum(x{service="{{service}}"} @ 100)', /@/],
    ['an unknown function', 'day_of_week(x{service="{{service}}"})', /day_of_week/],
    ['absent()', 'absent(x{service="{{service}}"})', /absent/],
  ];
  for (const [name, template, reason] of cases) {
    it(name, () => {
      const plan = planBatch(template);
      assert.equal(plan.kind, 'single');
      assert.match((plan as { reason: string }).reason, reason);
    });
  }
});
