import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMetrics } from '../api/metrics.js';
import type { Signal } from '../config/policy.js';
import type { Measurement } from '../signals/provider.js';
import type { ProviderRegistry } from '../signals/registry.js';
import { servicePolicy } from '../policy/service.fixture.js';
import { sampleSignals } from './sampling.js';

const signals: Record<string, Signal> = {
  ready: { kind: 'http', name: 'ready', url: 'http://127.0.0.1:1/ready', timeoutMs: 1_000, status: 200, json: {} },
  restarts: { kind: 'container', name: 'restarts', field: 'restart_count' },
  errors: { kind: 'prometheus', name: 'errors', query: 'up' },
};
const service = servicePolicy({ signals });
const ctx = { template: { service: 'web', container: 'web', image: 'web:1', version: '1' }, containerId: 'abc', at: new Date(0) };

/** Providers answering fixed values; the container provider says whether the engine answers, and counts the asks. */
function providers(values: { ready: number; restarts: number | null; errors: number | null }, engine: true | string): { registry: ProviderRegistry; asked: () => number } {
  let asked = 0;
  const m = (value: number | null): Measurement => ({ value, detail: value === null ? 'failed' : undefined, latencyMs: 1 });
  const registry = {
    http: { kind: 'http', measure: async () => m(values.ready) },
    container: { kind: 'container', measure: async () => m(values.restarts), engineReachable: async () => { asked += 1; return engine; } },
    prometheus: { kind: 'prometheus', measure: async () => m(values.errors) },
  } as unknown as ProviderRegistry;
  return { registry, asked: () => asked };
}

describe('sampleSignals and the Docker engine', () => {
  it('a failed HTTP check while the engine does not answer is no data, and so are container reads; Prometheus is left alone', async () => {
    const p = providers({ ready: 0, restarts: null, errors: 0.2 }, 'connect ENOENT /var/run/docker.sock');
    const out = await sampleSignals(p.registry, createMetrics(), service, ['ready', 'restarts', 'errors'], ctx);
    assert.equal(out.ready?.value, null);
    assert.match(out.ready?.detail ?? '', /^Docker engine not answering \(connect ENOENT \/var\/run\/docker\.sock\); no data$/);
    assert.equal(out.restarts?.value, null);
    assert.equal(out.errors?.value, 0.2);
  });

  it('a failed HTTP check while the engine answers stays a failure', async () => {
    const p = providers({ ready: 0, restarts: 0, errors: 0 }, true);
    const out = await sampleSignals(p.registry, createMetrics(), service, ['ready', 'restarts'], ctx);
    assert.equal(out.ready?.value, 0);
    assert.equal(out.restarts?.value, 0);
    assert.equal(p.asked(), 1);
  });

  it('the engine is not asked when nothing looks failed', async () => {
    const p = providers({ ready: 1, restarts: 2, errors: 0 }, 'down');
    const out = await sampleSignals(p.registry, createMetrics(), service, ['ready', 'restarts', 'errors'], ctx);
    assert.deepEqual([out.ready?.value, out.restarts?.value, out.errors?.value], [1, 2, 0]);
    assert.equal(p.asked(), 0);
  });
});
