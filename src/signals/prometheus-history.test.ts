import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AxiosInstance } from 'axios';
import type { PrometheusSignal } from '../config/policy.js';
import { PrometheusHistory, queryRange } from './prometheus-history.js';
import { PrometheusProvider } from './prometheus.js';

type Params = { query: string; start: number; end: number; step: number };

/** A Prometheus whose query_range answers with `answer(params)`; records every call. */
function fakePrometheus(answer: (p: Params) => { status: number; data: unknown } | Error, aheadMs = 0): { provider: PrometheusProvider; calls: Params[] } {
  const calls: Params[] = [];
  const client = {
    request: async (config: { params: Params & { query: string } }) => {
      const now = (Date.now() + aheadMs) / 1000;
      if (config.params.query === 'time()') return { status: 200, data: { status: 'success', data: { resultType: 'scalar', result: [now, String(now)] } } };
      calls.push(config.params);
      const a = answer(config.params);
      if (a instanceof Error) throw a;
      return a;
    },
  } as unknown as AxiosInstance;
  return { provider: new PrometheusProvider('http://prometheus.invalid', 1_000, { http: client }), calls };
}

const matrix = (...series: [number, string][][]) => ({ status: 200, data: { status: 'success', data: { resultType: 'matrix', result: series.map((values, i) => ({ metric: { i: String(i) }, values })) } } });
const grid = { startMs: 10_000, endMs: 40_000, stepMs: 10_000 };

describe('queryRange', () => {
  it('reads each step like an instant query: one series is a value; none, several or NaN is no data', async () => {
    const { provider } = fakePrometheus(() => matrix(
      [[10, '0.5'], [20, '0.25'], [30, 'NaN']],
      [[20, '1']],
    ));
    const answer = await queryRange(provider, 'q', grid);
    assert.ok(answer.ok);
    assert.deepEqual([...answer.points], [
      [10_000, { value: 0.5 }],
      [20_000, { value: null, detail: 'query returned 2 series; aggregate it to one (e.g. sum(...))' }],
      [30_000, { value: null, detail: 'query returned NaN (no traffic?)' }],
      [40_000, { value: null, detail: 'query returned no series' }],
    ]);
  });

  const failures: [what: string, answer: { status: number; data: unknown } | Error, detail: string][] = [
    ['a PromQL error names the error', { status: 400, data: { status: 'error', errorType: 'bad_data', error: 'parse error' } }, 'query failed: bad_data: parse error'],
    ['an HTTP 503 is reported with its status', { status: 503, data: 'busy' }, 'Prometheus answered HTTP 503'],
    ['a refused connection is unreachable', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9090'), { code: 'ECONNREFUSED' }), 'Prometheus unreachable: connect ECONNREFUSED 127.0.0.1:9090'],
    ['an unexpected body is refused', { status: 200, data: { hello: 'world' } }, 'Prometheus answered with an unexpected body'],
  ];
  for (const [what, reply, detail] of failures) {
    it(what, async () => {
      const { provider } = fakePrometheus(() => reply);
      assert.deepEqual(await queryRange(provider, 'q', grid), { ok: false, detail });
    });
  }

  it("asks at the same moments on Prometheus's clock and keys the answer by host time", async () => {
    const ahead = 600_000;
    const { provider, calls } = fakePrometheus((p) => matrix(Array.from({ length: Math.round((p.end - p.start) / p.step) + 1 }, (_, i) => [p.start + i * p.step, String(i)] as [number, string])), ahead);
    const answer = await queryRange(provider, 'q', grid);
    assert.equal(calls.length, 1);
    // The offset is measured over a real round trip: exact to a few ms.
    assert.ok(Math.abs((calls[0]?.start ?? 0) * 1000 - (grid.startMs + ahead)) < 20, `start ${calls[0]?.start}`);
    assert.ok(Math.abs((calls[0]?.end ?? 0) * 1000 - (grid.endMs + ahead)) < 20, `end ${calls[0]?.end}`);
    assert.ok(answer.ok);
    assert.deepEqual([...answer.points], [[10_000, { value: 0 }], [20_000, { value: 1 }], [30_000, { value: 2 }], [40_000, { value: 3 }]]);
  });

  it('splits a grid of more than 10,000 steps into several range queries', async () => {
    const { provider, calls } = fakePrometheus((p) => matrix(Array.from({ length: Math.round((p.end - p.start) / p.step) + 1 }, (_, i) => [p.start + i * p.step, '1'] as [number, string])));
    const answer = await queryRange(provider, 'q', { startMs: 0, endMs: 24_999_000, stepMs: 1_000 });
    assert.deepEqual(calls.map((c) => [c.start, c.end, c.step]), [[0, 9_999, 1], [10_000, 19_999, 1], [20_000, 24_999, 1]]);
    assert.ok(answer.ok);
    assert.equal(answer.points.size, 25_000);
    assert.ok([...answer.points.values()].every((p) => p.value === 1));
  });
});

describe('PrometheusHistory', () => {
  const signal: PrometheusSignal = { kind: 'prometheus', name: 'error_rate', query: 'sum(rate(errors{service="{{service}}"}[{{range}}]))' };
  const template = { service: 'web', container: 'web-1', image: 'web:v2', version: 'v2' };

  it('fetches each rendered query once and answers every grid time from it', async () => {
    const { provider, calls } = fakePrometheus(() => matrix([[10, '1'], [20, '2'], [30, '3'], [40, '4']]));
    const history = new PrometheusHistory(provider, grid);
    const values = [];
    for (const at of [10_000, 20_000, 30_000, 40_000]) values.push((await history.measure(signal, { template, containerId: '', at: new Date(at), range: '5m' })).value);
    await history.measure(signal, { template, containerId: '', at: new Date(10_000), range: '1h' });
    assert.deepEqual(values, [1, 2, 3, 4]);
    assert.deepEqual(calls.map((c) => c.query), ['sum(rate(errors{service="web"}[5m]))', 'sum(rate(errors{service="web"}[1h]))']);
    assert.deepEqual(await history.failures(), []);
  });

  it('a failed range query is no data at every time, and listed as a failure', async () => {
    const { provider } = fakePrometheus(() => ({ status: 400, data: { status: 'error', errorType: 'bad_data', error: 'parse error' } }));
    const history = new PrometheusHistory(provider, grid);
    const m = await history.measure(signal, { template, containerId: '', at: new Date(20_000), range: '5m' });
    assert.deepEqual([m.value, m.detail], [null, 'query failed: bad_data: parse error']);
    assert.deepEqual(await history.failures(), [{ query: 'sum(rate(errors{service="web"}[5m]))', detail: 'query failed: bad_data: parse error' }]);
  });
});
