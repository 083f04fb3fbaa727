import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Policy, ServicePolicy } from '../config/policy.js';
import { headline, whatRollguardDid } from '../notify/render-wording.js';
import type { Deployment } from '../store/store.js';
import { buildEvent } from './evidence.js';

// The deployment_passed message of a deployment that passed early (pass_after) says so, with how
// many ok samples it took and when; one that survived its window reads as before.

const T0 = Date.parse('2026-01-01T12:00:00Z');
const SERVICE = { name: 'web', signals: {}, rules: [] } as unknown as ServicePolicy;
const POLICY = { version: 1, source: '/p.yaml', services: { web: SERVICE }, notifications: {}, routes: {}, escalation: [] } as unknown as Policy;
const DEPLOYMENT: Deployment = {
  id: 7, service: 'web', target: 'docker-container', container_id: 'c', container_name: 'web', from_image: 'sha256:1', from_ref: 'app:1',
  to_image: 'sha256:2', to_ref: 'app:2', state: 'passed', reason: null, dry_run: false, attempts: 0,
  started_at: new Date(T0), detected_at: new Date(T0), window_ends_at: new Date(T0 + 600_000), decided_at: null, recovered_at: null,
};
const REASON = 'passed early after 20 ok samples in 5m (pass_after: every rule ok for 20 samples in a row, at least 2m after the deploy; the window was 10m)';

function passedEvent(state: Deployment['state'], reason?: string) {
  return buildEvent({
    kind: 'deployment_passed', severity: 'P2', policy: POLICY, service: SERVICE, deployment: { ...DEPLOYMENT, state }, at: new Date(T0 + 300_000),
    template: { service: 'web', container: 'web', image: 'app:2', version: '2' }, ...(reason ? { reason } : {}),
  });
}

describe('deployment_passed of a deployment that passed early', () => {
  it('says it passed early, after how many ok samples and in how long', () => {
    const e = passedEvent('passed_early', REASON);
    assert.equal(e.title, 'web: app:2 passed its watch early and is now known-good');
    assert.equal(e.summary, `app:2 ${REASON}; now known-good.`);
    assert.equal(e.deployment?.state, 'passed_early');
    assert.equal(headline(e), 'web: app:2 passed its watch early');
    assert.match(whatRollguardDid(e), /passed before its watch window ended; rollguard now treats it as known-good/);
  });

  it('one that survived its window reads as before', () => {
    const e = passedEvent('passed');
    assert.equal(e.title, 'web: app:2 passed its watch and is now known-good');
    assert.equal(e.summary, 'app:2 survived its 600 s window with no rollback rule breached.');
    assert.equal(headline(e), 'web: app:2 passed its watch');
    assert.equal(whatRollguardDid(e), 'The deployment survived its watch window; rollguard now treats it as known-good.');
  });
});
