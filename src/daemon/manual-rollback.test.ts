import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openStore } from '../store/open-store.js';
import type { Store } from '../store/store.js';
import { log, rig as makeRig, waitFor, type RigOptions } from './daemon.fixture.js';
import { RollbackRefused } from './manual-rollback.js';

// `rollguard rollback` over a FakeTarget and the embedded store: the automatic revert's own path,
// started by an operator.

describe('rollback by hand', () => {
  let dir: string;
  let store: Store;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'rollguard-manual-rollback-'));
    store = await openStore({ stateDir: dir, log });
  });

  after(async () => {
    await store?.sql.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const rig = (t: TestContext, name: string, opts: RigOptions = {}) => makeRig(t, store, name, opts);
  const refused = (status: number, text: RegExp) => (err: unknown) => err instanceof RollbackRefused && err.status === status && text.test(err.message);

  it('reverts a watched deployment whose rules hold to the known-good version, recorded and verified like an automatic revert', async (t) => {
    const r = rig(t, 'byhand', { window: '30s' });
    r.target.deploy('byhand', 'app:1');
    await r.start();
    r.target.deploy('byhand', 'app:2');
    const watched = await waitFor('the deployment watched', async () => (await store.latestDeployment('byhand'))?.state === 'watching' || undefined);
    assert.ok(watched);

    const started = await r.daemon.rollback('byhand', { reason: 'customers report broken checkout' });
    const d = await r.finished();

    assert.equal(started.deployment_id, d.id);
    assert.deepEqual([started.from, started.to], ['app:2', 'app:1']);
    assert.equal(d.state, 'rolled_back');
    assert.match(d.reason ?? '', /rolled back by hand: customers report broken checkout/);
    assert.deepEqual(await r.running(), ['byhand app:1']);
    const decided = (await store.listDecisions(d.id)).filter((x) => x.kind === 'rollback');
    assert.equal(decided.length, 1);
    assert.equal(decided[0]?.rule, 'rollback by hand');
    assert.ok((await store.listActions(d.id)).length > 0, 'the revert steps are recorded');
  });

  it('refuses a service that already runs its known-good version, and changes nothing', async (t) => {
    const r = rig(t, 'atgood', { window: '200ms' });
    r.target.deploy('atgood', 'app:1');
    await r.start();
    r.target.deploy('atgood', 'app:2');
    assert.equal((await r.finished()).state, 'passed');
    r.target.resetCounts();

    await assert.rejects(r.daemon.rollback('atgood', { reason: 'r' }), refused(409, /already runs its known-good version app:2.*--to IMAGE/));
    assert.deepEqual(r.target.counts, { created: 0, parked: 0, restored: 0, removed: 0 });
  });

  it('--to IMAGE puts that image back with the known-good settings; it becomes known-good and the reverted image is marked bad', async (t) => {
    const r = rig(t, 'toimage', { window: '200ms' });
    r.target.deploy('toimage', 'app:1');
    await r.start();
    r.target.deploy('toimage', 'app:2');
    const passed = await r.finished();
    assert.equal(passed.state, 'passed');

    await r.daemon.rollback('toimage', { to: 'app:1', reason: 'app:2 corrupts carts' });
    const d = await r.finished();

    assert.equal(d.id, passed.id, 'the last deployment is the one reverted');
    assert.equal(d.state, 'rolled_back');
    assert.deepEqual(await r.running(), ['toimage app:1']);
    assert.equal((await store.getKnownGood('toimage'))?.image_id, 'app:1');
    const bad = await store.sql.query<{ image_id: string }>('SELECT image_id FROM bad_images WHERE service = $1', ['toimage']);
    assert.deepEqual(bad.map((b) => b.image_id), ['app:2']);
  });

  it('--to an image that is not on the host is refused before anything changes', async (t) => {
    const r = rig(t, 'noimage', { window: '30s' });
    r.target.deploy('noimage', 'app:1');
    await r.start();
    r.target.deploy('noimage', 'app:2');
    await waitFor('the deployment watched', async () => (await store.latestDeployment('noimage'))?.state === 'watching' || undefined);
    r.target.resetCounts();

    await assert.rejects(r.daemon.rollback('noimage', { to: 'app:0', reason: 'r' }), refused(409, /image app:0 is not on this host/));
    assert.deepEqual(r.target.counts, { created: 0, parked: 0, restored: 0, removed: 0 });
    assert.equal((await store.getKnownGood('noimage'))?.image_id, 'app:1');
    assert.equal((await store.latestDeployment('noimage'))?.state, 'watching', 'the watch goes on');
  });

  it('a --to revert that fails leaves the proven known-good version as the revert target', async (t) => {
    const r = rig(t, 'tofails', { window: '30s' });
    r.target.deploy('tofails', 'app:1');
    await r.start();
    r.target.deploy('tofails', 'app:0');
    r.target.deploy('tofails', 'app:2');
    await waitFor('the deployment watched', async () => (await store.latestDeployment('tofails'))?.to_image === 'app:2' || undefined);
    r.target.failStart = 'the engine refused to create the container';

    await r.daemon.rollback('tofails', { to: 'app:0', reason: 'try the older one' });
    const d = await r.finished();

    assert.equal(d.state, 'rollback_failed');
    assert.equal((await store.getKnownGood('tofails'))?.image_id, 'app:1', 'app:0 never proved itself');
  });

  it('refuses a deployment other than the one the operator saw, and changes nothing', async (t) => {
    const r = rig(t, 'pinned', { window: '30s' });
    r.target.deploy('pinned', 'app:1');
    await r.start();
    r.target.deploy('pinned', 'app:2');
    const watched = await waitFor('the deployment watched', async () => store.latestDeployment('pinned'));
    r.target.resetCounts();

    await assert.rejects(r.daemon.rollback('pinned', { reason: 'r', deployment: watched.id + 1000 }), refused(409, new RegExp(`current deployment is ${watched.id} \\(app:2\\), not ${watched.id + 1000}`)));
    assert.deepEqual(r.target.counts, { created: 0, parked: 0, restored: 0, removed: 0 });
  });

  it('a rollback by hand cut short by a restart is finished at the next start under its own rule', async (t) => {
    const r = rig(t, 'handresume');
    // What a daemon killed after deciding a rollback by hand leaves behind: the decision and the phase.
    const good = r.target.deploy('handresume', 'app:1');
    await store.setKnownGood({ service: 'handresume', target: r.target.kind, image_id: 'app:1', image_ref: 'app:1', container_name: 'handresume', spec: r.target.snapshot([good]), deployment_id: null, since: new Date() });
    const bad = r.target.deploy('handresume', 'app:2');
    const now = new Date();
    const d = await store.insertDeployment({
      service: 'handresume', target: r.target.kind, container_id: bad.id, container_name: 'handresume', from_image: 'app:1', from_ref: 'app:1', to_image: 'app:2', to_ref: 'app:2',
      dry_run: false, started_at: bad.startedAt, detected_at: now, window_ends_at: new Date(now.getTime() + 60_000), state: 'rolling_back',
    });
    await store.updateDeployment(d.id, { phase: 'decided', decided_at: now, reason: 'rolled back by hand: r' });
    await store.insertDecision({ deployment_id: d.id, decided_at: now, kind: 'rollback', rule: 'rollback by hand', severity: 'P1', detail: 'rolled back by hand: r' });

    await r.start();

    const after = await waitFor('the revert finished', async () => {
      const x = await store.getDeployment(d.id);
      return x?.state === 'rolled_back' ? x : undefined;
    });
    assert.equal(after.phase, 'done');
    assert.deepEqual(await r.running(), ['handresume app:1']);
    const resumed = (await store.listDecisions(d.id)).filter((x) => x.kind === 'resume');
    assert.deepEqual(resumed.map((x) => x.rule), ['rollback by hand'], 'told under the operator\'s rollback, not the first rule of the policy');
  });

  it('refuses an unknown service (404) and a service another instance leads (409)', async (t) => {
    const r = rig(t, 'notmine', { leads: () => false });
    r.target.deploy('notmine', 'app:1');
    await r.start();
    await assert.rejects(r.daemon.rollback('nosuch', { reason: 'r' }), refused(404, /unknown service "nosuch"/));
    await assert.rejects(r.daemon.rollback('notmine', { reason: 'r' }), refused(409, /does not lead notmine/));
  });
});
