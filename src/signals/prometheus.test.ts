import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AxiosInstance } from 'axios';
import { breaches } from '../policy/assess.js';
import { PrometheusProvider, rangeAverage, sampleNumber } from './prometheus.js';

const ctx = { template: { service: 'web', container: 'web', image: 'app:v2', version: 'v2' }, containerId: 'c', at: new Date(1_700_000_000_000) };
const signal = { kind: 'prometheus' as const, name: 'errors', query: 'sum by (tenant) (rate(errors{service="{{service}}"}[1m]))' };

/** A Prometheus HTTP API answering one fixed body, recording the queries asked. */
function answering(status: number, data: unknown): { provider: PrometheusProvider; queries: string[] } {
  const queries: string[] = [];
  const http = {
    async request(config: { params: { query: string } }) {
      if (config.params.query === 'time()') return { status: 200, data: { status: 'success', data: { resultType: 'scalar', result: [Date.now() / 1000, String(Date.now() / 1000)] } } };
      queries.push(config.params.query);
      return { status, data };
    },
  } as unknown as AxiosInstance;
  return { provider: new PrometheusProvider('http://127.0.0.1:9', 1_000, { http }), queries };
}

const vector = (values: [string, string][]) => ({ status: 'success', data: { resultType: 'vector', result: values.map(([tenant, v]) => ({ metric: { tenant }, value: [1_700_000_000, v] })) } });

describe('PrometheusProvider', () => {
  const cases: [string, number, unknown, number | null, RegExp | undefined][] = [
    ['one series is the value', 200, vector([['a', '0.2']]), 0.2, undefined],
    ['no series is no data', 200, vector([]), null, /no series/],
    ['several series are no data, with the advice to aggregate', 200, vector([['a', '1'], ['b', '2']]), null, /2 series; aggregate/],
    ['NaN is no data', 200, vector([['a', 'NaN']]), null, /NaN/],
    ['+Inf is a value (a ratio over zero, a quantile past the top bucket)', 200, vector([['a', '+Inf']]), Number.POSITIVE_INFINITY, undefined],
    ['-Inf is a value', 200, vector([['a', '-Inf']]), Number.NEGATIVE_INFINITY, undefined],
    ['a +Inf scalar is a value', 200, { status: 'success', data: { resultType: 'scalar', result: [1_700_000_000, '+Inf'] } }, Number.POSITIVE_INFINITY, undefined],
    ['a query error is no data', 200, { status: 'error', errorType: 'bad_data', error: 'parse error' }, null, /bad_data: parse error/],
    ['HTTP 503 is no data', 503, 'down', null, /HTTP 503/],
    ['an unexpected body is no data', 200, { hello: 1 }, null, /unexpected body/],
  ];
  for (const [name, status, body, want, detail] of cases) {
    it(name, async () => {
      const m = await answering(status, body).provider.measure(signal, ctx);
      assert.equal(m.value, want);
      if (detail) assert.match(m.detail ?? '', detail);
    });
  }

  it('renders the template with escaped values', async () => {
    const { provider, queries } = answering(200, vector([['a', '1']]));
    await provider.measure(signal, { ...ctx, template: { ...ctx.template, service: 'web"} or vector(1) #' } });
    assert.equal(queries[0], 'sum by (tenant) (rate(errors{service="web\\"} or vector(1) #"}[1m]))');
  });

  it('countBeyond counts the series past the per-series threshold', async () => {
    const { provider } = answering(200, vector([['a', '0.2'], ['b', '0.01'], ['c', '0.09']]));
    const m = await provider.countBeyond(signal, ctx, (v) => v > 0.05);
    assert.equal(m.value, 2);
    assert.match(m.detail ?? '', /2 of 3 series: tenant=a tenant=c/);
  });

  it('countBeyond counts a +Inf series and leaves NaN ones out', async () => {
    const { provider } = answering(200, vector([['a', '+Inf'], ['b', '0.01'], ['c', 'NaN']]));
    const m = await provider.countBeyond(signal, ctx, (v) => breaches({ above: 0.05 }, v));
    assert.equal(m.value, 1);
    assert.match(m.detail ?? '', /1 of 2 series: tenant=a/);
    const below = await answering(200, vector([['a', '-Inf'], ['b', '5']])).provider.countBeyond(signal, ctx, (v) => breaches({ below: 1 }, v));
    assert.equal(below.value, 1);
  });

  it('countBeyond with only NaN series is no data', async () => {
    const m = await answering(200, vector([['a', 'NaN']])).provider.countBeyond(signal, ctx, () => true);
    assert.equal(m.value, null);
  });

  it('countBeyond without series is no data', async () => {
    const m = await answering(200, vector([])).provider.countBeyond(signal, ctx, () => true);
    assert.equal(m.value, null);
  });
});

describe('sampleNumber', () => {
  const cases: [string, number][] = [['0.25', 0.25], ['1e-3', 0.001], ['-2', -2], ['+Inf', Infinity], ['-Inf', -Infinity], ['NaN', NaN], ['', NaN], ['garbage', NaN]];
  for (const [text, want] of cases) it(`reads ${JSON.stringify(text)} as ${want}`, () => assert.ok(Object.is(sampleNumber(text), want)));
});

describe('rangeAverage', () => {
  const matrix = (values: [number, string][]) => ({ status: 'success', data: { resultType: 'matrix', result: [{ metric: {}, values }] } });
  const average = (values: [number, string][]) => rangeAverage(answering(200, matrix(values)).provider, 'q', new Date(1_700_000_000_000), 60_000, 10_000);

  it('averages the points, skipping NaN', async () => {
    assert.deepEqual(await average([[1, '0.1'], [2, 'NaN'], [3, '0.3']]), { value: 0.2, points: 2 });
  });

  it('a +Inf point makes the baseline +Inf, and says how many there were', async () => {
    assert.deepEqual(await average([[1, '0.1'], [2, '+Inf'], [3, '0.3']]), { value: Infinity, points: 3, detail: '1 of 3 points were +Inf' });
  });

  it('+Inf and -Inf points have no average', async () => {
    const m = await average([[1, '+Inf'], [2, '-Inf']]);
    assert.equal(m.value, null);
    assert.match(m.detail ?? '', /2 of 2 points were \+Inf or -Inf; they have no average/);
  });
});
