import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AxiosInstance } from 'axios';
import { Registry } from 'prom-client';
import { batchOptionsFromEnv, BatchingPrometheusProvider, defaultBatchOptions } from './batch-prometheus.js';
import { PrometheusProvider } from './prometheus.js';

const AT = 1_700_000_000_000;
const ratio = { kind: 'prometheus' as const, name: 'errors', query: 'sum(rate(err{service="{{service}}"}[1m])) / sum(rate(req{service="{{service}}"}[1m]))' };
const ctxFor = (service: string, at = AT) => ({ template: { service, container: service, image: 'app:v2', version: 'v2' }, containerId: 'c', at: new Date(at), intervalMs: 1_000 });
const series = (service: string, v: string) => ({ metric: { service }, value: [AT / 1000, v] });

/** A Prometheus answering GETs (single queries) and POSTs (batched ones) from `answer`, recording each. */
function fakePrometheus(answer: (query: string) => { status: number; data: unknown }) {
  const asked: { method: string; query: string; time: number }[] = [];
  const http = {
    async request(config: { method: string; params?: { query: string; time: number }; data?: string }) {
      if (config.params?.query === 'time()') return { status: 200, data: { status: 'success', data: { resultType: 'scalar', result: [Date.now() / 1000, String(Date.now() / 1000)] } } };
      if (config.method === 'GET' && config.params) {
        asked.push({ method: 'GET', query: config.params.query, time: config.params.time });
        return answer(config.params.query);
      }
      const p = new URLSearchParams(config.data);
      asked.push({ method: 'POST', query: p.get('query') ?? '', time: Number(p.get('time')) });
      return answer(p.get('query') ?? '');
    },
  } as unknown as AxiosInstance;
  const registry = new Registry();
  const provider = new BatchingPrometheusProvider(new PrometheusProvider('http://127.0.0.1:9', 1_000, { http }), defaultBatchOptions, undefined, registry);
  return { provider, asked, registry };
}
const vector = (result: unknown[]) => ({ status: 200, data: { status: 'success', data: { resultType: 'vector', result } } });

describe('BatchingPrometheusProvider', () => {
  it('a service alone on its template is queried as before, at its own time', async () => {
    const { provider, asked } = fakePrometheus(() => vector([series('web', '0.5')]));
    const m = await provider.measure(ratio, ctxFor('web'));
    assert.equal(m.value, 0.5);
    assert.deepEqual(asked.map((a) => [a.method, a.time]), [['GET', AT / 1000]]);
    assert.match(asked[0]?.query ?? '', /service="web"/);
  });

  it('services sharing a template get one query per tick, split by service', async () => {
    const { provider, asked, registry } = fakePrometheus((q) => (q.includes('=~') ? vector([series('a', '0.1'), series('b', '0.2')]) : vector([])));
    // Each is seen once so that the batcher knows they share the template.
    await Promise.all(['a', 'b', 'c'].map((s) => provider.measure(ratio, ctxFor(s, AT - 1_000))));
    asked.length = 0;
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((s, i) => provider.measure(ratio, ctxFor(s, AT + i * 10))));
    assert.equal(asked.length, 1);
    assert.equal(asked[0]?.method, 'POST');
    assert.match(asked[0]?.query ?? '', /^sum by \(service\)\(rate\(err\{service=~"a\|b\|c"\}/);
    // Evaluated at the first member's tick: the others joined within the linger (20 ms at a 1 s interval).
    assert.equal(asked[0]?.time, AT / 1000);
    assert.equal(a?.value, 0.1);
    assert.equal(b?.value, 0.2);
    assert.equal(c?.value, null);
    assert.equal(c?.detail, 'query returned no series');
    const queries = await registry.getSingleMetricAsString('rollguard_prometheus_queries_total');
    assert.match(queries, /mode="batch"} 2/); // the first round (b and c saw a) and this one
  });

  it('a service out of the rhythm waits for the next batch of the others, at most one interval', async () => {
    const { provider, asked } = fakePrometheus(() => vector([series('a', '0.1'), series('b', '0.2'), series('c', '0.3')]));
    await Promise.all(['a', 'b'].map((s) => provider.measure(ratio, ctxFor(s, AT - 1_000))));
    asked.length = 0;
    const started = Date.now();
    // c ticks 950 ms before the rhythm of a and b: it waits for their batch instead of querying alone.
    const late = provider.measure(ratio, ctxFor('c', AT - 950));
    const [a, b] = await Promise.all(['a', 'b'].map((s) => provider.measure(ratio, ctxFor(s, AT))));
    const waited = await late;
    assert.equal(waited.value, 0.3);
    assert.equal(waited.takenAt, AT, 'its value is the batch\'s, taken at the batch\'s time: its next tick comes one interval after that, with the others');
    assert.deepEqual([a?.value, b?.value], [0.1, 0.2]);
    assert.deepEqual([a?.takenAt, b?.takenAt], [AT, AT]);
    assert.equal(asked.length, 1);
    assert.equal(asked[0]?.time, AT / 1000);
    assert.match(asked[0]?.query ?? '', /a\|b\|c/);
    assert.ok(Date.now() - started < 5_000);
  });

  it('a tick that runs a little late is answered from the batch it missed, without a query of its own', async () => {
    const { provider, asked } = fakePrometheus(() => vector([series('a', '0.1'), series('b', '0.2'), series('c', '0.3')]));
    await Promise.all(['a', 'b', 'c'].map((s) => provider.measure(ratio, ctxFor(s, AT - 1_000))));
    asked.length = 0;
    const [a, b] = await Promise.all(['a', 'b'].map((s) => provider.measure(ratio, ctxFor(s, AT))));
    // c comes 60 ms after the batch of a and b (linger 20 ms, recent 100 ms at a 1 s interval).
    const c = await provider.measure(ratio, ctxFor('c', AT + 60));
    assert.deepEqual([a?.value, b?.value, c.value], [0.1, 0.2, 0.3]);
    assert.equal(c.takenAt, AT, 'taken at the time of the batch it was answered from');
    assert.equal(asked.length, 1);
    assert.match(asked[0]?.query ?? '', /a\|b\|c/, 'the batch asks for every service seen on the template');
    // 300 ms late is too old an answer: c gets a fresh one.
    await provider.measure(ratio, ctxFor('c', AT + 300));
    assert.equal(asked.length, 2);
    // a service is never given an answer it had already (one evaluation would count as two samples).
    const again = asked.length;
    await provider.measure(ratio, ctxFor('c', AT + 350));
    assert.equal(asked.length, again + 1, 'c asked again right after its own answer: a fresh query');
  });

  it('a tick the event loop ran late (thousands due at once) joins the batch of its due time', async () => {
    const { provider, asked } = fakePrometheus(() => vector([series('a', '0.1'), series('b', '0.2'), series('c', '0.3')]));
    await Promise.all(['a', 'b', 'c'].map((s) => provider.measure(ratio, ctxFor(s, AT - 1_000))));
    asked.length = 0;
    // All three were due at AT; c only started 300 ms later (past the linger and the recent answer).
    const [a, b, c] = await Promise.all([
      provider.measure(ratio, { ...ctxFor('a', AT), dueAt: AT }),
      provider.measure(ratio, { ...ctxFor('b', AT + 5), dueAt: AT }),
      provider.measure(ratio, { ...ctxFor('c', AT + 300), dueAt: AT }),
    ]);
    assert.deepEqual([a?.value, b?.value, c?.value], [0.1, 0.2, 0.3]);
    assert.equal(asked.length, 1, 'one query: c joined the batch of its due time');
    assert.equal(c?.takenAt, AT);
    // A due time more than an interval old (the process was paused) is not trusted: c gets a fresh answer.
    await provider.measure(ratio, { ...ctxFor('c', AT + 5_000), dueAt: AT + 1_000 });
    assert.equal(asked.length, 2);
  });

  it('a template that cannot be batched is queried per service, and counted as a fallback', async () => {
    const global = { ...ratio, query: 'sum(rate(err{service="{{service}}"}[1m])) / sum(rate(req[1m]))' };
    const { provider, asked, registry } = fakePrometheus(() => vector([series('x', '1')]));
    await Promise.all(['a', 'b'].map((s) => provider.measure(global, ctxFor(s))));
    assert.deepEqual(asked.map((a) => a.method), ['GET', 'GET']);
    assert.match(await registry.getSingleMetricAsString('rollguard_prometheus_batch_fallbacks_total'), /reason="unbatchable"} 2/);
  });

  it('a batched query Prometheus refuses is retried per service', async () => {
    const { provider, asked } = fakePrometheus((q) => (q.includes('=~')
      ? { status: 422, data: { status: 'error', errorType: 'execution', error: 'many-to-many matching not allowed' } }
      : vector([series(/service="(\w+)"/.exec(q)?.[1] ?? '?', '0.3')])));
    await Promise.all(['a', 'b'].map((s) => provider.measure(ratio, ctxFor(s, AT - 1_000))));
    asked.length = 0;
    const ms = await Promise.all(['a', 'b'].map((s) => provider.measure(ratio, ctxFor(s))));
    assert.deepEqual(ms.map((m) => m.value), [0.3, 0.3]);
    assert.deepEqual(asked.map((a) => a.method), ['POST', 'GET', 'GET']);
  });

  it('Prometheus down is no data for every member, without a query per service', async () => {
    const { provider, asked } = fakePrometheus(() => ({ status: 503, data: 'down' }));
    await Promise.all(['a', 'b'].map((s) => provider.measure(ratio, ctxFor(s, AT - 1_000))));
    asked.length = 0;
    const ms = await Promise.all(['a', 'b'].map((s) => provider.measure(ratio, ctxFor(s))));
    assert.deepEqual(ms.map((m) => [m.value, m.detail]), [[null, 'Prometheus answered HTTP 503'], [null, 'Prometheus answered HTTP 503']]);
    assert.equal(asked.length, 1);
  });
});

describe('batchOptionsFromEnv', () => {
  it('batches unless ROLLGUARD_BATCH=off, and a fixed linger applies to every interval', () => {
    assert.equal(batchOptionsFromEnv({}).enabled, true);
    assert.equal(batchOptionsFromEnv({ ROLLGUARD_BATCH: 'on' }).enabled, true);
    assert.equal(batchOptionsFromEnv({ ROLLGUARD_BATCH: 'off' }).enabled, false);
    assert.equal(batchOptionsFromEnv({ ROLLGUARD_BATCH_LINGER_MS: '40' }).lingerMs(5_000), 40);
    assert.equal(batchOptionsFromEnv({}).lingerMs(5_000), 100);
  });

  it('a value it does not understand is an error naming the variable, not a silent default', () => {
    assert.throws(() => batchOptionsFromEnv({ ROLLGUARD_BATCH: 'of' }), /ROLLGUARD_BATCH: expected on or off, got "of"/);
    assert.throws(() => batchOptionsFromEnv({ ROLLGUARD_BATCH_LINGER_MS: '5ms' }), /ROLLGUARD_BATCH_LINGER_MS: expected a number of milliseconds above 0, got "5ms"/);
    assert.throws(() => batchOptionsFromEnv({ ROLLGUARD_BATCH_LINGER_MS: '0' }), /ROLLGUARD_BATCH_LINGER_MS/);
  });
});
