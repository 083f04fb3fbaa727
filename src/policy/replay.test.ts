import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Rule, ServicePolicy } from '../config/policy.js';
import type { Value } from './assess.js';
import { withBaseline } from './assess.js';
import { replay, replayableService, replayTimes, type ReplayInput, type ReplayResult } from './replay.js';
import { servicePolicy } from './service.fixture.js';

const T0 = Date.parse('2026-11-26T12:00:00Z');
const INTERVAL = 15_000;

const errorRate: Rule = { name: 'error rate above 5%', signal: 'error_rate', above: 0.05, for: 3, severity: 'P0', action: 'rollback' };
const readiness: Rule = { name: 'readiness failing', signal: 'ready', below: 1, for: 3, severity: 'P0', action: 'rollback' };
const restarting: Rule = { name: 'restarting', signal: 'restarts', above: 2, for: 1, severity: 'P1', action: 'notify' };
const slowNotify: Rule = { name: 'errors above 1%', signal: 'error_rate', above: 0.01, for: 2, severity: 'P2', action: 'notify' };

function service(rules: Rule[], overrides: Partial<ServicePolicy> = {}): ServicePolicy {
  return servicePolicy({
    name: 'sim',
    match: { kind: 'container', name: 'rg-sim' },
    windowMs: 6 * INTERVAL,
    intervalMs: INTERVAL,
    signals: {
      error_rate: { kind: 'prometheus', name: 'error_rate', query: 'sum(rate(errors{service="{{service}}"}[1m]))' },
      request_rate: { kind: 'prometheus', name: 'request_rate', query: 'sum(rate(requests{service="{{service}}"}[1m]))' },
      ready: { kind: 'http', name: 'ready', url: 'http://127.0.0.1:18089/ready', timeoutMs: 1_000, status: 200, json: {} },
      restarts: { kind: 'container', name: 'restarts', field: 'restart_count' },
    },
    rules,
    ...overrides,
  });
}

/** One tick per element, at T0 + (i + 1) × interval, like the daemon's ticks. */
function input(svc: ServicePolicy, values: Record<string, Value>[], extra: Partial<ReplayInput> = {}): ReplayInput {
  return {
    service: svc,
    startedAt: T0,
    windowEndsAt: T0 + svc.windowMs,
    ticks: values.map((v, i) => ({ at: T0 + (i + 1) * svc.intervalMs, values: v })),
    ...extra,
  };
}

const at = (tick: number): number => T0 + tick * INTERVAL;
const bad = { error_rate: 0.2, request_rate: 100 };
const good = { error_rate: 0, request_rate: 100 };
const none = { error_rate: null, request_rate: null };

/** `rollback@<tick>:<rule>`, `passed@<tick>` or `inconclusive@<tick>: <reason>`. */
function verdictOf(r: ReplayResult): string {
  const v = r.verdict;
  const tick = v.at === null ? 'never' : String((v.at - T0) / INTERVAL);
  if (v.kind === 'rollback') return `rollback@${tick}:${v.rule}`;
  if (v.kind === 'passed') return `passed@${tick}`;
  return `inconclusive@${tick}: ${v.reason}`;
}

describe('replayTimes', () => {
  it('ticks one interval after the deploy, then every interval, the last at the end of the window', () => {
    const times = replayTimes(T0, 600_000, 15_000);
    assert.equal(times.length, 40);
    assert.equal(times[0], T0 + 15_000);
    assert.equal(times.at(-1), T0 + 600_000);
  });
  it('a window that is not a whole number of intervals ends at the first tick past it', () => {
    assert.deepEqual(replayTimes(T0, 10_000, 3_000).map((t) => t - T0), [3_000, 6_000, 9_000, 12_000]);
  });
});

describe('replay', () => {
  const cases: [what: string, svc: ServicePolicy, values: Record<string, Value>[], expected: string, extra?: Partial<ReplayInput>][] = [
    ['replay() rolls back at the third consecutive breach', service([errorRate]), [good, bad, bad, bad, good, good], 'rollback@4:error rate above 5%'],
    ['replay() passes a clean window at its last tick', service([errorRate]), [good, good, good, good, good, good], 'passed@6'],
    ['a no-data sample ends a streak, so breaches split by no data never roll back; the rule did not hold, so the window is not passed', service([errorRate]), [bad, bad, none, bad, bad, none],
      'inconclusive@6: the rules did not hold: "error rate above 5%" breached in 4 of 4 samples with data (more than 10%), though never 3 in a row; not known-good'],
    ['with too little data and no breach the window is inconclusive', service([errorRate]), [good, good, none, good, good, none],
      'inconclusive@6: too little data (need 80%): "error rate above 5%" had data in 4 of 6 samples'],
    ['breaches during warm-up do not count: the rule fires three samples after it ends', service([errorRate], { warmupMs: 2 * INTERVAL }), [bad, bad, bad, bad, bad, bad], 'rollback@4:error rate above 5%'],
    ['below the traffic floor a breaching error rate is no data: inconclusive, never a rollback',
      service([errorRate], { minRequests: { signal: 'request_rate', atLeast: 1_000 } }), [bad, bad, bad, bad, bad, bad],
      'inconclusive@6: too little data (need 80%): "error rate above 5%" had data in 0 of 6 samples'],
    ['at or above the traffic floor the same breaches roll back', service([errorRate], { minRequests: { signal: 'request_rate', atLeast: 100 } }), [bad, bad, bad, bad, bad, bad], 'rollback@3:error rate above 5%'],
    ['a traffic signal without data is below the floor', service([errorRate], { minRequests: { signal: 'request_rate', atLeast: 1 } }), [bad, bad, { error_rate: 0.2, request_rate: null }, bad, bad, bad], 'rollback@6:error rate above 5%'],
    ['on_no_data inconclusive ends the watch at the after-th no-data sample', service([errorRate], { onNoData: { after: 2, then: 'inconclusive' } }), [good, none, none, good, good, good],
      'inconclusive@3: no data for 2 consecutive samples of "error rate above 5%"; the watch ended (on_no_data: inconclusive)'],
    ['on_no_data notify keeps watching', service([errorRate], { onNoData: { after: 1, then: 'notify' }, minDataRatio: 0.5 }), [good, none, good, good, good, good], 'passed@6'],
    ['a rule over an http signal is not replayed and does not make the window inconclusive', service([errorRate, readiness]), [good, good, good, good, good, good], 'passed@6'],
    ['a rule over a container signal is not replayed either; the Prometheus rule still rolls back', service([restarting, errorRate]), [bad, bad, bad], 'rollback@3:error rate above 5%'],
    ['with only http rollback rules nothing can be replayed', service([readiness]), [good, good, good, good, good, good],
      'inconclusive@6: no rollback rule reads a Prometheus signal; nothing could be replayed'],
    ['a notify rule firing does not end the watch', service([slowNotify, errorRate]), [{ error_rate: 0.03 }, { error_rate: 0.03 }, good, good, good, good], 'passed@6'],
    ['history cut at a recorded revert before any rule fires is inconclusive', service([errorRate]), [good, bad, bad, bad, bad, bad],
      'inconclusive@2: no rollback rule fired before the recorded revert', { cut: { at: at(2), reason: 'the recorded revert' } }],
    ['a rule that fires by the cut still rolls back', service([errorRate]), [bad, bad, bad, good, good, good], 'rollback@3:error rate above 5%', { cut: { at: at(3), reason: 'the recorded revert' } }],
    ['history shorter than the window is inconclusive', service([errorRate]), [good, good, good], 'inconclusive@3: the history ends before the window does'],
    ['inconclusive_is_good still reports inconclusive, with the known-good note', service([errorRate], { inconclusiveIsGood: true }), [none, none, none, none, none, none],
      'inconclusive@6: too little data (need 80%): "error rate above 5%" had data in 0 of 6 samples; now known-good (inconclusive_is_good)'],
    ['a warm-up longer than the window leaves no samples', service([errorRate], { warmupMs: 60 * INTERVAL }), [bad, bad, bad, bad, bad, bad], 'inconclusive@6: no samples were taken during the window'],
  ];
  for (const [what, svc, values, expected, extra] of cases) {
    it(what, () => {
      assert.equal(verdictOf(replay(input(svc, values, extra))), expected);
    });
  }

  it('records when each rule fired, with the daemon\'s rollback reason', () => {
    const r = replay(input(service([slowNotify, errorRate]), [bad, bad, bad, bad]));
    assert.deepEqual(r.events.map((e) => [(e.at - T0) / INTERVAL, e.kind, e.rule]), [[2, 'notify', 'errors above 1%'], [3, 'rollback', 'error rate above 5%']]);
    assert.equal(r.verdict.kind === 'rollback' && r.verdict.reason, 'error rate above 5%: error_rate above 0.05 for 3 consecutive samples (last 0.2)');
  });

  it('marks each step: warm-up, low traffic, and every rule\'s result, not-replayed ones included', () => {
    const svc = service([errorRate, readiness], { warmupMs: 20_000, minRequests: { signal: 'request_rate', atLeast: 50 } });
    const r = replay(input(svc, [bad, { error_rate: 0.2, request_rate: 10 }, good]));
    assert.deepEqual(r.steps.map((s) => [s.warmup, s.lowTraffic, s.results]), [
      [true, false, { 'readiness failing': 'not-replayed' }],
      [false, true, { 'readiness failing': 'not-replayed', 'error rate above 5%': 'no-data' }],
      [false, false, { 'readiness failing': 'not-replayed', 'error rate above 5%': 'ok' }],
    ]);
    assert.deepEqual(r.notReplayed.map((x) => x.name), ['readiness failing']);
  });

  it('a baseline-relative rule judges against its resolved threshold, and without a baseline reads no data', () => {
    const relative: Rule = { name: 'errors above baseline', signal: 'error_rate', above: Number.NaN, baseline: { windowMs: 1_800_000, delta: 0.02 }, for: 2, severity: 'P1', action: 'rollback' };
    const measured = service([withBaseline(relative, 0.01)]);
    assert.equal(verdictOf(replay(input(measured, [{ error_rate: 0.02 }, { error_rate: 0.04 }, { error_rate: 0.04 }]))), 'rollback@3:errors above baseline');
    const unknown = service([withBaseline(relative, null)]);
    assert.match(verdictOf(replay(input(unknown, [bad, bad, bad, bad, bad, bad]))), /^inconclusive@6: too little data/);
  });

  it('a burn-rate rule reads its own value key, not the signal\'s', () => {
    const burn: Rule = { name: 'burning budget', signal: 'error_rate', above: 1, burnRate: { slo: 0.99, windows: [{ shortMs: 300_000, longMs: 3_600_000, factor: 14.4 }] }, for: 2, severity: 'P0', action: 'rollback' };
    const r = replay(input(service([burn]), [{ error_rate: 0, 'burn:burning budget': 2 }, { error_rate: 0, 'burn:burning budget': 3 }]));
    assert.equal(verdictOf(r), 'rollback@2:burning budget');
  });

  it('replayableService() keeps only rules over Prometheus signals', () => {
    const { judged, notReplayed } = replayableService(service([errorRate, readiness, restarting]));
    assert.deepEqual(judged.rules.map((r) => r.name), ['error rate above 5%']);
    assert.deepEqual(notReplayed.map((r) => r.name), ['readiness failing', 'restarting']);
  });
});
