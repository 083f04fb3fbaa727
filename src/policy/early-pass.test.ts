import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Rule, ServicePolicy } from '../config/policy.js';
import { assess, earlyPass, emptyTally, type Value, type WatchTally } from './assess.js';
import { replay } from './replay.js';
import { withServingRule, SERVING_SIGNAL } from './serving.js';
import { servicePolicy } from './service.fixture.js';
import { planTick, tallyFromSamples, type TickInput } from './tick-plan.js';

// pass_after: a deployment whose every rule was ok for `ok` samples in a row, at least `min` after
// it started, passes before its window ends — and nothing else the policy guards is weakened.

const INTERVAL = 15_000;
const errorRate: Rule = { name: 'error rate above 5%', signal: 'error_rate', above: 0.05, for: 3, severity: 'P0', action: 'rollback' };
const restarting: Rule = { name: 'restarting', signal: 'restarts', above: 2, for: 1, severity: 'P2', action: 'notify' };

/** Error rate and restarts; passes after 4 ok samples and at least 1 minute. */
function service(overrides: Partial<ServicePolicy> = {}): ServicePolicy {
  return servicePolicy({
    signals: {
      error_rate: { kind: 'prometheus', name: 'error_rate', query: 'x{service="{{service}}"}' },
      request_rate: { kind: 'prometheus', name: 'request_rate', query: 'y{service="{{service}}"}' },
      restarts: { kind: 'container', name: 'restarts', field: 'restart_count' },
    },
    rules: [errorRate, restarting],
    passAfter: { ok: 4, minMs: 60_000 },
    ...overrides,
  });
}

const ok = { error_rate: 0.01, restarts: 0, request_rate: 100 };
const breach = { error_rate: 0.2, restarts: 0, request_rate: 100 };
const restart = { error_rate: 0.01, restarts: 3, request_rate: 100 };
const noData = { error_rate: null, restarts: 0, request_rate: 100 };

/**
 * Plans one tick per element, INTERVAL apart from the deploy (tick n at n × INTERVAL, as the
 * daemon's), until a step ends the watch: `pass-early@<tick>`, `conclude@<tick>` or
 * `revert@<tick>` (1-based). `held` marks ticks during which a hold is in force.
 */
function run(svc: ServicePolicy, ticks: Record<string, Value>[], opts: { held?: number[]; windowEndsAt?: number; warmup?: number } = {}): string[] {
  let tally: WatchTally = emptyTally(svc);
  const out: string[] = [];
  ticks.forEach((values, i) => {
    const n = i + 1;
    if (out.length) return;
    const input: TickInput = {
      service: svc, tally, values,
      warmingUp: n <= (opts.warmup ?? 0),
      windowEnded: opts.windowEndsAt !== undefined && n >= opts.windowEndsAt,
      elapsedMs: n * INTERVAL,
      held: opts.held?.includes(n),
    };
    const plan = planTick(input);
    tally = plan.tally;
    for (const step of plan.steps) if (step.kind === 'pass-early' || step.kind === 'conclude' || step.kind === 'revert') out.push(`${step.kind}@${n}`);
  });
  return out;
}

const times = <T>(n: number, v: T): T[] => Array.from({ length: n }, () => v);

describe('pass_after: planTick passes early', () => {
  const cases: [what: string, svc: ServicePolicy, ticks: Record<string, Value>[], opts: Parameters<typeof run>[2], expected: string[]][] = [
    ['after `ok` ok samples once `min` has passed (ok 4, min 1m: the 4th sample at 1m)', service(), times(6, ok), {}, ['pass-early@4']],
    ['not before `min`: 4 ok samples at 1m are not enough when min is 2m; the 8th, at 2m, is',
      service({ passAfter: { ok: 4, minMs: 120_000 } }), times(10, ok), {}, ['pass-early@8']],
    ['a breach in between resets the count: 4 more ok samples are needed after it',
      service(), [ok, ok, ok, breach, ok, ok, ok, ok, ok], {}, ['pass-early@8']],
    ['a rule in its `for` streak is not ok: one breach (of for: 3) holds off even ok: 1',
      service({ passAfter: { ok: 1, minMs: 0 } }), [breach, ok], {}, ['pass-early@2']],
    ['a rollback rule that breached in more than 10% of its samples is unproven: no early pass, however long the ok streak',
      service(), [ok, ok, breach, breach, ...times(10, ok)], {}, []],
    ['a sample without data resets the count', service(), [ok, ok, ok, noData, ok, ok, ok, ok], {}, ['pass-early@8']],
    ['a notify rule breaching resets the count too', service(), [ok, ok, ok, restart, ok, ok, ok, ok], {}, ['pass-early@8']],
    ['below the traffic floor the Prometheus rules have no data: no early pass',
      service({ minRequests: { signal: 'request_rate', atLeast: 10 } }), times(8, { ...ok, request_rate: 1 }), {}, []],
    ['a hold in force prevents it; once it ends the next tick passes', service(), times(7, ok), { held: [4, 5] }, ['pass-early@6']],
    ['warm-up samples do not count', service(), times(8, ok), { warmup: 3 }, ['pass-early@7']],
    ['at the end of the window it concludes as usual, not early', service({ passAfter: { ok: 3, minMs: 0 } }), times(3, ok), { windowEndsAt: 3 }, ['conclude@3']],
    ['without pass_after the window decides alone', service({ passAfter: undefined }), times(8, ok), {}, []],
    ['a revert due is never overridden', service({ passAfter: { ok: 1, minMs: 0 } }), [breach, breach, breach], {}, ['revert@3']],
  ];
  for (const [what, svc, ticks, opts, expected] of cases) {
    it(what, () => assert.deepEqual(run(svc, ticks, opts), expected));
  }

  it('says how many ok samples it took and when', () => {
    let tally = emptyTally(service());
    for (let n = 1; n <= 3; n++) tally = planTick({ service: service(), tally, values: ok, warmingUp: false, windowEnded: false, elapsedMs: n * INTERVAL }).tally;
    const { steps } = planTick({ service: service(), tally, values: ok, warmingUp: false, windowEnded: false, elapsedMs: 61_000 });
    assert.deepEqual(steps.at(-1), { kind: 'pass-early', oks: 4, afterMs: 61_000 });
  });

  it('without the time since the deploy it never passes early', () => {
    let tally = emptyTally(service());
    const kinds: string[] = [];
    for (let n = 1; n <= 6; n++) {
      const plan = planTick({ service: service(), tally, values: ok, warmingUp: false, windowEnded: false });
      tally = plan.tally;
      kinds.push(...plan.steps.map((s) => s.kind));
    }
    assert.ok(!kinds.includes('pass-early'));
  });
});

describe('pass_after: earlyPass', () => {
  /** The tally after these ticks. */
  const tallyOf = (svc: ServicePolicy, ticks: Record<string, Value>[]): WatchTally =>
    ticks.reduce((t, values) => assess(svc, t, values).tally, emptyTally(svc));

  const cases: [what: string, svc: ServicePolicy, ticks: Record<string, Value>[], elapsedMs: number, passes: boolean][] = [
    ['ok streak and min reached: passes', service(), times(4, ok), 60_000, true],
    ['one sample short: no', service(), times(3, ok), 60_000, false],
    ['min not reached: no', service(), times(4, ok), 59_999, false],
    ['min_data_ratio: too little data over the window so far keeps it watching, however long the ok streak',
      service(), [...times(3, noData), ...times(4, ok)], 120_000, false],
    ['enough data (6 of 7 with a 0.8 ratio): passes', service(), [noData, ...times(6, ok)], 120_000, true],
    ['a rollback rule that breached in more than 10% of its samples (though never `for` in a row) is unproven, not passed early',
      service({ passAfter: { ok: 2, minMs: 0 } }), [breach, ok, breach, ok, breach, ok, ok], 120_000, false],
    ['ok 1, min 0: the first ok sample passes', service({ passAfter: { ok: 1, minMs: 0 } }), [ok], 15_000, true],
  ];
  for (const [what, svc, ticks, elapsedMs, passes] of cases) {
    it(what, () => assert.equal(earlyPass(svc, tallyOf(svc, ticks), elapsedMs) !== undefined, passes));
  }

  it('counts every rule in the all-ok streak, the built-in serving rule included', () => {
    const svc = withServingRule(service());
    const crashed = { ...ok, [SERVING_SIGNAL]: 0 };
    const serving = { ...ok, [SERVING_SIGNAL]: 1 };
    assert.equal(tallyOf(svc, [serving, serving, crashed]).okStreak, 0);
    assert.equal(tallyOf(svc, [crashed, serving, serving]).okStreak, 2);
    assert.equal(tallyOf(svc, times(3, ok)).okStreak, 0, 'the serving rule without data is not ok');
  });

  it('a watch resumed from its recorded samples picks up its ok streak', () => {
    const svc = service();
    const samples = [breach, ok, ok, ok].flatMap((values, i) => Object.entries(values).map(([signal, value]) => ({ at: (i + 1) * INTERVAL, signal, value })));
    const tally = tallyFromSamples(svc, emptyTally(svc), samples);
    assert.equal(tally.okStreak, 3);
    assert.equal(earlyPass(svc, assess(svc, tally, ok).tally, 75_000)?.oks, 4);
  });
});

describe('pass_after: replay', () => {
  it('a replay passes early at the tick the daemon would, judged on the Prometheus rules', () => {
    const svc = service({ rules: [errorRate], windowMs: 10 * INTERVAL });
    const ticks = times(10, ok).map((values, i) => ({ at: (i + 1) * INTERVAL, values }));
    const result = replay({ service: svc, startedAt: 0, windowEndsAt: svc.windowMs, ticks });
    assert.deepEqual(result.verdict, { kind: 'passed', at: 4 * INTERVAL, early: { oks: 4, afterMs: 4 * INTERVAL } });
  });

  it('a replay without pass_after passes at the end of the window', () => {
    const svc = service({ rules: [errorRate], windowMs: 10 * INTERVAL, passAfter: undefined });
    const ticks = times(10, ok).map((values, i) => ({ at: (i + 1) * INTERVAL, values }));
    assert.deepEqual(replay({ service: svc, startedAt: 0, windowEndsAt: svc.windowMs, ticks }).verdict, { kind: 'passed', at: 10 * INTERVAL });
  });
});

describe('pass_after waits until every rule reads the new version alone', () => {
  it('a rule over rate(…[5m]) cannot pass early before five minutes, whatever min says; warm-up adds to it', () => {
    const svc = service({
      signals: { ...service().signals, error_rate: { kind: 'prometheus', name: 'error_rate', query: 'sum(rate(errors{service="{{service}}"}[5m])) / sum(rate(requests[5m]))' } },
      passAfter: { ok: 1, minMs: 0 },
    });
    const ticks = Array.from({ length: 30 }, () => ok);
    assert.deepEqual(run(svc, ticks), ['pass-early@20'], '20 × 15 s = 5 min');
    assert.deepEqual(run({ ...svc, warmupMs: 60_000 }, ticks, { warmup: 4 }), ['pass-early@24']);
  });

  it('a burn-rate rule never passes before its longest window', () => {
    const burn: Rule = { name: 'burn', signal: 'error_rate', above: 1, for: 1, severity: 'P0', action: 'rollback', burnRate: { slo: 0.999, windows: [{ shortMs: 300_000, longMs: 3_600_000, factor: 14.4 }] } };
    const svc = service({ rules: [burn], passAfter: { ok: 1, minMs: 0 } });
    assert.equal(earlyPass(svc, { ...emptyTally(svc), okStreak: 50 }, 3_599_999), undefined);
  });
});
