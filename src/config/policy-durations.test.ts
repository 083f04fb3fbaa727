import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { measureBurnRate } from '../signals/burn-rate.js';
import type { Measurement, ProbeContext, SignalProvider } from '../signals/provider.js';
import type { PrometheusSignal } from './policy.js';
import { ConfigError, formatProblem } from './errors.js';
import { parsePolicy } from './load-policy.js';
import { problems } from './policy-problems.fixture.js';

/** A service with a burn-rate signal; `rest` goes after `web:` (indent 4). Line 1 is `version: 1`. */
const policy = (...rest: string[]): string => `version: 1
prometheus: {url: "http://127.0.0.1:9090"}
services:
  web:
    match: {container: web}
    signals:
      error_ratio: {prometheus: 'sum(rate(x{code=~"5.."}[{{range}}])) / sum(rate(x[{{range}}]))'}
${rest.map((l) => `    ${l}`).join('\n')}
`;

const BURN_RULE = 'rules: [{name: budget, signal: error_ratio, burn_rate: {slo: 0.999, windows: [[6h, 3d, 1]]}}]';

describe('policy durations as Prometheus writes them', () => {
  it('loads the SRE workbook burn window [6h, 3d, 1]', () => {
    const rule = parsePolicy(policy(BURN_RULE), 'p.yaml', {}).services.web?.rules[0];
    assert.deepEqual(rule?.burnRate, { slo: 0.999, windows: [{ shortMs: 21_600_000, longMs: 259_200_000, factor: 1 }] });
  });

  it('loads the workbook\'s four window pairs, days included', () => {
    const windows = '[[5m, 1h, 14.4], [30m, 6h, 6], [2h, 1d, 3], [6h, 3d, 1]]';
    const rule = parsePolicy(policy(BURN_RULE.replace('[[6h, 3d, 1]]', windows)), 'p.yaml', {}).services.web?.rules[0];
    assert.deepEqual(rule?.burnRate?.windows.map((w) => [w.shortMs, w.longMs]), [
      [300_000, 3_600_000], [1_800_000, 21_600_000], [7_200_000, 86_400_000], [21_600_000, 259_200_000],
    ]);
  });

  it('reads combined durations and weeks in every timing key', () => {
    const web = parsePolicy(policy('window: 1h30m', 'interval: 1m30s', 'warmup: 2m30s', 'max_rollbacks: {count: 3, per: 1w}', BURN_RULE), 'p.yaml', {}).services.web;
    assert.equal(web?.windowMs, 5_400_000);
    assert.equal(web?.intervalMs, 90_000);
    assert.equal(web?.warmupMs, 150_000);
    assert.deepEqual(web?.maxRollbacks, { count: 3, perMs: 604_800_000 });
  });

  it('hands Prometheus the ranges as it writes them: 6h and 3d, 1h30m, not 90m', async () => {
    const asked: string[] = [];
    const provider: SignalProvider<PrometheusSignal> = {
      kind: 'prometheus',
      async measure(_s: PrometheusSignal, c: ProbeContext): Promise<Measurement> {
        asked.push(c.range ?? '');
        return { value: 0, latencyMs: 1 };
      },
    };
    const text = policy(BURN_RULE.replace('[[6h, 3d, 1]]', '[[6h, 3d, 1], [1h30m, 1w, 2]]'));
    const web = parsePolicy(text, 'p.yaml', {}).services.web;
    const signal = web?.signals.error_ratio as PrometheusSignal;
    const burn = web?.rules[0]?.burnRate;
    assert.ok(burn);
    await measureBurnRate(provider, signal, burn, { template: { service: 'web', container: 'web', image: 'app:v2', version: 'v2' }, containerId: 'c', at: new Date(0) });
    assert.deepEqual(asked.sort(), ['1h30m', '1w', '3d', '6h']);
  });

  it('refuses malformed durations with the usual message, on their lines', () => {
    const message = 'expected a duration such as 500ms, 15s, 10m or 1h';
    assert.deepEqual(problems(policy('window: 1m1h', 'interval: 1.5h30m', 'warmup: h', 'stop_timeout: ""', 'recovery_timeout: -1m', BURN_RULE.replace('3d', '3days'))), [
      `p.yaml:8: services.web.window: ${message}`,
      `p.yaml:9: services.web.interval: ${message}`,
      `p.yaml:10: services.web.warmup: ${message}`,
      `p.yaml:11: services.web.stop_timeout: ${message}`,
      `p.yaml:12: services.web.recovery_timeout: ${message}`,
      `p.yaml:13: services.web.rules[0].burn_rate.windows[0][1]: ${message}`,
    ]);
  });
});

describe('durations a timer waits are bounded', () => {
  it('an interval of weeks is refused with its line (a timer past 24.8 days fires at once)', () => {
    const text = ['version: 1', 'defaults:', '  interval: 4w', 'services: {}'].join('\n');
    assert.throws(() => parsePolicy(text, 'p.yaml', {}), (err: unknown) => err instanceof ConfigError
      && err.problems.map(formatProblem).includes('p.yaml:3: defaults.interval: at most 1d (samples are taken every interval during the window)'));
  });
});
