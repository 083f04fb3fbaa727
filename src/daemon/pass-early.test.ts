import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openStore } from '../store/open-store.js';
import type { Deployment, Store } from '../store/store.js';
import { log, rig as makeRig, waitFor, type RigOptions } from './daemon.fixture.js';
import { digestEvent } from './digest.js';

// pass_after end to end: the watch loop over a FakeTarget and the embedded SQLite store, sampling
// every 50 ms. Each test has its own service name; the file shares one store.

describe('pass_after: a deployment passes before its window ends', () => {
  let dir: string;
  let store: Store;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'rollguard-pass-early-test-'));
    store = await openStore({ stateDir: dir, log });
  });

  after(async () => {
    await store?.sql.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const rig = (t: TestContext, name: string, opts: RigOptions) => makeRig(t, store, name, opts);

  /** The watch's ticks, in order: each sample time once, with the error rate sampled then. */
  async function ticks(d: Deployment): Promise<{ at: number; errorRate: number | null }[]> {
    const samples = (await store.listSamples(d.id)).filter((s) => s.stage === 'watch');
    const times = [...new Set(samples.map((s) => s.taken_at.getTime()))].sort((a, b) => a - b);
    return times.map((at) => ({ at, errorRate: samples.find((s) => s.taken_at.getTime() === at && s.signal === 'error_rate')?.value ?? null }));
  }

  it('passes early after `ok` ok samples: recorded as passed_early, known-good, and the decision says so', async (t) => {
    const r = rig(t, 'early', { window: '20s', passAfter: '{ok: 10, min: 0s}' });
    r.target.deploy('early', 'app:1');
    await r.start();
    r.prometheus.set('early', 0.01);

    r.target.deploy('early', 'app:2');
    const d = await r.finished();
    await r.stop();

    assert.equal(d.state, 'passed_early', `reason: ${d.reason}`);
    assert.match(d.reason ?? '', /^passed early after 10 ok samples in \S+ .*now known-good$/);
    assert.equal((await ticks(d)).length, 10, 'the 10th all-ok sample passes it; nothing is sampled after');
    assert.ok(d.decided_at && d.decided_at < d.window_ends_at, 'decided before the window ends');
    const known = await store.getKnownGood('early');
    assert.equal(known?.image_id, 'app:2');
    assert.equal(known?.deployment_id, d.id);
    const pass = (await store.listDecisions(d.id)).filter((x) => x.kind === 'pass');
    assert.equal(pass.length, 1);
    assert.match(pass[0]?.detail ?? '', /^passed early after 10 ok samples in /);
    assert.deepEqual(r.target.history, [], 'nothing reverted');
  });

  it('not before `min` has passed since the deployment started, however many ok samples came first', async (t) => {
    const r = rig(t, 'early-min', { window: '20s', passAfter: '{ok: 2, min: 700ms}' });
    r.target.deploy('early-min', 'app:1');
    await r.start();
    r.prometheus.set('early-min', 0.01);

    r.target.deploy('early-min', 'app:2');
    const d = await r.finished();
    await r.stop();

    assert.equal(d.state, 'passed_early', `reason: ${d.reason}`);
    const seen = await ticks(d);
    assert.ok(seen.length > 2, `more than ok samples were taken while min had not passed (${seen.length})`);
    assert.ok((seen.at(-1)?.at ?? 0) - d.started_at.getTime() >= 700, 'the passing sample is at least min after the start');
    assert.ok((seen.at(-2)?.at ?? 0) - d.started_at.getTime() < 700, 'and the one before it was not: it passed at the first chance');
  });

  it('a breach in between resets the count: `ok` more ok samples are needed after it', async (t) => {
    const r = rig(t, 'early-reset', { window: '20s', passAfter: '{ok: 6, min: 0s}' });
    r.target.deploy('early-reset', 'app:1');
    await r.start();
    let calls = 0;
    // The 4th sample breaches once: a rule with for: 2 does not revert on it.
    r.prometheus.bySignal.set('error_rate', () => (++calls === 4 ? 0.5 : 0.01));

    r.target.deploy('early-reset', 'app:2');
    const d = await r.finished();
    await r.stop();

    assert.equal(d.state, 'passed_early', `reason: ${d.reason}`);
    const seen = await ticks(d);
    assert.deepEqual(seen.map((s) => s.errorRate), [0.01, 0.01, 0.01, 0.5, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01], '4 + 6 samples: the count started again after the breach');
  });

  it('a hold in force prevents it: the deployment passes early only once the hold has ended', async (t) => {
    const r = rig(t, 'early-held', { window: '20s', passAfter: '{ok: 3, min: 0s}' });
    r.target.deploy('early-held', 'app:1');
    await r.start();
    let open!: () => void;
    const gate = new Promise<void>((resolve) => { open = resolve; });
    // No sample is taken until the hold is placed.
    r.prometheus.bySignal.set('error_rate', async () => {
      await gate;
      return 0.01;
    });

    r.target.deploy('early-held', 'app:2');
    await waitFor('the watch to begin', async () => ((r.daemon.status().services['early-held'] as { watch: unknown }).watch ? true : undefined));
    const hold = await r.daemon.hold('early-held', 600, 'fixing forward');
    open();
    const d = await r.finished();
    await r.stop();

    assert.equal(d.state, 'passed_early', `reason: ${d.reason}`);
    const until = hold.until?.getTime() ?? 0;
    const seen = await ticks(d);
    const whileHeld = seen.filter((s) => s.at < until).length;
    assert.ok(whileHeld > 3, `more than ok all-ok samples were taken while held (${whileHeld}), and none passed it`);
    assert.ok((d.decided_at?.getTime() ?? 0) >= until, 'decided once the hold had ended');
    // A sample taken just before the hold ended may be judged just after it: that one passes it then.
    assert.ok(seen.filter((s) => s.at >= until).length <= 1, 'it passes at the first chance once the hold has ended');
  });

  it('the store keeps passed_early, and the daily digest counts it as passed', async () => {
    const at = new Date('2020-03-01T10:00:00Z');
    const row = { service: 'digest-early', target: 'docker-container', container_id: 'c', container_name: 'digest-early', from_image: 'app:1', from_ref: 'app:1', to_ref: 'app:2', dry_run: false, started_at: at, detected_at: at, window_ends_at: at };
    await store.insertDeployment({ ...row, to_image: 'app:2', state: 'passed' });
    const early = await store.insertDeployment({ ...row, to_image: 'app:3' });
    await store.updateDeployment(early.id, { state: 'passed_early', reason: 'passed early after 20 ok samples in 5m' });
    assert.equal((await store.getDeployment(early.id))?.state, 'passed_early');
    const digest = await digestEvent(store, new Date('2020-03-01T00:00:00Z'), new Date('2020-03-02T00:00:00Z'));
    assert.equal(digest.digest?.watched, 2);
    assert.equal(digest.digest?.passed, 2);
  });
});
