import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Policy, PrometheusSettings, Rule, ServicePolicy } from '../config/policy.js';
import type { Deployment } from '../store/store.js';
import { buildEvent } from './evidence.js';

// The graph link in a message about a rule: where people open it, never with credentials.

const T0 = Date.parse('2026-01-01T12:00:00Z');
const RULE: Rule = { name: 'errors', signal: 'errors', above: 0.05, for: 3, severity: 'P0', action: 'rollback' };
const SERVICE = { name: 'web', signals: { errors: { kind: 'prometheus', name: 'errors', query: 'sum(rate(errors{service="{{service}}"}[1m]))' } }, rules: [RULE] } as unknown as ServicePolicy;
const DEPLOYMENT: Deployment = {
  id: 1, service: 'web', target: 'docker-container', container_id: 'c', container_name: 'web', from_image: 'app:1', from_ref: 'app:1',
  to_image: 'app:2', to_ref: 'app:2', state: 'watching', reason: null, dry_run: false, attempts: 0,
  started_at: new Date(T0 - 60_000), detected_at: new Date(T0 - 60_000), window_ends_at: new Date(T0 + 540_000), decided_at: null, recovered_at: null,
};

function graphUrl(prometheus: PrometheusSettings): URL {
  const policy = { version: 1, source: '/p.yaml', prometheus, services: { web: SERVICE }, notifications: {}, routes: {}, escalation: [] } as Policy;
  const event = buildEvent({
    kind: 'rule_breached', severity: 'P0', policy, service: SERVICE, deployment: DEPLOYMENT, rule: RULE, at: new Date(T0),
    template: { service: 'web', container: 'web', image: 'app:2', version: '2' },
  });
  assert.ok(event.graphUrl, 'a prometheus rule has a graph link');
  return new URL(event.graphUrl);
}

describe('the graph link of a message (buildEvent)', () => {
  it('opens external_url, not the loopback query URL', () => {
    const url = graphUrl({ url: 'http://127.0.0.1:9090', timeoutMs: 1_000, externalUrl: 'https://prometheus.example.com/prom' });
    assert.equal(`${url.origin}${url.pathname}`, 'https://prometheus.example.com/prom/graph');
    assert.equal(url.searchParams.get('g0.expr'), 'sum(rate(errors{service="web"}[1m]))');
  });

  it('without external_url, opens the url without its credentials', () => {
    const url = graphUrl({ url: 'http://rollguard:hunter2@prom:9090', timeoutMs: 1_000, basicAuth: undefined });
    assert.equal(`${url.origin}${url.pathname}`, 'http://prom:9090/graph');
    assert.equal(url.username, '');
    assert.doesNotMatch(url.href, /hunter2/);
  });

  it('never carries basic_auth, the authorization token or the headers', () => {
    const url = graphUrl({
      url: 'http://127.0.0.1:9090', timeoutMs: 1_000, externalUrl: 'https://prometheus.example.com',
      basicAuth: { username: 'rollguard', password: 'pw-secret' }, authorization: { type: 'Bearer', credentials: 'tok-secret' }, headers: { 'X-Scope-OrgID': 'tenant-1' },
    });
    assert.doesNotMatch(url.href, /pw-secret|tok-secret|rollguard@|tenant-1/);
  });
});
