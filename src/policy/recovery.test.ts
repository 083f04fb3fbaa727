import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { RecoveryCheck, Signal } from '../config/policy.js';
import { describesRestoredFrom, promqlDurationMs, promqlLookbackMs, settledCriteria } from './recovery.js';

describe('promqlDurationMs', () => {
  for (const [text, ms] of [['5m', 300_000], ['1h30m', 5_400_000], ['500ms', 500], ['2d', 172_800_000], ['1w', 604_800_000], ['90s', 90_000]] as const) {
    it(`${text} is ${ms} ms`, () => assert.equal(promqlDurationMs(text), ms));
  }
  for (const text of ['', '5', 'm5', '5 m', '{{range}}', '1.5m']) {
    it(`"${text}" is not a duration`, () => assert.equal(promqlDurationMs(text), undefined));
  }
});

describe('promqlLookbackMs', () => {
  const cases: [string, number][] = [
    ['up{job="web"}', 0],
    ['sum(rate(http_requests_total{code=~"5.."}[5m])) / sum(rate(http_requests_total[5m]))', 300_000],
    ['sum(rate(a[1m])) / sum(rate(b[10m]))', 600_000],
    ['max_over_time(rate(a[1m])[30m:1m])', 1_800_000],
    ['rate(a[5m] offset 10m)', 900_000],
    ['rate(a{path=~"/api/[a-z]+"}[1m])', 60_000],
    ["rate(a{path=~'[0-9]{3}h'}[30s])", 30_000],
    ['rate(a[1h30m])', 5_400_000],
    ['# a comment [1h]\nrate(a[2m])', 120_000],
  ];
  for (const [query, ms] of cases) {
    it(`${query.replace(/\n/g, ' ')} reads back ${ms} ms`, () => assert.equal(promqlLookbackMs(query), ms));
  }
});

describe('settledCriteria', () => {
  const signals: Record<string, Signal> = {
    error_rate: { kind: 'prometheus', name: 'error_rate', query: 'sum(rate(e[2m])) / sum(rate(r[2m]))' },
    up: { kind: 'prometheus', name: 'up', query: 'up{job="web"}' },
    ready: { kind: 'http', name: 'ready', url: 'http://127.0.0.1:1/ready', timeoutMs: 1_000, status: 200, json: {} } as Signal,
  };
  const checks: RecoveryCheck[] = [{ signal: 'error_rate', below: 0.01 }, { signal: 'up', above: 0 }, { signal: 'ready', above: 0 }];
  const restoredAt = 1_000_000;

  it('an instant query and an HTTP check describe the restored version at once', () => {
    assert.equal(describesRestoredFrom(signals.up, restoredAt, 1_000), restoredAt);
    assert.equal(describesRestoredFrom(signals.ready, restoredAt, 1_000), restoredAt);
  });

  it('a criterion over a range waits for the range and the margin to pass since the restore', () => {
    const early = settledCriteria(checks, signals, restoredAt, 1_000, restoredAt + 60_000);
    assert.deepEqual(early.settled.map((c) => c.signal), ['up', 'ready']);
    assert.deepEqual(early.waiting, [{ check: checks[0], from: restoredAt + 121_000 }]);
    assert.equal(early.allSettledAt, restoredAt + 121_000);
    const late = settledCriteria(checks, signals, restoredAt, 1_000, restoredAt + 121_000);
    assert.deepEqual(late.settled.map((c) => c.signal), ['error_rate', 'up', 'ready']);
    assert.deepEqual(late.waiting, []);
  });
});
