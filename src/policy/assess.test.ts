import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { RecoveryCheck, Rule, ServicePolicy, Threshold } from '../config/policy.js';
import { assess, classify, concludeWindow, describeThreshold, emptyTally, recoveryStatus, withBaseline, type SampleResult, type Value, type Verdict, type WatchTally } from './assess.js';
import { servicePolicy } from './service.fixture.js';

const errorRate: Rule = { name: 'error rate above 5%', signal: 'error_rate', above: 0.05, for: 3, severity: 'P0', action: 'rollback' };
const readiness: Rule = { name: 'readiness failing', signal: 'ready', below: 1, for: 3, severity: 'P0', action: 'rollback' };
const restarting: Rule = { name: 'container restarting', signal: 'restarts', above: 2, for: 1, severity: 'P1', action: 'notify' };

function service(rules: Rule[], overrides: Partial<ServicePolicy> = {}): ServicePolicy {
  return servicePolicy({
    match: { kind: 'container', name: 'himalytix-web' },
    signals: {
      error_rate: { kind: 'prometheus', name: 'error_rate', query: 'sum(rate(http_requests_total{service="{{service}}",code=~"5.."}[1m]))' },
      ready: { kind: 'http', name: 'ready', url: 'http://127.0.0.1:8000/health/ready/', timeoutMs: 2_000, status: 200, json: {} },
      restarts: { kind: 'container', name: 'restarts', field: 'restart_count' },
    },
    rules,
    recovery: [{ signal: 'error_rate', below: 0.01 }, { signal: 'ready', above: 0 }],
    ...overrides,
  });
}

/** Feeds one tick of values per element through assess, starting from an empty tally. */
function run(policy: ServicePolicy, ticks: Record<string, Value>[]): { verdicts: Verdict[]; tally: WatchTally } {
  let tally = emptyTally(policy);
  const verdicts: Verdict[] = [];
  for (const values of ticks) {
    const step = assess(policy, tally, values);
    verdicts.push(step.verdict);
    tally = step.tally;
  }
  return { verdicts, tally };
}

/** `rollback:<rule>` or `continue`, followed by `+notify:<rule>` for each notified rule. */
function summary(verdict: Verdict): string {
  const head = verdict.kind === 'rollback' ? `rollback:${verdict.rule.name}` : 'continue';
  return [head, ...verdict.notify.map((r) => `notify:${r.name}`)].join(' + ');
}

describe('classify', () => {
  const above: Threshold = { above: 0.05 };
  const below: Threshold = { below: 1 };
  const cases: [what: string, threshold: Threshold, value: Value, result: SampleResult][] = [
    ['a value above an `above` threshold is a breach', above, 0.06, 'breach'],
    ['a value equal to an `above` threshold is ok', above, 0.05, 'ok'],
    ['a value under an `above` threshold is ok', above, 0, 'ok'],
    ['Infinity is above any threshold', above, Number.POSITIVE_INFINITY, 'breach'],
    ['a value below a `below` threshold is a breach', below, 0, 'breach'],
    ['a value equal to a `below` threshold is ok', below, 1, 'ok'],
    ['null is no data, never a breach', above, null, 'no-data'],
    ['NaN is no data, never a breach', below, Number.NaN, 'no-data'],
  ];
  for (const [what, threshold, value, result] of cases) {
    it(what, () => {
      assert.equal(classify(threshold, value), result);
    });
  }
});

describe('assess', () => {
  const cases: [what: string, rules: Rule[], ticks: Record<string, Value>[], verdicts: string[]][] = [
    [
      'assess() returns rollback after 3 consecutive breaches',
      [errorRate],
      [{ error_rate: 0.2 }, { error_rate: 0.2 }, { error_rate: 0.2 }],
      ['continue', 'continue', 'rollback:error rate above 5%'],
    ],
    [
      'assess() keeps returning rollback while the breach lasts',
      [errorRate],
      [{ error_rate: 0.2 }, { error_rate: 0.2 }, { error_rate: 0.2 }, { error_rate: 0.3 }],
      ['continue', 'continue', 'rollback:error rate above 5%', 'rollback:error rate above 5%'],
    ],
    [
      'an ok sample ends a streak',
      [errorRate],
      [{ error_rate: 0.2 }, { error_rate: 0.2 }, { error_rate: 0.01 }, { error_rate: 0.2 }, { error_rate: 0.2 }],
      ['continue', 'continue', 'continue', 'continue', 'continue'],
    ],
    [
      'a no-data sample ends a streak',
      [errorRate],
      [{ error_rate: 0.2 }, { error_rate: 0.2 }, { error_rate: null }, { error_rate: 0.2 }, { error_rate: 0.2 }],
      ['continue', 'continue', 'continue', 'continue', 'continue'],
    ],
    [
      'a NaN sample ends a streak',
      [errorRate],
      [{ error_rate: 0.2 }, { error_rate: 0.2 }, { error_rate: Number.NaN }, { error_rate: 0.2 }],
      ['continue', 'continue', 'continue', 'continue'],
    ],
    [
      'a signal missing from the tick counts as no data',
      [errorRate],
      [{ error_rate: 0.2 }, { error_rate: 0.2 }, {}, { error_rate: 0.2 }],
      ['continue', 'continue', 'continue', 'continue'],
    ],
    [
      'no data never fires a rule, however long it lasts',
      [readiness],
      [{ ready: null }, { ready: null }, { ready: null }, { ready: null }],
      ['continue', 'continue', 'continue', 'continue'],
    ],
    [
      'a below rule fires when the value stays under its threshold',
      [readiness],
      [{ ready: 0 }, { ready: 0 }, { ready: 0 }],
      ['continue', 'continue', 'rollback:readiness failing'],
    ],
    [
      'a notify rule fires once per streak',
      [restarting],
      [{ restarts: 3 }, { restarts: 4 }, { restarts: 5 }, { restarts: 0 }, { restarts: 3 }],
      ['continue + notify:container restarting', 'continue', 'continue', 'continue', 'continue + notify:container restarting'],
    ],
    [
      'a notify rule waits for its `for` count of breaches',
      [{ ...restarting, for: 2 }],
      [{ restarts: 3 }, { restarts: 3 }, { restarts: 3 }],
      ['continue', 'continue + notify:container restarting', 'continue'],
    ],
    [
      'a no-data sample ends a notify streak, so the next streak notifies again',
      [restarting],
      [{ restarts: 3 }, { restarts: null }, { restarts: 3 }],
      ['continue + notify:container restarting', 'continue', 'continue + notify:container restarting'],
    ],
    [
      'first rollback rule in policy order wins',
      [errorRate, readiness],
      [{ error_rate: 0.2, ready: 0 }, { error_rate: 0.2, ready: 0 }, { error_rate: 0.2, ready: 0 }],
      ['continue', 'continue', 'rollback:error rate above 5%'],
    ],
    [
      'policy order, not the signal, decides which rollback rule wins',
      [readiness, errorRate],
      [{ error_rate: 0.2, ready: 0 }, { error_rate: 0.2, ready: 0 }, { error_rate: 0.2, ready: 0 }],
      ['continue', 'continue', 'rollback:readiness failing'],
    ],
    [
      'a later rollback rule wins when the earlier one has not fired',
      [errorRate, { ...readiness, for: 1 }],
      [{ error_rate: 0.2, ready: 0 }],
      ['rollback:readiness failing'],
    ],
    [
      'a rollback verdict still carries the notify rules that fired with it',
      [{ ...errorRate, for: 1 }, restarting],
      [{ error_rate: 0.2, restarts: 3 }],
      ['rollback:error rate above 5% + notify:container restarting'],
    ],
    [
      'each rule keeps its own streak',
      [readiness, errorRate],
      [{ error_rate: 0.2, ready: 0 }, { error_rate: 0.2, ready: 1 }, { error_rate: 0.2, ready: 0 }],
      ['continue', 'continue', 'rollback:error rate above 5%'],
    ],
  ];
  for (const [what, rules, ticks, verdicts] of cases) {
    it(what, () => {
      assert.deepEqual(run(service(rules), ticks).verdicts.map(summary), verdicts);
    });
  }

  it('reports how each rule classified the tick', () => {
    const policy = service([errorRate, readiness, restarting]);
    const { results } = assess(policy, emptyTally(policy), { error_rate: 0.2, ready: 1 });
    assert.deepEqual(results, { 'error rate above 5%': 'breach', 'readiness failing': 'ok', 'container restarting': 'no-data' });
  });

  it('counts ticks, samples, samples with data, breaches and the current streak', () => {
    const { tally } = run(service([errorRate]), [{ error_rate: 0.2 }, { error_rate: null }, { error_rate: 0.01 }, { error_rate: 0.2 }, { error_rate: 0.3 }]);
    assert.deepEqual(tally, {
      ticks: 5,
      rules: { 'error rate above 5%': { streak: 2, breaches: 3, withData: 4, samples: 5, notified: false, noDataStreak: 0 } },
      okStreak: 0,
    });
  });

  it('does not change the tally it is given', () => {
    const policy = service([errorRate, restarting]);
    const before = run(policy, [{ error_rate: 0.2, restarts: 3 }]).tally;
    const copy = structuredClone(before);
    assess(policy, before, { error_rate: 0.2, restarts: 0 });
    assert.deepEqual(before, copy);
  });

  it('starts a rule missing from the tally from zero', () => {
    const policy = service([{ ...errorRate, for: 1 }]);
    const { tally, verdict } = assess(policy, { ticks: 0, rules: {}, okStreak: 0 }, { error_rate: 0.2 });
    assert.equal(summary(verdict), 'rollback:error rate above 5%');
    assert.deepEqual(tally.rules['error rate above 5%'], { streak: 1, breaches: 1, withData: 1, samples: 1, notified: false, noDataStreak: 0 });
  });
});

describe('assess: traffic floor and no data', () => {
  it('below the traffic floor, rules over Prometheus queries get no data; readiness still counts', () => {
    const policy = service([{ ...errorRate, for: 1 }, { ...readiness, for: 1 }]);
    const { results, verdict } = assess(policy, emptyTally(policy), { error_rate: 0.9, ready: 1 }, { lowTraffic: true });
    assert.deepEqual(results, { 'error rate above 5%': 'no-data', 'readiness failing': 'ok' });
    assert.equal(verdict.kind, 'continue');
    const down = assess(policy, emptyTally(policy), { error_rate: 0.9, ready: 0 }, { lowTraffic: true });
    assert.equal(summary(down.verdict), 'rollback:readiness failing', 'a failing readiness check is judged at any traffic');
  });

  it('on_no_data reports a rollback rule once when its no-data streak reaches `after`, and never reverts', () => {
    const policy = service([errorRate, restarting], { onNoData: { after: 3, then: 'notify' } });
    let tally = emptyTally(policy);
    const reported: string[][] = [];
    for (const v of [null, null, null, null, 0.2, null, null, null]) {
      const out = assess(policy, tally, { error_rate: v, restarts: null });
      tally = out.tally;
      assert.equal(out.verdict.kind, 'continue');
      reported.push(out.verdict.noData.map((r) => r.name));
    }
    assert.deepEqual(reported, [[], [], ['error rate above 5%'], [], [], [], [], ['error rate above 5%']], 'once per streak, only rollback rules');
  });

  it('without on_no_data nothing is reported for missing data', () => {
    const policy = service([errorRate]);
    let tally = emptyTally(policy);
    for (let i = 0; i < 10; i++) {
      const out = assess(policy, tally, { error_rate: null });
      tally = out.tally;
      assert.deepEqual(out.verdict.noData, []);
    }
  });
});

describe('concludeWindow', () => {
  /** `withData` of `samples` ticks carry a healthy value for every signal; the rest carry none. */
  function window(withData: number, samples: number): Record<string, Value>[] {
    return Array.from({ length: samples }, (_, i) =>
      i < withData ? { error_rate: 0.01, ready: 1, restarts: 0 } : { error_rate: null, ready: null, restarts: null },
    );
  }

  it('concludeWindow is inconclusive when no sample was taken', () => {
    const policy = service([errorRate]);
    assert.deepEqual(concludeWindow(policy, emptyTally(policy)), { kind: 'inconclusive', reason: 'no samples were taken during the window' });
  });

  it('concludeWindow is inconclusive below min_data_ratio', () => {
    const policy = service([errorRate]);
    assert.deepEqual(concludeWindow(policy, run(policy, window(7, 10)).tally), {
      kind: 'inconclusive',
      reason: 'too little data (need 80%): "error rate above 5%" had data in 7 of 10 samples',
    });
  });

  it('concludeWindow names every rollback rule that was short of data', () => {
    const policy = service([errorRate, readiness], { minDataRatio: 0.5 });
    assert.deepEqual(concludeWindow(policy, run(policy, window(1, 4)).tally), {
      kind: 'inconclusive',
      reason: 'too little data (need 50%): "error rate above 5%" had data in 1 of 4 samples; "readiness failing" had data in 1 of 4 samples',
    });
  });

  it('concludeWindow is inconclusive when a rollback rule has no tally at all', () => {
    const policy = service([errorRate]);
    assert.deepEqual(concludeWindow(policy, { ticks: 3, rules: {}, okStreak: 0 }), {
      kind: 'inconclusive',
      reason: 'too little data (need 80%): "error rate above 5%" had data in 0 of 0 samples',
    });
  });

  const passing: [what: string, rules: Rule[], withData: number, samples: number, minDataRatio: number][] = [
    ['concludeWindow passes with enough data', [errorRate, readiness], 10, 10, 0.8],
    ['concludeWindow passes at exactly min_data_ratio', [errorRate, readiness], 8, 10, 0.8],
    ['concludeWindow passes without data when min_data_ratio is 0', [errorRate], 0, 10, 0],
  ];
  for (const [what, rules, withData, samples, minDataRatio] of passing) {
    it(what, () => {
      const policy = service(rules, { minDataRatio });
      assert.deepEqual(concludeWindow(policy, run(policy, window(withData, samples)).tally), { kind: 'passed' });
    });
  }

  /** Healthy ticks with the error rate breaching at the given tick numbers. */
  function breachingAt(samples: number, at: number[]): Record<string, Value>[] {
    return window(samples, samples).map((t, i) => (at.includes(i) ? { ...t, error_rate: 0.2 } : t));
  }

  it('concludeWindow is unproven when a rollback rule kept breaching without ever reaching its streak', () => {
    const policy = service([errorRate, readiness]);
    // for: 3, breaching on every other sample: never three in a row, 5 of 10 samples
    assert.deepEqual(concludeWindow(policy, run(policy, breachingAt(10, [0, 2, 4, 6, 8])).tally), {
      kind: 'unproven',
      reason: 'the rules did not hold: "error rate above 5%" breached in 5 of 10 samples with data (more than 10%), though never 3 in a row; not known-good',
    });
  });

  it('concludeWindow is unproven when a rollback rule is breaching as the window closes', () => {
    const policy = service([errorRate]);
    assert.deepEqual(concludeWindow(policy, run(policy, breachingAt(20, [19])).tally), {
      kind: 'unproven',
      reason: 'the rules did not hold: "error rate above 5%" was breaching when the window closed (1 in a row; 3 in a row revert); not known-good',
    });
  });

  it('concludeWindow passes with one early transient breach in ten samples', () => {
    const policy = service([errorRate]);
    assert.deepEqual(concludeWindow(policy, run(policy, breachingAt(10, [1])).tally), { kind: 'passed' });
  });

  it('concludeWindow passes a single breach even in a short window where it is more than 10% of the samples', () => {
    const policy = service([errorRate]);
    assert.deepEqual(concludeWindow(policy, run(policy, breachingAt(8, [0])).tally), { kind: 'passed' });
  });

  it('concludeWindow is unproven with two breaches in a short window', () => {
    const policy = service([errorRate]);
    assert.equal(concludeWindow(policy, run(policy, breachingAt(8, [0, 4])).tally).kind, 'unproven');
  });

  it('concludeWindow is unproven rather than inconclusive when both apply: a breaching version is never known-good', () => {
    const policy = service([errorRate]);
    const ticks = breachingAt(10, [0, 2, 4]).map((t, i) => (i > 5 ? { ...t, error_rate: null } : t));
    assert.equal(concludeWindow(policy, run(policy, ticks).tally).kind, 'unproven');
  });

  it('concludeWindow ignores breaches of notify rules', () => {
    const policy = service([errorRate, restarting]);
    const ticks = window(10, 10).map((t) => ({ ...t, restarts: 5 }));
    assert.deepEqual(concludeWindow(policy, run(policy, ticks).tally), { kind: 'passed' });
  });

  it('concludeWindow ignores missing data for notify rules', () => {
    const policy = service([errorRate, restarting]);
    const ticks = window(10, 10).map((t) => ({ ...t, restarts: null }));
    assert.deepEqual(concludeWindow(policy, run(policy, ticks).tally), { kind: 'passed' });
  });
});

describe('recoveryStatus', () => {
  const errorsLow: RecoveryCheck = { signal: 'error_rate', below: 0.01 };
  const ready: RecoveryCheck = { signal: 'ready', above: 0 };
  const checks = [errorsLow, ready];

  const cases: [what: string, values: Record<string, Value>, unmet: { check: RecoveryCheck; value: Value }[]][] = [
    ['recovery is met when every check holds', { error_rate: 0.001, ready: 1 }, []],
    ['recovery needs every check to hold', { error_rate: 0.001, ready: 0 }, [{ check: ready, value: 0 }]],
    ['recovery lists every check that does not hold', { error_rate: 0.2, ready: 0 }, [{ check: errorsLow, value: 0.2 }, { check: ready, value: 0 }]],
    ['a value on the threshold does not hold', { error_rate: 0.01, ready: 1 }, [{ check: errorsLow, value: 0.01 }]],
    ['no data does not hold: null', { error_rate: null, ready: 1 }, [{ check: errorsLow, value: null }]],
    ['no data does not hold: a missing signal', { ready: 1 }, [{ check: errorsLow, value: null }]],
    ['no data does not hold: NaN', { error_rate: 0.001, ready: Number.NaN }, [{ check: ready, value: Number.NaN }]],
  ];
  for (const [what, values, unmet] of cases) {
    it(what, () => {
      assert.deepEqual(recoveryStatus(checks, values), { met: unmet.length === 0, unmet });
    });
  }

  it('recovery needs every check to hold; no data does not hold', () => {
    assert.equal(recoveryStatus(checks, { error_rate: 0.001, ready: 1 }).met, true);
    assert.equal(recoveryStatus(checks, { error_rate: 0.001, ready: null }).met, false);
    assert.equal(recoveryStatus(checks, {}).met, false);
  });

  it('with no recovery checks, recovery is met at once', () => {
    assert.deepEqual(recoveryStatus([], {}), { met: true, unmet: [] });
  });
});

describe('baseline-relative thresholds', () => {
  const ratio: Rule = { name: 'errors 50% above baseline', signal: 'error_rate', above: Number.NaN, baseline: { windowMs: 1_800_000, ratio: 1.5 }, for: 1, severity: 'P1', action: 'rollback' };
  const delta: Rule = { ...ratio, name: 'errors 2 points above baseline', baseline: { windowMs: 1_800_000, delta: 0.02 } };

  const cases: [string, Rule, number | null, number, SampleResult][] = [
    ['ratio: 0.04 against 1.5 × 0.02 breaches', ratio, 0.02, 0.04, 'breach'],
    ['ratio: 0.025 against 1.5 × 0.02 is ok', ratio, 0.02, 0.025, 'ok'],
    ['delta: 0.05 against 0.02 + 0.02 breaches', delta, 0.02, 0.05, 'breach'],
    ['delta: 0.035 against 0.02 + 0.02 is ok', delta, 0.02, 0.035, 'ok'],
    ['no baseline: no data, never a breach', ratio, null, 0.9, 'no-data'],
  ];
  for (const [name, rule, baseline, value, want] of cases) {
    it(name, () => assert.equal(classify(withBaseline(rule, baseline), value), want));
  }

  it('an unresolved baseline rule has no data', () => {
    assert.equal(classify(ratio, 0.9), 'no-data');
  });

  it('describes the effective threshold and where it came from', () => {
    assert.equal(describeThreshold(withBaseline(ratio, 0.02)), 'above 0.03 (1.5× baseline)');
    assert.equal(describeThreshold(withBaseline(delta, 0.01)), 'above 0.03 (baseline + 0.02)');
    assert.equal(describeThreshold(withBaseline(ratio, null)), 'above 1.5× baseline (no baseline)');
  });

  it('leaves rules without a baseline unchanged', () => {
    assert.equal(withBaseline(errorRate, 0.5), errorRate);
  });
});

describe('baseline-relative thresholds have a floor: min_threshold', () => {
  const floored: Rule = { name: 'errors 50% above baseline', signal: 'error_rate', above: Number.NaN, baseline: { windowMs: 1_800_000, ratio: 1.5, minThreshold: 0.01 }, for: 1, severity: 'P1', action: 'rollback' };
  const unfloored: Rule = { ...floored, baseline: { windowMs: 1_800_000, ratio: 1.5 } };
  const delta: Rule = { ...floored, name: 'errors 2 points above baseline', baseline: { windowMs: 1_800_000, delta: 0.02, minThreshold: 0.03 } };

  const cases: { name: string; rule: Rule; baseline: number; threshold: number; value: number; want: SampleResult; text: string }[] = [
    { name: 'a zero baseline: the floor is the threshold, so one error (0.0003) is not a breach', rule: floored, baseline: 0, threshold: 0.01, value: 0.0003, want: 'ok', text: 'above 0.01 (min_threshold, as 1.5× baseline 0 would be 0)' },
    { name: 'a zero baseline: above the floor is a breach', rule: floored, baseline: 0, threshold: 0.01, value: 0.02, want: 'breach', text: 'above 0.01 (min_threshold, as 1.5× baseline 0 would be 0)' },
    { name: 'a zero baseline without a floor: the threshold is 0 and one error breaches (what min_threshold prevents)', rule: unfloored, baseline: 0, threshold: 0, value: 0.0003, want: 'breach', text: 'above 0 (1.5× baseline)' },
    { name: 'a small baseline (0.002): 1.5 × it is below the floor, the floor holds', rule: floored, baseline: 0.002, threshold: 0.01, value: 0.005, want: 'ok', text: 'above 0.01 (min_threshold, as 1.5× baseline 0.002 would be 0.003)' },
    { name: 'a small baseline (0.002): above the floor is a breach', rule: floored, baseline: 0.002, threshold: 0.01, value: 0.011, want: 'breach', text: 'above 0.01 (min_threshold, as 1.5× baseline 0.002 would be 0.003)' },
    { name: 'a large baseline (0.1): 1.5 × it is above the floor and decides', rule: floored, baseline: 0.1, threshold: 0.15, value: 0.12, want: 'ok', text: 'above 0.15 (1.5× baseline; min_threshold 0.01)' },
    { name: 'a large baseline (0.1): above 1.5 × it is a breach', rule: floored, baseline: 0.1, threshold: 0.15, value: 0.16, want: 'breach', text: 'above 0.15 (1.5× baseline; min_threshold 0.01)' },
    { name: 'a delta from a zero baseline below the floor: the floor holds', rule: delta, baseline: 0, threshold: 0.03, value: 0.025, want: 'ok', text: 'above 0.03 (min_threshold, as baseline 0 + 0.02 would be 0.02)' },
    { name: 'a delta from a large baseline: baseline + delta decides', rule: delta, baseline: 0.05, threshold: 0.07, value: 0.08, want: 'breach', text: 'above 0.07 (baseline + 0.02; min_threshold 0.03)' },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const resolved = withBaseline(c.rule, c.baseline);
      assert.ok(Math.abs((resolved.above as number) - c.threshold) < 1e-12, `threshold ${resolved.above}, want ${c.threshold}`);
      assert.equal(classify(resolved, c.value), c.want);
      assert.equal(describeThreshold(resolved), c.text);
    });
  }

  it('an unknown baseline is still no data, floor or not (never a guess)', () => {
    const resolved = withBaseline(floored, null);
    assert.equal(classify(resolved, 0.9), 'no-data');
    assert.equal(describeThreshold(resolved), 'above 1.5× baseline, at least 0.01 (no baseline)');
  });

  it('a threshold exactly at the floor is not breached by a value equal to it', () => {
    assert.equal(classify(withBaseline(floored, 0), 0.01), 'ok');
  });
});
