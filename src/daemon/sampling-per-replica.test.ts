import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMetrics } from '../api/metrics.js';
import { parsePolicy } from '../config/load-policy.js';
import type { HttpSignal, PrometheusSignal, Rule, Signal } from '../config/policy.js';
import type { TemplateValues } from '../config/template.js';
import { servicePolicy } from '../policy/service.fixture.js';
import type { Measurement, ProbeContext } from '../signals/provider.js';
import type { ProviderRegistry } from '../signals/registry.js';
import { sampleSignals } from './sampling.js';

// Signals addressed per replica ({{slot}}, {{node_addr}}…): measured once for each task of a
// Swarm service with that task's own values, the worst task's value being the sample.

const metrics = createMetrics();


const http = (name: string, url: string): HttpSignal => ({ kind: 'http', name, url, timeoutMs: 1_000, status: 200, json: {} });
const prometheus = (name: string, query: string): PrometheusSignal => ({ kind: 'prometheus', name, query });
const rule = (signal: string, threshold: { above: number } | { below: number }): Rule => ({ name: `${signal} rule`, signal, for: 1, severity: 'P1', action: 'rollback', ...threshold });

const signals: Record<string, Signal> = {
  ready: http('ready', 'http://127.0.0.1:808{{slot}}/ready'),
  ready_on_node: http('ready_on_node', 'http://{{node_addr}}:8080/ready?task={{task}}'),
  errors: prometheus('errors', 'sum(rate(http_errors_total{service="{{service}}",slot="{{slot}}"}[1m]))'),
  rps: prometheus('rps', 'sum(rate(http_requests_total{service="{{service}}",slot="{{slot}}"}[1m]))'),
  service_errors: prometheus('service_errors', 'sum(rate(http_errors_total{service="{{service}}"}[1m]))'),
  service_ready: http('service_ready', 'http://lb.internal/{{service}}/ready'),
};
const service = servicePolicy({
  match: { kind: 'swarm', service: 'web' },
  signals,
  rules: [rule('ready', { below: 1 }), rule('errors', { above: 0.05 }), rule('rps', { below: 1 }), rule('service_errors', { above: 0.05 })],
});

/** Three tasks of web, in slots 1 to 3, on two nodes. */
const TASKS: Record<string, Partial<TemplateValues>> = {
  'task-aaaaaaaaaaaa1': { task: 'task-aaaaaaaaaaaa1', slot: '1', node: 'manager-1', node_addr: '10.0.0.1' },
  'task-bbbbbbbbbbbb2': { task: 'task-bbbbbbbbbbbb2', slot: '2', node: 'worker-1', node_addr: '10.0.0.2' },
  'task-cccccccccccc3': { task: 'task-cccccccccccc3', slot: '3', node: 'worker-1', node_addr: '10.0.0.2' },
};

function ctx(values: Record<string, Partial<TemplateValues> | undefined> = TASKS): ProbeContext {
  return {
    template: { service: 'web', container: 'web.1', image: 'shop/web:2', version: '2' },
    containerId: 'task-aaaaaaaaaaaa1',
    containerIds: Object.keys(TASKS),
    at: new Date('2026-03-02T10:00:00Z'),
    replicaValues: async (id) => values[id],
  };
}

interface Call { signal: string; url?: string; query?: string; slot?: string; containerId: string; containerIds?: readonly string[] }

/**
 * HTTP and Prometheus providers answering by signal and slot (`answers[signal][slot]`; `''` for a
 * measurement without a slot); every call is recorded with the URL and context it was given.
 */
function providers(answers: Record<string, Record<string, number | null>>): { registry: ProviderRegistry; calls: Call[] } {
  const calls: Call[] = [];
  const answer = (signal: Signal, c: ProbeContext): Measurement => {
    const value = answers[signal.name]?.[c.template.slot ?? ''] ?? null;
    return { value, detail: value === null ? 'no data' : value === 0 && signal.kind === 'http' ? 'HTTP 503, expected 200' : undefined, latencyMs: 1 };
  };
  const registry = {
    http: { kind: 'http', measure: async (s: HttpSignal, c: ProbeContext) => (calls.push({ signal: s.name, url: s.url, slot: c.template.slot, containerId: c.containerId, containerIds: c.containerIds }), answer(s, c)) },
    prometheus: { kind: 'prometheus', measure: async (s: PrometheusSignal, c: ProbeContext) => (calls.push({ signal: s.name, query: s.query, slot: c.template.slot, containerId: c.containerId, containerIds: c.containerIds }), answer(s, c)) },
  } as unknown as ProviderRegistry;
  return { registry, calls };
}

describe('sampleSignals: signals addressed per replica', () => {
  it('an HTTP check with {{slot}} is made once per task at its own URL; a failing task is the sample, named by its slot', async () => {
    const p = providers({ ready: { 1: 1, 2: 0, 3: 1 } });
    const out = await sampleSignals(p.registry, metrics, service, ['ready'], ctx());
    assert.deepEqual(p.calls.map((c) => [c.url, c.containerId, c.containerIds]), [
      ['http://127.0.0.1:8081/ready', 'task-aaaaaaaaaaaa1', ['task-aaaaaaaaaaaa1']],
      ['http://127.0.0.1:8082/ready', 'task-bbbbbbbbbbbb2', ['task-bbbbbbbbbbbb2']],
      ['http://127.0.0.1:8083/ready', 'task-cccccccccccc3', ['task-cccccccccccc3']],
    ]);
    assert.equal(out.ready?.value, 0);
    assert.equal(out.ready?.detail, 'slot 2: HTTP 503, expected 200');
  });

  it('an HTTP check passes when every task passes', async () => {
    const out = await sampleSignals(providers({ ready: { 1: 1, 2: 1, 3: 1 } }).registry, metrics, service, ['ready'], ctx());
    assert.equal(out.ready?.value, 1);
  });

  it('{{node_addr}} and {{task}} in a URL are each task\'s own', async () => {
    const p = providers({ ready_on_node: { 1: 1, 2: 1, 3: 1 } });
    await sampleSignals(p.registry, metrics, service, ['ready_on_node'], ctx());
    assert.deepEqual(p.calls.map((c) => c.url), [
      'http://10.0.0.1:8080/ready?task=task-aaaaaaaaaaaa1',
      'http://10.0.0.2:8080/ready?task=task-bbbbbbbbbbbb2',
      'http://10.0.0.2:8080/ready?task=task-cccccccccccc3',
    ]);
  });

  it('a Prometheus query with {{slot}} read by an `above` rule: run once per task with its values, the highest value kept', async () => {
    const p = providers({ errors: { 1: 0.01, 2: 0.3, 3: 0.05 } });
    const out = await sampleSignals(p.registry, metrics, service, ['errors'], ctx());
    assert.deepEqual(p.calls.map((c) => [c.slot, c.containerId]), [['1', 'task-aaaaaaaaaaaa1'], ['2', 'task-bbbbbbbbbbbb2'], ['3', 'task-cccccccccccc3']]);
    assert.ok(p.calls.every((c) => c.query === (signals.errors as PrometheusSignal).query), 'the query is handed over as written: the provider fills it from the task\'s values');
    assert.equal(out.errors?.value, 0.3);
    assert.equal(out.errors?.detail, 'slot 2');
  });

  it('a Prometheus query with {{slot}} read by a `below` rule: the lowest value kept', async () => {
    const out = await sampleSignals(providers({ rps: { 1: 5, 2: 0.5, 3: 9 } }).registry, metrics, service, ['rps'], ctx());
    assert.equal(out.rps?.value, 0.5);
    assert.equal(out.rps?.detail, 'slot 2');
  });

  it('a task that answers no data is passed over', async () => {
    const out = await sampleSignals(providers({ errors: { 1: null, 2: 0.02, 3: 0.01 } }).registry, metrics, service, ['errors'], ctx());
    assert.equal(out.errors?.value, 0.02);
    assert.equal(out.errors?.detail, 'slot 2');
  });

  it('a task whose values are gone (it was replaced) is passed over, not measured', async () => {
    const p = providers({ errors: { 1: 0.01, 2: 0.9, 3: 0.02 } });
    const out = await sampleSignals(p.registry, metrics, service, ['errors'], ctx({ ...TASKS, 'task-bbbbbbbbbbbb2': undefined }));
    assert.deepEqual(p.calls.map((c) => c.slot), ['1', '3']);
    assert.equal(out.errors?.value, 0.02);
    assert.equal(out.errors?.detail, 'slot 3');
  });

  it('a task whose values cannot be read is passed over too', async () => {
    const p = providers({ errors: { 1: 0.01, 2: 0.9, 3: 0.02 } });
    const c = { ...ctx(), replicaValues: async (id: string) => (id === 'task-bbbbbbbbbbbb2' ? Promise.reject(new Error('manager not answering')) : TASKS[id]) };
    const out = await sampleSignals(p.registry, metrics, service, ['errors'], c);
    assert.equal(out.errors?.value, 0.02);
  });

  it('without any task with data the sample is no data, saying why for each task', async () => {
    const p = providers({ errors: { 1: null } });
    const out = await sampleSignals(p.registry, metrics, service, ['errors'], ctx({ 'task-aaaaaaaaaaaa1': TASKS['task-aaaaaaaaaaaa1'] }));
    assert.equal(out.errors?.value, null);
    assert.equal(out.errors?.detail, 'no replica has data (slot 1: no data; task-bbbbbbb: replica is gone; task-ccccccc: replica is gone)');
  });

  it('signals without per-task placeholders are measured once, for the whole service', async () => {
    const p = providers({ service_errors: { '': 0.02 }, service_ready: { '': 1 } });
    const out = await sampleSignals(p.registry, metrics, service, ['service_errors', 'service_ready'], ctx());
    assert.deepEqual(p.calls.map((c) => [c.signal, c.url ?? c.query, c.containerIds?.length]), [
      ['service_errors', (signals.service_errors as PrometheusSignal).query, 3],
      ['service_ready', 'http://lb.internal/web/ready', 3],
    ]);
    assert.equal(out.service_errors?.value, 0.02);
    assert.equal(out.service_ready?.value, 1);
  });

  it('a per-task HTTP check is still made per task right after a policy with placeholder queries was loaded', async () => {
    const loaded = parsePolicy([
      'version: 1',
      'prometheus: {url: "http://127.0.0.1:9090"}',
      'services:',
      '  web:',
      '    match: {swarm_service: web}',
      '    signals:',
      '      ready: {http: {url: "http://127.0.0.1:808{{slot}}/ready"}}',
      '      errors: {prometheus: \'sum(rate(http_errors_total{service="{{service}}"}[1m]))\'}',
      '    rules:',
      '      - {name: not ready, signal: ready, below: 1, action: rollback}',
      '      - {name: errors, signal: errors, above: 0.05, action: rollback}',
    ].join('\n'), 'policy.yaml', {}).services.web;
    assert.ok(loaded);
    const p = providers({ ready: { 1: 1, 2: 1, 3: 1 }, errors: { '': 0 } });
    const out = await sampleSignals(p.registry, metrics, loaded, ['ready', 'errors'], ctx());
    assert.deepEqual(p.calls.filter((c) => c.signal === 'ready').map((c) => c.url), ['http://127.0.0.1:8081/ready', 'http://127.0.0.1:8082/ready', 'http://127.0.0.1:8083/ready']);
    assert.equal(out.ready?.value, 1);
  });
});

describe('sampleSignals: the worst task of a signal read by recovery criteria', () => {
  it('a signal read only by a recovery criterion `below` keeps the highest value: it holds only when every task is below', async () => {
    const recovering = servicePolicy({ ...service, recovery: [{ signal: 'errors', below: 0.05 }], rules: [rule('ready', { below: 1 })] });
    const out = await sampleSignals(providers({ errors: { 1: 0.01, 2: 0.3, 3: 0.02 } }).registry, metrics, recovering, ['errors'], ctx());
    assert.equal(out.errors?.value, 0.3);
  });

  it('a rule `below` with a recovery criterion `above` on the same signal keeps the lowest value', async () => {
    const recovering = servicePolicy({ ...service, recovery: [{ signal: 'rps', above: 1 }] });
    const out = await sampleSignals(providers({ rps: { 1: 5, 2: 0, 3: 7 } }).registry, metrics, recovering, ['rps'], ctx());
    assert.equal(out.rps?.value, 0);
    assert.equal(out.rps?.detail, 'slot 2');
  });

  it('a recovery criterion `below` beside a rule `above` (an error rate) keeps the highest value', async () => {
    const recovering = servicePolicy({ ...service, recovery: [{ signal: 'errors', below: 0.05 }] });
    const out = await sampleSignals(providers({ errors: { 1: 0.01, 2: 0.3, 3: 0.02 } }).registry, metrics, recovering, ['errors'], ctx());
    assert.equal(out.errors?.value, 0.3);
  });
});

