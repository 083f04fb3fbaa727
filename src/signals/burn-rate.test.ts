import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PrometheusSignal } from '../config/policy.js';
import { measureBurnRate } from './burn-rate.js';
import type { Measurement, ProbeContext, SignalProvider } from './provider.js';

const signal: PrometheusSignal = { kind: 'prometheus', name: 'error_ratio', query: 'sum(rate(e[{{range}}])) / sum(rate(r[{{range}}]))' };
const ctx = { template: { service: 'web', container: 'web', image: 'app:v2', version: 'v2' }, containerId: 'c', at: new Date(0) };
const burn = { slo: 0.999, windows: [{ shortMs: 300_000, longMs: 3_600_000, factor: 14.4 }, { shortMs: 1_800_000, longMs: 21_600_000, factor: 6 }] };

/** A Prometheus that answers each range with a fixed error ratio (null: no data), recording the ranges asked. */
function fake(ratios: Record<string, number | null>): SignalProvider<PrometheusSignal> & { asked: string[] } {
  const asked: string[] = [];
  return {
    kind: 'prometheus',
    asked,
    async measure(_s: PrometheusSignal, c: ProbeContext): Promise<Measurement> {
      asked.push(c.range ?? '');
      return { value: ratios[c.range ?? ''] ?? null, latencyMs: 1 };
    },
  };
}

describe('measureBurnRate', () => {
  it('asks each distinct window once, with {{range}} filled in', async () => {
    const p = fake({ '5m': 0, '1h': 0, '30m': 0, '6h': 0 });
    await measureBurnRate(p, signal, burn, ctx);
    assert.deepEqual([...p.asked].sort(), ['1h', '30m', '5m', '6h']);
  });

  const cases: [string, Record<string, number | null>, number | null][] = [
    ['a fast burn in both windows of the first pair scores above 1', { '5m': 0.02, '1h': 0.016, '30m': 0.001, '6h': 0.001 }, (0.016 / 0.001) / 14.4],
    ['a short spike alone is not enough: the long window holds it back', { '5m': 0.05, '1h': 0.001, '30m': 0.001, '6h': 0.001 }, 1 / 6],
    ['the slower pair fires on a sustained burn', { '5m': 0.007, '1h': 0.007, '30m': 0.007, '6h': 0.007 }, 7 / 6],
    ['a pair with a window lacking data does not count', { '5m': null, '1h': 0.5, '30m': 0.002, '6h': 0.002 }, 2 / 6],
    ['no pair measurable: no data', { '5m': null, '1h': null, '30m': 0.01, '6h': null }, null],
  ];
  for (const [name, ratios, want] of cases) {
    it(name, async () => {
      const m = await measureBurnRate(fake(ratios), signal, burn, ctx);
      if (want === null) assert.equal(m.value, null);
      else assert.ok(Math.abs((m.value ?? Number.NaN) - want) < 1e-9, `${m.value} vs ${want}: ${m.detail}`);
    });
  }
});
