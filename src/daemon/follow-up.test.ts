import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Deployment } from '../store/store.js';
import { buildEvent } from './evidence.js';
import type { RevertOutcome } from './revert.js';
import { DEPLOYMENT_ID, RULE, setup, T0 } from './revert-procedures.fixture.js';

// The follow-up steps after a verified revert (revert-procedures.ts followUp) and how the
// rolled-back message tells them, over a FakeTarget and fake procedures.

describe('the follow-up steps after a verified revert (followUp)', () => {
  it('run after the recovery is verified, each recorded as follow-up:<kind>; a failed one leaves the deployment rolled_back', async () => {
    const s = setup({ followUps: true });
    s.procedures.failing.add('http');
    const outcome = await s.revert();

    assert.equal(outcome.state, 'rolled_back');
    assert.deepEqual(s.procedures.followUpCalls, [['restart', 'http']]);
    // After the verified recovery and the bad replica's removal (the final write may come before or after them).
    assert.deepEqual(s.timeline.filter((l) => !l.startsWith('state ')).slice(-5), ['verify ok', `remove ${s.bad.id}`, 'remove-bad ok', 'follow-up:restart ok', 'follow-up:http failed']);
    const followUps = s.writes.actions.filter((a) => a.kind.startsWith('follow-up'));
    assert.deepEqual(followUps.map((a) => [a.kind, a.ok, a.detail, a.attempt]), [
      ['follow-up:restart', true, 'restart web-worker: done', 1],
      ['follow-up:http', false, 'POST http://127.0.0.1:9/warm: connect ECONNREFUSED 127.0.0.1:9', 1],
    ]);
    assert.deepEqual(outcome.actions.slice(-2).map((a) => [a.kind, a.ok]), [['follow-up:restart', true], ['follow-up:http', false]], 'told with the revert\'s steps');
    assert.equal(s.writes.patches.at(-1)?.state, 'rolled_back', 'nothing is written over the recovery');
    assert.ok(!s.writes.patches.some((p) => p.state === 'rollback_failed'));
  });

  it('do not run when the revert fails', async () => {
    const s = setup({ followUps: true });
    s.target.failStart = 'the engine refused to create the container';
    const outcome = await s.revert();

    assert.equal(outcome.state, 'rollback_failed');
    assert.deepEqual(s.procedures.followUpCalls, []);
    assert.ok(!s.writes.actions.some((a) => a.kind.startsWith('follow-up')));
  });

  it('none configured: nothing is run or recorded', async () => {
    const s = setup();
    const outcome = await s.revert();

    assert.equal(outcome.state, 'rolled_back');
    assert.deepEqual(s.procedures.followUpCalls, []);
    assert.ok(!s.writes.actions.some((a) => a.kind.startsWith('follow-up')));
  });

  it('without the procedures in this process, one failed follow-up action says none was run', async () => {
    const s = setup({ followUps: true }, { procedures: false });
    const outcome = await s.revert();

    assert.equal(outcome.state, 'rolled_back');
    const followUps = s.writes.actions.filter((a) => a.kind.startsWith('follow-up'));
    assert.deepEqual(followUps.map((a) => [a.kind, a.ok, a.detail]), [['follow-up', false, 'the follow-up steps are not available in this process; none was run']]);
    assert.equal(s.writes.patches.at(-1)?.state, 'rolled_back');
  });
});

describe('the rollback_succeeded summary tells the follow-up steps (buildEvent)', () => {
  /** The summary of the rollback_succeeded message for a revert's outcome, as record.ts builds it. */
  const summaryOf = (s: ReturnType<typeof setup>, outcome: RevertOutcome): string => buildEvent({
    kind: 'rollback_succeeded', severity: 'P0', policy: s.policy, service: s.service,
    deployment: deploymentOf(s, outcome),
    template: { service: 'web', container: 'web', image: 'app:2', version: '2' },
    rule: RULE, actions: outcome.actions, criteria: outcome.criteria, revertAt: outcome.revertAt, recoveredAt: outcome.recoveredAt, at: new Date(T0),
  }).summary;
  const deploymentOf = (s: ReturnType<typeof setup>, outcome: RevertOutcome): Deployment => ({
    id: DEPLOYMENT_ID, service: 'web', target: s.target.kind, container_id: s.bad.id, container_name: 'web',
    from_image: 'app:1', from_ref: 'app:1', to_image: 'app:2', to_ref: 'app:2', state: 'rolled_back', reason: null, dry_run: false,
    attempts: outcome.attempts, started_at: new Date(T0 - 120_000), detected_at: new Date(T0 - 119_000), window_ends_at: new Date(T0 + 480_000),
    decided_at: new Date(T0), recovered_at: new Date(T0), phase: 'done',
  });
  const REVERTED = 'rollguard reverted web from app:2 to the known-good version and the recovery criteria hold.';

  it('says FOLLOW-UP NEEDED with the failed step when one of two failed', async () => {
    const s = setup({ followUps: true });
    s.procedures.failing.add('http');
    const summary = summaryOf(s, await s.revert());
    assert.equal(summary, `${REVERTED} FOLLOW-UP NEEDED: 1 of 2 follow-up steps did not run through (POST http://127.0.0.1:9/warm: connect ECONNREFUSED 127.0.0.1:9); the revert itself stands.`);
  });

  it('says the follow-up steps ran when all did', async () => {
    const s = setup({ followUps: true });
    const summary = summaryOf(s, await s.revert());
    assert.equal(summary, `${REVERTED} The 2 follow-up steps ran.`);
  });

  it('says nothing of follow-up steps when none are configured', async () => {
    const s = setup();
    const summary = summaryOf(s, await s.revert());
    assert.equal(summary, REVERTED);
  });

  it('says FOLLOW-UP NEEDED when the follow-up steps were not available to run', async () => {
    const s = setup({ followUps: true }, { procedures: false });
    const summary = summaryOf(s, await s.revert());
    assert.match(summary, /FOLLOW-UP NEEDED: 1 of 1 follow-up step did not run through \(the follow-up steps are not available in this process; none was run\)/);
  });
});
