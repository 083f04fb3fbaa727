import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Rule, ServicePolicy } from '../config/policy.js';
import { assess, emptyTally, type Value, type WatchTally } from './assess.js';
import { servicePolicy } from './service.fixture.js';
import { planTick, tallyFromSamples, type TickStep } from './tick-plan.js';

const errorRate: Rule = { name: 'error rate above 5%', signal: 'error_rate', above: 0.05, for: 2, severity: 'P0', action: 'rollback' };
const slow: Rule = { name: 'errors above 1%', signal: 'error_rate', above: 0.01, for: 2, severity: 'P2', action: 'notify' };

function service(rules: Rule[], overrides: Partial<ServicePolicy> = {}): ServicePolicy {
  return servicePolicy({
    match: { kind: 'container', name: 'web' },
    signals: {
      error_rate: { kind: 'prometheus', name: 'error_rate', query: 'x{service="{{service}}"}' },
      request_rate: { kind: 'prometheus', name: 'request_rate', query: 'y{service="{{service}}"}' },
    },
    rules,
    recovery: [],
    ...overrides,
  });
}

/** The plan's steps as short words: `record`, `notify:<rule>`, `revert:<rule>@<value>`, `no-data`, `conclude`. */
function words(steps: TickStep[]): string[] {
  return steps.map((s) => {
    switch (s.kind) {
      case 'notify': return `notify:${s.rule.name}`;
      case 'revert': return `revert:${s.rule.name}@${s.value}`;
      case 'no-data': return `no-data:${s.rules.map((r) => r.name).join(',')}`;
      default: return s.kind;
    }
  });
}

/** Plans `ticks` in a row from an empty tally; the plan of the last one. */
function planAfter(svc: ServicePolicy, ticks: Record<string, Value>[], last: { warmingUp?: boolean; windowEnded?: boolean } = {}): string[] {
  let tally: WatchTally = emptyTally(svc);
  let steps: TickStep[] = [];
  ticks.forEach((values, i) => {
    const final = i === ticks.length - 1;
    const plan = planTick({ service: svc, tally, values, warmingUp: final ? !!last.warmingUp : false, windowEnded: final ? !!last.windowEnded : false });
    tally = plan.tally;
    steps = plan.steps;
  });
  return words(steps);
}

describe('planTick', () => {
  const cases: [what: string, svc: ServicePolicy, ticks: Record<string, Value>[], last: { warmingUp?: boolean; windowEnded?: boolean }, expected: string[]][] = [
    ['a healthy tick only records its samples', service([errorRate]), [{ error_rate: 0.001 }], {}, ['record']],
    ['a healthy tick at the end of the window records, then concludes', service([errorRate]), [{ error_rate: 0.001 }], { windowEnded: true }, ['record', 'conclude']],
    ['the second breach of a for: 2 rule plans the revert with the breaching value, and nothing after it',
      service([errorRate]), [{ error_rate: 0.2 }, { error_rate: 0.3 }], { windowEnded: true }, ['record', 'revert:error rate above 5%@0.3']],
    ['a notify rule is told before the revert of the same tick', service([slow, errorRate]), [{ error_rate: 0.2 }, { error_rate: 0.3 }], {}, ['record', 'notify:errors above 1%', 'revert:error rate above 5%@0.3']],
    ['while warming up nothing is recorded or judged; the window can still conclude', service([errorRate]), [{ error_rate: 0.9 }], { warmingUp: true, windowEnded: true }, ['conclude']],
    ['on_no_data: the after-th no-data sample of a rollback rule is planned, before the conclusion',
      service([errorRate], { onNoData: { after: 2, then: 'notify' } }), [{ error_rate: null }, { error_rate: null }], { windowEnded: true }, ['record', 'no-data:error rate above 5%', 'conclude']],
    ['below the traffic floor breaches are no data: no revert',
      service([errorRate], { minRequests: { signal: 'request_rate', atLeast: 10 } }), [{ error_rate: 0.5, request_rate: 1 }, { error_rate: 0.5, request_rate: 1 }], {}, ['record']],
  ];
  for (const [what, svc, ticks, last, expected] of cases) {
    it(what, () => assert.deepEqual(planAfter(svc, ticks, last), expected));
  }

  it('says why samples below the traffic floor carry no data', () => {
    const svc = service([errorRate], { minRequests: { signal: 'request_rate', atLeast: 10 } });
    const plan = planTick({ service: svc, tally: emptyTally(svc), values: { error_rate: 0.5, request_rate: 3 }, warmingUp: false, windowEnded: false });
    assert.deepEqual(plan.steps[0], { kind: 'record', results: { 'error rate above 5%': 'no-data' }, note: 'traffic 3 below the floor of 10' });
  });
});

describe('tallyFromSamples', () => {
  it('adds recorded samples up tick by tick, in time order, to the tally the live watch had', () => {
    const svc = service([errorRate, slow], { minRequests: { signal: 'request_rate', atLeast: 10 } });
    const ticks: Record<string, Value>[] = [
      { error_rate: 0.2, request_rate: 50 }, { error_rate: 0.02, request_rate: 50 }, { error_rate: 0.5, request_rate: 2 }, { error_rate: 0.3, request_rate: 50 },
    ];
    let live = emptyTally(svc);
    for (const values of ticks) live = planTick({ service: svc, tally: live, values, warmingUp: false, windowEnded: false }).tally;
    // Recorded out of order, one row per signal, as the store returns them.
    const rows = ticks.flatMap((values, i) => Object.entries(values).map(([signal, value]) => ({ at: 1_000 * (i + 1), signal, value }))).reverse();
    assert.deepEqual(tallyFromSamples(svc, emptyTally(svc), rows), live);
  });

  it('starts from the tally it is given', () => {
    const svc = service([errorRate]);
    const start = assess(svc, emptyTally(svc), { error_rate: 0.2 }).tally;
    assert.equal(tallyFromSamples(svc, start, [{ at: 1, signal: 'error_rate', value: 0.2 }]).rules['error rate above 5%']?.streak, 2);
  });
});
