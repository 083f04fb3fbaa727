import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { badge } from './html.js';
import { timeline } from './render-deployment.js';
import type { DeploymentDetail } from './view.js';

// A deployment that passed early (pass_after) looks like a passed one on the status page, under its own name.

const T0 = Date.parse('2024-05-01T12:00:00Z');
const at = (s: number): Date => new Date(T0 + s * 1000);

function detail(state: string): DeploymentDetail {
  return {
    deployment: {
      id: 3, service: 'web', from_ref: 'app:v1', from_image: 'sha256:aaaa', to_ref: 'app:v2', to_image: 'sha256:bbbb',
      state, reason: 'passed early after 20 ok samples in 5m; now known-good', dry_run: false, attempts: 0,
      started_at: at(0), detected_at: at(1), window_ends_at: at(600), decided_at: at(300), recovered_at: null,
    },
    samples: [], decisions: [{ decided_at: at(300), kind: 'pass', rule: null, severity: null, detail: 'passed early after 20 ok samples in 5m' }],
    actions: [], rules: [], live: false,
  };
}

describe('status page: passed_early', () => {
  it('is a good (green) badge reading "passed early"', () => {
    assert.equal(badge('passed_early').html, '<span class="badge good" data-state="passed_early">passed early</span>');
    assert.equal(badge('passed').html, '<span class="badge good" data-state="passed">passed</span>');
  });

  it('closes the timeline with a good outcome, as passed does', () => {
    for (const state of ['passed_early', 'passed']) {
      const outcome = timeline(detail(state)).at(-1);
      assert.equal(outcome?.kind, `outcome: ${state.replace(/_/g, ' ')}`);
      assert.equal(outcome?.tone, 'good');
    }
  });
});
