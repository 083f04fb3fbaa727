import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Rule } from '../config/policy.js';
import { servicePolicy } from '../policy/service.fixture.js';
import type { ReplayVerdict } from '../policy/replay.js';
import type { Deployment } from '../store/store.js';
import { recordedVerdict, verdictText, type Simulation } from './simulate-report.js';

// `rollguard simulate` with pass_after: an early pass is told as such, and a deployment recorded
// passed_early compares with a simulated pass like one recorded passed.

const T0 = Date.parse('2026-11-26T12:00:00Z');
const RULE: Rule = { name: 'errors', signal: 'errors', above: 0.05, for: 3, severity: 'P0', action: 'rollback' };

function simulation(verdict: ReplayVerdict): Simulation {
  return {
    service: servicePolicy({ rules: [RULE], passAfter: { ok: 4, minMs: 60_000 } }),
    startedAt: T0, windowMs: 600_000, template: { values: { service: 'web', container: 'web', image: 'app:2', version: '2' }, placeholders: [] },
    baselines: [], keys: [], queryErrors: [],
    result: { steps: [], events: [], verdict, notReplayed: [] },
  };
}

describe('simulate: pass_after', () => {
  it('tells an early pass with its ok samples, and a pass at the end of the window as before', () => {
    assert.equal(verdictText(simulation({ kind: 'passed', at: T0 + 60_000, early: { oks: 4, afterMs: 60_000 } })),
      'would pass early at 2026-11-26T12:01:00.000Z (+1m): every rule ok for 4 samples in a row (pass_after)');
    assert.match(verdictText(simulation({ kind: 'passed', at: T0 + 600_000 })), /^would pass: no rollback rule fired by the end of the window at /);
  });

  it('a deployment recorded passed_early is a recorded pass', () => {
    const d = { state: 'passed_early', reason: 'passed early after 4 ok samples in 1m' } as Deployment;
    assert.deepEqual(recordedVerdict(d, simulation({ kind: 'passed', at: T0 + 60_000 })), { recorded: 'passed', comparable: true, changed: false });
  });
});
