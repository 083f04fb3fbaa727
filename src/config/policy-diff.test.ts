import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Policy, Rule, ServicePolicy } from './policy.js';
import { diffPolicies, isUnchanged, summarizeDiff, type PolicyDiff } from './policy-diff.js';
import { servicePolicy } from '../policy/service.fixture.js';

const rule = (name: string, over: Partial<Rule> = {}): Rule =>
  ({ name, signal: 'error_rate', above: 0.05, for: 3, severity: 'P0', action: 'rollback', ...over }) as Rule;

function service(name: string, over: Partial<ServicePolicy> = {}): ServicePolicy {
  return servicePolicy({
    name,
    match: { kind: 'container', name },
    signals: { error_rate: { kind: 'prometheus', name: 'error_rate', query: 'sum(rate(x[1m]))' } },
    rules: [rule('error rate above 5%')],
    recovery: [{ signal: 'error_rate', below: 0.01 }],
    ...over,
  });
}

function policy(services: ServicePolicy[], over: Partial<Policy> = {}): Policy {
  return {
    version: 1,
    source: '/etc/rollguard/policy.yaml',
    prometheus: { url: 'http://127.0.0.1:9090', timeoutMs: 5_000 },
    services: Object.fromEntries(services.map((s) => [s.name, s])),
    notifications: {},
    routes: {},
    escalation: [],
    ...over,
  };
}

const NO_RULE_CHANGES = { added: [], removed: [], edited: [], reordered: false };
const NOTHING: PolicyDiff = { services: { added: [], removed: [], edited: {} }, settings: [] };

describe('diffPolicies()', () => {
  const web = service('web');
  const base = policy([web]);

  const cases: { name: string; next: Policy; diff: PolicyDiff; summary: string }[] = [
    {
      name: 'finds nothing in an equal policy built separately',
      next: policy([service('web')]),
      diff: NOTHING,
      summary: 'no changes',
    },
    {
      name: 'names an added service',
      next: policy([web, service('api')]),
      diff: { ...NOTHING, services: { added: ['api'], removed: [], edited: {} } },
      summary: 'added services: "api"',
    },
    {
      name: 'names a removed service',
      next: policy([]),
      diff: { ...NOTHING, services: { added: [], removed: ['web'], edited: {} } },
      summary: 'removed services: "web"',
    },
    {
      name: 'names a rule added to a service',
      next: policy([service('web', { rules: [rule('error rate above 5%'), rule('latency', { signal: 'p99', above: 0.5 })] })]),
      diff: { ...NOTHING, services: { added: [], removed: [], edited: { web: { rules: { ...NO_RULE_CHANGES, added: ['latency'] }, settings: [] } } } },
      summary: 'edited "web" (rules added: "latency")',
    },
    {
      name: 'names a removed rule',
      next: policy([service('web', { rules: [rule('other')] })]),
      diff: {
        ...NOTHING,
        services: { added: [], removed: [], edited: { web: { rules: { ...NO_RULE_CHANGES, added: ['other'], removed: ['error rate above 5%'] }, settings: [] } } },
      },
      summary: 'edited "web" (rules added: "other"; rules removed: "error rate above 5%")',
    },
    {
      name: 'names a rule whose threshold changed, by deep equality under the same name',
      next: policy([service('web', { rules: [rule('error rate above 5%', { above: 0.1 })] })]),
      diff: { ...NOTHING, services: { added: [], removed: [], edited: { web: { rules: { ...NO_RULE_CHANGES, edited: ['error rate above 5%'] }, settings: [] } } } },
      summary: 'edited "web" (rules edited: "error rate above 5%")',
    },
    {
      name: 'counts a switch from above to below as an edit',
      next: policy([service('web', { rules: [{ ...rule('error rate above 5%'), above: undefined, below: 1 } as Rule] })]),
      diff: { ...NOTHING, services: { added: [], removed: [], edited: { web: { rules: { ...NO_RULE_CHANGES, edited: ['error rate above 5%'] }, settings: [] } } } },
      summary: 'edited "web" (rules edited: "error rate above 5%")',
    },
    {
      name: 'names other service keys the way the file spells them',
      next: policy([service('web', { windowMs: 300_000, minRequests: { signal: 'rps', atLeast: 1 }, signals: {} })]),
      diff: { ...NOTHING, services: { added: [], removed: [], edited: { web: { rules: NO_RULE_CHANGES, settings: ['window', 'min_requests', 'signals'] } } } },
      summary: 'edited "web" (window, min_requests, signals)',
    },
    {
      name: 'names top-level sections that changed, without their values',
      next: policy([web], { routes: { P0: ['pager'] }, notifications: { pager: { kind: 'pagerduty', name: 'pager', routingKey: 's3cret', url: 'https://events.pagerduty.com/v2/enqueue' } } }),
      diff: { ...NOTHING, settings: ['notifications', 'routes'] },
      summary: 'changed notifications, routes',
    },
    {
      name: 'ignores where the policy was read from',
      next: policy([web], { source: '/tmp/other.yaml' }),
      diff: NOTHING,
      summary: 'no changes',
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const diff = diffPolicies(base, c.next);
      assert.deepEqual(diff, c.diff);
      assert.equal(summarizeDiff(diff), c.summary);
      assert.equal(isUnchanged(diff), c.summary === 'no changes');
    });
  }

  it('notices rules that only changed order', () => {
    const a = policy([service('web', { rules: [rule('a'), rule('b'), rule('c')] })]);
    const b = policy([service('web', { rules: [rule('b'), rule('a'), rule('d')] })]);
    const diff = diffPolicies(a, b);
    assert.deepEqual(diff.services.edited.web?.rules, { added: ['d'], removed: ['c'], edited: [], reordered: true });
    assert.equal(summarizeDiff(diff), 'edited "web" (rules added: "d"; rules removed: "c"; rules reordered)');
  });

  it('does not call a rule reordered when only its neighbours came and went', () => {
    const a = policy([service('web', { rules: [rule('a'), rule('b')] })]);
    const b = policy([service('web', { rules: [rule('x'), rule('a'), rule('b')] })]);
    assert.equal(diffPolicies(a, b).services.edited.web?.rules.reordered, false);
  });

  it('puts several changes on one line in policy order', () => {
    const a = policy([service('web'), service('old')]);
    const b = policy([service('web', { rules: [rule('error rate above 5%'), rule('latency')], windowMs: 1_000 }), service('new')], { escalation: ['CTO'] });
    assert.equal(summarizeDiff(diffPolicies(a, b)), 'added services: "new"; removed services: "old"; edited "web" (rules added: "latency"; window); changed escalation');
  });
});
